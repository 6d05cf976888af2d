//! Experiments: a TOML file naming a workload, its settings (executor counts, arrival
//! rates), seeds and schedulers, run as paired comparisons.
//!
//! Paired means that within a setting every scheduler runs exactly the same episodes: the
//! same job sequence (drawn once from the episode's seed) and the same seed for the task
//! duration draws. A difference between two schedulers on an episode is then the
//! schedulers' doing, not the luck of the draw, which is what makes the paired bootstrap
//! intervals of the report narrow.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::stats::{RatioCi, paired_ratio_ci};
use super::{
    AlphaSweep, EvalError, OPT_WEIGHTED_FAIR, SchedulerFactory, SchedulerResult, alpha_grid,
    weighted_fair,
};
use crate::config::{
    Config, ConfigError, TuneConfig, WorkloadConfig, check_name, check_seeds, defaults,
};
use crate::sched::{SchedError, Scheduler, SchedulerSpec};
use crate::sim::{Env, EpisodeStats, Observation, SimConfig, TaskRecord};
use crate::validate::{FieldError, in_range};
use crate::workload::Episode;
use crate::workload::TraceLibrary;
use crate::workload::arrivals::ArrivalProcess;

#[derive(Debug, Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}: {field}: {msg}", file.display())]
    Field {
        file: PathBuf,
        field: String,
        msg: String,
    },
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("{}: {field}: {error}", file.display())]
    Sched {
        file: PathBuf,
        field: String,
        error: SchedError,
    },
}

/// The experiment file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Names the output folder (`reports/<name>/`).
    pub name: String,
    /// A heading for the report.
    #[serde(default)]
    pub title: Option<String>,
    /// A paragraph for the report: what the experiment reproduces and how.
    #[serde(default)]
    pub notes: Option<String>,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub sim: SimConfig,
    pub run: RunConfig,
    #[serde(default)]
    pub sweep: SweepConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Test episodes per setting; episode i uses seed `first_seed + i`.
    pub seeds: usize,
    #[serde(default = "default_first_seed")]
    pub first_seed: u64,
    /// Heuristic names or learned models, as `mpda eval --scheduler` takes them.
    pub schedulers: Vec<String>,
    /// The scheduler that ratios are taken against; must be one of `schedulers`.
    #[serde(default = "default_baseline")]
    pub baseline: String,
    /// More paired ratios, beyond the baseline's: `[scheduler, reference]` pairs, both
    /// among `schedulers`; each gets mean(scheduler) / mean(reference) with its 95% paired
    /// interval, per setting (e.g. a learned planner against DSCS and against AQE).
    #[serde(default)]
    pub comparisons: Vec<[String; 2]>,
    /// Decima's "opt. weighted fair": α swept on training seeds, reported on test seeds.
    #[serde(default)]
    pub tune_weighted_fair: Option<TuneConfig>,
    /// Schedulers drawn as Gantt charts (one episode of the first setting); default: the
    /// baseline and the other scheduler with the lowest average JCT.
    #[serde(default)]
    pub gantt: Option<Vec<String>>,
    /// Time shown by Gantt charts, seconds; default: the whole episode. Long continuous
    /// episodes show their beginning, where a chart is still readable.
    #[serde(default)]
    pub gantt_window_s: Option<f64>,
    #[serde(default = "default_resamples")]
    pub bootstrap_resamples: usize,
    #[serde(default)]
    pub bootstrap_seed: u64,
}

/// Axes swept; settings are their product (executors outermost).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    #[serde(default)]
    pub executors: Option<Vec<u32>>,
    /// Mean gaps of the Poisson arrivals, seconds (needs `kind = "poisson"`).
    #[serde(default)]
    pub mean_interval_s: Option<Vec<f64>>,
    /// Data variants (`[[sweep.data]]`): each a setting of its own, with the key skew of
    /// Spark's engine and the queries it samples (a workload measured at that skew).
    #[serde(default)]
    pub data: Option<Vec<DataVariant>>,
}

