//! Each heuristic on small hand-made DAGs where the right first decision is known.

use std::path::Path;
use std::sync::Arc;

use mpda::sched::SchedulerSpec;
use mpda::sim::{Action, Env, Observation, SimConfig};
use mpda::workload::arrivals::JobArrival;
use mpda::workload::{JobTrace, StageTrace, WaveSamples};

/// A job from (tasks, task ms, parents) per stage.
fn job(name: &str, stages: &[(u32, u32, &[u32])]) -> Arc<JobTrace> {
    let st = stages
        .iter()
        .map(|&(tasks, ms, parents)| StageTrace {
            num_tasks: tasks,
            parents: parents.to_vec(),
            samples: vec![WaveSamples {
                executors: 5,
                first_wave: vec![ms],
                rest_wave: vec![ms],
                fresh: vec![],
            }],
            spark_stage_id: None,
            shuffle: None,
        })
        .collect();
    Arc::new(
        JobTrace::new(
            Path::new("<test>"),
            name.into(),
            "s".into(),
            name.into(),
            st,
        )
        .unwrap(),
    )
}

/// The first decision at t = 0: (job name, stage index within the job, executors sent).
fn first(jobs: &[Arc<JobTrace>], executors: u32, sched: &str) -> (String, u32, u32) {
    let mut env = Env::new(SimConfig {
        executors,
        ..SimConfig::default()
    })
    .unwrap();
    let arrivals: Vec<JobArrival> = jobs
        .iter()
        .map(|j| JobArrival {
            job: Arc::clone(j),
            arrival_ms: 0,
        })
        .collect();
    env.reset(&arrivals, 1).unwrap();
    let mut obs = Observation::default();
    env.observe(&mut obs);
    let mut s = SchedulerSpec::parse(sched).unwrap().build().unwrap();
    s.reset(1);
    match s.decide(&obs) {
        Action::Schedule { stage, limit } => {
            let st = obs.stages.iter().find(|x| x.id == stage).unwrap();
            let job = &obs.jobs[st.job as usize];
            let n = (limit - job.min_limit + 1)
                .min(st.unassigned_tasks())
                .min(obs.num_source_exec);
            (env.job_name(job.id).to_string(), st.index, n)
        }
        Action::Idle { .. } => ("idle".into(), 0, 0),
        Action::Place { .. } | Action::Partition { .. } | Action::Split { .. } => {
            panic!("no heuristic places or repartitions on Decima's engine")
        }
    }
}

#[test]
fn fair_gives_the_first_job_its_equal_share() {
    let a = job("a", &[(20, 1000, &[])]);
    let b = job("b", &[(20, 1000, &[])]);
    assert_eq!(first(&[a, b], 10, "fair"), ("a".into(), 0, 5));
}

#[test]
fn fifo_gives_the_first_job_everything_it_can_use() {
    let a = job("a", &[(8, 1000, &[])]);
    let b = job("b", &[(20, 1000, &[])]);
    assert_eq!(first(&[a, b], 10, "fifo"), ("a".into(), 0, 8));
}

#[test]
fn weighted_fair_caps_follow_remaining_work() {
    // Remaining work 19 s vs 1 s. With alpha = -1 the big job's share of 10 executors is
    // 10 * (1/19) / (1/19 + 1) = 0.5, so its cap is 1; with alpha = +1 it is 9.5, so 10;
    // fair share (alpha = 0) gives 5.
    let big = job("big", &[(19, 1000, &[])]);
    let small = job("small", &[(1, 1000, &[])]);
    let both = [big, small];
    assert_eq!(
        first(&both, 10, "weighted-fair[alpha=-1]"),
        ("big".into(), 0, 1)
    );
    assert_eq!(
        first(&both, 10, "weighted-fair[alpha=1]"),
        ("big".into(), 0, 10)
    );
    assert_eq!(
        first(&both, 10, "weighted-fair[alpha=0]"),
        ("big".into(), 0, 5)
    );
    assert_eq!(first(&both, 10, "fair"), ("big".into(), 0, 5));
}

