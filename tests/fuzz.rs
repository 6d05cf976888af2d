//! Fuzzing every input a user hands us: command-line arguments, configs, trace files and
//! Spark event logs, random and mutated from real ones (docs/inputs.md lists the ranges).
//!
//! Whatever the input, the program must end on its own with exit code 0, 1, or clap's 2
//! for a malformed command line, never a signal, a panic (101) or an abort (134); a
//! failure must say `error:` and never `panicked`; a success must print no NaN or inf.
//! The library loaders must return an error rather than panic.
//!
//! Deterministic in CI: a fixed case count, a fixed ChaCha seed and no failure files.
//! Each test prints how many cases it ran.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde_json::{Value, json};

use mpda::eval::run_episode;
use mpda::sched::SchedulerSpec;
use mpda::sim::{Env, ExecutorKeys, Observation, SimConfig};
use mpda::workload::Episode;
use mpda::workload::arrivals::JobArrival;
use mpda::workload::eventlog::{self, ImportOptions};
use mpda::workload::load_trace_file;

/// A command that has not exited after this long counts as hung.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A runner with a fixed seed: the same cases on every run and every machine.
fn runner(cases: u32, seed: u8) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 16,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// Runs `runner` over random seeds for `case`, which derives its input from the seed
/// (so that a failure prints the exact input, not just a seed) and names the kind of
/// outcome it saw; prints the number of cases and of each outcome.
fn fuzz(
    name: &str,
    cases: u32,
    seed: u8,
    case: impl Fn(u64) -> Result<&'static str, TestCaseError>,
) {
    let ran = AtomicUsize::new(0);
    let tally = Mutex::new(BTreeMap::<&str, usize>::new());
    let t0 = Instant::now();
    let result = runner(cases, seed).run(&any::<u64>(), |s| {
        ran.fetch_add(1, Ordering::Relaxed);
        let kind = case(s)?;
        *tally.lock().unwrap().entry(kind).or_default() += 1;
        Ok(())
    });
    eprintln!(
        "fuzz {name}: {} cases in {:.1} s ({:?})",
        ran.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        tally.lock().unwrap()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

fn pick<'a, T>(rng: &mut Pcg64Mcg, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

// ---------------------------------------------------------------------------------------
// The binary.

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `mpda` from the repository root, killing it after [`CLI_TIMEOUT`].
fn run_mpda(args: &[String]) -> Result<Outcome, TestCaseError> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TestCaseError::fail(format!("cannot start mpda: {e}")))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for mpda") {
            break Some(s);
        }
        if t0.elapsed() > CLI_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let Some(status) = status else {
        return Err(TestCaseError::fail(format!(
            "mpda {args:?} did not exit within {CLI_TIMEOUT:?}; stderr: {stderr}"
        )));
    };
    Ok(Outcome {
        code: status.code(),
        stdout,
        stderr,
    })
}

/// The contract of every run of the binary; `input` describes what it was given.
fn check_outcome(o: &Outcome, input: &str) -> Result<&'static str, TestCaseError> {
    let fail = |what: &str| {
        Err(TestCaseError::fail(format!(
            "{what}\ninput: {input}\nexit: {:?}\nstderr: {}\nstdout: {}",
            o.code, o.stderr, o.stdout
        )))
    };
    if o.stderr.contains("panicked") {
        return fail("it panicked");
    }
    match o.code {
        None => fail("killed by a signal"),
        Some(0) => {
            if o.stdout.contains("NaN") || o.stdout.contains("inf") {
                fail("a success printed NaN or inf")
            } else {
                Ok("exit 0")
            }
        }
        // 1: our errors; 2: clap's usage errors (a value that does not parse as the type).
        Some(1) if o.stderr.contains("error:") => Ok("exit 1"),
        Some(2) if o.stderr.contains("error:") => Ok("exit 2 (usage)"),
        Some(1 | 2) => fail("a failure without an `error:` message"),
        Some(_) => fail("an exit code other than 0, 1 or 2"),
    }
}