impl DataVariant {
    /// Its overrides of `[sim.cluster.data]` (a key count turns generated keys on).
    fn apply(&self, data: &mut crate::sim::cluster::DataConfig) {
        if let Some(z) = self.zipf {
            data.zipf = z;
        }
        if let Some(x) = self.scale {
            data.scale = x;
        }
        if let Some(k) = self.keys {
            data.keys = Some(k);
            data.generate_keys = true;
        }
    }

    /// The first override it sets, with what it is (for errors).
    fn first_override(&self) -> Option<(&'static str, &'static str)> {
        [
            (self.zipf.is_some(), "zipf", "key skew"),
            (self.scale.is_some(), "scale", "a dataset scale"),
            (self.keys.is_some(), "keys", "key generation"),
        ]
        .into_iter()
        .find(|o| o.0)
        .map(|o| (o.1, o.2))
    }
}

/// One data variant of a sweep.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataVariant {
    /// Shown in the report (`skew 0.4`).
    pub label: String,
    /// `[sim.cluster.data] zipf` for this setting.
    #[serde(default)]
    pub zipf: Option<f64>,
    /// `workload.queries` for this setting.
    #[serde(default)]
    pub queries: Option<Vec<String>>,
    /// `[sim.cluster.data] scale` for this setting (a study's data size over the measured).
    #[serde(default)]
    pub scale: Option<f64>,
    /// `[sim.cluster.data] keys` (with `generate_keys` on) for this setting: the key count
    /// of the workload's generator.
    #[serde(default)]
    pub keys: Option<u64>,
}

fn default_first_seed() -> u64 {
    defaults::FIRST_SEED
}
fn default_baseline() -> String {
    defaults::BASELINE.into()
}
fn default_resamples() -> usize {
    10_000
}

impl Config for ExperimentConfig {
    /// Every check that needs neither the traces nor the models.
    fn validate(&self) -> Result<(), FieldError> {
        check_name("name", &self.name)?;
        let run = &self.run;
        check_seeds("run.seeds", run.seeds, run.first_seed)?;
        in_range(
            "run.bootstrap_resamples",
            run.bootstrap_resamples,
            1,
            1_000_000,
        )?;
        if run.schedulers.is_empty() {
            return Err(FieldError::new(
                "run.schedulers",
                "name at least one scheduler",
            ));
        }
        if let Some(w) = run.gantt_window_s
            && !(w.is_finite() && w > 0.0)
        {
            return Err(FieldError::new(
                "run.gantt_window_s",
                format!("must be positive, found {w}"),
            ));
        }
        self.workload.validate().map_err(|e| e.within("workload"))?;
        self.sim.validate().map_err(|e| e.within("sim"))?;
        for (i, &e) in self.sweep.executors.iter().flatten().enumerate() {
            let sim = SimConfig {
                executors: e,
                ..self.sim.clone()
            };
            sim.validate()
                .map_err(|err| FieldError::new(format!("sweep.executors[{i}]"), err.msg))?;
        }
        if let (
            Some(gaps),
            Some(ArrivalProcess::Poisson {
                init_jobs,
                stream_jobs,
                batch_jobs,
                ..
            }),
        ) = (&self.sweep.mean_interval_s, &self.workload.arrivals)
        {
            for (i, &g) in gaps.iter().enumerate() {
                let p = ArrivalProcess::Poisson {
                    init_jobs: *init_jobs,
                    stream_jobs: *stream_jobs,
                    mean_interval_ms: g * 1000.0,
                    batch_jobs: *batch_jobs,
                };
                p.validate().map_err(|e| {
                    FieldError::new(format!("sweep.mean_interval_s[{i}]"), e.to_string())
                })?;
            }
        }
        if let Some(t) = &run.tune_weighted_fair {
            t.validate(run.seeds, run.first_seed)
                .map_err(|e| e.within("run.tune_weighted_fair"))?;
        }
        for (i, d) in self.sweep.data.iter().flatten().enumerate() {
            let f = |name: &str| format!("sweep.data[{i}].{name}");
            if d.label.trim().is_empty() {
                return Err(FieldError::new(f("label"), "must not be empty"));
            }
            if let Some((name, what)) = d.first_override() {
                let Some(cluster) = &self.sim.cluster else {
                    return Err(FieldError::new(
                        f(name),
                        format!("{what} needs Spark's engine: add [sim.cluster]"),
                    ));
                };
                // The variant's values are `[sim.cluster.data]`'s: checked by its rules.
                let mut c = cluster.clone();
                d.apply(&mut c.data);
                c.validate()
                    .map_err(|e| match e.field.strip_prefix("data.") {
                        Some(rest) => FieldError::new(f(rest), e.msg.clone()),
                        None => e.within("sim.cluster"),
                    })?;
            }
            if d.queries.as_ref().is_some_and(Vec::is_empty) {
                return Err(FieldError::new(f("queries"), "name at least one query"));
            }
        }
        if self.sweep.data.as_ref().is_some_and(Vec::is_empty) {
            return Err(FieldError::new(
                "sweep.data",
                "an empty list sweeps nothing",
            ));
        }
        Ok(())
    }
}

