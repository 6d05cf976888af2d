//! Property tests over random DAGs, random arrivals and every heuristic: the simulator's
//! invariants hold whatever the scheduler decides.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use mpda::eval::{self, SchedulerFactory, run_episode};
use mpda::sched::SchedulerSpec;
use mpda::sim::spark::Locality;
use mpda::sim::{ClusterConfig, Env, Observation, SimConfig};
use mpda::workload::Episode;
use mpda::workload::arrivals::JobArrival;
use mpda::workload::{JobTrace, StageTrace, WaveSamples};

const SCHEDULERS: [&str; 9] = [
    "critical-path",
    "tetris",
    "fifo",
    "fifo[cumulative=true]",
    "fair",
    "weighted-fair[alpha=-1]",
    "weighted-fair[alpha=1.5]",
    "sjf-cp",
    "random",
];

/// A random stage: tasks, parents among earlier stages, and samples at a few keys.
fn stage(index: usize) -> impl Strategy<Value = StageTrace> {
    let parents = proptest::collection::vec(any::<bool>(), index);
    let durations = || proptest::collection::vec(1u32..4000, 0..5);
    let keys = proptest::sample::subsequence(vec![1u32, 2, 5, 10, 20, 50], 1..4);
    (
        1u32..25,
        parents,
        keys,
        proptest::collection::vec((durations(), durations(), durations()), 4),
    )
        .prop_map(move |(num_tasks, parents, keys, lists)| {
            let samples = keys
                .iter()
                .zip(lists)
                .map(|(&executors, (mut first, rest, fresh))| {
                    if first.is_empty() && fresh.is_empty() {
                        first.push(100);
                    }
                    WaveSamples {
                        executors,
                        first_wave: first,
                        rest_wave: rest,
                        fresh,
                    }
                })
                .collect();
            StageTrace {
                num_tasks,
                parents: parents
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| **p)
                    .map(|(i, _)| i as u32)
                    .collect(),
                samples,
                spark_stage_id: None,
                shuffle: None,
            }
        })
}

fn job(id: usize) -> impl Strategy<Value = Arc<JobTrace>> {
    (1usize..7).prop_flat_map(move |n| {
        (0..n)
            .map(stage)
            .collect::<Vec<_>>()
            .prop_map(move |stages| {
                Arc::new(
                    JobTrace::new(
                        Path::new("<generated>"),
                        format!("job{id}"),
                        "s".into(),
                        id.to_string(),
                        stages,
                    )
                    .expect("generated DAGs are valid"),
                )
            })
    })
}

fn episode() -> impl Strategy<Value = Vec<JobArrival>> {
    (1usize..6)
        .prop_flat_map(|n| {
            let jobs = (0..n).map(job).collect::<Vec<_>>();
            let gaps = proptest::collection::vec(prop_oneof![Just(0u64), 1u64..30_000], n);
            (jobs, gaps)
        })
        .prop_map(|(jobs, gaps)| {
            let mut t = 0;
            jobs.into_iter()
                .zip(gaps)
                .map(|(job, g)| {
                    t += g;
                    JobArrival { job, arrival_ms: t }
                })
                .collect()
        })
}

/// Longest path of minimum task durations through a job: no schedule can beat it.
fn critical_path_lower_bound(job: &JobTrace) -> u64 {
    let n = job.stages.len();
    let mut finish = vec![0u64; n];
    // Stages may be listed in any topological order; relax until stable.
    for _ in 0..n {
        for s in 0..n {
            let start = job.stages[s]
                .parents
                .iter()
                .map(|&p| finish[p as usize])
                .max()
                .unwrap_or(0);
            finish[s] = finish[s].max(start + u64::from(job.pools[s].min_ms));
        }
    }
    finish.into_iter().max().unwrap_or(0)
}

fn check_episode(
    jobs: &[JobArrival],
    executors: u32,
    sched: &str,
    seed: u64,
    skip_unseen: bool,
) -> Result<(), TestCaseError> {
    check_on(jobs, executors, None, sched, seed, skip_unseen)
}

