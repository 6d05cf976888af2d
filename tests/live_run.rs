//! The live run end to end, the CI smoke test of `mpda spark run`: a real 2 x 1-core
//! standalone cluster (`mpda spark up`), two tiny TPC-H queries (SF 0.01, `tests/fixtures/
//! live-smoke.toml`) submitted at t = 0 as two applications, each with mpda's agent, under
//! mpda's `fair`. It checks that both jobs finish with JCTs read back from their own event
//! logs, that the controller decided and met no refused message, that the report and its
//! files exist, and that `mpda spark down` leaves no JVM.
//!
//! Needs Java, the PySpark venv and the SF 0.01 data of `scripts/spark/setup.sh`. Without
//! them it prints `SKIPPED live_run: ...` and passes, unless `MPDA_REQUIRE_SPARK=1`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mpda::live::cluster::{ClusterState, cluster_jvms, find_java, find_spark_home};

mod live_common;

use live_common::{DownOnDrop, free_ports, mpda, run_or_skip, text, up_args};

const TEST: &str = "live_run";

fn smoke_data() -> PathBuf {
    std::env::var_os("TPCH_WORK")
        .map_or_else(|| PathBuf::from("/work/spark-runs"), PathBuf::from)
        .join("data/sf0.01")
}

fn missing() -> Option<String> {
    find_java()
        .err()
        .map(|e| e.to_string())
        .or_else(|| find_spark_home(None).err().map(|e| e.to_string()))
        .or_else(|| {
            let data = smoke_data().join("lineitem.parquet");
            (!data.exists()).then(|| {
                format!(
                    "no TPC-H SF 0.01 data at {} (run scripts/spark/setup.sh)",
                    data.display()
                )
            })
        })
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn two_tiny_queries_finish_under_fair_with_jcts_from_their_event_logs() {
    if !run_or_skip(TEST, missing()) {
        return;
    }
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cluster");
    let work_s = work.display().to_string();
    let _down = DownOnDrop(&work);
    let args = up_args(&work, free_ports(5), 1024);
    let o = mpda(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "up failed: {}", text(&o));

    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let o = mpda(&[
        "spark",
        "run",
        "--config",
        "tests/fixtures/live-smoke.toml",
        "--work",
        &work_s,
        "--out",
        &out_s,
    ]);
    assert!(o.status.success(), "run failed: {}", text(&o));

    let run = json(&out.join("runs/fair/rep0/run.json"));
    let jobs = run["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{run}");
    let wall_s = run["wall_s"].as_f64().unwrap();
    for j in jobs {
        assert_eq!(j["succeeded"], true, "{j}");
        assert!(j["app_id"].as_str().unwrap().starts_with("app-"), "{j}");
        let jct = j["real_jct_s"].as_f64().unwrap();
        // From submission to the query's last job end: positive, and inside the run.
        assert!(
            jct > 1.0 && jct <= wall_s + 1.0,
            "jct {jct} s, run {wall_s} s: {j}"
        );
        assert!(j["sim_jct_s"].as_f64().unwrap() > 0.0, "{j}");
        assert!(
            !j["executors"].as_array().unwrap().is_empty(),
            "no executor in the log: {j}"
        );
    }
    let control = &run["control"];
    assert!(control["decisions"].as_u64().unwrap() >= 2, "{control}");
    assert_eq!(control["errors"].as_array().unwrap().len(), 0, "{control}");
    // Both applications spoke to the controller: hello, progress, goodbye at least.
    assert!(control["messages"].as_u64().unwrap() >= 6, "{control}");

    let res = json(&out.join("results.json"));
    let fair = &res["schedulers"][0];
    assert_eq!(fair["scheduler"], "fair");
    assert_eq!(fair["repetitions"], 1);
    let real = fair["real_mean_jct_s"].as_f64().unwrap();
    let mean = jobs
        .iter()
        .map(|j| j["real_jct_s"].as_f64().unwrap())
        .sum::<f64>()
        / 2.0;
    assert!((real - mean).abs() < 1e-9, "{real} vs {mean}");
    for f in [
        "report.md",
        "jct_cdf.svg",
        "sim_vs_real.svg",
        "gantt_fair.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    let state = ClusterState::load(&work).unwrap();
    let o = mpda(&["spark", "down", "--work", &work_s]);
    assert!(o.status.success(), "down failed: {}", text(&o));
    assert!(
        cluster_jvms(&state).is_empty(),
        "JVMs left: {:?}",
        cluster_jvms(&state)
    );
    println!(
        "live_run: up, 2 queries under fair and down in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
