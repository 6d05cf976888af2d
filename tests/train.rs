//! `mpda train` end to end on a tiny workload from `tpch/`: bit-identical checkpoints for
//! the same seed, exact continuation after SIGKILL, learning that measurably improves the
//! policy, and clear errors for bad configs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

fn mpda() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mpda"))
}

/// The tiny PPO run (`common::tiny_train_config`), evaluated on 16 seeds.
fn tiny_config(iterations: usize, model_seed: u64) -> String {
    common::tiny_train_config(iterations, model_seed, 16)
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("tiny.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn train(config: &Path, runs: &Path, extra: &[&str]) -> Output {
    mpda()
        .args(["train", "--threads", "2", "--config"])
        .arg(config)
        .arg("--runs")
        .arg(runs)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "mpda train failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn checkpoint(runs: &Path, it: usize) -> PathBuf {
    runs.join("tiny/checkpoints").join(format!("iter-{it:06}"))
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The rows of metrics.csv, each a map from column name to value.
fn metrics(runs: &Path) -> Vec<HashMap<String, f64>> {
    let text = std::fs::read_to_string(runs.join("tiny/metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .filter_map(|(h, v)| Some((h.to_string(), v.parse().ok()?)))
                .collect()
        })
        .collect()
}

/// Held-out JCT per iteration from metrics.csv.
fn eval_curve(runs: &Path) -> Vec<(usize, f64)> {
    metrics(runs)
        .iter()
        .map(|r| (r["iteration"] as usize, r["eval_avg_jct_s"]))
        .collect()
}

#[test]
fn same_seed_and_threads_give_bit_identical_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &tiny_config(5, 3));
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&train(&cfg, &a, &[]));
    ok(&train(&cfg, &b, &[]));
    for f in ["model.bpk", "model.json", "adam.bin"] {
        let (x, y) = (
            read(&checkpoint(&a, 5).join(f)),
            read(&checkpoint(&b, 5).join(f)),
        );
        assert!(!x.is_empty());
        assert!(x == y, "{f} differs between two runs of the same config");
    }
    // A different seed really changes the weights (the comparison can fail).
    let c = dir.path().join("c");
    let cfg2 = write_config(dir.path(), &tiny_config(5, 4));
    ok(&train(&cfg2, &c, &[]));
    assert_ne!(
        read(&checkpoint(&a, 5).join("model.bpk")),
        read(&checkpoint(&c, 5).join("model.bpk"))
    );
}

#[test]
fn gradient_shards_do_not_depend_on_threads_and_sum_to_the_whole_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let sharded = tiny_config(3, 3).replace("epochs = 2", "epochs = 2\ngrad_shards = 2");
    let cfg = write_config(dir.path(), &sharded);
    let run = |runs: &Path, threads: &str| {
        let out = mpda()
            .args(["train", "--threads", threads, "--config"])
            .arg(&cfg)
            .arg("--runs")
            .arg(runs)
            .output()
            .unwrap();
        ok(&out);
    };
    let (one, two) = (dir.path().join("t1"), dir.path().join("t2"));
    run(&one, "1");
    run(&two, "2");
    for f in ["model.bpk", "adam.bin"] {
        assert!(
            read(&checkpoint(&one, 3).join(f)) == read(&checkpoint(&two, 3).join(f)),
            "{f}: 2 shards gave different weights on 1 and 2 threads"
        );
    }
    // The same first iteration unsharded: the statistics of its gradient steps agree to
    // rounding. Shards whose losses were not weighted by their share would double the
    // gradient norm.
    let whole = dir.path().join("whole");
    ok(&train(
        &write_config(dir.path(), &tiny_config(3, 3)),
        &whole,
        &[],
    ));
    let row = |runs: &Path| {
        metrics(runs)
            .into_iter()
            .find(|r| r["iteration"] == 1.0)
            .expect("a metrics row for iteration 1")
    };
    let (a, b) = (row(&one), row(&whole));
    for key in ["policy_loss", "entropy", "approx_kl", "grad_norm"] {
        let (x, y) = (a[key], b[key]);
        assert!(
            (x - y).abs() <= 1e-3 * y.abs().max(1e-3),
            "{key}: 2 shards {x}, 1 shard {y}"
        );
    }
}

