//! Writing an experiment's results: `report.md` with its tables and plots, and the
//! per-episode results as CSV and JSON. Nothing written depends on the wall clock or the
//! thread count, so a rerun gives identical files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use super::OPT_WEIGHTED_FAIR;
use super::SchedulerResult;
use super::experiment::{Experiment, ExperimentResult, SettingResult, fmt_num};
use super::stats::{RatioCi, cdf_points};
use crate::plot::{self, Axes, Bar, GanttData, PlotError, Series};
use crate::sim::EpisodeStats;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error(transparent)]
    File(#[from] crate::io::FileError),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Points per curve of a JCT CDF: enough for a smooth curve, few enough for a small SVG.
const CDF_POINTS: usize = 300;

const CSV_HEADER: &str = "setting,executors,mean_interval_s,load,scheduler,alpha,env_seed,jobs,\
finished,avg_jct_s,p50_jct_s,p95_jct_s,p99_jct_s,makespan_s,utilisation,decisions,events";

/// Per-episode results in `results.json`, one array per column: the same numbers as
/// `episodes.csv`, in a third of the space of one object per episode.
#[derive(Debug, Default, Serialize)]
struct EpisodeColumns {
    env_seed: Vec<u64>,
    jobs: Vec<usize>,
    finished: Vec<usize>,
    avg_jct_s: Vec<f64>,
    p50_jct_s: Vec<f64>,
    p95_jct_s: Vec<f64>,
    p99_jct_s: Vec<f64>,
    makespan_s: Vec<f64>,
    utilisation: Vec<f64>,
    decisions: Vec<u64>,
    events: Vec<u64>,
}

impl EpisodeColumns {
    fn new(episodes: &[EpisodeStats]) -> Self {
        let mut c = Self::default();
        for e in episodes {
            c.env_seed.push(e.env_seed);
            c.jobs.push(e.jobs);
            c.finished.push(e.finished);
            c.avg_jct_s.push(e.avg_jct_s);
            c.p50_jct_s.push(e.p50_jct_s);
            c.p95_jct_s.push(e.p95_jct_s);
            c.p99_jct_s.push(e.p99_jct_s);
            c.makespan_s.push(e.makespan_s);
            c.utilisation.push(e.utilisation);
            c.decisions.push(e.decisions);
            c.events.push(e.events.total());
        }
        c
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or(String::new(), |v| v.to_string())
}

/// The tuned α of a scheduler in a setting, if it is the tuned weighted fair.
fn alpha_of(s: &SettingResult, r: &SchedulerResult) -> Option<f64> {
    (r.name == OPT_WEIGHTED_FAIR)
        .then(|| s.alpha_sweep.as_ref().map(|a| a.best_alpha))
        .flatten()
}

/// The scheduler's name in tables: the tuned weighted fair shows its α.
fn display_name(s: &SettingResult, r: &SchedulerResult) -> String {
    match alpha_of(s, r) {
        Some(a) => format!("{OPT_WEIGHTED_FAIR} (α={a})"),
        None => r.name.clone(),
    }
}

fn write(file: &Path, bytes: &[u8], files: &mut Vec<PathBuf>) -> Result<(), ReportError> {
    crate::io::write_file(file, bytes)?;
    files.push(file.to_path_buf());
    Ok(())
}

fn episodes_csv(res: &ExperimentResult) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for s in &res.settings {
        let st = &s.setting;
        for r in &s.schedulers {
            for e in &r.episodes {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&st.label),
                    st.executors,
                    opt(st.mean_interval_s),
                    opt(s.load),
                    csv_field(&r.name),
                    opt(alpha_of(s, r)),
                    e.env_seed,
                    e.jobs,
                    e.finished,
                    e.avg_jct_s,
                    e.p50_jct_s,
                    e.p95_jct_s,
                    e.p99_jct_s,
                    e.makespan_s,
                    e.utilisation,
                    e.decisions,
                    e.events.total()
                );
            }
        }
    }
    out
}

