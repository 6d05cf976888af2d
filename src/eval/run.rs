//! What `mpda eval` does, as a library call: build the schedulers a config or the command
//! line names, tune weighted fair if asked, run every episode, and present the results as
//! a table (with each scheduler's ratio to the baseline) and as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use super::{
    EvalError, OPT_WEIGHTED_FAIR, SchedulerFactory, SchedulerResult, evaluate, tune_weighted_fair,
    weighted_fair,
};
use crate::config::{ConfigError, PreparedEval, defaults};
use crate::model::Backend;
use crate::sched::{SchedError, Scheduler};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Sched(#[from] SchedError),
    #[error(transparent)]
    File(#[from] crate::io::FileError),
}

/// A factory under another label (the tuned weighted fair shows its α).
struct Labelled {
    label: String,
    inner: Box<dyn SchedulerFactory>,
}

impl SchedulerFactory for Labelled {
    fn label(&self) -> String {
        self.label.clone()
    }
    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        self.inner.build()
    }
}

/// The schedulers named by `names` (the command line's `-s`), or else the config's, every
/// parameter checked and every model loaded before anything runs. The config's list comes
/// with Decima's tuned weighted fair when it asks for `eval.tune_weighted_fair` (α chosen
/// here, on the training seeds); `-s` replaces the whole list.
pub fn schedulers(
    p: &PreparedEval,
    origin: &Path,
    names: &[String],
    backend: Backend,
) -> Result<Vec<Box<dyn SchedulerFactory>>, RunError> {
    let (names, tune) = if names.is_empty() {
        (
            &p.cfg.eval.schedulers[..],
            p.cfg.eval.tune_weighted_fair.as_ref(),
        )
    } else {
        (names, None)
    };
    let mut factories = crate::registry::factories(names, backend)?;
    if let Some(t) = tune {
        let (train, _, _) =
            p.cfg
                .workload
                .episodes(&p.workload.library, origin, t.train_seeds, t.first_seed)?;
        let sweep = tune_weighted_fair(&p.cfg.sim, &train, &|| {})?;
        factories.push(Box::new(Labelled {
            label: format!("{OPT_WEIGHTED_FAIR} (α={})", sweep.best_alpha),
            inner: Box::new(weighted_fair(sweep.best_alpha)),
        }));
    }
    Ok(factories)
}

/// Runs `factories` on the prepared episodes; `on_done` is called once per episode run.
pub fn run_eval(
    p: &PreparedEval,
    factories: &[Box<dyn SchedulerFactory>],
    on_done: &(dyn Fn() + Sync),
) -> Result<Vec<SchedulerResult>, RunError> {
    let refs: Vec<&dyn SchedulerFactory> = factories.iter().map(|f| f.as_ref()).collect();
    Ok(evaluate(&p.cfg.sim, &refs, &p.workload.episodes, on_done)?)
}

/// The results as `mpda eval` prints them: one row per scheduler, and its mean average
/// JCT over the baseline's (`vs fair`), when the baseline is among them.
pub fn format_table(results: &[SchedulerResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(28);
    let base = results
        .iter()
        .find(|r| r.name == defaults::BASELINE)
        .map(|r| r.mean_avg_jct_s);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:>18} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "scheduler",
        "avg JCT s (±std)",
        format!("vs {}", defaults::BASELINE),
        "makespan s",
        "p50 JCT s",
        "p95 JCT s",
        "decisions",
        "events",
        "util"
    );
    for r in results {
        let ratio = base.map_or("-".to_string(), |b| format!("{:.3}", r.mean_avg_jct_s / b));
        let _ = writeln!(
            out,
            "{:<width$} {:>18} {:>8} {:>12.1} {:>10.1} {:>10.1} {:>10.0} {:>10.0} {:>7.3}",
            r.name,
            format!("{:.2} ± {:.2}", r.mean_avg_jct_s, r.std_avg_jct_s),
            ratio,
            r.mean_makespan_s,
            r.p50_jct_s,
            r.p95_jct_s,
            r.mean_decisions,
            r.mean_events,
            r.mean_utilisation
        );
    }
    out
}

/// Writes the per-episode results as JSON, atomically (the format `docs` and the README
/// describe: `schedulers.<name>` with the means, pooled percentiles and every episode).
pub fn write_json(
    path: &Path,
    p: &PreparedEval,
    results: &[SchedulerResult],
) -> Result<(), RunError> {
    let mut schedulers = serde_json::Map::new();
    for r in results {
        schedulers.insert(
            r.name.clone(),
            serde_json::to_value(r).expect("results serialise"),
        );
    }
    let doc = json!({
        "mpda_version": env!("CARGO_PKG_VERSION"),
        "workload": {
            "description": p.workload.description,
            "traces": p.cfg.workload.traces,
            "episodes": p.workload.episodes.len(),
        },
        "sim": p.cfg.sim,
        "schedulers": schedulers,
    });
    let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    Ok(crate::io::write_file(path, text.as_bytes())?)
}