/// Numbers at and beyond the edges of every range, non-numbers and garbage. Values that
/// are valid but slow (the largest batch, say) are left out: a fuzz case must be quick.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-0",
    "0.5",
    "1.5",
    "1e308",
    "-1e308",
    "1e-300",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "10001",
    "100001",
    "100000000",
    "4000000000",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "abc",
    "",
    " 7",
    "1_000",
    "0x10",
];

/// Integers at and beyond the edges, which parse as the flags' types more often.
const INTEGERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "1024",
    "1025",
    "10001",
    "100001",
    "4000000000",
    "4294967295",
    "18446744073709551615",
];

fn number(rng: &mut Pcg64Mcg, extra: &[&'static str]) -> String {
    if !extra.is_empty() && rng.random_bool(0.3) {
        pick(rng, extra).to_string()
    } else if rng.random_bool(0.5) {
        pick(rng, INTEGERS).to_string()
    } else {
        pick(rng, NUMBERS).to_string()
    }
}

/// A scheduler spec: known and unknown names, parameters of every kind, broken syntax.
fn scheduler_spec(rng: &mut Pcg64Mcg) -> String {
    let name = *pick(
        rng,
        &[
            "fair",
            "fifo",
            "weighted-fair",
            "weighted-fair",
            "sjf-cp",
            "critical-path",
            "tetris",
            "tetris",
            "random",
            "nope",
            "",
            "decima",
        ],
    );
    let mut s = name.to_string();
    if rng.random_bool(0.7) {
        let n = rng.random_range(0..3);
        let kv: Vec<String> = (0..n)
            .map(|_| {
                let k = *pick(
                    rng,
                    &["alpha", "alpha", "weight", "weight", "cumulative", "x", ""],
                );
                let v = if rng.random_bool(0.2) {
                    pick(rng, &["true", "false", "10", "-10", "10.000001", "1e6"]).to_string()
                } else {
                    number(rng, &[])
                };
                format!("{k}={v}")
            })
            .collect();
        s += &format!("[{}]", kv.join(","));
    }
    match rng.random_range(0..12) {
        0 => {
            s.pop();
        }
        1 => s.push(']'),
        2 => s.insert(0, '['),
        3 => s.push(','),
        _ => {}
    }
    s
}

fn cli_args(rng: &mut Pcg64Mcg) -> Vec<String> {
    let mut flags: BTreeMap<&str, String> = BTreeMap::new();
    flags.insert("--traces", "tpch".into());
    flags.insert("--batch", "2".into());
    flags.insert("--seeds", "1".into());
    flags.insert("-s", "fair".into());
    for _ in 0..rng.random_range(1..5) {
        let flag = *pick(
            rng,
            &[
                "--executors",
                "--executors",
                "--executors",
                "--seeds",
                "--first-seed",
                "--threads",
                "--batch",
                "--stream",
                "--init-jobs",
                "--interval-s",
                "--sizes",
                "--queries",
                "-s",
                "-s",
                "-s",
                "--traces",
                "remove",
            ],
        );
        let value = match flag {
            "--executors" => number(rng, &["50", "100000", "99999"]),
            "--first-seed" => number(rng, &["18446744073709551614", "10000000"]),
            "--threads" => number(rng, &["1024", "1025"]),
            "--stream" => {
                flags.remove("--batch");
                number(rng, &["5"])
            }
            "--init-jobs" | "--interval-s" => {
                flags.remove("--batch");
                flags.entry("--stream").or_insert_with(|| "2".into());
                number(rng, &["25", "1e6", "0.001"])
            }
            "--sizes" => pick(rng, &["sf1", "sf1,sf2", "", ",", "nope", "sf1,sf1"]).to_string(),
            "--queries" => pick(rng, &["1", "1,2", "99", "x", "", "-1"]).to_string(),
            "-s" => scheduler_spec(rng),
            "--traces" => pick(rng, &["tpch/sf1", "nowhere", "", "Cargo.toml"]).to_string(),
            "remove" => {
                let keys: Vec<&str> = flags.keys().copied().collect();
                let k = *pick(rng, &keys);
                flags.remove(k);
                continue;
            }
            _ => number(rng, &[]),
        };
        flags.insert(flag, value);
    }
    let mut args = vec!["eval".to_string()];
    for (k, v) in flags {
        args.push(k.to_string());
        args.push(v);
    }
    if rng.random_bool(0.05) {
        args.push(pick(rng, &["--bogus", "extra", "--", "-"]).to_string());
    }
    args
}

#[test]
fn cli_arguments() {
    fuzz("cli", 200, 1, |seed| {
        let args = cli_args(&mut Pcg64Mcg::seed_from_u64(seed));
        let o = run_mpda(&args)?;
        check_outcome(&o, &format!("mpda {args:?}"))
    });
}

/// The issue's three inputs: each an error naming the field and its limit, exit 1.
#[test]
fn the_issues_inputs() {
    for (args, expected) in [
        (
            &["--executors", "4000000000"][..],
            "sim.executors: must be in 1..=100000, found 4000000000",
        ),
        (
            &["--executors", "100000000"],
            "sim.executors: must be in 1..=100000, found 100000000",
        ),
        (
            &["-s", "weighted-fair[alpha=1e308]"],
            "alpha: must be in -10..=10, found 1e308",
        ),
    ] {
        let mut all = vec!["eval".to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let o = run_mpda(&all).unwrap();
        assert_eq!(o.code, Some(1), "{all:?}: {}", o.stderr);
        assert!(
            o.stderr.starts_with("error: ") && o.stderr.contains(expected),
            "{all:?}: {}",
            o.stderr
        );
        assert!(o.stdout.is_empty(), "{all:?} printed {}", o.stdout);
    }
}

// ---------------------------------------------------------------------------------------
// Configs.

/// TOML values at and beyond the edges, of the wrong type, and garbage.
const TOML_VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "0.5",
    "1e308",
    "-1e308",
    "1e-300",
    "nan",
    "inf",
    "-inf",
    "10001",
    "100001",
    "4000000000",
    "4294967296",
    "9223372036854775807",
    "\"x\"",
    "\"\"",
    "true",
    "[]",
    "{}",
    "[0]",
    "[5, 5]",
    "[1, 0]",
    "[100001]",
    "\"weighted-fair[alpha=1e308]\"",
    "[\"tetris[weight=-1]\"]",
    "[\"weighted-fair[alpha=nan]\", \"fair\"]",
    "{ kind = \"batch\", jobs = 0 }",
    "{ kind = \"poisson\", init_jobs = 0, stream_jobs = 0, mean_interval_ms = 1.0 }",
    "{ kind = \"poisson\", init_jobs = 1, stream_jobs = 3, mean_interval_ms = 0.0 }",
    "{ kind = \"poisson\", init_jobs = 1, stream_jobs = 30, mean_interval_ms = 1e3, batch_jobs = 20 }",
    "{ kind = \"poisson\", init_jobs = 1, stream_jobs = 3, mean_interval_ms = 1e3, batch_jobs = 0 }",
    "{ scale = 0.0 }",
    "{ scale = nan }",
    "{ differential = true, differential_window = 0 }",
    "1 1",
    "[",
];

/// Byte ranges of the values of `key = value` pairs outside strings (the value of an
/// inline table's keys included; an inline table itself is not one value).
fn value_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let (mut i, mut in_str) = (0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_str = !in_str,
            b'#' if !in_str => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'=' if !in_str => {
                let mut s = i + 1;
                while s < b.len() && b[s] == b' ' {
                    s += 1;
                }
                if s < b.len() && b[s] != b'{' {
                    let (mut e, mut depth, mut q) = (s, 0i32, false);
                    while e < b.len() {
                        match b[e] {
                            b'"' => q = !q,
                            b'[' if !q => depth += 1,
                            b']' if !q => depth -= 1,
                            b',' | b'}' | b'\n' | b'#' if !q && depth <= 0 => break,
                            _ => {}
                        }
                        e += 1;
                    }
                    while e > s && b[e - 1] == b' ' {
                        e -= 1;
                    }
                    spans.push((s, e));
                }
            }
            _ => {}
        }
        i += 1;
    }
    spans
}