fn results_json(exp: &Experiment, res: &ExperimentResult) -> serde_json::Value {
    let settings: Vec<serde_json::Value> = res
        .settings
        .iter()
        .map(|s| {
            let schedulers: Vec<serde_json::Value> = s
                .schedulers
                .iter()
                .zip(&s.ratio_to_baseline)
                .map(|(r, ratio)| {
                    json!({
                        "name": r.name,
                        "alpha": alpha_of(s, r),
                        "mean_avg_jct_s": r.mean_avg_jct_s,
                        "std_avg_jct_s": r.std_avg_jct_s,
                        "p50_jct_s": r.p50_jct_s,
                        "p95_jct_s": r.p95_jct_s,
                        "p99_jct_s": r.p99_jct_s,
                        "mean_makespan_s": r.mean_makespan_s,
                        "mean_utilisation": r.mean_utilisation,
                        "mean_decisions": r.mean_decisions,
                        "ratio_to_baseline": ratio,
                        "episodes": EpisodeColumns::new(&r.episodes),
                    })
                })
                .collect();
            json!({
                "setting": s.setting,
                "comparisons": s.comparisons,
                "load": s.load,
                "alpha_sweep": s.alpha_sweep,
                "schedulers": schedulers,
            })
        })
        .collect();
    json!({
        "mpda_version": env!("CARGO_PKG_VERSION"),
        "experiment": res.name,
        "file": exp.origin,
        "workload": exp.cfg.workload_summary(),
        "sim": exp.cfg.sim,
        "baseline": res.baseline,
        "test_seeds": res.test_seeds,
        "bootstrap": {
            "resamples": exp.cfg.run.bootstrap_resamples,
            "seed": exp.cfg.run.bootstrap_seed,
        },
        "settings": settings,
    })
}

/// Writes the report of `res` into `dir`; returns the files written.
pub fn write_report(
    exp: &Experiment,
    res: &ExperimentResult,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    write(
        &dir.join("episodes.csv"),
        episodes_csv(res).as_bytes(),
        &mut files,
    )?;
    let json = serde_json::to_string(&results_json(exp, res)).expect("JSON values");
    write(&dir.join("results.json"), json.as_bytes(), &mut files)?;

    let mut md = String::new();
    header(&mut md, exp, res);
    sweeps(&mut md, exp, res, dir, &mut files)?;
    for s in &res.settings {
        setting_section(&mut md, exp, res, s, dir, &mut files)?;
    }
    write(&dir.join("report.md"), md.as_bytes(), &mut files)?;
    Ok(files)
}

fn header(md: &mut String, exp: &Experiment, res: &ExperimentResult) {
    let cfg = &exp.cfg;
    let _ = writeln!(md, "# {}\n", cfg.title.as_deref().unwrap_or(&cfg.name));
    if let Some(n) = &cfg.notes {
        let _ = writeln!(md, "{}\n", n.trim());
    }
    let seeds = &res.test_seeds;
    let _ = writeln!(
        md,
        "Made by `mpda report {}` (mpda {}).\n",
        exp.origin.display(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        md,
        "- **Workload**: {}.",
        exp.cfg.workload_description(&exp.library)
    );
    let _ = writeln!(
        md,
        "- **Episodes**: {} test episodes per setting, seeds {}–{}. Every scheduler runs \
         exactly the same episodes (the same job sequence and the same seed for the task \
         duration draws), so the comparison is paired.",
        seeds.len(),
        seeds.first().copied().unwrap_or(0),
        seeds.last().copied().unwrap_or(0)
    );
    if let Some(t) = &cfg.run.tune_weighted_fair {
        let _ = writeln!(
            md,
            "- **{OPT_WEIGHTED_FAIR}**: weighted fair share with α swept over −2, −1.9, …, 2 \
             on {} training episodes (seeds {}–{}, disjoint from the test seeds) per setting; \
             the α with the lowest mean average JCT is reported on the test episodes, as in \
             Decima's paper.",
            t.train_seeds,
            t.first_seed,
            t.first_seed + t.train_seeds as u64 - 1
        );
    }
    if res.settings.iter().any(|s| s.load.is_some()) {
        let _ = writeln!(
            md,
            "- **Load** (Poisson arrivals) is measured under {}: the executor-seconds its \
             tasks took per job, times the arrival rate, over the executors. It is measured, \
             not estimated from the traces, because a job's work depends on its scheduling \
             (an executor new to a job pays a warm-up on its first task). Below 1 {} keeps \
             up on average; above 1 its backlog grows.",
            res.baseline, res.baseline
        );
    }
    let _ = writeln!(
        md,
        "- **Columns**: avg JCT is each episode's mean job completion time, mean ± standard \
         deviation over episodes; p50/p95/p99 pool the JCTs of all jobs of all episodes; \
         makespan, utilisation (busy executor-time / (executors × makespan)) and decisions \
         are means per episode. **vs {}** is the mean average JCT over {}'s, with a 95% \
         paired bootstrap interval ({} resamples of the episodes, seed {}); below 1 is \
         better.\n",
        res.baseline, res.baseline, cfg.run.bootstrap_resamples, cfg.run.bootstrap_seed
    );
}

/// Per group of settings, one series per scheduler.
type SweepGroups = Vec<(String, Vec<Series>)>;

/// Settings grouped by everything but one axis, for the sweep line plots.
fn sweep_series(
    res: &ExperimentResult,
    x: impl Fn(&SettingResult) -> Option<f64>,
    group: impl Fn(&SettingResult) -> String,
) -> SweepGroups {
    let mut groups: Vec<(String, Vec<&SettingResult>)> = Vec::new();
    for s in &res.settings {
        let g = group(s);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(s),
            None => groups.push((g, vec![s])),
        }
    }
    groups
        .into_iter()
        .filter(|(_, v)| {
            let mut xs: Vec<f64> = v.iter().filter_map(|s| x(s)).collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            xs.len() > 1
        })
        .map(|(g, v)| {
            let names = v[0].schedulers.iter().map(|r| r.name.clone());
            let series = names
                .enumerate()
                .map(|(i, name)| {
                    let mut points: Vec<(f64, f64)> = v
                        .iter()
                        .filter_map(|s| Some((x(s)?, s.schedulers.get(i)?.mean_avg_jct_s)))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let name = if name == OPT_WEIGHTED_FAIR {
                        format!("{OPT_WEIGHTED_FAIR} (α tuned per setting)")
                    } else {
                        name
                    };
                    Series { name, points }
                })
                .collect();
            (g, series)
        })
        .collect()
}

