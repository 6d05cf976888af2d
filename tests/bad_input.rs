//! Bad input never panics: each case exits non-zero with a message naming the file and
//! the field.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn mpda(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// Writes a library with one good job and one job altered by `mutate`, then checks that
/// both `trace check` and `eval` reject it with all of `expected` in the message.
fn rejects(mutate: impl Fn(&mut Value), expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "2g", 1, &common::decima_job("2g", 1));
    let mut bad = common::decima_job("2g", 2);
    mutate(&mut bad);
    common::write_trace(dir.path(), "2g", 2, &bad);
    check_rejected(dir.path(), expected);
}

fn check_rejected(dir: &Path, expected: &[&str]) {
    let d = dir.to_str().unwrap();
    for args in [
        vec!["trace", "check", d],
        vec!["eval", "--traces", d, "--batch", "2", "--seeds", "1"],
    ] {
        let (code, err) = mpda(&args);
        assert_ne!(code, 0, "{args:?} should fail");
        for e in expected {
            assert!(err.contains(e), "{args:?}: expected {e:?} in: {err}");
        }
    }
}

#[test]
fn good_library_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "2g", 1, &common::decima_job("2g", 1));
    let (code, err) = mpda(&[
        "eval",
        "--traces",
        dir.path().to_str().unwrap(),
        "--batch",
        "3",
        "--seeds",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn cyclic_graph() {
    rejects(
        |j| j["edges"] = json!([[0, 1], [1, 3], [3, 1], [0, 2]]),
        &["q2.json", "stages[", "cyclic graph"],
    );
}

#[test]
fn edge_to_missing_stage() {
    rejects(
        |j| j["edges"] = json!([[0, 1], [1, 9]]),
        &["q2.json", "edges[1]", "missing stage 9"],
    );
}

#[test]
fn stage_with_zero_tasks() {
    rejects(
        |j| j["stages"][2]["num_tasks"] = json!(0),
        &["q2.json", "stages[2].num_tasks", "at least one task"],
    );
}

#[test]
fn negative_duration() {
    rejects(
        |j| j["stages"][1]["task_durations"]["rest_wave"]["5"] = json!([10, -7]),
        &[
            "q2.json",
            "stages[1].task_durations.rest_wave.\"5\"[1]",
            "negative duration -7",
        ],
    );
}

#[test]
fn missing_wave_map() {
    rejects(
        |j| {
            j["stages"][3]["task_durations"]
                .as_object_mut()
                .unwrap()
                .remove("rest_wave");
        },
        &[
            "q2.json",
            "stages[3].task_durations",
            "missing field `rest_wave`",
        ],
    );
}

#[test]
fn missing_wave_key() {
    rejects(
        |j| {
            j["stages"][0]["task_durations"]["fresh_durations"]
                .as_object_mut()
                .unwrap()
                .remove("5");
        },
        &[
            "q2.json",
            "stages[0].task_durations.fresh_durations",
            "missing wave",
            "\"5\"",
        ],
    );
}

#[test]
fn missing_samples_for_a_key() {
    rejects(
        |j| {
            j["stages"][0]["task_durations"]["first_wave"]["5"] = json!([]);
            j["stages"][0]["task_durations"]["fresh_durations"]["5"] = json!([]);
        },
        &[
            "q2.json",
            "stages[0].durations[1]",
            "missing wave",
            "executor key 5",
        ],
    );
}

#[test]
fn truncated_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = common::write_trace(dir.path(), "2g", 1, &common::decima_job("2g", 1));
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    check_rejected(dir.path(), &["q1.json", "malformed JSON", "EOF"]);
}

#[test]
fn malformed_json() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("2g");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("q1.json"),
        "{\"schema_version\": 1, \"stages\": [,]}",
    )
    .unwrap();
    check_rejected(dir.path(), &["q1.json", "malformed JSON", "line 1 column"]);
}

#[test]
fn not_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "2g", 1, &json!({"hello": 1}));
    check_rejected(dir.path(), &["q1.json", "not a trace"]);
}

/// The project's own format goes through the same validation.
#[test]
fn own_format_negative_duration_and_cycle() {
    let own = |parents: Value, first: Value| {
        json!({
            "format": "mpda-trace/1", "name": "j", "size": "sf1", "query": "1",
            "stages": [
                {"num_tasks": 2, "parents": parents,
                 "durations": [{"executors": 2, "first_wave": first, "rest_wave": [], "fresh": []}]},
                {"num_tasks": 1, "parents": [0],
                 "durations": [{"executors": 2, "first_wave": [5], "rest_wave": [], "fresh": []}]}
            ]
        })
    };
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "sf1", 1, &own(json!([]), json!([3, -1])));
    check_rejected(
        dir.path(),
        &[
            "q1.json",
            "stages[0].durations[0].first_wave[1]",
            "negative duration -1",
        ],
    );
    common::write_trace(dir.path(), "sf1", 1, &own(json!([1]), json!([3])));
    check_rejected(dir.path(), &["q1.json", "cyclic graph"]);
    let mut unknown = own(json!([]), json!([3]));
    unknown["stages"][0]["num_taskz"] = json!(3);
    common::write_trace(dir.path(), "sf1", 1, &unknown);
    check_rejected(
        dir.path(),
        &["q1.json", "stages[0]", "unknown field `num_taskz`"],
    );
}