/// Keys that `[sim]` may hold but the shipped configs leave at their defaults.
const SIM_EXTRAS: &[&str] = &[
    "moving_delay_ms",
    "warmup_delay_ms",
    "executor_data_points",
    "max_time_ms",
    "reward",
    "key_interpolation",
    "record_tasks",
    "executorz",
];

fn mutate_config(rng: &mut Pcg64Mcg, base: &str) -> String {
    // Two episodes instead of twenty keeps a case quick; the seeds can still be mutated.
    let mut text = base.replace("seeds = 20\n", "seeds = 2\n");
    for _ in 0..rng.random_range(1..3) {
        match rng.random_range(0..10) {
            0..=5 => {
                let spans = value_spans(&text);
                if spans.is_empty() {
                    continue;
                }
                let (s, e) = *pick(rng, &spans);
                let value = *pick::<&str>(rng, TOML_VALUES);
                text.replace_range(s..e, value);
            }
            6 => {
                let key = *pick(rng, SIM_EXTRAS);
                let line = format!("{key} = {}\n", pick(rng, TOML_VALUES));
                match text.find("[sim]\n") {
                    Some(i) => text.insert_str(i + 6, &line),
                    None => text.push_str(&format!("\n[sim]\n{line}")),
                }
            }
            7 => {
                // Drop or duplicate a line.
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let i = rng.random_range(0..lines.len());
                if rng.random_bool(0.5) {
                    lines.remove(i);
                } else {
                    lines.insert(i, lines[i]);
                }
                text = lines.join("\n") + "\n";
            }
            8 => {
                // A typo in a key.
                let spans = value_spans(&text);
                if let Some(&(s, _)) = spans.get(rng.random_range(0..spans.len().max(1))) {
                    let eq = text[..s].rfind('=').unwrap_or(0);
                    text.insert(eq.saturating_sub(1), 'z');
                }
            }
            _ => {
                // Cut the file short.
                let mut at = rng.random_range(0..=text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
        }
    }
    text
}

#[test]
fn configs() {
    let mut bases = Vec::new();
    for e in std::fs::read_dir(root().join("configs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            bases.push(std::fs::read_to_string(&p).unwrap());
        }
    }
    bases.sort();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fuzz.toml");
    fuzz("configs", 150, 2, |seed| {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let base: &String = pick::<String>(&mut rng, &bases);
        let text = mutate_config(&mut rng, base);
        std::fs::write(&file, &text).unwrap();
        let args = vec![
            "eval".to_string(),
            "--config".into(),
            file.to_str().unwrap().into(),
        ];
        let o = run_mpda(&args)?;
        check_outcome(&o, &format!("mpda eval --config with:\n{text}"))
    });
}

// ---------------------------------------------------------------------------------------
// Trace files and event logs, through the library.

/// JSON values at and beyond the edges of the trace format's ranges, and wrong types.
fn json_value(rng: &mut Pcg64Mcg) -> Value {
    match rng.random_range(0..24) {
        0 => json!(-1),
        1 => json!(0),
        2 => json!(1),
        3 => json!(2),
        4 => json!(1_000_000_000u64),
        5 => json!(1_000_000_001u64),
        6 => json!(u32::MAX),
        7 => json!(u64::from(u32::MAX) + 1),
        8 => json!(i64::MAX),
        9 => json!(u64::MAX),
        10 => json!(i64::MIN),
        11 => json!(1.5),
        12 => json!(1e308),
        13 => json!(-0.0),
        14 => json!(1_000_001),
        15 => json!(100_001),
        16 => json!("x"),
        17 => json!(""),
        18 => Value::Null,
        19 => json!(true),
        20 => json!([]),
        21 => json!({}),
        22 => json!([0, 1]),
        _ => json!([[0, 1], [1, 0]]),
    }
}

/// Paths (object keys and array indices) of every node under `v`.
fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(json!(k));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(json!(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Value::String(k) => v.get_mut(k.as_str()),
        Value::Number(i) => v.get_mut(i.as_u64()? as usize),
        _ => None,
    })
}

/// One random change somewhere in `v`: a new value, a removed or duplicated element, an
/// emptied or reordered array.
fn mutate_json(rng: &mut Pcg64Mcg, v: &mut Value) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let path = pick(rng, &all).clone();
    let op = rng.random_range(0..10);
    if op >= 4 || path.is_empty() {
        if let Some(n) = node_mut(v, &path) {
            *n = json_value(rng);
        }
        return;
    }
    let (last, parent) = path.split_last().expect("non-empty");
    let Some(parent) = node_mut(v, parent) else {
        return;
    };
    match (parent, last) {
        (Value::Object(m), Value::String(k)) => {
            if op == 0 {
                m.remove(k);
            } else if let Some(c) = m.get(k).cloned() {
                m.insert(format!("{k}z"), c);
            }
        }
        (Value::Array(a), Value::Number(i)) => {
            let i = i.as_u64().unwrap_or(0) as usize;
            match op {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let c = a[i].clone();
                    a.insert(i, c);
                }
                2 => a.clear(),
                _ => a.reverse(),
            }
        }
        _ => {}
    }
}