/// The invariants of an episode on Decima's engine (`cluster` = None) or Spark's.
fn check_on(
    jobs: &[JobArrival],
    executors: u32,
    cluster: Option<ClusterConfig>,
    sched: &str,
    seed: u64,
    skip_unseen: bool,
) -> Result<(), TestCaseError> {
    let mut cfg = SimConfig {
        executors,
        cluster: cluster.clone(),
        record_tasks: true,
        executor_keys: if seed.is_multiple_of(2) {
            mpda::sim::ExecutorKeys::Measured
        } else {
            mpda::sim::ExecutorKeys::DataPoints
        },
        ..SimConfig::default()
    };
    cfg.reward.skip_unseen_jobs = skip_unseen;
    let mut env = Env::new(cfg.clone()).unwrap();
    let mut obs = Observation::default();
    let mut s = SchedulerSpec::parse(sched).unwrap().build().unwrap();
    let ep = Episode {
        seed,
        jobs: jobs.to_vec(),
    };
    let stats = run_episode(&mut env, s.as_mut(), &ep, &mut obs).unwrap();
    prop_assert_eq!(stats.finished, jobs.len(), "every job finishes");

    let rec = env.records();
    // Every task runs exactly once.
    for (j, a) in jobs.iter().enumerate() {
        for (si, st) in a.job.stages.iter().enumerate() {
            let mut seen = vec![0u32; st.num_tasks as usize];
            for r in rec
                .iter()
                .filter(|r| r.job == j as u32 && r.stage == si as u32)
            {
                seen[r.task as usize] += 1;
            }
            prop_assert!(
                seen.iter().all(|&c| c == 1),
                "job {} stage {} ran tasks {:?}",
                j,
                si,
                seen
            );
        }
    }
    prop_assert_eq!(rec.len() as u64, stats.events.task);
    // No executor (Spark: task slot) runs two tasks at once.
    for e in 0..cfg.slots() {
        let mut mine: Vec<_> = rec.iter().filter(|r| r.executor == e).collect();
        mine.sort_by_key(|r| r.start_ms);
        for w in mine.windows(2) {
            prop_assert!(
                w[0].end_ms <= w[1].start_ms,
                "executor {} overlaps: {:?} {:?}",
                e,
                w[0],
                w[1]
            );
        }
    }
    // A stage starts only after all its parents finished.
    for (j, a) in jobs.iter().enumerate() {
        let span = |si: usize| {
            let rs = rec
                .iter()
                .filter(|r| r.job == j as u32 && r.stage == si as u32);
            let (mut start, mut end) = (u64::MAX, 0);
            for r in rs {
                start = start.min(r.start_ms);
                end = end.max(r.end_ms);
            }
            (start, end)
        };
        for (si, st) in a.job.stages.iter().enumerate() {
            for &p in &st.parents {
                prop_assert!(
                    span(si).0 >= span(p as usize).1,
                    "job {} stage {} starts before parent {}",
                    j,
                    si,
                    p
                );
            }
        }
        // No job beats its critical path plus the move of its first executor (Spark's
        // engine: no move, and the fastest host shortens every task).
        let jct_ms = (stats.jct_s[j].unwrap() * 1000.0).round() as u64;
        let bound = match &cluster {
            None => cfg.moving_delay_ms + critical_path_lower_bound(&a.job),
            Some(c) => {
                let fastest = c
                    .resolve()
                    .unwrap()
                    .hosts
                    .iter()
                    .map(|h| h.speed)
                    .fold(0.0, f64::max);
                (critical_path_lower_bound(&a.job) as f64 / fastest).floor() as u64
            }
        };
        prop_assert!(
            jct_ms >= bound,
            "job {} JCT {} ms below bound {} ms",
            j,
            jct_ms,
            bound
        );
    }
    // The rewards sum to minus the total job time (minus the jobs Decima's quirk skips).
    let total_ms: u64 = stats
        .jct_s
        .iter()
        .map(|t| (t.unwrap() * 1000.0).round() as u64)
        .sum();
    if skip_unseen {
        prop_assert!(stats.reward_job_time_ms <= total_ms);
        if stats.unseen_jobs == 0 {
            prop_assert_eq!(stats.reward_job_time_ms, total_ms);
        }
    } else {
        prop_assert_eq!(stats.reward_job_time_ms, total_ms);
    }
    let expect = -(stats.reward_job_time_ms as f64) / cfg.reward.scale;
    prop_assert!((stats.total_reward - expect).abs() <= 1e-9 * expect.abs().max(1.0));
    if let (Some(spark), Some(c)) = (env.spark(), &cluster) {
        // Execution memory is never over-committed.
        prop_assert!(
            spark.peak_memory_ratio <= 1.0 + 1e-12,
            "memory {}",
            spark.peak_memory_ratio
        );
        // A task starts at a worse locality level only after its stage's wait, or when no
        // slot on one of its hosts is free.
        let wait = c.waits()[1];
        for l in &spark.launches {
            if l.level > Locality::NodeLocal && l.level != Locality::NoPref {
                prop_assert!(
                    !l.preferred_slot_free || l.at_ms - l.submitted_ms >= wait,
                    "early non-local launch {:?}",
                    l
                );
            }
        }
    }
    Ok(())
}

