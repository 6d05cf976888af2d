//! The training loop: plan episodes, roll them out, compute advantages, take gradient
//! steps, evaluate on held-out seeds, and checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::advantage::{Discount, decima_advantages, gae};
use super::checkpoint::{self, LATEST, TrainState};
use super::config::{AdvantageKind, Algorithm, Inference, TrainConfig};
use super::learner::{Learner, Sample, StepSettings, StepStats};
use super::rollout::{EpisodePlan, RolloutTimes, Trajectory, rollout_batched, rollout_host};
use super::{RlError, io_err};
use crate::eval::plot::{Axes, Series, line_chart_with};
use crate::eval::{Episode, evaluate};
use crate::model::host::FastPolicy;
use crate::model::{Backend, Device, PolicyConfig};
use crate::sched::learned::LearnedFactory;
use crate::sched::{SchedulerFactory, SchedulerSpec};
use crate::workload::TraceLibrary;
use crate::workload::arrivals::{ArrivalProcess, JobMix};

/// One iteration's numbers: a row of `metrics.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IterationMetrics {
    pub iteration: usize,
    pub elapsed_s: f64,
    pub decisions: usize,
    pub decisions_per_s: f64,
    /// Mean over the iteration's rollouts of their average JCT (finished jobs), seconds.
    pub train_avg_jct_s: f64,
    pub mean_return: f64,
    pub entropy: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub approx_kl: f64,
    pub clip_fraction: f64,
    pub grad_norm: f64,
    pub gradient_steps: usize,
    pub lr: f64,
    pub entropy_weight: f64,
    pub rollout_s: f64,
    pub learn_s: f64,
    /// Thread time inside the rollouts.
    pub simulation_s: f64,
    pub observation_s: f64,
    pub inference_s: f64,
    pub eval_s: f64,
    /// Held-out average JCT, when evaluated this iteration.
    pub eval_avg_jct_s: Option<f64>,
    pub baseline_avg_jct_s: f64,
}

const HEADER: &str = "iteration,elapsed_s,decisions,decisions_per_s,train_avg_jct_s,mean_return,entropy,policy_loss,value_loss,approx_kl,clip_fraction,grad_norm,gradient_steps,lr,entropy_weight,rollout_s,learn_s,simulation_s,observation_s,inference_s,eval_s,eval_avg_jct_s,baseline_avg_jct_s,eval_ratio";

