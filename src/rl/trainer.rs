//! The training loop: plan episodes, roll them out, compute advantages, take gradient
//! steps, evaluate on held-out seeds, and checkpoint.
//!
//! The parts live beside it: the iteration's plan in [`super::plan`], the advantage
//! assembly in [`super::advantage::samples`], the metrics rows and curves in
//! [`super::metrics`]. This file orchestrates them and owns the run's state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::advantage;
use super::checkpoint::{self, LATEST, TrainState};
use super::config::{Algorithm, Inference, TrainConfig};
use super::dist::{Comm, Group, agree, any, digest, gather_values, share_rollouts, weights_digest};
use super::learner::{Learner, Sample, StepSettings, StepStats};
use super::metrics::{self, CurveLabels, IterationMetrics};
use super::plan::Planner;
use super::rollout::{EpisodePlan, Trajectory, rollout_batched, rollout_host};
use super::{RlError, io_err};
use crate::eval::evaluate;
use crate::model::host::FastPolicy;
use crate::model::scheduler::LearnedFactory;
use crate::model::{Backend, Device, PolicyConfig};
use crate::sched::{SchedulerFactory, SchedulerSpec};
use crate::seed::mix_words;
use crate::workload::Episode;
use crate::workload::TraceLibrary;
use crate::workload::arrivals::{ArrivalProcess, JobMix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by a signal after checkpointing.
    Interrupted,
}

pub struct Trainer {
    cfg: TrainConfig,
    policy_cfg: PolicyConfig,
    run: PathBuf,
    library: TraceLibrary,
    mix: JobMix,
    arrivals: ArrivalProcess,
    eval_episodes: Vec<Episode>,
    baseline_jct: f64,
    learner: Learner,
    device: Device,
    state: TrainState,
    /// The rows of `metrics.csv` so far, rewritten whole after each iteration.
    rows: Vec<IterationMetrics>,
    /// The processes training together (one, or the ranks of an MPI job); they evaluate in
    /// shares, and rank 0 alone writes the run's files.
    group: Box<dyn Group>,
    /// This process's collectives so far: trajectory exchange, then gradient exchange.
    comm: [Comm; 2],
}