fn sweeps(
    md: &mut String,
    exp: &Experiment,
    res: &ExperimentResult,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    if res.settings.len() < 2 {
        return Ok(());
    }
    let _ = writeln!(md, "## Summary: mean average JCT (s) per setting\n");
    let names: Vec<String> = res.settings[0]
        .schedulers
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let with_load = res.settings.iter().any(|s| s.load.is_some());
    let load_col = if with_load { " load |" } else { "" };
    let _ = writeln!(md, "| setting |{load_col} {} |", names.join(" | "));
    let _ = writeln!(
        md,
        "|---|{}{}",
        if with_load { "---:|" } else { "" },
        "---:|".repeat(names.len())
    );
    for s in &res.settings {
        let best = best_index(&s.schedulers);
        let cells: Vec<String> = s
            .schedulers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut c = format!("{:.1}", r.mean_avg_jct_s);
                if let Some(a) = alpha_of(s, r) {
                    c += &format!(" (α={a})");
                }
                if Some(i) == best {
                    c = format!("**{c}**");
                }
                c
            })
            .collect();
        let load = match (with_load, s.load) {
            (true, Some(l)) => format!(" {l:.2} |"),
            (true, None) => " |".into(),
            (false, _) => String::new(),
        };
        let _ = writeln!(md, "| {} |{load} {} |", s.setting.label, cells.join(" | "));
    }
    md.push('\n');

    let load_label = format!("load (measured under {})", res.baseline);
    let plots: [(&str, &str, &str, SweepGroups); 2] = [
        (
            "jct-vs-executors",
            "executors",
            "executors",
            sweep_series(
                res,
                |s| Some(f64::from(s.setting.executors)),
                |s| opt(s.setting.mean_interval_s),
            ),
        ),
        (
            "jct-vs-load",
            "load",
            &load_label,
            sweep_series(res, |s| s.load, |s| s.setting.executors.to_string()),
        ),
    ];
    for (stem, what, x_label, groups) in plots {
        let many = groups.len() > 1;
        for (g, series) in groups {
            let file = if many {
                format!("{stem}-{}", g.replace('.', "p"))
            } else {
                stem.to_string()
            };
            let title = format!("Average JCT against {what}: {}", exp.cfg.name);
            // Overloaded schedulers can be 100 times slower than the best: then only a
            // logarithmic axis shows both.
            let ys = series.iter().flat_map(|s| &s.points).map(|p| p.1);
            let (lo, hi) = ys
                .filter(|y| y.is_finite() && *y > 0.0)
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
                    (lo.min(y), hi.max(y))
                });
            let (axes, y_label) = if hi > 20.0 * lo {
                (Axes::YLog, "mean average JCT (s, log scale)")
            } else {
                (Axes::YFromZero, "mean average JCT (s)")
            };
            plot::line_chart_with(&dir.join(&file), &title, x_label, y_label, &series, axes)?;
            push_plot(md, files, dir, &file, &title);
        }
    }
    if res.settings.iter().any(|s| s.alpha_sweep.is_some()) {
        let series: Vec<Series> = res
            .settings
            .iter()
            .filter_map(|s| {
                Some(Series {
                    name: s.setting.label.clone(),
                    points: s.alpha_sweep.as_ref()?.mean_avg_jct_s.clone(),
                })
            })
            .collect();
        alpha_plot(md, exp, dir, files, "alpha-sweep", &series)?;
    }
    Ok(())
}

