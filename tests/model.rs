//! The learned policies: valid actions only, exact masking, permutation invariance,
//! gradients everywhere, exact save/load, batching, and the path through the simulator.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

use mpda::eval::run_episode;
use mpda::model::batch::{GraphTensors, HostBatch};
use mpda::model::scheduler::LearnedScheduler;
use mpda::model::{Choice, LevelRows, Policy, PolicyConfig, PolicyOutput, decode};
use mpda::sim::{Env, Observation, SimConfig};
use mpda::workload::Episode;
use mpda::workload::arrivals::JobArrival;

fn presets() -> Vec<PolicyConfig> {
    let mut sum = PolicyConfig::mpda();
    sum.global_summary = mpda::model::policy::GlobalSummaryKind::Sum;
    sum.preset = "mpda".into();
    // One attention set per step: steps must not outnumber the DAG heights in the batches
    // below, or the deepest steps' attention is legitimately unused.
    let mut unshared = PolicyConfig::mpda();
    unshared.share_attention = false;
    unshared.steps = 3;
    // The key-query stage head (decisions that stay cheap at many jobs).
    let mut keyed = sum.clone();
    keyed.key_dim = Some(16);
    // The first four are the published designs, the single-head A3C among them.
    vec![
        PolicyConfig::mpda(),
        PolicyConfig::decima(),
        PolicyConfig::ba3c(),
        PolicyConfig::a3c(),
        sum,
        unshared,
        keyed,
    ]
}

/// The rows of graph `g`'s level log-probabilities in a policy's output laid out as `rows`.
fn graph_level_rows(h: &HostBatch, rows: LevelRows, g: usize) -> std::ops::Range<usize> {
    let (v0, vn) = h.graph_valid[g];
    let (v0, vn) = (v0 as usize, vn as usize);
    match rows {
        LevelRows::PerStage => h.level_range(v0, rows).start..h.level_range(v0 + vn - 1, rows).end,
        LevelRows::PerJob => {
            let (j0, jn) = h.graph_jobs[g];
            let p0 = h.job_pairs[j0 as usize].0 as usize;
            let last = h.job_pairs[(j0 + jn - 1) as usize];
            p0..(last.0 + last.1) as usize
        }
    }
}

fn run(
    policy: &Policy,
    cfg: &PolicyConfig,
    obs: &[&Observation],
    dev: &Device,
) -> (HostBatch, Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let mut h = HostBatch::default();
    for o in obs {
        h.push_for(o, cfg);
    }
    let out = policy.forward(&GraphTensors::new(&h, cfg.needs(), dev));
    let v = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    (h, v(out.stage_logp), v(out.limit_logp), out.value.map(v))
}

#[test]
fn sampled_actions_are_valid_and_masked_actions_have_zero_probability() {
    let dev = Device::flex();
    let all = common::observations(60, 10, 1);
    assert!(all.len() > 1000, "only {} observations", all.len());
    for cfg in presets().into_iter().take(4) {
        let policy = cfg.init(&dev);
        for (n, chunk) in all.chunks(64).enumerate() {
            let refs: Vec<&Observation> = chunk.iter().collect();
            let (h, stage, limit, _) = run(&policy, &cfg, &refs, &dev);
            for (g, obs) in chunk.iter().enumerate() {
                // The distribution covers exactly the schedulable stages and sums to one.
                let (v0, vn) = h.graph_valid[g];
                assert_eq!(vn as usize, obs.schedulable.len());
                let mass: f64 = stage[v0 as usize..(v0 + vn) as usize]
                    .iter()
                    .map(|&l| f64::from(l).exp())
                    .sum();
                assert!((mass - 1.0).abs() < 1e-4, "stage mass {mass}");
                let u = ((n * 64 + g) as f64 * 0.618_034) % 1.0;
                let d = decode(
                    &h,
                    &stage,
                    &limit,
                    cfg.level_rows(),
                    g,
                    Choice::Sample(u, 1.0 - u),
                );
                assert!(
                    obs.stages[d.stage].schedulable,
                    "{}: sampled a masked stage",
                    cfg.preset
                );
                let job = obs.stages[d.stage].job as usize;
                assert!(
                    d.limit >= obs.jobs[job].min_limit,
                    "{}: invalid limit",
                    cfg.preset
                );
                // The levels given the chosen stage form a distribution too (its job's, or
                // its own joint rows), over exactly its job's valid levels.
                let (p0, pn) = h.job_pairs[d.job];
                let rows = h.level_range(d.valid_index, cfg.level_rows());
                assert_eq!(rows.len(), pn as usize);
                let lmass: f64 = limit[rows].iter().map(|&l| f64::from(l).exp()).sum();
                assert!((lmass - 1.0).abs() < 1e-4, "limit mass {lmass}");
                // Levels below the job's minimum are not in the distribution at all.
                for k in p0..p0 + pn {
                    assert!(
                        h.pair_level[k as usize] >= obs.jobs[job].min_limit.min(cfg.levels as u32)
                    );
                }
            }
        }
    }
}