/// One setting: a cluster size and an arrival process.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub label: String,
    /// Used in file names.
    pub slug: String,
    pub executors: u32,
    pub arrivals: Option<ArrivalProcess>,
    pub mean_interval_s: Option<f64>,
    /// A data variant's key skew and queries (`[[sweep.data]]`).
    pub data: Option<DataVariant>,
}

/// Load of Poisson arrivals as the baseline serves them: the executor-time the baseline's
/// tasks took per job, times the arrival rate, over the executors,
/// `busy executor-s per job / (mean gap × executors)`.
///
/// Measured rather than estimated from the traces because the work of a job depends on
/// how it is scheduled: an executor new to a job pays a fresh (warm-up) duration on its
/// first task, so a job spread over many executors does more work. On `tpch/`, whose
/// stages have few tasks, the measured work is about three times the traces' mean task
/// durations summed. Below 1 the baseline keeps up on average; above 1 its backlog grows.
pub fn measured_load(baseline: &[EpisodeStats], executors: u32, mean_interval_s: f64) -> f64 {
    let busy_s: f64 = baseline
        .iter()
        .map(|e| e.utilisation * e.makespan_s * f64::from(executors))
        .sum();
    let jobs: usize = baseline.iter().map(|e| e.jobs).sum();
    busy_s / jobs.max(1) as f64 / (mean_interval_s * f64::from(executors))
}

/// A scheduler of the experiment: its label and how to build it.
struct Entry {
    label: String,
    factory: Box<dyn SchedulerFactory>,
}

/// A loaded, validated experiment, ready to run.
pub struct Experiment {
    pub cfg: ExperimentConfig,
    pub origin: PathBuf,
    pub library: TraceLibrary,
    pub settings: Vec<Setting>,
    entries: Vec<Entry>,
    baseline: usize,
    /// `run.comparisons` as indices into `entries`.
    comparisons: Vec<[usize; 2]>,
    gantt: Option<Vec<String>>,
}

/// Results of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct SettingResult {
    pub setting: Setting,
    /// The α sweep on training seeds: (α, mean average JCT), and the α chosen.
    pub alpha_sweep: Option<AlphaSweep>,
    pub schedulers: Vec<SchedulerResult>,
    /// Per scheduler, mean average JCT over the baseline's, with a 95% paired interval.
    pub ratio_to_baseline: Vec<RatioCi>,
    /// `run.comparisons`, in order.
    pub comparisons: Vec<Comparison>,
    /// Poisson arrivals: the load as the baseline serves it (see [`measured_load`]).
    pub load: Option<f64>,
    #[serde(skip)]
    pub gantt: Vec<GanttRun>,
}

