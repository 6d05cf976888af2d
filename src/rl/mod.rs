//! Reinforcement learning: the rollout engine, advantages, the gradient step, and the
//! training loop with checkpoints (`mpda train`).
//!
//! Learning runs in Burn (autodiff, any device); rollouts run the host forward pass on the
//! CPU, or batched Burn inference on a GPU.

pub mod adam;
pub mod advantage;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod dist;
pub mod learner;
pub mod metrics;
pub mod plan;
pub mod rollout;
pub mod trainer;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use config::{Algorithm, TrainConfig};
pub use metrics::IterationMetrics;
pub use trainer::{Outcome, Trainer};

/// Maps an I/O error on `file` (a run's files, read or written) to [`RlError::File`].
pub(crate) fn io_err(file: &Path) -> impl FnOnce(std::io::Error) -> RlError + '_ {
    move |source| crate::io::FileError::on(file, "access")(source).into()
}

#[derive(Debug, Error)]
pub enum RlError {
    #[error(transparent)]
    File(#[from] crate::io::FileError),
    #[error("{}: {msg}", file.display())]
    Invalid { file: PathBuf, msg: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Sim(#[from] crate::sim::SimError),
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    #[error(transparent)]
    Sched(#[from] crate::sched::SchedError),
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// Between the ranks of a data-parallel run (`dist`).
    #[error("MPI: {0}")]
    Group(String),
}
