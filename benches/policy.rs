//! Policy speed on the default CPU backend (`flex`): per-decision inference for each preset,
//! and forward+backward for a batch of 64 observations, on observations of 20 TPC-H jobs
//! (about 200 stages). Uses Decima's traces from `../shared/decima-tpch` when present (says
//! so), else 20 random jobs of similar shape.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};

use mpda::model::batch::{GraphTensors, HostBatch};
use mpda::model::{Choice, PolicyConfig, decode};
use mpda::sched::SchedulerSpec;
use mpda::sim::{Env, Observation, SimConfig};
use mpda::workload::arrivals::{ArrivalProcess, JobArrival, JobMix};
use mpda::workload::{JobTrace, StageTrace, TraceLibrary, WaveSamples};

fn jobs() -> Vec<JobArrival> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/decima-tpch");
    if let Ok(lib) = TraceLibrary::load_dir(&dir) {
        eprintln!("policy bench: 20 TPC-H jobs from {}", dir.display());
        return ArrivalProcess::Batch { jobs: 20 }.generate(&lib, &JobMix::all(&lib), 10_000_000);
    }
    eprintln!(
        "policy bench: {} not found; using 20 random jobs of 8-12 stages",
        dir.display()
    );
    (0..20u32)
        .map(|j| {
            let n = 8 + j % 5;
            let stages = (0..n)
                .map(|s| StageTrace {
                    num_tasks: 1 + (s * 37 + j * 11) % 200,
                    parents: if s == 0 {
                        vec![]
                    } else {
                        vec![(s * 7 + j) % s]
                    },
                    samples: vec![WaveSamples {
                        executors: 5,
                        first_wave: vec![900, 1100],
                        rest_wave: vec![300, 500],
                        fresh: vec![2000],
                    }],
                    spark_stage_id: None,
                    shuffle: None,
                })
                .collect();
            JobArrival {
                job: Arc::new(
                    JobTrace::new(
                        Path::new("<bench>"),
                        format!("b{j}"),
                        "s".into(),
                        j.to_string(),
                        stages,
                    )
                    .unwrap(),
                ),
                arrival_ms: 0,
            }
        })
        .collect()
}

/// The first 64 decision points of a fair-share episode over the 20 jobs.
fn observations() -> Vec<Observation> {
    let mut env = Env::new(SimConfig::default()).unwrap();
    let jobs = jobs();
    env.reset(&jobs, 1).unwrap();
    let mut fair = SchedulerSpec::parse("fair").unwrap().build().unwrap();
    let mut obs = Observation::default();
    let mut out = Vec::new();
    while !env.done() && out.len() < 64 {
        env.observe(&mut obs);
        if !obs.schedulable.is_empty() {
            out.push(obs.clone());
        }
        env.step(fair.decide(&obs)).unwrap();
    }
    out
}

fn bench(c: &mut Criterion) {
    let obs = observations();
    eprintln!(
        "first observation: {} jobs, {} stages, {} schedulable",
        obs[0].jobs.len(),
        obs[0].stages.len(),
        obs[0].schedulable.len()
    );
    let dev = Device::flex();
    for cfg in [
        PolicyConfig::mpda(),
        PolicyConfig::decima(),
        PolicyConfig::ba3c(),
        PolicyConfig::a3c(),
    ] {
        let policy = cfg.init(&dev);
        let mut h = HostBatch::default();
        // What `mpda eval` runs on the CPU: the host forward pass.
        let mut fast = mpda::model::host::FastPolicy::new(&policy, &cfg);
        c.bench_function(&format!("decision/{}", cfg.preset), |b| {
            b.iter(|| {
                h.clear();
                h.push(&obs[0], cfg.levels as u32);
                fast.decide(&h, Choice::Greedy)
            })
        });
        // The same decision through Burn's flex backend (what a GPU device would run).
        c.bench_function(&format!("decision-burn/{}", cfg.preset), |b| {
            b.iter(|| {
                h.clear();
                h.push(&obs[0], cfg.levels as u32);
                let out = policy.forward(&GraphTensors::new(&h, cfg.needs(), &dev));
                let s = out.stage_logp.into_data().try_to_vec::<f32>().unwrap();
                let l = out.limit_logp.into_data().try_to_vec::<f32>().unwrap();
                decode(&h, &s, &l, cfg.level_rows(), 0, Choice::Greedy)
            })
        });
        let ad = dev.clone().autodiff();
        let policy = cfg.init(&ad);
        let mut h = HostBatch::default();
        for o in &obs {
            h.push(o, cfg.levels as u32);
        }
        // What a training minibatch holds: the limit rows of the chosen job only (a joint
        // head needs every row: its stage distribution sums over them).
        let mut one = HostBatch::default();
        for o in &obs {
            let mut single = HostBatch::default();
            single.push(o, cfg.levels as u32);
            let job = single.node_job[single.valid_nodes[0] as usize] as usize;
            one.extend_graph_limits_of(&single, 0, (!cfg.joint()).then_some(job));
        }
        let mut group = c.benchmark_group("train-step");
        group.sample_size(10);
        for (name, batch) in [("minibatch-64", &one), ("fwd+bwd-64", &h)] {
            group.bench_function(format!("{name}/{}", cfg.preset), |b| {
                b.iter(|| {
                    let out = policy.forward(&GraphTensors::new(batch, cfg.needs(), &ad));
                    let mut loss: Tensor<1> = out.stage_logp.sum() + out.limit_logp.sum();
                    if let Some(v) = out.value {
                        loss = loss + v.powf_scalar(2.0).sum();
                    }
                    loss.backward()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