#[test]
fn sampled_policies_drive_whole_episodes() {
    let dev = Device::flex();
    for cfg in presets().into_iter().take(4) {
        let policy = cfg.init(&dev);
        let mut env = Env::new(SimConfig {
            executors: 12,
            ..SimConfig::default()
        })
        .unwrap();
        let mut sched =
            LearnedScheduler::new(policy, cfg.clone(), dev.clone(), cfg.preset.clone(), false);
        let mut obs = Observation::default();
        for e in 0..4u64 {
            let jobs: Vec<JobArrival> = common::random_jobs(5, 100 + e)
                .into_iter()
                .enumerate()
                .map(|(i, job)| JobArrival {
                    job,
                    arrival_ms: i as u64 * 3_000,
                })
                .collect();
            let s =
                run_episode(&mut env, &mut sched, &Episode { seed: e, jobs }, &mut obs).unwrap();
            assert_eq!(s.finished, 5);
        }
    }
}

/// The same observation with its jobs listed in another order.
fn permute_jobs(obs: &Observation, order: &[usize]) -> Observation {
    let mut p = obs.clone();
    p.jobs.clear();
    p.stages.clear();
    p.edges.clear();
    p.schedulable.clear();
    let mut map = vec![0u32; obs.stages.len()];
    for (nj, &oj) in order.iter().enumerate() {
        let mut job = obs.jobs[oj].clone();
        let base = p.stages.len() as u32;
        for s in obs.jobs[oj].stage_range() {
            map[s] = p.stages.len() as u32;
            let mut st = obs.stages[s].clone();
            st.job = nj as u32;
            p.stages.push(st);
        }
        job.first_stage = base;
        p.jobs.push(job);
    }
    for &[a, b] in &obs.edges {
        p.edges.push([map[a as usize], map[b as usize]]);
    }
    let mut sched: Vec<u32> = obs.schedulable.iter().map(|&s| map[s as usize]).collect();
    sched.sort();
    p.schedulable = sched;
    p.source_job = obs
        .source_job
        .map(|j| order.iter().position(|&x| x == j).unwrap());
    p
}

#[test]
fn stage_scores_do_not_depend_on_job_order_with_a_sum_summary() {
    let dev = Device::flex();
    let all = common::observations(20, 10, 7);
    let cfgs: Vec<PolicyConfig> = presets()
        .into_iter()
        .filter(|c| c.global_summary == mpda::model::policy::GlobalSummaryKind::Sum)
        .collect();
    assert_eq!(cfgs.len(), 5);
    let mut checked = 0;
    for cfg in cfgs {
        let policy = cfg.init(&dev);
        for obs in all.iter().filter(|o| o.jobs.len() >= 3).take(40) {
            let order: Vec<usize> = (0..obs.jobs.len()).rev().collect();
            let perm = permute_jobs(obs, &order);
            let (h1, s1, l1, v1) = run(&policy, &cfg, &[obs], &dev);
            let (h2, s2, l2, v2) = run(&policy, &cfg, &[&perm], &dev);
            for (i, &node) in h1.valid_nodes.iter().enumerate() {
                let id = obs.stages[node as usize].id;
                let j = h2
                    .valid_nodes
                    .iter()
                    .position(|&n| perm.stages[n as usize].id == id)
                    .unwrap();
                assert!(
                    (s1[i] - s2[j]).abs() < 1e-5,
                    "{}: {} vs {}",
                    cfg.preset,
                    s1[i],
                    s2[j]
                );
                // And the levels given the stage.
                let (r1, r2) = (
                    h1.level_range(i, cfg.level_rows()),
                    h2.level_range(j, cfg.level_rows()),
                );
                for (a, b) in l1[r1].iter().zip(&l2[r2]) {
                    assert!((a - b).abs() < 1e-5, "{} level: {a} vs {b}", cfg.preset);
                }
            }
            if let (Some(a), Some(b)) = (v1, v2) {
                assert!((a[0] - b[0]).abs() < 1e-4);
            }
            checked += 1;
        }
    }
    assert!(checked >= 80);
}

