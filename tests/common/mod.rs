//! Shared helpers for integration tests: locating Decima's traces, writing small
//! synthetic traces, and the tiny training config of tests/train.rs and tests/mpi.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::json;

/// `../shared/decima-tpch`, if present. Tests that need it print a clear SKIPPED line
/// and return when it is absent (the data has no licence and is never committed).
pub fn decima_dir(test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/decima-tpch");
    if p.join("reference-episodes.json").is_file() {
        Some(p)
    } else {
        // Written to the raw handle, not eprintln!, so that libtest's capture does not hide it.
        let msg = format!(
            "SKIPPED {test}: {} not found (Decima's traces are not shipped with mpda)\n",
            p.display()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        None
    }
}

/// A valid job in Decima's JSON conversion format: a diamond 0 -> {1, 2} -> 3.
pub fn decima_job(size: &str, query: u32) -> serde_json::Value {
    let stage = |i: usize, tasks: usize| {
        let first: Vec<u32> = (0..tasks.min(3)).map(|k| 1000 + 100 * k as u32).collect();
        let rest: Vec<u32> = (0..tasks.saturating_sub(3))
            .map(|k| 500 + 10 * k as u32)
            .collect();
        json!({
            "node_idx": i,
            "num_tasks": tasks,
            "parents": [], "children": [],
            "task_durations": {
                "first_wave": {"2": first.clone(), "5": first.clone()},
                "rest_wave": {"2": rest.clone(), "5": rest},
                "fresh_durations": {"2": [first[0]], "5": []}
            }
        })
    };
    json!({
        "schema_version": 1,
        "size": size,
        "query": query,
        "name": format!("tpch-{size}-{query}"),
        "num_stages": 4,
        "adjacency_matrix": [],
        "edges": [[0, 1], [0, 2], [1, 3], [2, 3]],
        "stages": [stage(0, 6), stage(1, 4), stage(2, 2), stage(3, 1)]
    })
}

/// Writes `value` as `dir/<size>/q<query>.json` and returns the path.
pub fn write_trace(dir: &Path, size: &str, query: u32, value: &serde_json::Value) -> PathBuf {
    let sub = dir.join(size);
    std::fs::create_dir_all(&sub).unwrap();
    let p = sub.join(format!("q{query}.json"));
    std::fs::write(&p, serde_json::to_vec(value).unwrap()).unwrap();
    p
}

/// Random jobs in memory: DAGs of 1..=12 stages (edges from earlier to later stages),
/// 1..=60 tasks per stage, samples at keys 2, 5 and 10.
pub fn random_jobs(n: usize, seed: u64) -> Vec<std::sync::Arc<mpda::workload::JobTrace>> {
    use mpda::workload::{JobTrace, StageTrace, WaveSamples};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    (0..n)
        .map(|j| {
            let stages = rng.random_range(1..=12usize);
            let st = (0..stages)
                .map(|s| {
                    let parents = (0..s as u32).filter(|_| rng.random_bool(0.3)).collect();
                    let samples = [2u32, 5, 10]
                        .iter()
                        .map(|&executors| {
                            let mut list = |k: usize| {
                                (0..k)
                                    .map(|_| rng.random_range(50..5000))
                                    .collect::<Vec<u32>>()
                            };
                            WaveSamples {
                                executors,
                                first_wave: list(3),
                                rest_wave: list(4),
                                fresh: list(1),
                            }
                        })
                        .collect();
                    StageTrace {
                        num_tasks: rng.random_range(1..=60),
                        parents,
                        samples,
                        spark_stage_id: None,
                        shuffle: None,
                    }
                })
                .collect();
            std::sync::Arc::new(
                JobTrace::new(
                    Path::new("<random>"),
                    format!("r{j}"),
                    "s".into(),
                    j.to_string(),
                    st,
                )
                .unwrap(),
            )
        })
        .collect()
}

/// Observations met while a scheduler runs episodes of random jobs (batch and stream).
pub fn observations(episodes: usize, executors: u32, seed: u64) -> Vec<mpda::sim::Observation> {
    use mpda::sim::{Env, Observation, SimConfig};
    use mpda::workload::arrivals::JobArrival;
    let mut env = Env::new(SimConfig {
        executors,
        ..SimConfig::default()
    })
    .unwrap();
    let mut sched = mpda::sched::SchedulerSpec::parse("random")
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut obs = Observation::default();
    for e in 0..episodes as u64 {
        let jobs: Vec<JobArrival> = random_jobs(2 + (e as usize % 6), seed + e)
            .into_iter()
            .enumerate()
            .map(|(i, job)| JobArrival {
                job,
                arrival_ms: if e % 2 == 0 { 0 } else { i as u64 * 7_000 },
            })
            .collect();
        env.reset(&jobs, seed + e).unwrap();
        sched.reset(seed + e);
        while !env.done() {
            env.observe(&mut obs);
            if !obs.schedulable.is_empty() {
                out.push(obs.clone());
            }
            env.step(sched.decide(&obs)).unwrap();
        }
    }
    out
}

/// A tiny PPO run on `tpch/`: 6-job batches on 5 executors, 4 sequences x 2 rollouts per
/// iteration, a checkpoint and an evaluation on `eval_seeds` held-out seeds every iteration.
pub fn tiny_train_config(iterations: usize, model_seed: u64, eval_seeds: usize) -> String {
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("tpch");
    format!(
        r#"name = "tiny"

[workload]
traces = "{}"
sizes = ["sf1"]
arrivals = {{ kind = "batch", jobs = 6 }}

[sim]
executors = 5
executor_keys = "measured"
reward = {{ scale = 1e6 }}

[model]
preset = "mpda"
seed = {model_seed}

[train]
algorithm = "ppo"
iterations = {iterations}
sequences = 4
rollouts_per_sequence = 2
seed = 7
lr = 1e-3
lr_final = 1e-3
minibatch = 256
epochs = 2
checkpoint_every = 1

[eval]
every = 1
seeds = {eval_seeds}
first_seed = 1000
"#,
        traces.display()
    )
}
