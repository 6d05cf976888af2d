//! Experiments and reports: paired comparisons, determinism, the files a report writes,
//! and clear errors for bad experiment files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use mpda::eval::experiment::{Experiment, Overrides};
use mpda::eval::{self, SchedulerFactory};
use mpda::sched::{SchedError, Scheduler, SchedulerSpec};
use mpda::sim::{Action, Observation, SimConfig};

fn tpch() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tpch")
}

/// A small experiment on the project's traces; `extra` goes at the end of `[run]`.
fn experiment_text(run_extra: &str, sweep: &str) -> String {
    format!(
        r#"
name = "small"
[workload]
traces = "{}"
arrivals = {{ kind = "batch", jobs = 5 }}
[sim]
executors = 10
executor_keys = "measured"
[run]
seeds = 4
schedulers = ["fair", "fifo", "sjf-cp"]
{run_extra}
{sweep}
"#,
        tpch().display()
    )
}

fn load(text: &str) -> Experiment {
    Experiment::parse(text, Path::new("small.toml"), &Overrides::default()).unwrap()
}

/// What a scheduler saw at its first decision: (job id, arrival, stages, work) per job.
type FirstView = Vec<(u32, u64, u32, u64)>;

/// Wraps a heuristic and records each episode's first observation.
struct Recorder {
    spec: SchedulerSpec,
    seen: Arc<Mutex<Vec<(u64, FirstView)>>>,
}

struct Recording {
    inner: Box<dyn Scheduler>,
    seed: u64,
    first: bool,
    seen: Arc<Mutex<Vec<(u64, FirstView)>>>,
}

impl SchedulerFactory for Recorder {
    fn label(&self) -> String {
        self.spec.to_string()
    }
    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        Ok(Box::new(Recording {
            inner: self.spec.build()?,
            seed: 0,
            first: true,
            seen: Arc::clone(&self.seen),
        }))
    }
}

impl Scheduler for Recording {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn reset(&mut self, seed: u64) {
        self.seed = seed;
        self.first = true;
        self.inner.reset(seed);
    }
    fn decide(&mut self, obs: &Observation) -> Action {
        if self.first {
            self.first = false;
            let view = obs
                .jobs
                .iter()
                .map(|j| {
                    (
                        j.id,
                        j.arrival_ms,
                        j.num_stages,
                        j.remaining_work_ms.to_bits(),
                    )
                })
                .collect();
            self.seen.lock().unwrap().push((self.seed, view));
        }
        self.inner.decide(obs)
    }
}