/// One of `run.comparisons` in one setting.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub scheduler: String,
    pub reference: String,
    /// Mean average JCT of `scheduler` over `reference`'s, with a 95% paired interval.
    pub ratio: RatioCi,
}

/// One recorded episode for a Gantt chart.
#[derive(Debug, Clone)]
pub struct GanttRun {
    pub scheduler: String,
    pub seed: u64,
    pub tasks: Vec<TaskRecord>,
    /// Per job in arrival order: (arrival s, completion s).
    pub jobs: Vec<(f64, Option<f64>)>,
    pub makespan_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentResult {
    pub name: String,
    pub baseline: String,
    pub test_seeds: Vec<u64>,
    pub settings: Vec<SettingResult>,
}

impl ExperimentResult {
    /// One line per setting whose weighted fair was tuned: the α chosen.
    pub fn tuned_alphas(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter_map(|s| {
                let a = s.alpha_sweep.as_ref()?;
                Some(format!(
                    "{}: {OPT_WEIGHTED_FAIR} alpha = {}",
                    s.setting.label, a.best_alpha
                ))
            })
            .collect()
    }
}

/// Overrides from the command line, for quick runs.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Test episodes per setting.
    pub seeds: Option<usize>,
}

/// A scheduler with the label it has in this experiment.
struct Labelled<'a> {
    label: &'a str,
    inner: &'a dyn SchedulerFactory,
}

impl SchedulerFactory for Labelled<'_> {
    fn label(&self) -> String {
        self.label.to_string()
    }
    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        self.inner.build()
    }
}

