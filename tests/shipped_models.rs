//! The models shipped in `models/` load by name and still beat fair share on `tpch/`
//! (which ships too), on seeds they were neither trained nor selected on. A change to the
//! observation, the features or the network that silently breaks them fails here.

use std::process::Command;

mod common;

/// Mean average JCT of each scheduler, from `mpda eval`'s table.
fn eval(args: &[&str], schedulers: &[&str]) -> Vec<f64> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpda"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("eval")
        .args(args);
    for s in schedulers {
        cmd.args(["-s", s]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    schedulers
        .iter()
        .map(|s| {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(s))
                .unwrap_or_else(|| panic!("{s} missing in {stdout}"));
            line[s.len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_tpch_batch_model_beats_fair() {
    let jct = eval(
        &["--seeds", "20", "--first-seed", "40000000"],
        &["fair", "mpda[model=mpda-tpch-batch20]"],
    );
    eprintln!("batch 20: fair {:.2} s, mpda {:.2} s", jct[0], jct[1]);
    assert!(jct[1] < 0.99 * jct[0], "{jct:?}");
}

/// The key-query model (`PolicyConfig::key_dim`, decisions that stay cheap at many jobs)
/// beats fair on Decima's batch-20, where it was trained (its traces are not shipped).
#[test]
fn the_key_query_model_beats_fair() {
    let Some(traces) = common::decima_dir("the_key_query_model_beats_fair") else {
        return;
    };
    let jct = eval(
        &[
            "--traces",
            traces.to_str().unwrap(),
            "--batch",
            "20",
            "--executors",
            "50",
            "--seeds",
            "10",
            "--first-seed",
            "40000000",
        ],
        &["fair", "mpda[model=mpda-keyed-batch20]"],
    );
    eprintln!(
        "Decima batch 20: fair {:.2} s, keyed mpda {:.2} s",
        jct[0], jct[1]
    );
    assert!(jct[1] < 0.92 * jct[0], "{jct:?}");
}

#[test]
fn the_tpch_stream_model_beats_fair() {
    let jct = eval(
        &[
            "--config",
            "configs/tpch-stream200.toml",
            "--seeds",
            "3",
            "--first-seed",
            "40000000",
        ],
        &["fair", "mpda[model=mpda-tpch-stream25]"],
    );
    eprintln!("stream 1 + 200: fair {:.2} s, mpda {:.2} s", jct[0], jct[1]);
    assert!(jct[1] < 0.92 * jct[0], "{jct:?}");
}

/// The partition-branch model (`model::partition`) beats DSCS and AQE (as Spark ships it)
/// on the skewed k-means job it was trained for, on fresh seeds.
#[test]
fn the_partition_branch_model_beats_dscs_and_aqe() {
    let jct = eval(
        &["--config", "configs/dscs-kmeans.toml", "--seeds", "5"],
        &[
            "spark-fifo+dscs",
            "spark-fifo+aqe[partitions=80]",
            "mpda[model=mpda-partition-kmeans]",
        ],
    );
    eprintln!(
        "k-means: DSCS {:.1} s, AQE {:.1} s, mpda {:.1} s",
        jct[0], jct[1], jct[2]
    );
    assert!(jct[2] < 0.9 * jct[0].min(jct[1]), "{jct:?}");
}

/// The model trained on the heterogeneous cluster, with the re-offer rule it learned
/// under, beats fair and Spark's FAIR pools on its preset, on fresh seeds.
#[test]
fn the_hetero_cluster_model_beats_fair_and_spark_fair() {
    let jct = eval(
        &[
            "--config",
            "configs/spark/hetero-tpch.toml",
            "--seeds",
            "8",
            "--first-seed",
            "40000000",
        ],
        &[
            "fair",
            "spark-fair",
            "mpda[model=mpda-hetero-tpch,reoffer=stage]",
        ],
    );
    eprintln!(
        "hetero-tpch: fair {:.1} s, spark-fair {:.1} s, mpda {:.1} s",
        jct[0], jct[1], jct[2]
    );
    assert!(jct[2] < 0.9 * jct[0] && jct[2] < 0.97 * jct[1], "{jct:?}");
}
