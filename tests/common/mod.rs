//! Shared helpers for integration tests: locating Decima's traces, and writing small
//! synthetic traces.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::json;

/// `../shared/decima-tpch`, if present. Tests that need it print a clear SKIPPED line
/// and return when it is absent (the data has no licence and is never committed).
pub fn decima_dir(test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/decima-tpch");
    if p.join("reference-episodes.json").is_file() {
        Some(p)
    } else {
        // Written to the raw handle, not eprintln!, so that libtest's capture does not hide it.
        let msg = format!(
            "SKIPPED {test}: {} not found (Decima's traces are not shipped with mpda)\n",
            p.display()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        None
    }
}

/// A valid job in Decima's JSON conversion format: a diamond 0 -> {1, 2} -> 3.
pub fn decima_job(size: &str, query: u32) -> serde_json::Value {
    let stage = |i: usize, tasks: usize| {
        let first: Vec<u32> = (0..tasks.min(3)).map(|k| 1000 + 100 * k as u32).collect();
        let rest: Vec<u32> = (0..tasks.saturating_sub(3))
            .map(|k| 500 + 10 * k as u32)
            .collect();
        json!({
            "node_idx": i,
            "num_tasks": tasks,
            "parents": [], "children": [],
            "task_durations": {
                "first_wave": {"2": first.clone(), "5": first.clone()},
                "rest_wave": {"2": rest.clone(), "5": rest},
                "fresh_durations": {"2": [first[0]], "5": []}
            }
        })
    };
    json!({
        "schema_version": 1,
        "size": size,
        "query": query,
        "name": format!("tpch-{size}-{query}"),
        "num_stages": 4,
        "adjacency_matrix": [],
        "edges": [[0, 1], [0, 2], [1, 3], [2, 3]],
        "stages": [stage(0, 6), stage(1, 4), stage(2, 2), stage(3, 1)]
    })
}

/// Writes `value` as `dir/<size>/q<query>.json` and returns the path.
pub fn write_trace(dir: &Path, size: &str, query: u32, value: &serde_json::Value) -> PathBuf {
    let sub = dir.join(size);
    std::fs::create_dir_all(&sub).unwrap();
    let p = sub.join(format!("q{query}.json"));
    std::fs::write(&p, serde_json::to_vec(value).unwrap()).unwrap();
    p
}