/// Collects the gradient norm of every parameter.
struct GradNorms<'a> {
    grads: &'a GradientsParams,
    norms: Vec<(String, Option<f32>)>,
}

impl ModuleVisitor for GradNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let g = self
            .grads
            .get::<D>(param.id)
            .map(|g| g.powf_scalar(2.0).sum().into_scalar::<f32>());
        self.norms
            .push((format!("{:?} {:?}", param.id, param.shape()), g));
    }
}

fn loss(out: &PolicyOutput) -> Tensor<1> {
    let mut l = out.stage_logp.clone().sum() + out.limit_logp.clone().sum();
    if let Some(v) = &out.value {
        l = l + v.clone().powf_scalar(2.0).sum();
    }
    l
}

#[test]
fn backward_reaches_every_parameter() {
    let dev = Device::flex().autodiff();
    // A large, varied batch: the GAT's receiver attention vector only learns through the
    // LeakyReLU kink (its term is shared by all of a node's incoming edges, so it cancels in
    // their softmax otherwise), i.e. at nodes whose edge logits straddle zero.
    let all = common::observations(40, 10, 3);
    let refs: Vec<&Observation> = all.iter().step_by(2).take(256).collect();
    for cfg in presets() {
        let policy = cfg.init(&dev);
        let mut h = HostBatch::default();
        for o in &refs {
            h.push_for(o, &cfg);
        }
        let out = policy.forward(&GraphTensors::new(&h, cfg.needs(), &dev));
        let grads = GradientsParams::from_grads(loss(&out).backward(), &policy);
        let mut v = GradNorms {
            grads: &grads,
            norms: vec![],
        };
        policy.visit(&mut v);
        assert!(!v.norms.is_empty());
        for (name, g) in v.norms {
            let g = g.unwrap_or_else(|| panic!("{}: no gradient for {name}", cfg.preset));
            assert!(
                g > 1e-10 && g.is_finite(),
                "{}: zero gradient ({g}) for {name}",
                cfg.preset
            );
        }
    }
}

#[test]
fn save_and_load_reproduce_outputs_exactly() {
    let dev = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let all = common::observations(4, 10, 5);
    let refs: Vec<&Observation> = all.iter().take(16).collect();
    for cfg in presets() {
        let mut cfg = cfg;
        cfg.seed = 17;
        let policy = cfg.init(&dev);
        let path = dir
            .path()
            .join(format!("{}-{}.bpk", cfg.preset, cfg.share_attention));
        mpda::model::save(&policy, &cfg, &path).unwrap();
        let (loaded, lcfg) = mpda::model::load(&path, &dev).unwrap();
        assert_eq!(lcfg, cfg);
        let a = run(&policy, &cfg, &refs, &dev);
        let b = run(&loaded, &cfg, &refs, &dev);
        assert_eq!((a.1, a.2, a.3), (b.1, b.2, b.3), "{}", cfg.preset);
        // Loading onto the autodiff device (another backend stack) gives the same outputs.
        let (ad, _) = mpda::model::load(&path, &dev.clone().autodiff()).unwrap();
        let c = run(&ad.valid(), &cfg, &refs, &dev);
        assert_eq!(a_stage(&policy, &cfg, &refs, &dev), c.1);
    }
    // The same seed gives the same weights.
    let x = run(
        &PolicyConfig::mpda().init(&dev),
        &PolicyConfig::mpda(),
        &refs,
        &dev,
    );
    let y = run(
        &PolicyConfig::mpda().init(&dev),
        &PolicyConfig::mpda(),
        &refs,
        &dev,
    );
    assert_eq!(x.1, y.1);
}

fn a_stage(p: &Policy, cfg: &PolicyConfig, obs: &[&Observation], dev: &Device) -> Vec<f32> {
    run(p, cfg, obs, dev).1
}

#[test]
fn same_seed_same_weights_even_when_built_concurrently() {
    let dev = Device::flex();
    let all = common::observations(2, 10, 21);
    let refs: Vec<&Observation> = all.iter().take(4).collect();
    let cfg = PolicyConfig::mpda();
    let reference = run(&cfg.init(&dev), &cfg, &refs, &dev).1;
    let outs: Vec<Vec<f32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| run(&cfg.init(&dev), &cfg, &refs, &dev).1))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in outs {
        assert_eq!(o, reference);
    }
    let mut other = cfg.clone();
    other.seed = 1;
    assert_ne!(run(&other.init(&dev), &other, &refs, &dev).1, reference);
}