/// Runs one job to the end with fair share: a trace the loader accepts must simulate.
fn simulate(job: mpda::workload::JobTrace) -> Result<(), String> {
    if job.num_tasks() > 100_000 {
        return Ok(()); // valid, but too slow for a fuzz case
    }
    let job = std::sync::Arc::new(job);
    let cfg = SimConfig {
        executors: 10,
        executor_keys: ExecutorKeys::Measured,
        ..SimConfig::default()
    };
    let mut env = Env::new(cfg).map_err(|e| e.to_string())?;
    let mut sched = SchedulerSpec::parse("fair").unwrap().build().unwrap();
    let episode = Episode {
        seed: 7,
        jobs: (0..2)
            .map(|i| JobArrival {
                job: job.clone(),
                arrival_ms: i * 1000,
            })
            .collect(),
    };
    let s = run_episode(
        &mut env,
        sched.as_mut(),
        &episode,
        &mut Observation::default(),
    )
    .map_err(|e| e.to_string())?;
    if s.finished != 2 || !s.avg_jct_s.is_finite() {
        return Err(format!(
            "an accepted trace did not simulate: {} of 2 jobs finished, avg JCT {}",
            s.finished, s.avg_jct_s
        ));
    }
    Ok(())
}

#[test]
fn trace_files() {
    let own_bytes = mpda::workload::read_file(&root().join("tpch/sf1/1.json.gz")).unwrap();
    let own: Value = serde_json::from_slice(&own_bytes).unwrap();
    let bases = [own, common::decima_job("2g", 1)];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sf1")).unwrap();
    let file = dir.path().join("sf1/q1.json");
    fuzz("traces", 2000, 3, |seed| {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut v = pick(&mut rng, &bases).clone();
        for _ in 0..rng.random_range(1..5) {
            mutate_json(&mut rng, &mut v);
        }
        let mut text = serde_json::to_string(&v).unwrap();
        if rng.random_bool(0.05) {
            text.truncate(rng.random_range(0..=text.len()));
        }
        std::fs::write(&file, &text).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            load_trace_file(&file).ok().map(simulate)
        }));
        match outcome {
            Ok(Some(Err(msg))) => Err(TestCaseError::fail(format!("{msg}\ntrace: {text}"))),
            Ok(Some(Ok(()))) => Ok("accepted and simulated"),
            Ok(None) => Ok("rejected"),
            Err(_) => Err(TestCaseError::fail(format!("panicked on trace: {text}"))),
        }
    });
}