#[test]
fn comparisons_are_paired() {
    let exp = load(&experiment_text("", ""));
    let episodes = exp.test_episodes(0).unwrap();
    let sim = SimConfig {
        executors: 10,
        executor_keys: mpda::sim::ExecutorKeys::Measured,
        ..SimConfig::default()
    };
    let recorder = |name: &str| Recorder {
        spec: SchedulerSpec::parse(name).unwrap(),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let (fair_a, fair_b, fifo) = (recorder("fair"), recorder("fair"), recorder("fifo"));
    let results = eval::evaluate(&sim, &[&fair_a, &fair_b, &fifo], &episodes, &|| {}).unwrap();

    // One scheduler run twice on the same episodes gives identical results.
    assert_eq!(results[0].episodes, results[1].episodes);
    assert!(results[0].episodes.iter().all(|e| e.finished == 5));
    // Two schedulers see identical job sequences, episode by episode.
    let sorted = |r: &Recorder| {
        let mut v = r.seen.lock().unwrap().clone();
        v.sort_by_key(|x| x.0);
        v
    };
    let (a, f) = (sorted(&fair_a), sorted(&fifo));
    assert_eq!(a.len(), episodes.len());
    assert_eq!(a, f);
    assert!(a.iter().all(|(_, view)| view.len() == 5));
    // ... and the schedulers do differ, so the pairing is not a trivial equality.
    assert_ne!(results[0].episodes, results[2].episodes);
    for (x, y) in results[0].episodes.iter().zip(&results[2].episodes) {
        assert_eq!(x.env_seed, y.env_seed);
        assert_eq!(x.jobs, y.jobs);
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_small_report_has_every_file_and_is_reproducible() {
    let text = experiment_text(
        "tune_weighted_fair = { train_seeds = 2, first_seed = 500 }\nbootstrap_resamples = 500",
        "[sweep]\nexecutors = [5, 10]",
    );
    let exp = load(&text);
    assert_eq!(exp.settings.len(), 2);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // Once on one thread, once on two: the files must not change.
    for (threads, dir) in [1, 2].into_iter().zip(&dirs) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let res = pool.install(|| exp.run(&|| {})).unwrap();
        let files = mpda::eval::report::write_report(&exp, &res, dir.path()).unwrap();
        for f in &files {
            assert!(f.is_file(), "{} missing", f.display());
        }
    }
    let d = dirs[0].path();
    for name in [
        "report.md",
        "episodes.csv",
        "results.json",
        "cdf-e5.png",
        "cdf-e10.svg",
        "bars-e5.png",
        "jct-vs-executors.png",
        "jct-vs-executors.svg",
        "alpha-sweep.png",
        "gantt-e5-fair.png",
        "gantt-e5-fair.svg",
    ] {
        assert!(d.join(name).is_file(), "{name} missing");
    }
    assert!(read(&d.join("cdf-e5.png")).starts_with(b"\x89PNG\r\n\x1a\n"));
    // 2 settings x (3 schedulers + the tuned weighted fair) x 4 seeds, plus the header.
    let csv = String::from_utf8(read(&d.join("episodes.csv"))).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 4 * 4);
    for name in ["episodes.csv", "results.json", "report.md"] {
        assert_eq!(
            read(&d.join(name)),
            read(&dirs[1].path().join(name)),
            "{name} depends on the thread count"
        );
    }
    let md = String::from_utf8(read(&d.join("report.md"))).unwrap();
    assert!(md.contains("opt-weighted-fair (α="), "{md}");
    assert!(md.contains("![JCT CDF: 5 executors, batch of 5](cdf-e5.png)"));

    // The baseline against itself: ratio exactly 1, interval [1, 1].
    let json: serde_json::Value = serde_json::from_slice(&read(&d.join("results.json"))).unwrap();
    for s in json["settings"].as_array().unwrap() {
        let fair = &s["schedulers"][0];
        assert_eq!(fair["name"], "fair");
        for k in ["ratio", "low", "high"] {
            assert_eq!(fair["ratio_to_baseline"][k], 1.0, "{k}");
        }
        let fifo = &s["schedulers"][1]["ratio_to_baseline"];
        assert!(fifo["low"].as_f64() <= fifo["ratio"].as_f64());
        assert!(fifo["ratio"].as_f64() <= fifo["high"].as_f64());
        let alpha = s["alpha_sweep"]["best_alpha"].as_f64().unwrap();
        assert!((-2.0..=2.0).contains(&alpha));
        assert_eq!(
            s["alpha_sweep"]["mean_avg_jct_s"].as_array().unwrap().len(),
            41
        );
    }
}

fn error_of(text: &str) -> String {
    match Experiment::parse(text, Path::new("bad.toml"), &Overrides::default()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(err: &str, expected: &[&str]) {
    for e in expected {
        assert!(err.contains(e), "\"{e}\" not in: {err}");
    }
}

#[test]
fn bad_experiment_files_name_the_file_and_the_field() {
    let good = experiment_text("", "");
    assert_names(
        &error_of(&good.replace("seeds = 4", "seeds = 4\nsedes = 3")),
        &["bad.toml", "sedes"],
    );
    assert_names(
        &error_of(&good.replace("\"fifo\"", "\"fifo[speed=2]\"")),
        &["bad.toml", "run.schedulers[1]", "speed"],
    );
    assert_names(
        &error_of(&good.replace("\"fifo\"", "\"nope\"")),
        &["bad.toml", "run.schedulers[1]", "unknown scheduler"],
    );
    assert_names(
        &error_of(&good.replace(&tpch().display().to_string(), "/no/such/traces")),
        &["/no/such/traces"],
    );
    assert_names(
        &error_of(&experiment_text("baseline = \"random\"", "")),
        &["bad.toml", "run.baseline", "random"],
    );
    assert_names(
        &error_of(&experiment_text(
            "tune_weighted_fair = { train_seeds = 5, first_seed = 10000002 }",
            "",
        )),
        &["bad.toml", "run.tune_weighted_fair.first_seed", "overlap"],
    );
    assert_names(
        &error_of(&experiment_text("", "[sweep]\nmean_interval_s = [10.0]")),
        &["bad.toml", "sweep.mean_interval_s", "poisson"],
    );
    assert_names(
        &error_of(&experiment_text("gantt = [\"tetris\"]", "")),
        &["bad.toml", "run.gantt[0]", "tetris"],
    );
    assert_names(
        &error_of(&experiment_text(
            "comparisons = [[\"fifo\", \"random\"]]",
            "",
        )),
        &["bad.toml", "run.comparisons[0][1]", "random"],
    );
}

/// `run.comparisons`: a pair whose reference is the baseline gives exactly the baseline's
/// ratio and interval (same resamples), and another pair its own ratio of means.
#[test]
fn extra_comparisons_are_paired_ratios_like_the_baselines() {
    let exp = load(&experiment_text(
        "comparisons = [[\"fifo\", \"fair\"], [\"fifo\", \"sjf-cp\"]]",
        "",
    ));
    let res = exp.run(&|| {}).unwrap();
    let s = &res.settings[0];
    assert_eq!(s.comparisons.len(), 2);
    assert_eq!(s.comparisons[0].ratio, s.ratio_to_baseline[1]);
    let mean = |i: usize| s.schedulers[i].mean_avg_jct_s;
    let c = &s.comparisons[1];
    assert_eq!(
        (c.scheduler.as_str(), c.reference.as_str()),
        ("fifo", "sjf-cp")
    );
    assert!((c.ratio.ratio - mean(1) / mean(2)).abs() < 1e-12);
    assert!(c.ratio.low <= c.ratio.ratio && c.ratio.ratio <= c.ratio.high);
    assert_ne!(c.ratio, s.ratio_to_baseline[1]);
}

#[test]
fn the_cli_rejects_a_bad_experiment_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        experiment_text("", "").replace("[run]", "[run]\ncolour = 1"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(["report", file.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("bad.toml") && err.contains("colour"), "{err}");
    assert!(!dir.path().join("out").exists());
}

/// Every preset parses and finds its traces (Decima's presets only where they exist).
#[test]
fn presets_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("configs/experiments");
    let decima = common::decima_dir("presets_load (Decima presets)").is_some();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".toml") {
            continue;
        }
        // Relative trace paths are relative to the repository root, as when run from there.
        let text = std::fs::read_to_string(&p).unwrap();
        // Presets on Decima's traces (decima-*, models-decima-*) need them; the skip was
        // said above by `decima_dir`.
        if text.contains("../shared/decima-tpch") && !decima {
            continue;
        }
        let text = text
            .replace(
                "traces = \"tpch\"",
                &format!("traces = \"{}\"", tpch().display()),
            )
            .replace(
                "traces = \"../shared/decima-tpch\"",
                &format!(
                    "traces = \"{}\"",
                    root.join("../shared/decima-tpch").display()
                ),
            );
        let exp = Experiment::parse(&text, &p, &Overrides::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(format!("{}.toml", exp.cfg.name), name);
        n += 1;
    }
    assert!(n >= 5, "only {n} presets checked");
}

/// The DSCS skew experiment's finding, on the jobs measured here (`dscs-live/`): at the
/// study's skew levels no PageRank key outgrows a slot's memory, so salting changes nothing;
/// at Zipf 1.5 it splits the heaviest vertices and both time and spill fall.
#[test]
fn dscs_salting_splits_only_keys_that_outgrow_a_slot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("configs/experiments/dscs-skew.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "traces = \"dscs-live\"",
        &format!("traces = \"{}\"", root.join("dscs-live").display()),
    );
    let exp = Experiment::parse(&text, &file, &Overrides { seeds: Some(2) }).unwrap();
    let res = exp.run(&|| {}).unwrap();
    let by_label = |l: &str| {
        res.settings
            .iter()
            .find(|s| s.setting.label.starts_with(l))
            .unwrap_or_else(|| panic!("no setting {l}"))
    };
    let spill = |r: &mpda::eval::SchedulerResult| -> f64 {
        r.episodes
            .iter()
            .map(|e| e.spark.as_ref().unwrap().spilled_mb)
            .sum()
    };
    let low = by_label("skew 0.2");
    assert_eq!(
        low.ratio_to_baseline[1].ratio, 1.0,
        "nothing to split at 0.2"
    );
    let high = by_label("skew 1.5");
    let r = high.ratio_to_baseline[1].ratio;
    assert!(r < 0.8, "salting at Zipf 1.5: JCT ratio {r}");
    let (fixed, salted) = (spill(&high.schedulers[0]), spill(&high.schedulers[1]));
    assert!(
        salted < fixed,
        "spill {salted} MB salted against {fixed} MB"
    );
}