#[test]
fn bad_model_files_are_errors() {
    let dev = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bpk");
    let cfg = PolicyConfig::decima();
    mpda::model::save(&cfg.init(&dev), &cfg, &path).unwrap();
    // Weights that do not match the config.
    let mut other = PolicyConfig::decima();
    other.head_hidden = vec![7];
    std::fs::write(
        path.with_extension("json"),
        serde_json::to_string(&other).unwrap(),
    )
    .unwrap();
    let e = mpda::model::load(&path, &dev).unwrap_err().to_string();
    assert!(e.contains("m.bpk") && e.contains("do not match"), "{e}");
    // A truncated weights file.
    mpda::model::save(&cfg.init(&dev), &cfg, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let e = mpda::model::load(&path, &dev).unwrap_err().to_string();
    assert!(e.contains("m.bpk"), "{e}");
    // A broken config.
    std::fs::write(path.with_extension("json"), "{\"preset\": 3}").unwrap();
    let e = mpda::model::load(&path, &dev).unwrap_err().to_string();
    assert!(
        e.contains("m.json") && e.contains("not a model config"),
        "{e}"
    );
}

#[test]
fn a_batch_of_64_equals_64_single_forwards() {
    let dev = Device::flex();
    let all = common::observations(30, 10, 11);
    let refs: Vec<&Observation> = all.iter().step_by(3).take(64).collect();
    assert_eq!(refs.len(), 64);
    for cfg in presets() {
        let policy = cfg.init(&dev);
        let (h, s, l, v) = run(&policy, &cfg, &refs, &dev);
        for (g, o) in refs.iter().enumerate() {
            let (_, s1, l1, v1) = run(&policy, &cfg, &[o], &dev);
            let (v0, vn) = h.graph_valid[g];
            for (a, b) in s[v0 as usize..(v0 + vn) as usize].iter().zip(&s1) {
                assert!((a - b).abs() < 1e-5, "{} stage {a} vs {b}", cfg.preset);
            }
            let rows = graph_level_rows(&h, cfg.level_rows(), g);
            assert_eq!(rows.len(), l1.len());
            for (a, b) in l[rows].iter().zip(&l1) {
                assert!((a - b).abs() < 1e-5, "{} limit {a} vs {b}", cfg.preset);
            }
            if let (Some(v), Some(v1)) = (&v, &v1) {
                assert!((v[g] - v1[0]).abs() < 1e-4, "{} value", cfg.preset);
            }
        }
    }
}

#[test]
fn fast_host_forward_matches_burn() {
    let dev = Device::flex();
    let all = common::observations(20, 10, 13);
    let (mut compared, mut decided) = (0, 0);
    for cfg in presets() {
        let policy = cfg.init(&dev);
        let mut fast = mpda::model::host::FastPolicy::new(&policy, &cfg);
        for obs in all.iter().step_by(5) {
            let (h, stage, limit, _) = run(&policy, &cfg, &[obs], &dev);
            let got = fast.stage_logp(&h).to_vec();
            assert_eq!(got.len(), stage.len());
            for (a, b) in got.iter().zip(&stage) {
                assert!((a - b).abs() < 1e-5, "{} stage {a} vs {b}", cfg.preset);
            }
            for i in 0..h.valid_nodes.len() {
                let rows = h.level_range(i, cfg.level_rows());
                let got = fast.level_logp(&h, i);
                assert_eq!(got.len(), rows.len());
                for (a, b) in got.iter().zip(&limit[rows]) {
                    assert!((a - b).abs() < 1e-5, "{} limit {a} vs {b}", cfg.preset);
                }
            }
            // Greedy decisions agree with decoding Burn's output, unless the two best
            // candidates are closer than the 1e-5 the forward passes are allowed to differ by.
            let e = decode(&h, &stage, &limit, cfg.level_rows(), 0, Choice::Greedy);
            let levels = h.level_range(e.valid_index, cfg.level_rows());
            let clear = |v: &[f32]| {
                let mut s = v.to_vec();
                s.sort_by(|a, b| b.total_cmp(a));
                s.len() < 2 || s[0] - s[1] > 1e-4
            };
            if clear(&stage) && clear(&limit[levels]) {
                let d = fast.decide(&h, Choice::Greedy);
                assert_eq!((d.stage, d.limit), (e.stage, e.limit), "{}", cfg.preset);
                decided += 1;
            }
            compared += 1;
        }
    }
    assert!(compared > 100);
    assert!(
        decided > compared / 2,
        "only {decided} of {compared} decisions were clear"
    );
}

#[test]
fn untrained_mpda_runs_in_mpda_eval() {
    let dir = tempfile::tempdir().unwrap();
    for q in 1..=3 {
        common::write_trace(dir.path(), "2g", q, &common::decima_job("2g", q));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args([
            "eval",
            "--traces",
            dir.path().to_str().unwrap(),
            "--batch",
            "6",
            "--seeds",
            "3",
        ])
        .args([
            "--executors",
            "10",
            "-s",
            "fair",
            "-s",
            "mpda",
            "-s",
            "decima[greedy=false]",
            "-s",
            "ba3c",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["fair", "mpda", "decima[greedy=false]", "ba3c"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name} missing in {stdout}"
        );
    }
}

#[test]
fn saved_models_run_in_mpda_eval_by_path() {
    let dir = tempfile::tempdir().unwrap();
    for q in 1..=2 {
        common::write_trace(dir.path(), "2g", q, &common::decima_job("2g", q));
    }
    let dev = Device::flex();
    let cfg = PolicyConfig::decima();
    let path = dir.path().join("m.bpk");
    mpda::model::save(&cfg.init(&dev), &cfg, &path).unwrap();
    let traces = dir.path().to_str().unwrap();
    let run = |sched: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mpda"))
            .args([
                "eval",
                "--traces",
                traces,
                "--batch",
                "4",
                "--seeds",
                "2",
                "--executors",
                "8",
                "-s",
                &sched,
            ])
            .output()
            .unwrap()
    };
    let ok = run(format!("decima[model={}]", path.display()));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A model of another preset, a missing file, and a bad device are clear errors.
    let wrong = run(format!("mpda[model={}]", path.display()));
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("is a \"decima\" model, not \"mpda\""));
    let missing = run("decima[model=nope/x.bpk]".into());
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("x.json: cannot read"));
}