impl Trainer {
    /// Prepares a run in `runs_dir/<name>`: a fresh one, or (with `resume`) the one there.
    /// `config_text` is the config as written, kept beside the checkpoints. Under MPI every
    /// rank calls this with the same arguments (the caller checks); ranks other than 0
    /// write nothing and read a resumed run from the same (shared) folder.
    pub fn new(
        cfg: TrainConfig,
        config_text: &str,
        origin: &Path,
        runs_dir: &Path,
        backend: Backend,
        resume: bool,
        group: Box<dyn Group>,
    ) -> Result<Self, RlError> {
        let root = group.is_root();
        // Under `mpirun` every rank must run the same config with the same arguments, or
        // their gradients would not belong together (`--iterations` is in `cfg`).
        let args = format!(
            "{config_text}\0{}\0{resume}\0{backend:?}\0{}",
            cfg.train.iterations,
            runs_dir.display()
        );
        agree(
            group.as_ref(),
            &format!("the config and arguments ({})", origin.display()),
            digest(args.as_bytes()),
        )?;
        let run = runs_dir.join(&cfg.name);
        let policy_cfg =
            cfg.model
                .policy_config(cfg.sim.slots())
                .map_err(|msg| RlError::Invalid {
                    file: origin.to_path_buf(),
                    msg,
                })?;
        let device = backend.device()?;
        let resolved = cfg
            .workload
            .resolve(origin, cfg.eval.seeds, cfg.eval.first_seed)?;
        let mix = cfg.workload.mix(&resolved.library, origin)?;
        let arrivals = cfg.workload.arrivals.clone().expect("validated: arrivals");
        let saved_cfg = run.join("train.toml");
        let (learner, state, rows) = if resume {
            let prev = std::fs::read_to_string(&saved_cfg).map_err(io_err(&saved_cfg))?;
            if prev != config_text {
                return Err(RlError::Invalid {
                    file: origin.to_path_buf(),
                    msg: format!(
                        "differs from the config the run was started with ({}); a resumed run must use the same config",
                        saved_cfg.display()
                    ),
                });
            }
            let loaded = checkpoint::load_latest(&run, &device.clone().autodiff())?;
            if loaded.cfg != policy_cfg {
                return Err(RlError::Invalid {
                    file: loaded.dir.clone(),
                    msg: "the checkpoint's model config differs from the training config".into(),
                });
            }
            let rows = metrics::read(&run.join(metrics::FILE), loaded.state.iteration)?;
            let learner = Learner::from_parts(loaded.policy, loaded.cfg, loaded.optim, &device);
            (learner, loaded.state, rows)
        } else {
            if root && run.join(LATEST).exists() {
                return Err(RlError::Invalid {
                    file: run.clone(),
                    msg: "already holds a run: continue it with --resume, or remove the folder"
                        .into(),
                });
            }
            if root {
                crate::io::write_atomic(&saved_cfg, config_text.as_bytes())
                    .map_err(io_err(&saved_cfg))?;
            }
            let state = TrainState {
                iteration: 0,
                seed: cfg.train.seed,
                elapsed_s: 0.0,
                best_eval_jct_s: None,
                best_iteration: None,
                beat_baseline_at_s: None,
                beat_baseline_iteration: None,
            };
            (Learner::new(policy_cfg.clone(), &device), state, Vec::new())
        };
        let baseline = SchedulerSpec::parse(&cfg.eval.baseline)?;
        let baseline_jct = held_out_jct(group.as_ref(), &cfg.sim, &baseline, &resolved.episodes)?;
        // Every rank must start from the same weights and iteration (a resumed run on a
        // folder the ranks do not share would not).
        let start = format!(
            "{}:{:016x}",
            state.iteration,
            weights_digest(&learner.policy)
        );
        agree(
            group.as_ref(),
            "the starting weights",
            digest(start.as_bytes()),
        )?;
        Ok(Self {
            group,
            comm: [Comm::default(); 2],
            baseline_jct,
            eval_episodes: resolved.episodes,
            library: resolved.library,
            mix,
            arrivals,
            cfg,
            policy_cfg,
            run,
            learner,
            device,
            state,
            rows,
        })
    }

    pub fn state(&self) -> &TrainState {
        &self.state
    }

    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    pub fn baseline_jct(&self) -> f64 {
        self.baseline_jct
    }

    /// Whether this process reports and writes the run (rank 0, or the only process).
    pub fn is_root(&self) -> bool {
        self.group.is_root()
    }

    /// What `mpda train` prints first: the run, and under MPI the ranks.
    pub fn header(&self) -> String {
        let mut out = super::console::header(&self.cfg, self.state.iteration, self.baseline_jct);
        let size = self.group.size();
        if size > 1 {
            out += &format!("\ndata-parallel over {size} MPI ranks (rank 0 writes the run)");
        }
        out
    }

    /// What `mpda train` prints last: how the run ended, and under MPI what this rank's
    /// collectives cost over the process's life.
    pub fn footer(&self, outcome: Outcome) -> String {
        let mut out = super::console::outcome(outcome, &self.state, &self.run);
        let size = self.group.size();
        if size > 1 {
            out += &format!(
                "\nMPI: {size} ranks; rank {} received trajectories {}, gradients {}",
                self.group.rank(),
                self.comm[0].describe(),
                self.comm[1].describe()
            );
        }
        out
    }

