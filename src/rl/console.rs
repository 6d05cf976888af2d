//! What `mpda train` prints: the run's header, a progress line per iteration, and how the
//! run ended. Kept here so that the command line only wires them to a progress bar.

use std::path::Path;

use super::checkpoint::TrainState;
use super::{IterationMetrics, Outcome, TrainConfig};

/// The first line: run, design, algorithm, iterations, and the baseline's held-out JCT.
pub fn header(cfg: &TrainConfig, done: usize, baseline_jct_s: f64) -> String {
    format!(
        "{}: {} ({}), {} iterations{}; held-out {} on {} seeds: {baseline_jct_s:.2} s",
        cfg.name,
        cfg.model.preset,
        format!("{:?}", cfg.train.algorithm).to_lowercase(),
        cfg.train.iterations,
        if done > 0 {
            format!(", resuming after iteration {done}")
        } else {
            String::new()
        },
        cfg.eval.baseline,
        cfg.eval.seeds,
    )
}

/// An iteration's numbers, with the latest held-out evaluation against `baseline`.
pub fn progress(m: &IterationMetrics, last_eval_s: Option<f64>, baseline: &str) -> String {
    format!(
        "JCT {:.1} s | held-out {} | H {:.3} | pi {:.4} v {:.4} | {:.0} steps/s",
        m.train_avg_jct_s,
        last_eval_s.map_or("-".into(), |e| format!(
            "{e:.2} s ({:.3}x {baseline})",
            e / m.baseline_avg_jct_s
        )),
        m.entropy,
        m.policy_loss,
        m.value_loss,
        m.decisions_per_s
    )
}

/// The last line: where an interrupted run's checkpoint is, or how a finished run did.
pub fn outcome(outcome: Outcome, st: &TrainState, run_dir: &Path) -> String {
    match outcome {
        Outcome::Interrupted => format!(
            "interrupted: checkpoint of iteration {} in {}; continue with --resume",
            st.iteration,
            run_dir.display()
        ),
        Outcome::Finished => format!(
            "done: {} iterations in {:.1} s; best held-out {} at iteration {}; beat the baseline at {}",
            st.iteration,
            st.elapsed_s,
            st.best_eval_jct_s
                .map_or("-".into(), |v| format!("{v:.2} s")),
            st.best_iteration.map_or("-".into(), |v| v.to_string()),
            st.beat_baseline_at_s
                .map_or("never".into(), |v| format!("{v:.1} s")),
        ),
    }
}

/// The line kept for an iteration with a held-out evaluation (`progress` is the bar's
/// message), or none.
pub fn evaluation_line(m: &IterationMetrics, progress: &str) -> Option<String> {
    m.eval_avg_jct_s?;
    Some(format!(
        "iter {:>5}  {:>8.1} s  {progress}",
        m.iteration, m.elapsed_s
    ))
}