#[test]
fn bad_config_and_arguments() {
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "2g", 1, &common::decima_job("2g", 1));
    let traces = dir.path().to_str().unwrap();
    let cfg = dir.path().join("x.toml");
    std::fs::write(
        &cfg,
        format!("[workload]\ntraces = \"{traces}\"\narrivals = {{ kind = \"batch\", jobs = 2 }}\n[sim]\nexecutor = 5\n"),
    )
    .unwrap();
    let (code, err) = mpda(&["eval", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("x.toml") && err.contains("unknown field `executor`"),
        "{err}"
    );

    let (code, err) = mpda(&[
        "eval",
        "--traces",
        traces,
        "--batch",
        "2",
        "-s",
        "fair[alpha=1]",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("fair[alpha=1]") && err.contains("unknown parameter \"alpha\""),
        "{err}"
    );

    let (code, err) = mpda(&["eval", "--traces", traces, "--batch", "2", "-s", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown scheduler \"nope\""), "{err}");

    let (code, err) = mpda(&[
        "eval",
        "--traces",
        traces,
        "--batch",
        "2",
        "--executors",
        "0",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("sim.executors: must be in 1..=100000, found 0")
            && err.contains("(set by --executors)"),
        "{err}"
    );

    let (code, err) = mpda(&["eval", "--traces", traces, "--batch", "2", "--sizes", "9g"]);
    assert_ne!(code, 0);
    assert!(err.contains("no trace for size \"9g\""), "{err}");

    let replay = dir.path().join("r.json");
    std::fs::write(
        &replay,
        r#"{"scenarios": {"a": {"episodes": [{"env_seed": 1, "jobs": [["tpch-2g-7", 0]]}]}}}"#,
    )
    .unwrap();
    let r = replay.to_str().unwrap();
    let (code, err) = mpda(&["eval", "--traces", traces, "--replay", r, "--scenario", "a"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("r.json")
            && err.contains("scenarios.a.episodes[0].jobs[0]")
            && err.contains("tpch-2g-7"),
        "{err}"
    );
    let (code, err) = mpda(&["eval", "--traces", traces, "--replay", r, "--scenario", "b"]);
    assert_ne!(code, 0);
    assert!(err.contains("no scenario \"b\" (available: a)"), "{err}");

    let (code, _) = mpda(&["eval", "--traces", traces, "--bogus"]);
    assert_ne!(code, 0);
}

/// A Spark cluster config (`[sim.cluster]`) with a bad value: a clear error naming the
/// file and the field, and a non-zero exit.
#[test]
fn bad_cluster_configs() {
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "2g", 1, &common::decima_job("2g", 1));
    let traces = dir.path().to_str().unwrap();
    let host = "[[sim.cluster.hosts]]\ncores = 2\nmemory_mb = 4096\n";
    let cases = [
        (
            "[[sim.cluster.hosts]]\ncores = 0\nmemory_mb = 4096\n".to_string(),
            "sim.cluster.hosts[0].cores: must be in 1..=4096, found 0",
        ),
        (
            "[[sim.cluster.hosts]]\ncores = 2\nmemory_mb = 4096\nexecutor_memory_mb = 256\n"
                .to_string(),
            "sim.cluster.hosts[0].executor_memory_mb: an executor gets 256 MB, not above Spark's 300 MB reserved memory",
        ),
        (
            "[[sim.cluster.hosts]]\ncores = 2\nmemory_mb = 4096\nspeed = 0.0\n".to_string(),
            "sim.cluster.hosts[0].speed: must be a finite number above 0, found 0",
        ),
        (
            "[[sim.cluster.hosts]]\ncores = 2\nmemory_mb = 4096\nspeed = -2.5\n".to_string(),
            "sim.cluster.hosts[0].speed",
        ),
        (
            format!("{host}[sim.cluster.locality]\nwait_ms = -1\n"),
            "sim.cluster.locality.wait_ms: must be in 0..=3600000, found -1",
        ),
        (
            format!(
                "{host}[[sim.cluster.pools]]\nname = \"etl\"\n[[sim.cluster.pools]]\nname = \"adhoc\"\n\
                 [sim.cluster.assign]\ndefault_pool = \"etl\"\n"
            ),
            "sim.cluster.pools[1]: pool \"adhoc\" is used by no job",
        ),
        (
            format!(
                "{host}[[sim.cluster.pools]]\nname = \"etl\"\n\
                 [sim.cluster.assign]\ndefault_pool = \"etl\"\nby_query = {{ \"1\" = \"gone\" }}\n"
            ),
            "sim.cluster.assign.by_query.1: job sent to unknown pool \"gone\"",
        ),
        (
            "[sim.cluster]\npreset = \"nope\"\n".to_string(),
            "sim.cluster.preset: unknown preset \"nope\"",
        ),
        (
            format!("{host}[sim.cluster.plan]\nplanner = \"dscs\"\nxp = 0.0\n"),
            "sim.cluster.plan.xp: must be a finite number > 0",
        ),
        (
            format!("{host}[sim.cluster.plan]\nplanner = \"aqe\"\nadvisory_mb = 0.0\n"),
            "sim.cluster.plan.advisory_mb: must be a finite number > 0",
        ),
        (
            format!("{host}[sim.cluster.plan]\nplanner = \"aqe\"\nskew_factor = 0.5\n"),
            "sim.cluster.plan.skew_factor: must be a finite number >= 1",
        ),
        (
            format!("{host}[sim.cluster.plan]\nplanner = \"fixed\"\npartitions = 0\n"),
            "sim.cluster.plan.partitions: must be in 1..=100000, found 0",
        ),
        (
            format!("{host}[sim.cluster.data]\nscale = 0.0\n"),
            "sim.cluster.data.scale: must be in",
        ),
    ];
    for (i, (section, expected)) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("c{i}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[workload]\ntraces = \"{traces}\"\narrivals = {{ kind = \"batch\", jobs = 2 }}\n{section}"
            ),
        )
        .unwrap();
        let (code, err) = mpda(&["eval", "--config", cfg.to_str().unwrap(), "--seeds", "1"]);
        assert_ne!(code, 0, "case {i} should fail");
        assert!(
            err.contains(&format!("c{i}.toml")) && err.contains(expected),
            "case {i}: expected {expected:?} in: {err}"
        );
    }
}