/// A random Spark cluster: host groups of any shape, memory tight or ample, locality and
/// memory on or off, skewed data, either re-offer rule.
fn spark_cluster() -> impl Strategy<Value = ClusterConfig> {
    let group = (1u32..3, 1u32..4, 400u64..8192, 0.25f64..2.0, any::<bool>());
    (
        proptest::collection::vec(group, 1..3),
        any::<bool>(),
        any::<bool>(),
        0u32..2,
        0.0f64..1.5,
        0i64..4000,
        any::<bool>(),
    )
        .prop_map(|(groups, locality, memory, reps, zipf, wait, sticky)| {
            let mut text = String::new();
            for (count, cores, mem, speed, rack) in groups {
                let rack = if rack { "rack = \"r1\"\n" } else { "" };
                text += &format!(
                    "[[hosts]]\ncount = {count}\ncores = {cores}\nmemory_mb = {}\nspeed = {speed}\n{rack}",
                    mem.max(301 * u64::from(cores))
                );
            }
            let reoffer = if sticky { "stage" } else { "every_slot" };
            text = format!(
                "reoffer = \"{reoffer}\"\n{text}[locality]\nenabled = {locality}\nwait_ms = {wait}\n\
                 replication = {}\n[memory]\nenabled = {memory}\n[data]\nzipf = {zipf}\nmb_per_task_s = 50.0\n",
                reps + 1
            );
            let c: ClusterConfig = toml::from_str(&text).unwrap();
            c.validate().unwrap();
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_on_spark_clusters(
        jobs in episode(),
        cluster in spark_cluster(),
        seed in any::<u32>(),
    ) {
        for sched in ["fair", "sjf-cp", "spark-fifo", "spark-fair", "random"] {
            check_on(&jobs, 1, Some(cluster.clone()), sched, u64::from(seed), true)?;
        }
    }

    #[test]
    fn invariants_hold_for_every_scheduler(
        jobs in episode(),
        executors in 1u32..12,
        seed in any::<u32>(),
        skip_unseen in any::<bool>(),
    ) {
        for sched in SCHEDULERS {
            check_episode(&jobs, executors, sched, u64::from(seed), skip_unseen)?;
        }
    }

    #[test]
    fn fair_is_weighted_fair_with_alpha_zero(jobs in episode(), executors in 1u32..12, seed in any::<u32>()) {
        let cfg = SimConfig { executors, ..SimConfig::default() };
        let ep = [Episode { seed: u64::from(seed), jobs }];
        let a = SchedulerSpec::parse("fair").unwrap();
        let b = SchedulerSpec::parse("weighted-fair[alpha=0]").unwrap();
        let r = eval::evaluate(&cfg, &[&a as &dyn SchedulerFactory, &b], &ep, &|| {}).unwrap();
        prop_assert_eq!(&r[0].episodes, &r[1].episodes);
    }
}

/// Same config and seeds give bit-identical results at 1 and at 2 rayon threads.
#[test]
fn identical_results_at_one_and_two_threads() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let episodes: Vec<Episode> = (0..24)
        .map(|i| Episode {
            seed: 1000 + i,
            jobs: episode().new_tree(&mut runner).unwrap().current(),
        })
        .collect();
    let cfg = SimConfig {
        executors: 7,
        ..SimConfig::default()
    };
    let specs: Vec<SchedulerSpec> = SCHEDULERS
        .iter()
        .map(|s| SchedulerSpec::parse(s).unwrap())
        .collect();
    let factories: Vec<&dyn SchedulerFactory> =
        specs.iter().map(|s| s as &dyn SchedulerFactory).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let r = pool.install(|| eval::evaluate(&cfg, &factories, &episodes, &|| {}).unwrap());
        serde_json::to_string(&r).unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(2), "repeatable at 2 threads");
}