#[test]
fn sigkill_then_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let iterations = 12;
    let cfg = write_config(dir.path(), &tiny_config(iterations, 3));
    let straight = dir.path().join("straight");
    ok(&train(&cfg, &straight, &[]));

    let runs = dir.path().join("killed");
    let mut child = mpda()
        .args(["train", "--threads", "2", "--config"])
        .arg(&cfg)
        .arg("--runs")
        .arg(&runs)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let latest = runs.join("tiny/LATEST");
    let start = Instant::now();
    loop {
        let name = std::fs::read_to_string(&latest).unwrap_or_default();
        if name.trim() >= "iter-000003" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = std::fs::read_to_string(&latest).unwrap();
    let killed_at: usize = at_kill.trim().trim_start_matches("iter-").parse().unwrap();
    assert!(
        killed_at < iterations,
        "the run finished before it was killed; the test did not interrupt it"
    );
    // The checkpoint LATEST names is whole: its model loads and its state parses.
    let ck = runs.join("tiny/checkpoints").join(at_kill.trim());
    mpda::model::load(&ck.join("model.bpk"), &burn::tensor::Device::flex()).unwrap();
    let state: serde_json::Value = serde_json::from_slice(&read(&ck.join("state.json"))).unwrap();
    assert_eq!(state["iteration"], killed_at);

    let out = train(&cfg, &runs, &["--resume"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming after iteration"));
    for f in ["model.bpk", "adam.bin"] {
        assert!(
            read(&checkpoint(&straight, iterations).join(f))
                == read(&checkpoint(&runs, iterations).join(f)),
            "{f}: the resumed run differs from the uninterrupted one"
        );
    }
    // Every iteration appears once in the metrics, in order.
    let its: Vec<usize> = eval_curve(&runs).iter().map(|r| r.0).collect();
    assert_eq!(its, (0..=iterations).collect::<Vec<_>>());
}

/// Training on the tiny workload must cut the held-out JCT by at least 10%.
fn assert_learns(config: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), config);
    let runs = dir.path().join("runs");
    ok(&train(&cfg, &runs, &[]));
    let curve = eval_curve(&runs);
    let (first, last) = (curve[0].1, curve.last().unwrap().1);
    eprintln!(
        "{what}: held-out average JCT untrained {first:.2} s, after {} iterations {last:.2} s",
        curve.len() - 1
    );
    assert!(
        last < 0.9 * first,
        "{what}: training did not improve the held-out JCT by 10%: {first:.2} -> {last:.2}"
    );
}

#[test]
fn a_few_iterations_improve_the_policy_on_held_out_seeds() {
    assert_learns(&tiny_config(25, 4), "PPO with GAE");
}

/// The recipe of the shipped MPDA models: PPO on Decima's rollouts baseline, critic unused.
#[test]
fn ppo_on_the_rollouts_baseline_learns_too() {
    let cfg = tiny_config(25, 4).replace(
        "rollouts_per_sequence = 2",
        "rollouts_per_sequence = 2\nadvantage = \"rollouts\"\nvalue_coef = 0.0",
    );
    assert!(cfg.contains("advantage"));
    assert_learns(&cfg, "PPO with the rollouts baseline");
}

/// The branching study's single-head A3C baseline, trained as it was: A2C with a critic.
/// A2C takes one step per iteration where PPO takes several, so it gets 60 iterations.
#[test]
fn single_head_a3c_learns_with_a2c() {
    let cfg = tiny_config(60, 4)
        .replace("preset = \"mpda\"", "preset = \"a3c\"")
        .replace("algorithm = \"ppo\"", "algorithm = \"a2c\"");
    assert!(cfg.contains("\"a3c\"") && cfg.contains("\"a2c\""));
    assert_learns(&cfg, "single-head A3C with A2C");
}