const EVENT_LOG: &str = "tests/fixtures/eventlogs/sf0.01/plain/app-20261123035843-0000";

fn mutate_log(rng: &mut Pcg64Mcg, lines: &mut Vec<String>) {
    if lines.is_empty() {
        lines.push("{}".into());
    }
    let i = rng.random_range(0..lines.len());
    match rng.random_range(0..12) {
        0..=5 => {
            if let Ok(mut v) = serde_json::from_str::<Value>(&lines[i]) {
                for _ in 0..rng.random_range(1..4) {
                    mutate_json(rng, &mut v);
                }
                lines[i] = v.to_string();
            }
        }
        6 => {
            let mut at = rng.random_range(0..=lines[i].len());
            while !lines[i].is_char_boundary(at) {
                at -= 1;
            }
            lines[i].truncate(at);
        }
        7 => {
            let c = *pick(rng, &['{', '}', '"', ',', ':', '\u{0}', 'é', ' ', '\\']);
            let mut at = rng.random_range(0..=lines[i].len());
            while !lines[i].is_char_boundary(at) {
                at -= 1;
            }
            lines[i].insert(at, c);
        }
        8 => {
            lines.remove(i);
        }
        9 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        10 => {
            let j = rng.random_range(0..lines.len());
            lines.swap(i, j);
        }
        _ => lines.insert(
            i,
            pick(
                rng,
                &[
                    "garbage",
                    "{}",
                    "[]",
                    "{\"Event\": 1}",
                    "{\"Event\": \"SparkListenerTaskEnd\"}",
                    "{\"Event\": \"SparkListenerJobStart\", \"Job ID\": -1}",
                    "null",
                ],
            )
            .to_string(),
        ),
    }
}