impl IterationMetrics {
    fn csv(&self) -> String {
        let eval = self
            .eval_avg_jct_s
            .map_or(String::new(), |v| format!("{v:.4}"));
        let ratio = self.eval_avg_jct_s.map_or(String::new(), |v| {
            format!("{:.5}", v / self.baseline_avg_jct_s)
        });
        format!(
            "{},{:.2},{},{:.1},{:.4},{:.5},{:.5},{:.6},{:.6},{:.6},{:.4},{:.5},{},{:.3e},{:.3e},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{:.4},{}",
            self.iteration,
            self.elapsed_s,
            self.decisions,
            self.decisions_per_s,
            self.train_avg_jct_s,
            self.mean_return,
            self.entropy,
            self.policy_loss,
            self.value_loss,
            self.approx_kl,
            self.clip_fraction,
            self.grad_norm,
            self.gradient_steps,
            self.lr,
            self.entropy_weight,
            self.rollout_s,
            self.learn_s,
            self.simulation_s,
            self.observation_s,
            self.inference_s,
            self.eval_s,
            eval,
            self.baseline_avg_jct_s,
            ratio
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by a signal after checkpointing.
    Interrupted,
}

/// SplitMix64 over several words: independent streams keyed by (seed, iteration, index).
pub fn mix_seed(words: &[u64]) -> u64 {
    let mut z = 0x9e37_79b9_7f4a_7c15u64;
    for &w in words {
        z = z.wrapping_add(w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
    }
    z
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
    rows: Vec<String>,
}

impl Trainer {
    /// Prepares a run in `runs_dir/<name>`: a fresh one, or (with `resume`) the one there.
    /// `config_text` is the config as written, kept beside the checkpoints.
    pub fn new(
        cfg: TrainConfig,
        config_text: &str,
        origin: &Path,
        runs_dir: &Path,
        backend: Backend,
        resume: bool,
    ) -> Result<Self, RlError> {
        let run = runs_dir.join(&cfg.name);
        let policy_cfg =
            cfg.model
                .policy_config(cfg.sim.executors)
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
            let rows = read_rows(&run.join("metrics.csv"), loaded.state.iteration)?;
            let learner = Learner::from_parts(loaded.policy, loaded.cfg, loaded.optim, &device);
            (learner, loaded.state, rows)
        } else {
            if run.join(LATEST).exists() {
                return Err(RlError::Invalid {
                    file: run.clone(),
                    msg: "already holds a run: continue it with --resume, or remove the folder"
                        .into(),
                });
            }
            crate::io::write_atomic(&saved_cfg, config_text.as_bytes())
                .map_err(io_err(&saved_cfg))?;
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
        let base = evaluate(
            &cfg.sim,
            &[&baseline as &dyn SchedulerFactory],
            &resolved.episodes,
            &|| {},
        )?;
        Ok(Self {
            baseline_jct: base[0].mean_avg_jct_s,
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

    /// Episodes of iteration `it`.
    pub fn plans(&self, it: usize) -> Vec<EpisodePlan> {
        let t = &self.cfg.train;
        let cur = &self.cfg.curriculum;
        let (lo, n_eval) = (self.cfg.eval.first_seed, self.cfg.eval.seeds as u64);
        let jobs_now = cur.jobs.as_ref().map(|j| {
            let f = (it as f64 / j.over_iterations.max(1) as f64).min(1.0);
            (j.initial as f64 + (j.last as f64 - j.initial as f64) * f).round() as usize
        });
        let mut plans = Vec::with_capacity(t.sequences * t.rollouts_per_sequence);
        for q in 0..t.sequences {
            let key = [t.seed, it as u64, q as u64];
            let mut rng = Pcg64Mcg::seed_from_u64(mix_seed(&key));
            // Sequences are drawn with 32-bit numpy seeds; keep clear of the held-out ones.
            let mut seq_seed = u64::from(mix_seed(&[t.seed, it as u64, q as u64, 1]) as u32);
            while (lo..lo + n_eval).contains(&seq_seed) {
                seq_seed = u64::from((seq_seed + n_eval) as u32);
            }
            let arrivals = match self.arrivals.clone() {
                ArrivalProcess::Batch { jobs } => ArrivalProcess::Batch {
                    jobs: jobs_now.unwrap_or(jobs),
                },
                ArrivalProcess::Poisson {
                    init_jobs,
                    stream_jobs,
                    mean_interval_ms,
                } => ArrivalProcess::Poisson {
                    init_jobs,
                    stream_jobs: jobs_now.unwrap_or(stream_jobs),
                    mean_interval_ms: match &cur.mean_intervals_ms {
                        Some(list) => list[rng.random_range(0..list.len())],
                        None => mean_interval_ms,
                    },
                },
            };
            let max_time_ms = cur.episode_time.as_ref().map(|e| {
                let mean =
                    (e.initial_mean_s + e.growth_s_per_iteration * it as f64).min(e.max_mean_s);
                let u: f64 = rng.random();
                (-mean * (1.0 - u).ln() * 1000.0) as u64
            });
            let jobs = arrivals.generate(&self.library, &self.mix, seq_seed);
            for r in 0..t.rollouts_per_sequence {
                plans.push(EpisodePlan {
                    env_seed: seq_seed,
                    jobs: jobs.clone(),
                    max_time_ms,
                    sample_seed: mix_seed(&[t.seed, it as u64, q as u64, 2, r as u64]),
                    sequence: q,
                });
            }
        }
        plans
    }

    fn rollouts(&self, plans: &[EpisodePlan]) -> Result<Vec<Trajectory>, RlError> {
        let policy = self.learner.inference_policy();
        Ok(match self.cfg.train.inference {
            Inference::Host => {
                let fast = FastPolicy::new(&policy, &self.policy_cfg);
                rollout_host(&fast, &self.policy_cfg, &self.cfg.sim, plans, false)?
            }
            Inference::Batched => {
                rollout_batched(&policy, &self.policy_cfg, &self.cfg.sim, plans, false)?
            }
        })
    }

    /// Samples with advantages and value targets, advantages normalised if configured.
    fn samples(&self, trajs: &[Trajectory]) -> Vec<Sample> {
        let t = &self.cfg.train;
        let mut samples = Vec::with_capacity(trajs.iter().map(Trajectory::len).sum());
        let discount = Discount {
            gamma: t.gamma,
            time_constant_ms: t.discount_time_s.map(|s| s * 1000.0),
        };
        match t.advantage_kind() {
            AdvantageKind::Gae => {
                let (mut adv, mut ret) = (Vec::new(), Vec::new());
                for (i, tr) in trajs.iter().enumerate() {
                    gae(tr, discount, t.gae_lambda, &mut adv, &mut ret);
                    for s in 0..tr.len() {
                        samples.push(Sample {
                            traj: i as u32,
                            step: s as u32,
                            advantage: adv[s],
                            target: ret[s],
                        });
                    }
                }
            }
            AdvantageKind::Rollouts => {
                // A critic, when there is one, still learns the return-to-go: its loss is
                // then a diagnostic, and it is ready for a later switch to GAE.
                for q in 0..t.sequences {
                    let idx: Vec<usize> = (0..trajs.len())
                        .filter(|&i| trajs[i].sequence == q)
                        .collect();
                    let group: Vec<&Trajectory> = idx.iter().map(|&i| &trajs[i]).collect();
                    let (advantages, returns) = decima_advantages(&group, discount);
                    for ((&i, adv), ret) in idx.iter().zip(advantages).zip(returns) {
                        for (s, a) in adv.into_iter().enumerate() {
                            samples.push(Sample {
                                traj: i as u32,
                                step: s as u32,
                                advantage: a,
                                target: ret[s] as f32,
                            });
                        }
                    }
                }
            }
        }
        if t.normalize_advantages && samples.len() > 1 {
            let n = samples.len() as f64;
            let mean = samples.iter().map(|s| f64::from(s.advantage)).sum::<f64>() / n;
            let var = samples
                .iter()
                .map(|s| (f64::from(s.advantage) - mean).powi(2))
                .sum::<f64>()
                / n;
            let sd = var.sqrt().max(1e-8);
            for s in &mut samples {
                s.advantage = ((f64::from(s.advantage) - mean) / sd) as f32;
            }
        }
        samples
    }

    fn schedule(&self, it: usize) -> (f64, f64) {
        let t = &self.cfg.train;
        let f = it as f64 / (t.iterations.saturating_sub(1).max(1)) as f64;
        (
            t.lr + (t.lr_final - t.lr) * f,
            t.entropy + (t.entropy_final - t.entropy) * f,
        )
    }

    /// Gradient steps of one iteration; returns the mean of their stats and their count.
    fn learn(
        &mut self,
        it: usize,
        trajs: &[Trajectory],
        mut samples: Vec<Sample>,
    ) -> (StepStats, usize) {
        let t = self.cfg.train.clone();
        let (lr, ent) = self.schedule(it);
        let settings = StepSettings {
            algorithm: t.algorithm,
            lr,
            entropy: ent,
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
            let mut rng = Pcg64Mcg::seed_from_u64(mix_seed(&[t.seed, it as u64, 3, epoch as u64]));
            for i in (1..samples.len()).rev() {
                samples.swap(i, rng.random_range(0..=i));
            }
            for chunk in samples.chunks(t.minibatch) {
                let s = self.learner.step(trajs, chunk, &settings);
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
        (
            StepStats {
                policy_loss: sum.policy_loss / n,
                value_loss: sum.value_loss / n,
                entropy: sum.entropy / n,
                approx_kl: sum.approx_kl / n,
                clip_fraction: sum.clip_fraction / n,
                grad_norm: sum.grad_norm / n,
            },
            steps,
        )
    }

    /// Average JCT of the current weights on the held-out episodes (sampled or greedy, as
    /// configured).
    pub fn evaluate(&self) -> Result<f64, RlError> {
        let f = LearnedFactory::from_policy(
            self.learner.inference_policy(),
            self.policy_cfg.clone(),
            self.device.clone(),
            self.policy_cfg.preset.clone(),
            self.cfg.eval.greedy,
        );
        let r = evaluate(
            &self.cfg.sim,
            &[&f as &dyn SchedulerFactory],
            &self.eval_episodes,
            &|| {},
        )?;
        Ok(r[0].mean_avg_jct_s)
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

    fn write_metrics(&self) -> Result<(), RlError> {
        let file = self.run.join("metrics.csv");
        let mut text = String::with_capacity(self.rows.len() * 200 + HEADER.len());
        text.push_str(HEADER);
        text.push('\n');
        for r in &self.rows {
            text.push_str(r);
            text.push('\n');
        }
        crate::io::write_atomic(&file, text.as_bytes()).map_err(io_err(&file))
    }

    /// Draws `curves.png` and `curves.svg`: held-out and training JCT by iteration,
    /// against the baseline, from the metrics so far.
    fn plot(&self) -> Result<(), RlError> {
        let cols: Vec<&str> = HEADER.split(',').collect();
        let col = |name: &str| {
            cols.iter()
                .position(|&c| c == name)
                .expect("metrics column")
        };
        let (it, train, eval, base) = (
            col("iteration"),
            col("train_avg_jct_s"),
            col("eval_avg_jct_s"),
            col("baseline_avg_jct_s"),
        );
        let mut series = vec![
            Series {
                name: if self.cfg.eval.greedy {
                    "held-out, greedy"
                } else {
                    "held-out, sampled"
                }
                .into(),
                points: Vec::new(),
            },
            Series {
                name: "training rollouts, sampled".into(),
                points: Vec::new(),
            },
            Series {
                name: format!("{} (held-out)", self.cfg.eval.baseline),
                points: Vec::new(),
            },
        ];
        for row in &self.rows {
            let f: Vec<&str> = row.split(',').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            let Some(x) = num(it) else { continue };
            if let Some(v) = num(eval) {
                series[0].points.push((x, v));
            }
            if x > 0.0
                && let Some(v) = num(train)
            {
                series[1].points.push((x, v));
            }
            if let Some(v) = num(base) {
                series[2].points.push((x, v));
            }
        }
        line_chart_with(
            &self.run.join("curves"),
            &format!("{}: average JCT while training", self.cfg.name),
            "iteration",
            "average JCT (s)",
            &series,
            Axes::YLog,
        )?;
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
        if self.state.iteration == 0 && self.rows.is_empty() {
            // Row 0: the untrained policy on the held-out episodes, the curve's start.
            let start = Instant::now();
            let m = IterationMetrics {
                eval_avg_jct_s: Some(self.evaluate()?),
                eval_s: start.elapsed().as_secs_f64(),
                baseline_avg_jct_s: self.baseline_jct,
                ..IterationMetrics::default()
            };
            self.rows.push(m.csv());
            self.write_metrics()?;
            on_iteration(&m);
        }
        while self.state.iteration < total {
            let it = self.state.iteration;
            let start = Instant::now();
            let plans = self.plans(it);
            let trajs = self.rollouts(&plans)?;
            let rollout_s = start.elapsed().as_secs_f64();
            let learn_start = Instant::now();
            let samples = self.samples(&trajs);
            let (stats, gradient_steps) = self.learn(it, &trajs, samples);
            let learn_s = learn_start.elapsed().as_secs_f64();
            let mut times = RolloutTimes::default();
            for t in &trajs {
                times.add(&t.times);
            }
            let decisions: usize = trajs.iter().map(Trajectory::len).sum();
            let n = trajs.len().max(1) as f64;
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
                    crate::model::save(
                        &self.learner.inference_policy(),
                        &self.policy_cfg,
                        &self.run.join("best").join("model.bpk"),
                    )?;
                }
                if jct < self.baseline_jct && self.state.beat_baseline_at_s.is_none() {
                    self.state.beat_baseline_at_s = Some(self.state.elapsed_s);
                    self.state.beat_baseline_iteration = Some(self.state.iteration);
                }
            }
            let m = IterationMetrics {
                iteration: self.state.iteration,
                elapsed_s: self.state.elapsed_s,
                decisions,
                decisions_per_s: decisions as f64 / (rollout_s + learn_s).max(1e-9),
                train_avg_jct_s: finite_mean(trajs.iter().map(|t| t.stats.avg_jct_s)),
                mean_return: trajs
                    .iter()
                    .map(|t| t.rewards.iter().map(|&r| f64::from(r)).sum::<f64>())
                    .sum::<f64>()
                    / n,
                entropy: stats.entropy,
                policy_loss: stats.policy_loss,
                value_loss: stats.value_loss,
                approx_kl: stats.approx_kl,
                clip_fraction: stats.clip_fraction,
                grad_norm: stats.grad_norm,
                gradient_steps,
                lr: self.schedule(it).0,
                entropy_weight: self.schedule(it).1,
                rollout_s,
                learn_s,
                simulation_s: times.simulation_s,
                observation_s: times.observation_s,
                inference_s: times.inference_s,
                eval_s,
                eval_avg_jct_s: eval,
                baseline_avg_jct_s: self.baseline_jct,
            };
            self.rows.push(m.csv());
            self.write_metrics()?;
            if eval.is_some() {
                self.plot()?;
            }
            let interrupted = stop.load(Ordering::SeqCst);
            if self
                .state
                .iteration
                .is_multiple_of(self.cfg.train.checkpoint_every)
                || is_last
                || interrupted
            {
                self.checkpoint()?;
            }
            on_iteration(&m);
            if interrupted && !is_last {
                return Ok(Outcome::Interrupted);
            }
        }
        Ok(Outcome::Finished)
    }
}

/// Mean of the finite values (an episode cut before any job finished has no JCT); NaN if
/// there are none.
fn finite_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// The rows of an existing `metrics.csv` up to iteration `upto` (a resumed run drops the
/// rows after its checkpoint, which it will produce again).
fn read_rows(file: &Path, upto: usize) -> Result<Vec<String>, RlError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(file)(e)),
    };
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .next()
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|it| it <= upto)
        })
        .map(str::to_string)
        .collect())
}