/// A policy that opts into Spark's engine's features (`input_features = 11`) drives whole
/// episodes on a heterogeneous cluster, reads non-zero Spark features there, and its fast
/// host forward pass still matches Burn's.
#[test]
fn a_policy_with_spark_features_runs_on_a_cluster() {
    let dev = Device::flex();
    let mut cfg = PolicyConfig::mpda();
    cfg.input_features = 11;
    cfg.validate().unwrap();
    let mut too_many = cfg.clone();
    too_many.input_features = 12;
    assert!(too_many.validate().unwrap_err().contains("1..=11"));
    let sim = SimConfig {
        cluster: Some(
            toml::from_str(
                "preset = \"dscs\"\n[data]\nzipf = 1.0\n[locality]\nenabled = true\n\
                 [memory]\nenabled = true",
            )
            .unwrap(),
        ),
        ..SimConfig::default()
    };
    let mut env = Env::new(sim).unwrap();
    let policy = cfg.init(&dev);
    let mut fast = mpda::model::host::FastPolicy::new(&policy, &cfg);
    let mut sched = LearnedScheduler::new(
        policy.clone(),
        cfg.clone(),
        dev.clone(),
        "mpda".into(),
        false,
    );
    let mut obs = Observation::default();
    let jobs: Vec<JobArrival> = common::random_jobs(4, 7)
        .into_iter()
        .map(|job| JobArrival { job, arrival_ms: 0 })
        .collect();
    let ep = Episode { seed: 3, jobs };
    let s = run_episode(&mut env, &mut sched, &ep, &mut obs).unwrap();
    assert_eq!(s.finished, 4);
    // The features of a fresh observation on this cluster.
    env.reset(&ep.jobs, 3).unwrap();
    env.observe(&mut obs);
    let f = mpda::model::batch::spark_features(&obs, 0);
    assert!(f[0] > 0.0, "data left to read: {f:?}");
    assert!(f[3] > 0.0 && f[3] <= 1.0, "free-slot speed: {f:?}");
    let (h, stage, _, _) = run(&policy, &cfg, &[&obs], &dev);
    for (a, b) in fast.stage_logp(&h).iter().zip(&stage) {
        assert!((a - b).abs() < 1e-5, "fast {a} vs Burn {b}");
    }
}