#[test]
fn bad_training_configs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = tiny_config(2, 3);
    let cases: &[(&str, &str, &str)] = &[
        ("algorithm = \"ppo\"", "algorithm = \"sarsa\"", "algorithm"),
        ("epochs = 2", "epochs = 0", "train.epochs"),
        ("preset = \"mpda\"", "preset = \"mpdb\"", "model.preset"),
        ("lr = 1e-3\n", "lr = -1.0\n", "train.lr"),
        (
            "algorithm = \"ppo\"",
            "algorithm = \"reinforce\"\nadvantage = \"gae\"",
            "train.advantage",
        ),
        (
            "rollouts_per_sequence = 2",
            "rollouts_per_sequence = 1\nadvantage = \"rollouts\"",
            "train.rollouts_per_sequence",
        ),
        (
            "lr = 1e-3\n",
            "lr = 1e-3\ndiscount_time_s = 0.0\n",
            "train.discount_time_s",
        ),
        (
            "epochs = 2",
            "epochs = 2\ngrad_shards = 0",
            "train.grad_shards",
        ),
        (
            "algorithm = \"ppo\"",
            "algorithm = \"ppo\"\nbogus = 1",
            "bogus",
        ),
        // The partition branch re-cuts shuffles on Spark's engine only, and its levels
        // must parse and not repeat.
        (
            "seed = 3\n",
            "seed = 3\npartition = true\n",
            "model.partition",
        ),
        (
            "seed = 3\n",
            "seed = 3\npartition_levels = [\"keep\", \"slots*0\"]\n",
            "slots*0",
        ),
        (
            "seed = 3\n",
            "seed = 3\npartition_levels = [\"split\", \"split\"]\n",
            "partition_levels[1]",
        ),
        // The key-query stage head needs a summed global summary, and a width.
        ("seed = 3\n", "seed = 3\nkey_dim = 16\n", "key_dim"),
        (
            "seed = 3\n",
            "seed = 3\nglobal_summary = \"sum\"\nkey_dim = 0\n",
            "key_dim",
        ),
        (
            "seed = 3\n",
            "seed = 3\nglobal_summary = \"lstm\"\n",
            "global_summary",
        ),
        // The single-head A3C has no stage branch for a key-query head to replace.
        (
            "preset = \"mpda\"\nseed = 3\n",
            "preset = \"a3c\"\nseed = 3\nkey_dim = 8\n",
            "key_dim",
        ),
    ];
    for (from, to, needle) in cases {
        assert!(good.contains(from), "{from}");
        let cfg = write_config(dir.path(), &good.replacen(from, to, 1));
        let out = train(&cfg, &dir.path().join("runs"), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to}: accepted");
        assert!(
            err.contains("tiny.toml") && err.contains(needle),
            "{to}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // PPO needs a critic: Decima's design has none.
    let cfg = write_config(
        dir.path(),
        &good.replace("preset = \"mpda\"", "preset = \"decima\""),
    );
    let err =
        String::from_utf8_lossy(&train(&cfg, &dir.path().join("runs"), &[]).stderr).to_string();
    assert!(err.contains("needs a critic"), "{err}");
    // Resuming a run that does not exist, and starting over one that does.
    let cfg = write_config(dir.path(), &good);
    let runs = dir.path().join("r");
    let out = train(&cfg, &runs, &["--resume"]);
    assert!(!out.status.success());
    ok(&train(&cfg, &runs, &[]));
    let out = train(&cfg, &runs, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    // A corrupt optimizer state is an error naming the file.
    std::fs::write(checkpoint(&runs, 2).join("adam.bin"), b"mpda-adam/1\n\x01").unwrap();
    let out = train(&cfg, &runs, &["--resume", "--iterations", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("adam.bin"), "{err}");
}

#[test]
fn the_episode_time_curriculum_cuts_episodes() {
    let dir = tempfile::tempdir().unwrap();
    let stream = tiny_config(1, 3).replace(
        r#"arrivals = { kind = "batch", jobs = 6 }"#,
        r#"arrivals = { kind = "poisson", init_jobs = 1, stream_jobs = 30, mean_interval_ms = 20000.0 }"#,
    );
    let decisions = |runs: &Path| -> usize {
        let rows = metrics(runs);
        let first = rows.iter().find(|r| r["iteration"] == 1.0).unwrap();
        first["decisions"] as usize
    };
    let full = dir.path().join("full");
    ok(&train(&write_config(dir.path(), &stream), &full, &[]));
    let cut_cfg = format!(
        "{stream}\n[curriculum]\nepisode_time = {{ initial_mean_s = 30.0, growth_s_per_iteration = 0.0, max_mean_s = 30.0 }}\n"
    );
    let cut = dir.path().join("cut");
    ok(&train(&write_config(dir.path(), &cut_cfg), &cut, &[]));
    let (a, b) = (decisions(&full), decisions(&cut));
    eprintln!("decisions in one iteration: whole streams {a}, cut at ~30 s {b}");
    assert!(
        b * 3 < a,
        "episodes were not cut: {b} decisions against {a}"
    );
}
