//! Fidelity against decima-sim: the job sequences are reproduced exactly, and the
//! heuristics' JCTs match the reference simulator's within 5% over the reference seeds.
//! Needs `../shared/decima-tpch`; says SKIPPED when it is absent.

mod common;

use mpda::eval::{self, SchedulerFactory};
use mpda::sched::SchedulerSpec;
use mpda::sim::SimConfig;
use mpda::workload::Episode;
use mpda::workload::TraceLibrary;
use mpda::workload::arrivals::{ArrivalProcess, JobMix, Replay};

const SIZES: [&str; 7] = ["2g", "5g", "10g", "20g", "50g", "80g", "100g"];

fn decima_mix() -> JobMix {
    JobMix {
        sizes: SIZES.iter().map(|s| s.to_string()).collect(),
        queries: (1..=22).map(|q| q.to_string()).collect(),
    }
}

#[test]
fn job_sequences_match_decima_exactly() {
    let Some(dir) = common::decima_dir("job_sequences_match_decima_exactly") else {
        return;
    };
    let lib = TraceLibrary::load_dir(&dir).unwrap();
    let file = dir.join("reference-episodes.json");
    for (scenario, process) in [
        ("batch20", ArrivalProcess::Batch { jobs: 20 }),
        (
            "stream200",
            ArrivalProcess::Poisson {
                init_jobs: 1,
                stream_jobs: 200,
                mean_interval_ms: 25_000.0,
                batch_jobs: 1,
            },
        ),
    ] {
        let replay = Replay::load(&file, scenario, &lib).unwrap();
        for (ep, seq) in replay.episodes.iter().zip(&replay.sequences) {
            let ours = process.generate(&lib, &decima_mix(), ep.env_seed);
            let ours: Vec<(&str, u64)> = ours
                .iter()
                .map(|a| (a.job.name.as_str(), a.arrival_ms))
                .collect();
            let theirs: Vec<(&str, u64)> = seq
                .iter()
                .map(|a| (a.job.name.as_str(), a.arrival_ms))
                .collect();
            assert_eq!(ours, theirs, "{scenario} seed {}", ep.env_seed);
        }
    }
}

struct Fidelity {
    ours: f64,
    reference: f64,
    correlation: f64,
    exec_moves: (f64, f64),
}

fn compare(scenario: &str, ours: &str, theirs: &str) -> Option<Fidelity> {
    let dir = common::decima_dir(&format!("fidelity {scenario} {ours}"))?;
    let lib = TraceLibrary::load_dir(&dir).unwrap();
    let replay = Replay::load(&dir.join("reference-episodes.json"), scenario, &lib).unwrap();
    let episodes: Vec<Episode> = replay
        .episodes
        .iter()
        .zip(&replay.sequences)
        .map(|(e, jobs)| Episode {
            seed: e.env_seed,
            jobs: jobs.clone(),
        })
        .collect();
    let cfg = SimConfig {
        executors: replay.exec_cap.unwrap(),
        ..SimConfig::default()
    };
    let spec = SchedulerSpec::parse(ours).unwrap();
    let r = eval::evaluate(&cfg, &[&spec as &dyn SchedulerFactory], &episodes, &|| {}).unwrap();
    let a: Vec<f64> = r[0].episodes.iter().map(|e| e.avg_jct_s).collect();
    let b: Vec<f64> = replay
        .episodes
        .iter()
        .map(|e| e.results[theirs]["avg_jct_s"].as_f64().unwrap())
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&a), mean(&b));
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let sd = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>().sqrt();
    let moves: Vec<f64> = r[0].episodes.iter().map(|e| e.events.exec as f64).collect();
    let ref_moves: Vec<f64> = replay
        .episodes
        .iter()
        .map(|e| e.results[theirs]["sim_events"]["exec"].as_f64().unwrap())
        .collect();
    let f = Fidelity {
        ours: ma,
        reference: mb,
        correlation: cov / (sd(&a, ma) * sd(&b, mb)),
        exec_moves: (mean(&moves), mean(&ref_moves)),
    };
    println!(
        "{scenario} {ours} vs {theirs}: mean avg JCT {:.2} s vs {:.2} s (ratio {:.4}), per-seed correlation {:.4}, executor moves {:.1} vs {:.1}",
        f.ours,
        f.reference,
        f.ours / f.reference,
        f.correlation,
        f.exec_moves.0,
        f.exec_moves.1
    );
    Some(f)
}

fn assert_within_5_percent(scenario: &str, ours: &str, theirs: &str) {
    if let Some(f) = compare(scenario, ours, theirs) {
        let rel = (f.ours / f.reference - 1.0).abs();
        assert!(
            rel <= 0.05,
            "{scenario} {ours}: {:.2} vs reference {:.2}",
            f.ours,
            f.reference
        );
        assert!(
            f.correlation > 0.9,
            "{scenario} {ours}: per-seed correlation {}",
            f.correlation
        );
        let moves = (f.exec_moves.0 / f.exec_moves.1 - 1.0).abs();
        assert!(
            moves <= 0.05,
            "{scenario} {ours}: executor moves {:?}",
            f.exec_moves
        );
    }
}

#[test]
fn fair_share_batch20_matches_reference() {
    assert_within_5_percent("batch20", "fair", "dynamic_partition");
}

#[test]
fn fair_share_stream200_matches_reference() {
    assert_within_5_percent("stream200", "fair", "dynamic_partition");
}

#[test]
fn fifo_matches_reference_spark_fifo() {
    assert_within_5_percent("batch20", "fifo[cumulative=true]", "spark_fifo");
    assert_within_5_percent("stream200", "fifo[cumulative=true]", "spark_fifo");
    assert_within_5_percent("batch20", "fifo", "spark_fifo");
    assert_within_5_percent("stream200", "fifo", "spark_fifo");
}