/// The per-job memo of the host forward pass (`model/host/memo.rs`) changes nothing: on
/// whole episodes, with sampled actions, every decision's stage and limit log-probabilities
/// and the critic's value equal a full recompute bit for bit, for every preset, and the
/// memo does find jobs (it is not bypassed).
#[test]
fn the_job_memo_equals_a_full_recompute_on_whole_episodes() {
    use mpda::sim::Action;
    use rand::{Rng, SeedableRng};
    let dev = Device::flex();
    for cfg in presets() {
        let policy = cfg.init(&dev);
        let mut memo = mpda::model::host::FastPolicy::new(&policy, &cfg);
        let mut full = mpda::model::host::FastPolicy::new(&policy, &cfg);
        full.set_memo(false);
        let mut env = Env::new(SimConfig {
            executors: 8,
            ..SimConfig::default()
        })
        .unwrap();
        let jobs: Vec<JobArrival> = common::random_jobs(24, 5)
            .into_iter()
            .enumerate()
            .map(|(i, job)| JobArrival {
                job,
                arrival_ms: i as u64 * 4000,
            })
            .collect();
        env.reset(&jobs, 9).unwrap();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let (mut obs, mut h) = (Observation::default(), HostBatch::default());
        let mut decisions = 0;
        while !env.done() {
            env.observe(&mut obs);
            if obs.schedulable.is_empty() {
                env.step(obs.idle()).unwrap();
                continue;
            }
            h.clear();
            h.push_for(&obs, &cfg);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(memo.stage_logp(&h)),
                bits(full.stage_logp(&h)),
                "{} decision {decisions}",
                cfg.preset
            );
            assert_eq!(
                memo.value(&h).map(f32::to_bits),
                full.value(&h).map(f32::to_bits)
            );
            for i in 0..h.valid_nodes.len() {
                assert_eq!(bits(memo.level_logp(&h, i)), bits(full.level_logp(&h, i)));
            }
            let choice = Choice::Sample(rng.random(), rng.random());
            let d = memo.decide(&h, choice);
            assert_eq!(d, full.decide(&h, choice));
            env.step(Action::Schedule {
                stage: obs.stages[d.stage].id,
                limit: d.limit,
            })
            .unwrap();
            decisions += 1;
        }
        let (hits, misses) = memo.memo_counts().unwrap();
        assert!(decisions > 100, "{decisions} decisions");
        assert!(
            hits > misses / 4,
            "{}: {hits} jobs found, {misses} encoded",
            cfg.preset
        );
        assert_eq!(full.memo_counts(), None);
    }
}