    /// What this run's iterations are planned from.
    fn planner(&self) -> Planner<'_> {
        let first = self.cfg.eval.first_seed;
        Planner {
            train: &self.cfg.train,
            curriculum: &self.cfg.curriculum,
            held_out: first..first + self.cfg.eval.seeds as u64,
            library: &self.library,
            mix: &self.mix,
            arrivals: &self.arrivals,
        }
    }

    /// This rank's share of the plans rolled out, then every rank's trajectories.
    fn rollouts(&self, plans: &[EpisodePlan]) -> Result<Vec<Trajectory>, RlError> {
        let policy = self.learner.inference_policy();
        share_rollouts(self.group.as_ref(), plans, |mine| {
            Ok(match self.cfg.train.inference {
                Inference::Host => {
                    let fast = FastPolicy::new(&policy, &self.policy_cfg);
                    rollout_host(&fast, &self.policy_cfg, &self.cfg.sim, mine, false)?
                }
                Inference::Batched => {
                    rollout_batched(&policy, &self.policy_cfg, &self.cfg.sim, mine, false)?
                }
            })
        })
    }

    /// Gradient steps of one iteration; returns the mean of their stats and their count.
    fn learn(
        &mut self,
        it: usize,
        trajs: &[Trajectory],
        mut samples: Vec<Sample>,
    ) -> Result<(StepStats, usize), RlError> {
        let t = self.cfg.train.clone();
        let schedule = self.planner().schedule(it);
        let settings = StepSettings {
            algorithm: t.algorithm,
            lr: schedule.lr,
            entropy: schedule.entropy,
            clip: t.clip,
            value_coef: t.value_coef,
            max_grad_norm: t.max_grad_norm,
            shards: t.grad_shards,
        };
        let epochs = if t.algorithm == Algorithm::Ppo {
            t.epochs
        } else {
            1
        };
        let mut sum = StepStats::default();
        let mut steps = 0usize;
        'epochs: for epoch in 0..epochs {
            let mut rng = Pcg64Mcg::seed_from_u64(mix_words(&[t.seed, it as u64, 3, epoch as u64]));
            for i in (1..samples.len()).rev() {
                samples.swap(i, rng.random_range(0..=i));
            }
            for chunk in samples.chunks(t.minibatch) {
                let s = self
                    .learner
                    .step(trajs, chunk, &settings, self.group.as_ref())?;
                sum += s;
                steps += 1;
                if t.algorithm == Algorithm::Ppo
                    && let Some(kl) = t.target_kl
                    && s.approx_kl > 1.5 * kl
                {
                    break 'epochs;
                }
            }
        }
        let n = steps.max(1) as f64;
        Ok((
            StepStats {
                policy_loss: sum.policy_loss / n,
                value_loss: sum.value_loss / n,
                entropy: sum.entropy / n,
                approx_kl: sum.approx_kl / n,
                clip_fraction: sum.clip_fraction / n,
                grad_norm: sum.grad_norm / n,
            },
            steps,
        ))
    }

    /// Average JCT of the current weights on the held-out episodes (sampled or greedy, as
    /// configured); under MPI every rank evaluates its share (a collective).
    pub fn evaluate(&self) -> Result<f64, RlError> {
        let f = LearnedFactory::from_policy(
            self.learner.inference_policy(),
            self.policy_cfg.clone(),
            self.device.clone(),
            self.policy_cfg.preset.clone(),
            self.cfg.eval.greedy,
        );
        held_out_jct(self.group.as_ref(), &self.cfg.sim, &f, &self.eval_episodes)
    }

    fn checkpoint(&self) -> Result<(), RlError> {
        checkpoint::save(
            &self.run,
            &self.learner.inference_policy(),
            &self.policy_cfg,
            &self.learner.optim,
            &self.state,
        )?;
        Ok(())
    }

    /// Appends a row to `metrics.csv`, and redraws the curves when it has a held-out JCT.
    fn record(&mut self, m: &IterationMetrics) -> Result<(), RlError> {
        self.rows.push(m.clone());
        metrics::write(&self.run.join(metrics::FILE), &self.rows)?;
        if m.iteration > 0 && m.eval_avg_jct_s.is_some() {
            let labels = CurveLabels {
                run: &self.cfg.name,
                baseline: &self.cfg.eval.baseline,
                greedy: self.cfg.eval.greedy,
            };
            metrics::draw_curves(&self.run.join("curves"), &labels, &self.rows)?;
        }
        Ok(())
    }

    /// Trains until the configured iteration count, or until `stop` is set (then it
    /// checkpoints and returns `Interrupted`).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on_iteration: &mut dyn FnMut(&IterationMetrics),
    ) -> Result<Outcome, RlError> {
        let total = self.cfg.train.iterations;
        let root = self.group.is_root();
        // Every rank evaluates (its share of the episodes); rank 0 records.
        if self.state.iteration == 0 && self.rows.is_empty() {
            // Row 0: the untrained policy on the held-out episodes, the curve's start.
            let start = Instant::now();
            let eval = self.evaluate()?;
            let m = IterationMetrics {
                eval_s: start.elapsed().as_secs_f64(),
                ..IterationMetrics::default()
            }
            .with_held_out(Some(eval), self.baseline_jct);
            if root {
                self.record(&m)?;
                on_iteration(&m);
            }
        }
        while self.state.iteration < total {
            let it = self.state.iteration;
            let start = Instant::now();
            let plans = self.planner().plans(it);
            let before = self.group.comm();
            let trajs = self.rollouts(&plans)?;
            let rollout_s = start.elapsed().as_secs_f64();
            let rolled = self.group.comm();
            let learn_start = Instant::now();
            let samples = advantage::samples(&self.cfg.train, &trajs);
            let (stats, gradient_steps) = self.learn(it, &trajs, samples)?;
            self.comm[0].add(rolled.since(before));
            self.comm[1].add(self.group.comm().since(rolled));
            let learn_s = learn_start.elapsed().as_secs_f64();
            let measured = IterationMetrics::measured(&trajs, &stats, gradient_steps);
            self.state.iteration = it + 1;
            let eval_start = Instant::now();
            let is_last = self.state.iteration == total;
            let eval = if self.state.iteration.is_multiple_of(self.cfg.eval.every) || is_last {
                Some(self.evaluate()?)
            } else {
                None
            };
            let eval_s = eval_start.elapsed().as_secs_f64();
            self.state.elapsed_s += start.elapsed().as_secs_f64();
            if let Some(jct) = eval {
                if self.state.best_eval_jct_s.is_none_or(|b| jct < b) {
                    self.state.best_eval_jct_s = Some(jct);
                    self.state.best_iteration = Some(self.state.iteration);
                    if root {
                        crate::model::save(
                            &self.learner.inference_policy(),
                            &self.policy_cfg,
                            &self.run.join("best").join("model.bpk"),
                        )?;
                    }
                }
                if jct < self.baseline_jct && self.state.beat_baseline_at_s.is_none() {
                    self.state.beat_baseline_at_s = Some(self.state.elapsed_s);
                    self.state.beat_baseline_iteration = Some(self.state.iteration);
                }
            }
            let schedule = self.planner().schedule(it);
            let m = IterationMetrics {
                iteration: self.state.iteration,
                elapsed_s: self.state.elapsed_s,
                decisions_per_s: measured.decisions as f64 / (rollout_s + learn_s).max(1e-9),
                lr: schedule.lr,
                entropy_weight: schedule.entropy,
                rollout_s,
                learn_s,
                eval_s,
                ..measured
            }
            .with_held_out(eval, self.baseline_jct);
            // A stop seen by any rank stops them all after this same iteration.
            let interrupted = any(self.group.as_ref(), stop.load(Ordering::SeqCst))?;
            if root {
                self.record(&m)?;
                if self
                    .state
                    .iteration
                    .is_multiple_of(self.cfg.train.checkpoint_every)
                    || is_last
                    || interrupted
                {
                    self.checkpoint()?;
                }
            }
            on_iteration(&m);
            if interrupted && !is_last {
                self.group.done();
                return Ok(Outcome::Interrupted);
            }
        }
        self.group.done();
        Ok(Outcome::Finished)
    }
}

/// Mean average JCT of `scheduler` over `episodes`. Under MPI each rank runs its contiguous
/// share and the ranks all-gather the per-episode values, which are summed in episode order
/// as one process sums them (`SchedulerResult::from_episodes`): the same bits.
fn held_out_jct(
    group: &dyn Group,
    sim: &crate::sim::SimConfig,
    scheduler: &dyn SchedulerFactory,
    episodes: &[Episode],
) -> Result<f64, RlError> {
    if group.size() == 1 {
        return Ok(evaluate(sim, &[scheduler], episodes, &|| {})?[0].mean_avg_jct_s);
    }
    let jcts = gather_values(group, episodes.len(), "held-out JCTs", |mine| {
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let r = evaluate(sim, &[scheduler], &episodes[mine], &|| {})?;
        Ok(r[0].episodes.iter().map(|e| e.avg_jct_s).collect())
    })?;
    Ok(jcts.iter().sum::<f64>() / episodes.len().max(1) as f64)
}
