//! Checkpoints: a folder per checkpoint, made complete before a `LATEST` pointer names it,
//! so that a run killed at any moment resumes from a whole checkpoint.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::{RlError, io_err};
use crate::model::{Policy, PolicyConfig};

pub const LATEST: &str = "LATEST";
const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "adam.bin";
const STATE: &str = "state.json";
/// Checkpoints kept besides the latest one.
const KEEP: usize = 1;

/// Everything besides weights and optimizer that training needs to continue exactly.
/// All randomness is keyed by (seed, iteration, index), so the iteration is the state of
/// every generator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Iterations completed.
    pub iteration: usize,
    pub seed: u64,
    /// Wall time spent in training so far, seconds (all sessions of the run).
    pub elapsed_s: f64,
    /// Best held-out average JCT so far, seconds.
    pub best_eval_jct_s: Option<f64>,
    pub best_iteration: Option<usize>,
    /// Wall time at which the held-out JCT first beat the baseline.
    pub beat_baseline_at_s: Option<f64>,
    pub beat_baseline_iteration: Option<usize>,
}

pub fn checkpoint_dir(run: &Path, iteration: usize) -> PathBuf {
    run.join("checkpoints").join(format!("iter-{iteration:06}"))
}

/// Writes a checkpoint of iteration `state.iteration`, then points `LATEST` at it, then
/// removes older checkpoints.
pub fn save(
    run: &Path,
    policy: &Policy,
    cfg: &PolicyConfig,
    optim: &Adam,
    state: &TrainState,
) -> Result<PathBuf, RlError> {
    let dir = checkpoint_dir(run, state.iteration);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    crate::model::save(policy, cfg, &dir.join(MODEL))?;
    let opt = optim.to_bytes();
    let file = dir.join(OPTIMIZER);
    crate::io::write_atomic(&file, &opt).map_err(io_err(&file))?;
    let file = dir.join(STATE);
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    crate::io::write_atomic(&file, json.as_bytes()).map_err(io_err(&file))?;
    let name = dir
        .file_name()
        .expect("checkpoint folder has a name")
        .to_string_lossy()
        .into_owned();
    let latest = run.join(LATEST);
    crate::io::write_atomic(&latest, name.as_bytes()).map_err(io_err(&latest))?;
    prune(run, state.iteration);
    Ok(dir)
}

/// Removes all but the newest `KEEP` checkpoints before `current`; failures only leave
/// extra folders behind.
fn prune(run: &Path, current: usize) {
    let Ok(entries) = std::fs::read_dir(run.join("checkpoints")) else {
        return;
    };
    let mut older: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let it = name.strip_prefix("iter-")?.parse::<usize>().ok()?;
            (it < current).then(|| (it, e.path()))
        })
        .collect();
    older.sort();
    let n = older.len().saturating_sub(KEEP);
    for (_, path) in older.into_iter().take(n) {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// A loaded checkpoint.
pub struct Loaded {
    pub policy: Policy,
    pub cfg: PolicyConfig,
    pub optim: Adam,
    pub state: TrainState,
    pub dir: PathBuf,
}

/// Loads the checkpoint `LATEST` names, onto `device` (an autodiff device).
pub fn load_latest(run: &Path, device: &Device) -> Result<Loaded, RlError> {
    let latest = run.join(LATEST);
    let name = std::fs::read_to_string(&latest).map_err(io_err(&latest))?;
    let name = name.trim();
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(RlError::Invalid {
            file: latest,
            msg: format!("does not name a checkpoint folder: {name:?}"),
        });
    }
    let dir = run.join("checkpoints").join(name);
    let (policy, cfg) = crate::model::load(&dir.join(MODEL), device)?;
    let file = dir.join(OPTIMIZER);
    let bytes = std::fs::read(&file).map_err(io_err(&file))?;
    let optim = Adam::from_bytes(&bytes).map_err(|msg| RlError::Invalid {
        file: file.clone(),
        msg,
    })?;
    let file = dir.join(STATE);
    let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| RlError::Invalid {
        file: file.clone(),
        msg: format!("not a training state: {e}"),
    })?;
    Ok(Loaded {
        policy,
        cfg,
        optim,
        state,
        dir,
    })
}