/// MPDA's partition branch (`model::partition`): on a skewed cluster, its rows cover
/// exactly the stages whose partitions may still change, each a distribution; the host
/// forward pass matches Burn's; the chosen levels become re-cuts the simulator accepts;
/// and the learner scores a rollout's actions, partition choices included, as the rollout
/// did (the first PPO step's ratio is 1).
#[test]
fn the_partition_branch_recuts_shuffles_and_learns_from_what_it_did() {
    use mpda::model::host::FastPolicy;
    use mpda::model::{decode_part, infer};
    use mpda::rl::dist::Solo;
    use mpda::rl::learner::{Learner, StepSettings, rescore};
    use mpda::rl::rollout::rollout_host;
    use mpda::sim::{Action, driver};

    let dev = Device::flex();
    let mut cfg = PolicyConfig::mpda();
    cfg.input_features = 11;
    cfg.levels = 12;
    cfg.partition_levels = Some(mpda::model::partition::default_levels());
    cfg.validate().unwrap();
    let sim = SimConfig {
        cluster: Some(
            toml::from_str("preset = \"dscs\"\n[data]\nzipf = 1.2\n[memory]\nenabled = true")
                .unwrap(),
        ),
        ..SimConfig::default()
    };
    let policy = cfg.init(&dev);
    let mut fast = FastPolicy::new(&policy, &cfg);
    let mut env = Env::new(sim.clone()).unwrap();
    let mut obs = Observation::default();
    let (mut compared, mut recuts, mut decisions) = (0, 0, 0);
    let mut actions = Vec::new();
    for seed in 0..4u64 {
        let jobs: Vec<JobArrival> = common::random_jobs(3, 20 + seed)
            .into_iter()
            .map(|job| JobArrival { job, arrival_ms: 0 })
            .collect();
        env.reset(&jobs, seed).unwrap();
        while driver::next_decision(&mut env, &mut obs, None, &mut |_| {}).unwrap() {
            decisions += 1;
            let mut h = HostBatch::default();
            h.push_for(&obs, &cfg);
            assert_eq!(h.valid_parts.len(), obs.schedulable.len());
            let out = infer(&policy, &h, cfg.needs(), &dev);
            let u = (decisions as f64 * 0.618_034) % 1.0;
            let d = fast.decide(&h, Choice::Sample(u, 1.0 - u));
            let burn = out.part_logp_of(&h, d.valid_index).to_vec();
            let host = fast.part_logp(&h, d.valid_index).to_vec();
            let eligible = obs.stage_data[d.stage].partitionable;
            assert_eq!(
                host.is_empty(),
                !eligible,
                "rows iff the stage may be re-cut"
            );
            assert_eq!(host.len(), burn.len());
            for (a, b) in host.iter().zip(&burn) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "partition level: host {a} vs Burn {b}"
                );
            }
            if let Some(p) = decode_part(&host, false, || 1.0 - u) {
                let mass: f64 = host.iter().map(|&l| f64::from(l).exp()).sum();
                assert!((mass - 1.0).abs() < 1e-4, "level mass {mass}");
                compared += 1;
                actions.clear();
                cfg.partition_actions(&obs, d.stage, p, &mut actions);
                for &a in &actions {
                    assert!(a.repartitions(), "{a:?}");
                    env.step(a).unwrap();
                    recuts += 1;
                }
            }
            env.step(Action::Schedule {
                stage: obs.stages[d.stage].id,
                limit: d.limit,
            })
            .unwrap();
        }
    }
    assert!(compared >= 10, "only {compared} partition decisions");
    assert!(
        recuts > 0,
        "no level re-cut a stage in {compared} decisions"
    );
    assert!(
        compared < decisions,
        "every decision was a partition decision"
    );

    // The rollout's own log-probabilities, partition choices included, are what the
    // learner computes from the stored batch: the first step's approximate KL is ~0.
    let plans = batch_plans(3, 40, 100);
    let mut learner = Learner::new(cfg.clone(), &dev);
    let acting = FastPolicy::new(&learner.inference_policy(), &cfg);
    let trajs = rollout_host(&acting, &cfg, &sim, &plans, false).unwrap();
    let parts: usize = trajs
        .iter()
        .map(|t| t.taken.iter().filter(|k| k.part > 0).count())
        .sum();
    assert!(parts > 0, "the rollouts made no partition choice");
    let samples = every_decision(&trajs);
    // Decision by decision, to the forward passes' rounding.
    let again = rescore(&learner.inference_policy(), &cfg, &dev, &trajs, &samples);
    for (smp, got) in samples.iter().zip(&again) {
        let t = &trajs[smp.traj as usize];
        let was = t.logp[smp.step as usize];
        assert!(
            (got - was).abs() < 5e-5,
            "decision {smp:?} ({:?}): rollout {was}, learner {got}",
            t.taken[smp.step as usize]
        );
    }
    let stats = learner
        .step(
            &trajs,
            &samples,
            &StepSettings {
                algorithm: mpda::rl::config::Algorithm::Ppo,
                lr: 1e-3,
                entropy: 0.01,
                clip: 0.2,
                value_coef: 0.5,
                max_grad_norm: 0.5,
                shards: 1,
            },
            &Solo,
        )
        .unwrap();
    assert!(
        stats.approx_kl.abs() < 1e-4 && stats.clip_fraction == 0.0,
        "the learner's log-probabilities differ from the rollout's: {stats:?}"
    );
    assert!(stats.grad_norm > 0.0);
}