/// Per-task byte arrays that do not match the stage's task count.
#[test]
fn per_task_bytes_that_do_not_match_the_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let trace = json!({
        "format": "mpda-trace/1", "name": "j", "size": "sf1", "query": "1",
        "stages": [
            {"num_tasks": 2, "parents": [],
             "durations": [{"executors": 2, "first_wave": [3, 4], "rest_wave": [], "fresh": []}],
             "shuffle": {"read_bytes": [1, 2, 3], "read_records": [1, 2, 3],
                         "write_bytes": [1, 2, 3], "write_records": [1, 2, 3]}}
        ]
    });
    common::write_trace(dir.path(), "sf1", 1, &trace);
    check_rejected(
        dir.path(),
        &[
            "q1.json",
            "stages[0].shuffle.read_bytes",
            "a multiple of num_tasks (2); found 3",
        ],
    ); // The per-task arrays the importer added later: absent is fine, a wrong length is not.
    let mut trace = trace;
    let sh = &mut trace["stages"][0]["shuffle"];
    for k in ["read_bytes", "read_records", "write_bytes", "write_records"] {
        sh[k] = json!([1, 2]);
    }
    sh["input_bytes"] = json!([5]);
    common::write_trace(dir.path(), "sf1", 1, &trace);
    check_rejected(
        dir.path(),
        &["q1.json", "stages[0].shuffle.input_bytes", "found 1"],
    );
}

/// A one-iteration training config on one tiny trace written into `dir` (`dir/t.toml`).
fn one_iteration_config(dir: &std::path::Path) -> std::path::PathBuf {
    common::write_trace(dir, "2g", 1, &common::decima_job("2g", 1));
    let traces = dir.to_str().unwrap();
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"t\"\n[workload]\ntraces = \"{traces}\"\narrivals = {{ kind = \"batch\", jobs = 2 }}\n\
             [sim]\nexecutors = 5\n[model]\npreset = \"mpda\"\n[train]\niterations = 1\n\
             [eval]\nevery = 1\nseeds = 1\n"
        ),
    )
    .unwrap();
    cfg
}