impl Experiment {
    /// Reads and validates an experiment file: every error (unknown key, bad scheduler,
    /// missing traces, inconsistent sweep) is found here, before anything runs.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Self, ExperimentError> {
        let text = crate::io::read_text(file).map_err(ConfigError::from)?;
        Self::parse(&text, file, overrides)
    }

    /// [`Experiment::load`] from text; `origin` names it in errors, and relative trace
    /// paths are taken from the working directory, as in `mpda eval`.
    pub fn parse(
        text: &str,
        origin: &Path,
        overrides: &Overrides,
    ) -> Result<Self, ExperimentError> {
        let mut cfg = ExperimentConfig::parse(text, origin)?;
        if let Some(n) = overrides.seeds {
            cfg.run.seeds = n;
            cfg.validate()
                .map_err(|mut e| {
                    e.msg = format!("{} (set by --seeds)", e.msg);
                    e
                })
                .map_err(ConfigError::field(origin))?;
        }
        Self::new(cfg, origin)
    }

    /// Builds a validated experiment: its schedulers (models loaded), the baseline, the
    /// traces and the settings.
    pub fn new(cfg: ExperimentConfig, origin: &Path) -> Result<Self, ExperimentError> {
        let field = |field: &str, msg: String| ExperimentError::Field {
            file: origin.to_path_buf(),
            field: field.into(),
            msg,
        };
        let mut entries = Vec::new();
        for (i, s) in cfg.run.schedulers.iter().enumerate() {
            let at = format!("run.schedulers[{i}]");
            let sched_err = |error| ExperimentError::Sched {
                file: origin.to_path_buf(),
                field: at.clone(),
                error,
            };
            let spec = SchedulerSpec::parse(s).map_err(sched_err)?;
            let factory = crate::registry::factory(&spec, crate::model::Backend::default())
                .map_err(sched_err)?;
            entries.push(Entry {
                label: spec.to_string(),
                factory,
            });
        }
        if cfg.run.tune_weighted_fair.is_some() {
            entries.push(Entry {
                label: OPT_WEIGHTED_FAIR.into(),
                factory: Box::new(SchedulerSpec::parse("fair").expect("valid")),
            });
        }
        let canonical = |s: &str| {
            SchedulerSpec::parse(s)
                .map(|x| x.to_string())
                .unwrap_or_default()
        };
        let baseline_label = canonical(&cfg.run.baseline);
        let baseline = entries
            .iter()
            .position(|e| e.label == baseline_label)
            .ok_or_else(|| {
                field(
                    "run.baseline",
                    format!("\"{}\" is not one of run.schedulers", cfg.run.baseline),
                )
            })?;
        let mut comparisons = Vec::new();
        for (i, pair) in cfg.run.comparisons.iter().enumerate() {
            let mut at = [0; 2];
            for (k, name) in pair.iter().enumerate() {
                let label = canonical(name);
                at[k] = entries
                    .iter()
                    .position(|e| e.label == label)
                    .ok_or_else(|| {
                        field(
                            &format!("run.comparisons[{i}][{k}]"),
                            format!("\"{name}\" is not one of run.schedulers"),
                        )
                    })?;
            }
            comparisons.push(at);
        }
        let gantt = match &cfg.run.gantt {
            None => None,
            Some(list) => {
                let mut v = Vec::new();
                for (i, g) in list.iter().enumerate() {
                    let label = if g == OPT_WEIGHTED_FAIR {
                        g.clone()
                    } else {
                        canonical(g)
                    };
                    if !entries.iter().any(|e| e.label == label) {
                        return Err(field(
                            &format!("run.gantt[{i}]"),
                            format!("\"{g}\" is not one of run.schedulers"),
                        ));
                    }
                    v.push(label);
                }
                Some(v)
            }
        };

        let library = TraceLibrary::load_dir(&cfg.workload.traces).map_err(ConfigError::from)?;
        // Validates the workload (arrivals or replay, job mix) once, on one episode.
        cfg.workload
            .episodes(&library, origin, 1, cfg.run.first_seed)?;
        let settings = build_settings(&cfg, origin)?;
        Ok(Self {
            cfg,
            origin: origin.to_path_buf(),
            library,
            settings,
            entries,
            baseline,
            comparisons,
            gantt,
        })
    }

    /// Scheduler labels in table order (the tuned weighted fair last, if any).
    pub fn scheduler_labels(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.label.clone()).collect()
    }

    pub fn baseline_label(&self) -> &str {
        &self.entries[self.baseline].label
    }

    /// Episodes that [`Experiment::run`] simulates, for a progress bar.
    pub fn total_runs(&self) -> u64 {
        let tune = self
            .cfg
            .run
            .tune_weighted_fair
            .as_ref()
            .map_or(0, |t| t.train_seeds * alpha_grid().len());
        let per = tune + self.cfg.run.seeds * self.entries.len();
        (per * self.settings.len()) as u64
    }

    /// The test episodes of setting `k`: every scheduler of the setting runs exactly these.
    pub fn test_episodes(&self, k: usize) -> Result<Vec<Episode>, ExperimentError> {
        self.episodes(
            &self.settings[k],
            self.cfg.run.seeds,
            self.cfg.run.first_seed,
        )
    }

    fn episodes(
        &self,
        s: &Setting,
        seeds: usize,
        first: u64,
    ) -> Result<Vec<Episode>, ExperimentError> {
        let mut w = self.cfg.workload.clone();
        if s.arrivals.is_some() {
            w.arrivals = s.arrivals.clone();
        }
        if let Some(q) = s.data.as_ref().and_then(|d| d.queries.clone()) {
            w.queries = Some(q);
        }
        Ok(w.episodes(&self.library, &self.origin, seeds, first)?.0)
    }

    /// Runs every setting: the α sweep (if asked for), every scheduler on the same test
    /// episodes, the bootstrap intervals and the Gantt episodes. `on_done` is called once
    /// per simulated episode, from any thread.
    pub fn run(&self, on_done: &(dyn Fn() + Sync)) -> Result<ExperimentResult, ExperimentError> {
        let run = &self.cfg.run;
        let mut out = Vec::new();
        for (k, setting) in self.settings.iter().enumerate() {
            let mut sim = SimConfig {
                executors: setting.executors,
                ..self.cfg.sim.clone()
            };
            if let (Some(d), Some(c)) = (&setting.data, sim.cluster.as_mut()) {
                d.apply(&mut c.data);
            }
            let test = self.test_episodes(k)?;
            let alpha_sweep = match &run.tune_weighted_fair {
                None => None,
                Some(t) => Some(self.tune(setting, &sim, t, on_done)?),
            };
            let specs: Vec<SchedulerSpec> = alpha_sweep
                .iter()
                .map(|a| weighted_fair(a.best_alpha))
                .collect();
            let factories: Vec<Labelled> = self
                .entries
                .iter()
                .map(|e| Labelled {
                    label: &e.label,
                    inner: if e.label == OPT_WEIGHTED_FAIR {
                        &specs[0]
                    } else {
                        e.factory.as_ref()
                    },
                })
                .collect();
            let refs: Vec<&dyn SchedulerFactory> = factories
                .iter()
                .map(|f| f as &dyn SchedulerFactory)
                .collect();
            let results = super::evaluate(&sim, &refs, &test, on_done)?;
            let avg: Vec<Vec<f64>> = results
                .iter()
                .map(|r| r.episodes.iter().map(|e| e.avg_jct_s).collect())
                .collect();
            let samples: Vec<&[f64]> = avg.iter().map(Vec::as_slice).collect();
            let ratio_to_baseline = paired_ratio_ci(
                &samples,
                &avg[self.baseline],
                run.bootstrap_resamples,
                run.bootstrap_seed.wrapping_add(k as u64),
            );
            let comparisons = self
                .comparisons
                .iter()
                .map(|&[a, b]| Comparison {
                    scheduler: self.entries[a].label.clone(),
                    reference: self.entries[b].label.clone(),
                    ratio: paired_ratio_ci(
                        &[&avg[a]],
                        &avg[b],
                        run.bootstrap_resamples,
                        run.bootstrap_seed.wrapping_add(k as u64),
                    )[0],
                })
                .collect();
            let gantt = if k == 0 {
                self.gantt_runs(&sim, &refs, &results, &test[0])?
            } else {
                Vec::new()
            };
            // Batched arrivals bring `batch_jobs` jobs per gap: the mean gap per job is the
            // gap over the batch.
            let batch = match setting
                .arrivals
                .as_ref()
                .or(self.cfg.workload.arrivals.as_ref())
            {
                Some(ArrivalProcess::Poisson { batch_jobs, .. }) => *batch_jobs as f64,
                _ => 1.0,
            };
            let load = setting.mean_interval_s.map(|g| {
                measured_load(
                    &results[self.baseline].episodes,
                    setting.executors,
                    g / batch,
                )
            });
            out.push(SettingResult {
                setting: setting.clone(),
                alpha_sweep,
                schedulers: results,
                ratio_to_baseline,
                comparisons,
                load,
                gantt,
            });
        }
        Ok(ExperimentResult {
            name: self.cfg.name.clone(),
            baseline: self.baseline_label().to_string(),
            test_seeds: (0..run.seeds as u64).map(|i| run.first_seed + i).collect(),
            settings: out,
        })
    }

    fn tune(
        &self,
        setting: &Setting,
        sim: &SimConfig,
        t: &TuneConfig,
        on_done: &(dyn Fn() + Sync),
    ) -> Result<AlphaSweep, ExperimentError> {
        let train = self.episodes(setting, t.train_seeds, t.first_seed)?;
        Ok(super::tune_weighted_fair(sim, &train, on_done)?)
    }

    /// Reruns the first test episode with task recording for the Gantt schedulers; the
    /// recording does not change the simulation, so these are the episodes of the table.
    fn gantt_runs(
        &self,
        sim: &SimConfig,
        refs: &[&dyn SchedulerFactory],
        results: &[SchedulerResult],
        episode: &Episode,
    ) -> Result<Vec<GanttRun>, ExperimentError> {
        let wanted: Vec<String> = match &self.gantt {
            Some(v) => v.clone(),
            None => {
                let base = &results[self.baseline].name;
                let best = results
                    .iter()
                    .filter(|r| r.mean_avg_jct_s.is_finite() && r.name != *base)
                    .min_by(|a, b| a.mean_avg_jct_s.total_cmp(&b.mean_avg_jct_s))
                    .map(|r| r.name.clone());
                let mut v = vec![base.clone()];
                v.extend(best);
                v
            }
        };
        let cfg = SimConfig {
            record_tasks: true,
            ..sim.clone()
        };
        let sim_err = |scheduler: &str, error| EvalError::Sim {
            scheduler: scheduler.to_string(),
            seed: episode.seed,
            error,
        };
        let mut env = Env::new(cfg).map_err(|e| sim_err("gantt", e))?;
        let mut obs = Observation::default();
        let mut out = Vec::new();
        for name in wanted {
            let Some(f) = refs.iter().find(|f| f.label() == name) else {
                continue;
            };
            let mut sched = f.build().map_err(EvalError::from)?;
            let stats = super::run_episode(&mut env, sched.as_mut(), episode, &mut obs)
                .map_err(|e| sim_err(&name, e))?;
            out.push(GanttRun {
                scheduler: name,
                seed: episode.seed,
                tasks: env.records().to_vec(),
                jobs: episode
                    .jobs
                    .iter()
                    .zip(&stats.jct_s)
                    .map(|(j, jct)| {
                        let arr = j.arrival_ms as f64 / 1000.0;
                        (arr, jct.map(|t| arr + t))
                    })
                    .collect(),
                makespan_s: stats.makespan_s,
            });
        }
        Ok(out)
    }
}