/// `reoffer=stage` on a learned scheduler: on a cluster whose rule is Spark's (every freed
/// slot back through the scheduler), the episode is exactly the one the same model runs
/// on a cluster configured with Decima's sticky rule, with far fewer decisions than under
/// Spark's rule; Decima's engine refuses `every_slot`, and a bad value is an error.
#[test]
fn a_learned_scheduler_can_keep_freed_slots_on_their_stage() {
    use mpda::sched::SchedulerSpec;
    let cluster = |reoffer: &str| SimConfig {
        cluster: Some(
            toml::from_str(&format!(
                "preset = \"dscs\"\nreoffer = \"{reoffer}\"\n[memory]\nenabled = true"
            ))
            .unwrap(),
        ),
        ..SimConfig::default()
    };
    let jobs: Vec<JobArrival> = common::random_jobs(4, 11)
        .into_iter()
        .map(|job| JobArrival { job, arrival_ms: 0 })
        .collect();
    let ep = Episode { seed: 5, jobs };
    let run = |sim: SimConfig, spec: &str| {
        let spec = SchedulerSpec::parse(spec).unwrap();
        let f = mpda::registry::factory(&spec, mpda::model::Backend::Cpu).unwrap();
        let mut sched = f.build().unwrap();
        let mut env = Env::new(sim).unwrap();
        run_episode(&mut env, sched.as_mut(), &ep, &mut Observation::default())
    };
    let sticky = run(cluster("every_slot"), "mpda[reoffer=stage]").unwrap();
    let configured = run(cluster("stage"), "mpda").unwrap();
    let spark = run(cluster("every_slot"), "mpda").unwrap();
    assert_eq!(sticky, configured);
    assert_eq!(sticky.finished, 4);
    assert!(
        sticky.decisions * 2 < spark.decisions,
        "sticky {} decisions, Spark's rule {}",
        sticky.decisions,
        spark.decisions
    );
    let decima = run(SimConfig::default(), "mpda[reoffer=every_slot]").unwrap_err();
    assert!(
        decima.to_string().contains("needs Spark's engine"),
        "{decima}"
    );
    let bad = SchedulerSpec::parse("mpda[reoffer=sometimes]").unwrap();
    let err = mpda::registry::factory(&bad, mpda::model::Backend::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("reoffer=sometimes must be stage or every_slot"),
        "{err}"
    );
}

/// What a rollout records as each decision's log-probability is what the learner computes
/// from the stored batch, for every published design, on the host path and on the batched
/// Burn path: the single-head A3C's joint rows are indexed as the two branches' pairs are.
#[test]
fn the_learner_rescores_every_designs_rollouts_as_they_acted() {
    use mpda::model::host::FastPolicy;
    use mpda::rl::learner::rescore;
    use mpda::rl::rollout::{rollout_batched, rollout_host};

    let dev = Device::flex();
    let sim = SimConfig {
        executors: 6,
        ..SimConfig::default()
    };
    let plans = batch_plans(4, 60, 200);
    for mut cfg in presets().into_iter().take(4) {
        cfg.levels = 6;
        let policy = cfg.init(&dev);
        let host =
            rollout_host(&FastPolicy::new(&policy, &cfg), &cfg, &sim, &plans, false).unwrap();
        let batched = rollout_batched(&policy, &cfg, &sim, &plans, false).unwrap();
        for (path, trajs) in [("host", host), ("batched", batched)] {
            let samples = every_decision(&trajs);
            assert!(
                samples.len() > 30,
                "{}: {} decisions",
                cfg.preset,
                samples.len()
            );
            let again = rescore(&policy, &cfg, &dev, &trajs, &samples);
            for (smp, got) in samples.iter().zip(&again) {
                let was = trajs[smp.traj as usize].logp[smp.step as usize];
                assert!(
                    (got - was).abs() < 5e-5,
                    "{} ({path}), decision {smp:?}: rollout {was}, learner {got}",
                    cfg.preset
                );
            }
        }
    }
}

/// Three episodes of `jobs` random jobs at t = 0 (job seeds from `job_seed`, sampling seeds
/// from `sample_seed`), for rollouts.
fn batch_plans(
    jobs: usize,
    job_seed: u64,
    sample_seed: u64,
) -> Vec<mpda::rl::rollout::EpisodePlan> {
    (0..3u64)
        .map(|i| mpda::rl::rollout::EpisodePlan {
            env_seed: i,
            jobs: common::random_jobs(jobs, job_seed + i)
                .into_iter()
                .map(|job| JobArrival { job, arrival_ms: 0 })
                .collect(),
            max_time_ms: None,
            sample_seed: sample_seed + i,
            sequence: i as usize,
        })
        .collect()
}

/// Every decision of `trajs` as a learner sample (advantage 1, no value target).
fn every_decision(trajs: &[mpda::rl::rollout::Trajectory]) -> Vec<mpda::rl::learner::Sample> {
    trajs
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            (0..t.len()).map(move |s| mpda::rl::learner::Sample {
                traj: i as u32,
                step: s as u32,
                advantage: 1.0,
                target: 0.0,
            })
        })
        .collect()
}