#[test]
fn sjf_cp_picks_the_smallest_job_then_its_longest_path() {
    let big = job("big", &[(50, 1000, &[])]);
    // Two roots: stage 0 leads to a long chain, stage 1 to nothing.
    let small = job(
        "small",
        &[(2, 100, &[]), (3, 100, &[]), (2, 500, &[0]), (1, 900, &[2])],
    );
    assert_eq!(first(&[big, small], 10, "sjf-cp"), ("small".into(), 0, 2));
}

#[test]
fn critical_path_ignores_job_size() {
    // Job "wide" has far more work in one stage, but job "deep" has the longest path.
    let wide = job("wide", &[(40, 1000, &[])]);
    let deep = job(
        "deep",
        &[
            (1, 2000, &[]),
            (1, 2000, &[0]),
            (1, 2000, &[1]),
            (1, 2000, &[2]),
        ],
    );
    assert_eq!(
        first(&[wide.clone(), deep.clone()], 10, "critical-path"),
        ("wide".into(), 0, 10)
    );
    let wide_short = job("wide", &[(4, 1000, &[])]);
    assert_eq!(
        first(&[wide_short, deep], 10, "critical-path"),
        ("deep".into(), 0, 1)
    );
}

#[test]
fn tetris_trades_packing_against_job_size() {
    // "fits" can use every free executor; "short" is much smaller but has one task.
    let fits = job("fits", &[(60, 1000, &[])]);
    let short = job("short", &[(1, 1000, &[])]);
    // Packing only: the stage that fills the executors wins.
    assert_eq!(
        first(&[short.clone(), fits.clone()], 10, "tetris[weight=0]"),
        ("fits".into(), 0, 10)
    );
    // With the SRTF term: 1/10 + 1 * (1 - 1/60) > 1 + 0.
    assert_eq!(
        first(&[fits, short], 10, "tetris[weight=1]"),
        ("short".into(), 0, 1)
    );
}

#[test]
fn random_is_seeded() {
    let jobs: Vec<_> = (0..4)
        .map(|i| job(&format!("j{i}"), &[(5, 1000, &[]), (5, 1000, &[])]))
        .collect();
    assert_eq!(first(&jobs, 10, "random"), first(&jobs, 10, "random"));
}

/// The duration lookup for executor counts a trace never measured.
#[test]
fn measured_executor_keys_use_the_nearest_measurement() {
    // One task; measured alone it took 1 s, with 2 executors 5 s; no fresh samples, so a
    // new executor's task is the first-wave sample plus the 1 s warm-up.
    let st = StageTrace {
        num_tasks: 1,
        parents: vec![],
        samples: vec![
            WaveSamples {
                executors: 1,
                first_wave: vec![1000],
                rest_wave: vec![],
                fresh: vec![],
            },
            WaveSamples {
                executors: 2,
                first_wave: vec![5000],
                rest_wave: vec![],
                fresh: vec![],
            },
        ],
        spark_stage_id: None,
        shuffle: None,
    };
    let job = Arc::new(
        JobTrace::new(
            Path::new("<test>"),
            "k".into(),
            "s".into(),
            "k".into(),
            vec![st],
        )
        .unwrap(),
    );
    let jct = |keys: mpda::sim::ExecutorKeys, executors: u32| {
        let mut env = Env::new(SimConfig {
            executors,
            executor_keys: keys,
            ..SimConfig::default()
        })
        .unwrap();
        let arrivals = [JobArrival {
            job: Arc::clone(&job),
            arrival_ms: 0,
        }];
        let mut s = SchedulerSpec::parse("fair").unwrap().build().unwrap();
        let stats = mpda::eval::run_episode(
            &mut env,
            s.as_mut(),
            &mpda::workload::Episode {
                seed: 1,
                jobs: arrivals.to_vec(),
            },
            &mut Observation::default(),
        )
        .unwrap();
        stats.jct_s[0].unwrap()
    };
    use mpda::sim::ExecutorKeys::{DataPoints, Measured};
    // 2 s moving delay + task. The job holds 1 executor (one task), so the measured mode
    // uses the 1-executor sample; Decima's data points (5...) fall back to the largest key.
    assert_eq!(jct(Measured, 1), 4.0);
    assert_eq!(jct(Measured, 10), 4.0);
    assert_eq!(jct(DataPoints, 1), 8.0);
}
