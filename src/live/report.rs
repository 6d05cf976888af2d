//! The live study's report: `results.json`, `report.md` and plots, rendered from the runs'
//! `run.json` files (`super::run`).
//!
//! Per scheduler: the real mean JCT (mean over repetitions of each run's mean, with a
//! t-interval over repetitions), the simulated mean JCT, their relative error, and the paired
//! ratio to Spark's default over the same jobs (a bootstrap over jobs, each job keeping its
//! pair). Whether the simulator ranks the schedulers as Spark does is checked on every pair.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::run::{LiveError, RunResult, SPARK_DEFAULT};
use crate::eval::stats::{cdf_points, mean_std, paired_ratio_ci};
use crate::io::write_file;
use crate::plot::{Bar, GanttData, Series, bar_chart, gantt_chart, line_chart};
use crate::sim::{TaskRecord, Wave};

/// Two-sided 95% Student t quantiles for 1..=30 degrees of freedom; 1.96 beyond.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Mean and 95% t-interval half-width of `v` (0 for a single value).
pub fn mean_ci95(v: &[f64]) -> (f64, f64) {
    let (mean, std) = mean_std(v);
    let n = v.len();
    if n < 2 {
        return (mean, 0.0);
    }
    let t = T95.get(n - 2).copied().unwrap_or(1.96);
    (mean, t * std / (n as f64).sqrt())
}