#[test]
fn event_logs() {
    let base: Vec<String> = std::fs::read_to_string(root().join(EVENT_LOG))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app-20261123035843-0000");
    let out = dir.path().join("out");
    fuzz("event logs", 3000, 4, |seed| {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut lines = base.clone();
        for _ in 0..rng.random_range(1..4) {
            mutate_log(&mut rng, &mut lines);
        }
        let mut text = lines.join("\n");
        if rng.random_bool(0.8) {
            text.push('\n');
        }
        std::fs::write(&file, &text).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let opts = ImportOptions::new("sf1");
            match eventlog::import(std::slice::from_ref(&file), &opts) {
                Err(_) => "rejected",
                Ok(import) if import.jobs.is_empty() => "no job imported",
                Ok(import) => match eventlog::write_traces(&import, &out, false) {
                    Err(_) => "imported, not written",
                    Ok(files) if files.iter().all(|f| load_trace_file(f).is_ok()) => {
                        "imported, written, reloaded"
                    }
                    Ok(_) => "imported, written, not reloaded",
                },
            }
        }));
        outcome.map_err(|_| TestCaseError::fail(format!("panicked on event log:\n{text}")))
    });
}

#[test]
fn junk_paths_do_not_panic() {
    // Files that are not what their names say.
    let dir = tempfile::tempdir().unwrap();
    let p: PathBuf = dir.path().join("sf1/q1.json.gz");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"not gzip").unwrap();
    assert!(load_trace_file(&p).is_err());
    let z = dir.path().join("app-1.zstd");
    std::fs::write(&z, b"not zstd").unwrap();
    assert!(eventlog::import(&[z], &ImportOptions::new("sf1")).is_err());
}