/// The product of the sweep axes; a missing axis is the base config's single value.
fn build_settings(cfg: &ExperimentConfig, origin: &Path) -> Result<Vec<Setting>, ExperimentError> {
    let field = |field: &str, msg: String| ExperimentError::Field {
        file: origin.to_path_buf(),
        field: field.into(),
        msg,
    };
    let sw = &cfg.sweep;
    // On Spark's engine the cluster fixes the capacity: its task slots.
    let cluster = cfg.sim.cluster.is_some();
    if cluster && sw.executors.is_some() {
        return Err(field(
            "sweep.executors",
            "has no effect with [sim.cluster] (the hosts fix the task slots); write one experiment per cluster".into(),
        ));
    }
    let executors = sw.executors.clone().unwrap_or(vec![cfg.sim.slots()]);
    if executors.is_empty() || executors.contains(&0) {
        return Err(field(
            "sweep.executors",
            "give executor counts of at least 1".into(),
        ));
    }
    // Each arrival variant: (process, mean gap s).
    let variants: Vec<(Option<ArrivalProcess>, Option<f64>)> =
        match (&sw.mean_interval_s, &cfg.workload.arrivals) {
            (
                None,
                Some(ArrivalProcess::Poisson {
                    mean_interval_ms, ..
                }),
            ) => {
                vec![(None, Some(mean_interval_ms / 1000.0))]
            }
            (None, _) => vec![(None, None)],
            (
                Some(gaps),
                Some(ArrivalProcess::Poisson {
                    init_jobs,
                    stream_jobs,
                    batch_jobs,
                    ..
                }),
            ) => {
                if gaps.is_empty() {
                    return Err(field(
                        "sweep.mean_interval_s",
                        "an empty list sweeps nothing".into(),
                    ));
                }
                let mut v = Vec::new();
                for &g in gaps {
                    if !(g.is_finite() && g > 0.0) {
                        return Err(field(
                            "sweep.mean_interval_s",
                            format!("{g} is not positive"),
                        ));
                    }
                    let p = ArrivalProcess::Poisson {
                        init_jobs: *init_jobs,
                        stream_jobs: *stream_jobs,
                        mean_interval_ms: g * 1000.0,
                        batch_jobs: *batch_jobs,
                    };
                    v.push((Some(p), Some(g)));
                }
                v
            }
            (Some(_), _) => {
                return Err(field(
                    "sweep.mean_interval_s",
                    "needs workload.arrivals of kind \"poisson\"".into(),
                ));
            }
        };
    let data: Vec<Option<DataVariant>> = match &sw.data {
        Some(d) => d.iter().cloned().map(Some).collect(),
        None => vec![None],
    };
    let mut out = Vec::new();
    for &e in &executors {
        for (arrivals, gap) in &variants {
            for (di, d) in data.iter().enumerate() {
                let (mut label, mut slug) = if cluster {
                    (format!("{e} task slots"), format!("s{e}"))
                } else {
                    (format!("{e} executors"), format!("e{e}"))
                };
                match (&cfg.workload.arrivals, gap) {
                    (Some(ArrivalProcess::Batch { jobs }), _) => {
                        label += &format!(", batch of {jobs}")
                    }
                    (
                        Some(ArrivalProcess::Poisson {
                            init_jobs,
                            stream_jobs,
                            batch_jobs,
                            ..
                        }),
                        Some(g),
                    ) => {
                        label += &format!(
                            ", {init_jobs} + {stream_jobs} jobs, Poisson {} s",
                            fmt_num(*g)
                        );
                        if *batch_jobs > 1 {
                            label += &format!(" per batch of {batch_jobs}");
                        }
                        slug += &format!("-i{}s", fmt_num(*g).replace('.', "p"));
                    }
                    _ => label += ", replay",
                }
                if let Some(d) = d {
                    label = format!("{}: {label}", d.label);
                    let clean: String = d
                        .label
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() {
                                c.to_ascii_lowercase()
                            } else {
                                '-'
                            }
                        })
                        .collect();
                    slug += &format!("-d{di}-{clean}");
                }
                out.push(Setting {
                    label,
                    slug,
                    executors: e,
                    arrivals: arrivals.clone(),
                    mean_interval_s: *gap,
                    data: d.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// A number with at most one decimal, without a trailing ".0".
pub fn fmt_num(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

impl ExperimentConfig {
    /// The workload as JSON, for `results.json`.
    pub fn workload_summary(&self) -> serde_json::Value {
        let w = &self.workload;
        serde_json::json!({
            "traces": w.traces,
            "sizes": w.sizes,
            "queries": w.queries,
            "arrivals": w.arrivals,
            "replay": w.replay.as_ref().map(|r| serde_json::json!({
                "file": r.file, "scenario": r.scenario,
            })),
        })
    }

    /// The workload in words, for the report.
    pub fn workload_description(&self, library: &TraceLibrary) -> String {
        let w = &self.workload;
        let sizes = w.sizes.clone().unwrap_or_else(|| library.sizes());
        let queries = w.queries.as_ref().map_or(library.queries().len(), Vec::len);
        let mut out = format!(
            "traces `{}`, sizes {} × {queries} queries sampled uniformly",
            w.traces.display(),
            sizes.join(", ")
        );
        match (&w.arrivals, &w.replay) {
            (Some(ArrivalProcess::Batch { jobs }), _) => {
                out += &format!("; {jobs} jobs at t = 0");
            }
            (
                Some(ArrivalProcess::Poisson {
                    init_jobs,
                    stream_jobs,
                    batch_jobs,
                    ..
                }),
                _,
            ) => {
                out +=
                    &format!("; {init_jobs} job(s) at t = 0, then {stream_jobs} Poisson arrivals");
                if *batch_jobs > 1 {
                    out += &format!(" in batches of {batch_jobs}");
                }
                out += &match self.sim.max_time_ms {
                    None => "; every episode runs until all jobs finish".to_string(),
                    Some(t) => format!(
                        "; an episode stops at the first decision after {} s",
                        t / 1000
                    ),
                };
            }
            (None, Some(r)) => {
                out += &format!("; replay of {} scenario {}", r.file.display(), r.scenario);
            }
            (None, None) => {}
        }
        out
    }
}