fn alpha_plot(
    md: &mut String,
    exp: &Experiment,
    dir: &Path,
    files: &mut Vec<PathBuf>,
    file: &str,
    series: &[Series],
) -> Result<(), ReportError> {
    let title = format!("Weighted fair on training episodes: {}", exp.cfg.name);
    plot::line_chart(
        &dir.join(file),
        &title,
        "α (weight = remaining work^α)",
        "mean average JCT (s)",
        series,
    )?;
    push_plot(md, files, dir, file, &title);
    Ok(())
}

fn push_plot(md: &mut String, files: &mut Vec<PathBuf>, dir: &Path, stem: &str, alt: &str) {
    let _ = writeln!(md, "![{alt}]({stem}.png)\n");
    files.push(dir.join(format!("{stem}.png")));
    files.push(dir.join(format!("{stem}.svg")));
}

fn best_index(results: &[SchedulerResult]) -> Option<usize> {
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.mean_avg_jct_s.is_finite())
        .min_by(|a, b| a.1.mean_avg_jct_s.total_cmp(&b.1.mean_avg_jct_s))
        .map(|(i, _)| i)
}

fn ratio_cell(r: &RatioCi) -> String {
    format!("{:.3} [{:.3}, {:.3}]", r.ratio, r.low, r.high)
}

/// Spark's engine's own totals per scheduler (when it ran): spill, the busy share of the
/// strongest hosts' slots and of the others', and task time, means over the episodes.
fn spark_table(md: &mut String, s: &SettingResult) {
    if !s
        .schedulers
        .iter()
        .flat_map(|r| &r.episodes)
        .all(|e| e.spark.is_some())
    {
        return;
    }
    let _ = writeln!(
        md,
        "\n| scheduler | spilled GB | strongest hosts' utilisation | other hosts' utilisation | task time (s) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for r in &s.schedulers {
        let n = r.episodes.len().max(1) as f64;
        let mean = |f: &dyn Fn(&crate::sim::SparkTotals) -> f64| {
            r.episodes
                .iter()
                .filter_map(|e| e.spark.as_ref())
                .map(f)
                .sum::<f64>()
                / n
        };
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.3} | {:.3} | {:.0} |",
            display_name(s, r),
            mean(&|t| t.spilled_mb / 1024.0),
            mean(&|t| t.strong_utilisation),
            mean(&|t| t.other_utilisation),
            mean(&|t| t.jobs.iter().map(|j| j.task_time_s).sum::<f64>()),
        );
    }
}