#[derive(Debug, Clone, Serialize)]
pub struct SchedulerSummary {
    pub scheduler: String,
    pub repetitions: usize,
    /// Mean over repetitions of each run's mean real JCT.
    pub real_mean_jct_s: f64,
    pub real_ci95_s: f64,
    pub sim_mean_jct_s: f64,
    /// (sim - real) / real.
    pub rel_error: f64,
    pub per_repetition_real_s: Vec<f64>,
    pub per_repetition_sim_s: Vec<f64>,
    pub failed_jobs: usize,
    /// Mean real JCT over the same jobs divided by Spark default's, with a 95% paired
    /// bootstrap interval over jobs; absent for Spark's default itself or without it.
    pub ratio_to_spark_default: Option<[f64; 3]>,
    pub kills: u64,
    pub controller_errors: usize,
    /// Mean over jobs of submission → agent hello (mpda's schedulers only) and submission →
    /// first Spark job, s: the start-up the simulator's `[predict]` settings model.
    pub mean_registered_s: Option<f64>,
    pub mean_first_job_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StudyResults {
    pub name: String,
    pub executors: u32,
    pub jobs_per_run: usize,
    pub schedulers: Vec<SchedulerSummary>,
    /// Pairs (a, b) with a faster than b in real runs, and whether the simulator agrees.
    pub ranking: Vec<RankPair>,
    pub ranking_agrees: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RankPair {
    pub faster_real: String,
    pub slower_real: String,
    pub sim_agrees: bool,
}

/// Per-job real JCTs of one scheduler, keyed by (repetition, job), for pairing.
fn job_jcts(runs: &[&RunResult]) -> BTreeMap<(usize, String), f64> {
    runs.iter()
        .flat_map(|r| {
            r.jobs
                .iter()
                .filter_map(move |j| j.real_jct_s.map(|v| ((r.repetition, j.name.clone()), v)))
        })
        .collect()
}

pub fn summarise(name: &str, runs: &[RunResult]) -> Result<StudyResults, LiveError> {
    let mut order: Vec<String> = Vec::new();
    for r in runs {
        if !order.contains(&r.scheduler) {
            order.push(r.scheduler.clone());
        }
    }
    let by = |s: &str| -> Vec<&RunResult> { runs.iter().filter(|r| r.scheduler == s).collect() };
    let base = job_jcts(&by(SPARK_DEFAULT));
    let mut out = Vec::new();
    for s in &order {
        let rs = by(s);
        let real: Vec<f64> = rs.iter().filter_map(|r| r.real_mean_jct_s).collect();
        if real.is_empty() {
            return Err(LiveError::Run(format!(
                "scheduler {s}: no run has a job that finished, so there is no JCT to report"
            )));
        }
        let sim: Vec<f64> = rs.iter().map(|r| r.sim_mean_jct_s).collect();
        let (real_mean, ci) = mean_ci95(&real);
        let sim_mean = sim.iter().sum::<f64>() / sim.len() as f64;
        let mine = job_jcts(&rs);
        let ratio = (s != SPARK_DEFAULT && !base.is_empty()).then(|| {
            let keys: Vec<_> = mine.keys().filter(|k| base.contains_key(*k)).collect();
            let a: Vec<f64> = keys.iter().map(|k| mine[*k]).collect();
            let b: Vec<f64> = keys.iter().map(|k| base[*k]).collect();
            let ci = paired_ratio_ci(&[&a], &b, 10_000, 0x11fe);
            [ci[0].ratio, ci[0].low, ci[0].high]
        });
        let mean_of = |f: &dyn Fn(&super::run::JobResult) -> Option<f64>| {
            let v: Vec<f64> = rs
                .iter()
                .flat_map(|r| r.jobs.iter().filter_map(f))
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        out.push(SchedulerSummary {
            mean_registered_s: mean_of(&|j| j.registered_s),
            mean_first_job_s: mean_of(&|j| j.first_job_s),
            scheduler: s.clone(),
            repetitions: rs.len(),
            real_mean_jct_s: real_mean,
            real_ci95_s: ci,
            sim_mean_jct_s: sim_mean,
            rel_error: (sim_mean - real_mean) / real_mean,
            per_repetition_real_s: real,
            per_repetition_sim_s: sim,
            failed_jobs: rs
                .iter()
                .map(|r| r.jobs.iter().filter(|j| !j.succeeded).count())
                .sum(),
            ratio_to_spark_default: ratio.filter(|r| r.iter().all(|v| v.is_finite())),
            kills: rs
                .iter()
                .filter_map(|r| r.control.as_ref())
                .map(|c| c.kills)
                .sum(),
            controller_errors: rs
                .iter()
                .filter_map(|r| r.control.as_ref())
                .map(|c| c.errors.len())
                .sum(),
        });
    }
    let mut ranking = Vec::new();
    for (i, a) in out.iter().enumerate() {
        for b in &out[i + 1..] {
            let (f, sl) = if a.real_mean_jct_s <= b.real_mean_jct_s {
                (a, b)
            } else {
                (b, a)
            };
            ranking.push(RankPair {
                faster_real: f.scheduler.clone(),
                slower_real: sl.scheduler.clone(),
                sim_agrees: f.sim_mean_jct_s <= sl.sim_mean_jct_s,
            });
        }
    }
    Ok(StudyResults {
        name: name.into(),
        executors: runs.first().map_or(0, |r| r.executors),
        jobs_per_run: runs.first().map_or(0, |r| r.jobs.len()),
        ranking_agrees: ranking.iter().all(|p| p.sim_agrees),
        schedulers: out,
        ranking,
    })
}

/// Executor spans of one run as Gantt bars: each span goes to the first core row free at its
/// start, so the chart shows which application held each core over time.
fn gantt(run: &RunResult) -> GanttData {
    let mut spans: Vec<(u32, u64, u64)> = Vec::new();
    let end_all = run
        .jobs
        .iter()
        .filter_map(|j| j.app_end_ms)
        .max()
        .unwrap_or(0);
    for (ji, j) in run.jobs.iter().enumerate() {
        for &(a, r) in &j.executors {
            let end = r.or(j.app_end_ms).unwrap_or(end_all).max(a);
            spans.push((ji as u32, a, end));
        }
    }
    spans.sort_by_key(|s| (s.1, s.0));
    let mut rows: Vec<u64> = Vec::new();
    let mut tasks = Vec::new();
    for (job, start, end) in spans {
        let row = match rows.iter().position(|&free| free <= start) {
            Some(r) => r,
            None => {
                rows.push(0);
                rows.len() - 1
            }
        };
        rows[row] = end;
        tasks.push(TaskRecord {
            job,
            stage: 0,
            task: 0,
            executor: row as u32,
            start_ms: start,
            end_ms: end,
            wave: Wave::First,
        });
    }
    let window_s = end_all as f64 / 1000.0;
    GanttData {
        title: format!(
            "{}, repetition {}: executors per application (rows: executor slots)",
            run.scheduler, run.repetition
        ),
        executors: (rows.len() as u32).max(run.executors),
        tasks,
        jobs: run
            .jobs
            .iter()
            .map(|j| {
                (
                    j.arrival_ms as f64 / 1000.0,
                    j.real_jct_s.map(|v| j.arrival_ms as f64 / 1000.0 + v),
                )
            })
            .collect(),
        window_s: window_s.max(1.0),
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `results.json`, `report.md`, `jct_cdf.{png,svg}`, `sim_vs_real.{png,svg}` and one
/// Gantt chart per scheduler (its first repetition) into `dir`.
pub fn write_report(
    dir: &Path,
    name: &str,
    runs: &[RunResult],
    notes: &str,
) -> Result<StudyResults, LiveError> {
    let res = summarise(name, runs)?;
    let json = serde_json::to_string_pretty(&res).map_err(|e| LiveError::Run(e.to_string()))?;
    write_file(&dir.join("results.json"), json.as_bytes())?;

    let series: Vec<Series> = res
        .schedulers
        .iter()
        .map(|s| {
            let v: Vec<f64> = runs
                .iter()
                .filter(|r| r.scheduler == s.scheduler)
                .flat_map(|r| r.jobs.iter().filter_map(|j| j.real_jct_s))
                .collect();
            Series {
                name: s.scheduler.clone(),
                points: cdf_points(&v, 200),
            }
        })
        .collect();
    line_chart(
        &dir.join("jct_cdf"),
        &format!("{name}: real JCT CDF"),
        "job completion time (s)",
        "fraction of jobs",
        &series,
    )?;
    let mut bars = Vec::new();
    for s in &res.schedulers {
        bars.push(Bar {
            name: format!("{} real", s.scheduler),
            value: s.real_mean_jct_s,
            low: s.real_mean_jct_s - s.real_ci95_s,
            high: s.real_mean_jct_s + s.real_ci95_s,
        });
        bars.push(Bar {
            name: format!("{} sim", s.scheduler),
            value: s.sim_mean_jct_s,
            low: f64::NAN,
            high: f64::NAN,
        });
    }
    bar_chart(
        &dir.join("sim_vs_real"),
        &format!("{name}: mean JCT, real and simulated"),
        "mean JCT (s)",
        &bars,
    )?;
    let mut gantts = Vec::new();
    for s in &res.schedulers {
        if let Some(r) = runs
            .iter()
            .find(|r| r.scheduler == s.scheduler && r.repetition == 0)
        {
            let stem = format!("gantt_{}", slug(&s.scheduler));
            gantt_chart(&dir.join(&stem), &gantt(r))?;
            gantts.push((s.scheduler.clone(), stem));
        }
    }

    let mut md = String::new();
    let _ = writeln!(md, "# Live Spark study: {name}\n");
    let _ = writeln!(
        md,
        "{} executors, {} jobs per run. Real JCT: submission of the job's application to the \
         end of its query's last Spark job, from the event log. Sim: `LiveSim` (live \
         semantics), the mean over its duration seeds of the same job sequence.\n",
        res.executors, res.jobs_per_run
    );
    let _ = writeln!(
        md,
        "| scheduler | reps | real mean JCT (s) ± 95% CI | sim mean JCT (s) | sim error | vs spark-default (paired, 95% CI) | failed jobs | kills |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for s in &res.schedulers {
        let ratio = s.ratio_to_spark_default.map_or("—".into(), |[r, lo, hi]| {
            format!("{r:.3} [{lo:.3}, {hi:.3}]")
        });
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} ± {:.1} | {:.1} | {:+.1}% | {} | {} | {} |",
            s.scheduler,
            s.repetitions,
            s.real_mean_jct_s,
            s.real_ci95_s,
            s.sim_mean_jct_s,
            100.0 * s.rel_error,
            ratio,
            s.failed_jobs,
            s.kills
        );
    }
    let _ = writeln!(
        md,
        "\nStart-up, mean over jobs (s): submission to the agent's hello (the application registered) and to the first Spark job:\n"
    );
    for s in &res.schedulers {
        let f = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1}"));
        let _ = writeln!(
            md,
            "- {}: hello {}, first job {}",
            s.scheduler,
            f(s.mean_registered_s),
            f(s.mean_first_job_s)
        );
    }
    let _ = writeln!(md, "\nPer repetition (real / sim, s):\n");
    for s in &res.schedulers {
        let reps: Vec<String> = s
            .per_repetition_real_s
            .iter()
            .zip(&s.per_repetition_sim_s)
            .map(|(r, m)| format!("{r:.1} / {m:.1}"))
            .collect();
        let _ = writeln!(md, "- {}: {}", s.scheduler, reps.join(", "));
    }
    let _ = writeln!(
        md,
        "\nRanking: the simulator {} every pairwise order of the real runs.",
        if res.ranking_agrees {
            "reproduces"
        } else {
            "does not reproduce"
        }
    );
    for p in res.ranking.iter().filter(|p| !p.sim_agrees) {
        let _ = writeln!(
            md,
            "- real: {} faster than {}; the simulator has them the other way",
            p.faster_real, p.slower_real
        );
    }
    let _ = writeln!(
        md,
        "\n![JCT CDF](jct_cdf.svg)\n\n![sim vs real](sim_vs_real.svg)\n"
    );
    for (s, stem) in &gantts {
        let _ = writeln!(md, "![{s}]({stem}.svg)\n");
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\n{notes}");
    }
    write_file(&dir.join("report.md"), md.as_bytes())?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_of_three_values() {
        let (m, h) = mean_ci95(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        // sample sd 1, t(2) = 4.303, /sqrt(3)
        assert!((h - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(mean_ci95(&[5.0]), (5.0, 0.0));
    }
}