/// `--device cuda` or `wgpu` on a binary built without that cargo feature (CI's build):
/// a clear error naming the feature to build with, and a non-zero exit, for training and
/// for evaluating a learned scheduler.
#[test]
fn a_gpu_device_the_build_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = one_iteration_config(dir.path());
    let traces = dir.path().to_str().unwrap();
    let runs = dir.path().join("runs");
    for device in ["cuda", "wgpu"] {
        if cfg!(feature = "cuda") && device == "cuda" || cfg!(feature = "wgpu") && device == "wgpu"
        {
            eprintln!("skipped: this test binary was built with the {device} feature");
            continue;
        }
        let (code, err) = mpda(&[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--runs",
            runs.to_str().unwrap(),
            "--device",
            device,
        ]);
        assert_ne!(code, 0);
        assert!(
            err.contains("not in this build") && err.contains(&format!("--features {device}")),
            "{err}"
        );
        let (code, err) = mpda(&[
            "eval", "--traces", traces, "--batch", "2", "-s", "mpda", "--device", device,
        ]);
        assert_ne!(code, 0);
        assert!(err.contains(&format!("--features {device}")), "{err}");
    }
    let (code, err) = mpda(&["eval", "--traces", traces, "--device", "tpu"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown device \"tpu\""), "{err}");
}

/// A binary built without the `mpi` feature, started by an MPI launcher as one of several
/// ranks, would train alone in each rank: it refuses, naming the feature.
#[cfg(not(feature = "mpi"))]
#[test]
fn an_mpi_launch_of_a_binary_without_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = one_iteration_config(dir.path());
    let runs = dir.path().join("runs");
    let out = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(["train", "--config", cfg.to_str().unwrap(), "--runs"])
        .arg(&runs)
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("OMPI_COMM_WORLD_RANK", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("one of 2 MPI ranks") && err.contains("--features mpi"),
        "{err}"
    );
    assert!(!runs.join("t").exists(), "it wrote a run before refusing");
}

/// Planners named after a scheduler (`name+planner[...]`), and `mpda plan`'s inputs.
#[test]
fn bad_planners_and_key_samples() {
    let dir = tempfile::tempdir().unwrap();
    common::write_trace(dir.path(), "2g", 1, &common::decima_job("2g", 1));
    let traces = dir.path().to_str().unwrap();
    let cfg = dir.path().join("spark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[workload]\ntraces = \"{traces}\"\narrivals = {{ kind = \"batch\", jobs = 2 }}\n\
             [[sim.cluster.hosts]]\ncores = 2\nmemory_mb = 4096\n"
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    for (spec, expected) in [
        ("fair+dscs[xp=0]", "xp: must be a finite number > 0"),
        (
            "fair+aqe[advisory_mb=0]",
            "advisory_mb: must be a finite number > 0",
        ),
        (
            "fair+aqe[skew_factor=0.9]",
            "skew_factor: must be a finite number >= 1",
        ),
        (
            "fair+fixed[partitions=0]",
            "partitions: must be in 1..=100000, found 0",
        ),
        ("fair+nope", "unknown planner \"nope\""),
        ("fair+fixed[xp=1]", "unknown parameter \"xp\""),
        // A partition branch asked of a model that has none.
        (
            "mpda[model=mpda-tpch-batch20,partition=true]",
            "partition=true needs a model trained with a partition branch",
        ),
        (
            "mpda[partition=maybe]",
            "partition=maybe must be true or false",
        ),
    ] {
        let (code, err) = mpda(&["eval", "--config", c, "-s", spec, "--seeds", "1"]);
        assert_ne!(code, 0, "{spec} should fail");
        assert!(
            err.contains(expected),
            "{spec}: expected {expected:?} in: {err}"
        );
    }
    // A planner on Decima's engine (no [sim.cluster]) is refused, not ignored.
    let (code, err) = mpda(&[
        "eval",
        "--traces",
        traces,
        "--batch",
        "2",
        "--seeds",
        "1",
        "-s",
        "fair+dscs",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("needs Spark's engine"), "{err}");
    // `mpda plan`: a key sample with a bad field, and bad flags.
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        r#"{"total_bytes": 10, "distinct_keys": 0, "keys": []}"#,
    )
    .unwrap();
    let k = keys.to_str().unwrap();
    let (code, err) = mpda(&["plan", "--keys", k, "--slots", "4", "--execution-mb", "100"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("keys.json") && err.contains("distinct_keys"),
        "{err}"
    );
    std::fs::write(
        &keys,
        r#"{"total_bytes": 10, "distinct_keys": 3, "keys": [{"key": "a", "bytes": 1}]}"#,
    )
    .unwrap();
    let (code, err) = mpda(&["plan", "--keys", k, "--slots", "0", "--execution-mb", "100"]);
    assert_ne!(code, 0);
    assert!(err.contains("--slots"), "{err}");
    let (code, err) = mpda(&[
        "plan",
        "--keys",
        k,
        "--slots",
        "2",
        "--execution-mb",
        "100",
        "--planner",
        "aqe",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no key-level plan"), "{err}");
    let (code, _) = mpda(&["plan", "--keys", k, "--slots", "2", "--execution-mb", "100"]);
    assert_eq!(code, 0);
}