fn setting_section(
    md: &mut String,
    exp: &Experiment,
    res: &ExperimentResult,
    s: &SettingResult,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    let st = &s.setting;
    let _ = writeln!(md, "## {}\n", st.label);
    if let Some(l) = s.load {
        let _ = writeln!(md, "Load {l:.2} (measured under {}).\n", res.baseline);
    }
    let _ = writeln!(
        md,
        "| scheduler | avg JCT (s) | p50 JCT (s) | p95 JCT (s) | p99 JCT (s) | makespan (s) | \
         utilisation | decisions | vs {} [95% CI] |",
        res.baseline
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let best = best_index(&s.schedulers);
    for (i, (r, ratio)) in s.schedulers.iter().zip(&s.ratio_to_baseline).enumerate() {
        let mut name = display_name(s, r);
        if Some(i) == best {
            name = format!("**{name}**");
        }
        let _ = writeln!(
            md,
            "| {name} | {:.2} ± {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} | {:.0} | {} |",
            r.mean_avg_jct_s,
            r.std_avg_jct_s,
            r.p50_jct_s,
            r.p95_jct_s,
            r.p99_jct_s,
            r.mean_makespan_s,
            r.mean_utilisation,
            r.mean_decisions,
            ratio_cell(ratio)
        );
    }
    if !s.comparisons.is_empty() {
        let _ = writeln!(
            md,
            "\n| scheduler | against | mean avg JCT ratio [95% paired CI] |\n|---|---|---:|"
        );
        for c in &s.comparisons {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                c.scheduler,
                c.reference,
                ratio_cell(&c.ratio)
            );
        }
    }
    spark_table(md, s);
    let unfinished: usize = s
        .schedulers
        .iter()
        .flat_map(|r| &r.episodes)
        .map(|e| e.jobs - e.finished)
        .sum();
    if unfinished > 0 {
        let _ = writeln!(
            md,
            "\n{unfinished} job(s) did not finish (the episode hit `max_time_ms`); JCTs count \
             finished jobs only."
        );
    }
    md.push('\n');

    let series: Vec<Series> = s
        .schedulers
        .iter()
        .map(|r| {
            let all: Vec<f64> = r
                .episodes
                .iter()
                .flat_map(|e| e.jct_s.iter().flatten().copied())
                .collect();
            Series {
                name: display_name(s, r),
                points: cdf_points(&all, CDF_POINTS),
            }
        })
        .collect();
    let stem = format!("cdf-{}", st.slug);
    let title = format!("JCT CDF: {}", st.label);
    plot::line_chart_with(
        &dir.join(&stem),
        &title,
        "job completion time (s)",
        "fraction of jobs",
        &series,
        Axes::BothFromZero,
    )?;
    push_plot(md, files, dir, &stem, &title);

    let n = res.test_seeds.len() as f64;
    let bars: Vec<Bar> = s
        .schedulers
        .iter()
        .map(|r| {
            let half = 1.96 * r.std_avg_jct_s / n.sqrt();
            Bar {
                name: display_name(s, r),
                value: r.mean_avg_jct_s,
                low: r.mean_avg_jct_s - half,
                high: r.mean_avg_jct_s + half,
            }
        })
        .collect();
    let stem = format!("bars-{}", st.slug);
    let title = format!("Average JCT: {}", st.label);
    plot::bar_chart(
        &dir.join(&stem),
        &title,
        "mean average JCT (s); whiskers: 95% interval of the mean",
        &bars,
    )?;
    push_plot(md, files, dir, &stem, &title);

    if res.settings.len() == 1
        && let Some(a) = &s.alpha_sweep
    {
        let series = [Series {
            name: format!("train seeds (best α = {})", a.best_alpha),
            points: a.mean_avg_jct_s.clone(),
        }];
        alpha_plot(md, exp, dir, files, &format!("alpha-{}", st.slug), &series)?;
    }

    for g in &s.gantt {
        let window = exp
            .cfg
            .run
            .gantt_window_s
            .unwrap_or(g.makespan_s)
            .min(g.makespan_s.max(1.0));
        let name = match s.schedulers.iter().find(|r| r.name == g.scheduler) {
            Some(r) => display_name(s, r),
            None => g.scheduler.clone(),
        };
        let shown = if window < g.makespan_s {
            format!(", first {} s of {:.0} s", fmt_num(window), g.makespan_s)
        } else {
            String::new()
        };
        let data = GanttData {
            title: format!("{name}: {} executors, seed {}{shown}", st.executors, g.seed),
            executors: st.executors,
            tasks: g.tasks.clone(),
            jobs: g.jobs.clone(),
            window_s: window,
        };
        let slug: String = g
            .scheduler
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stem = format!("gantt-{}-{slug}", st.slug);
        plot::gantt_chart(&dir.join(&stem), &data)?;
        push_plot(
            md,
            files,
            dir,
            &stem,
            &format!("Gantt chart: {}", data.title),
        );
    }
    Ok(())
}
