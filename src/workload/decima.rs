//! Loader for the JSON conversion of Decima's TPC-H traces (`<size>/q<N>.json`).
//!
//! The loader reads the file's `edges` list (not the redundant `adjacency_matrix`,
//! `parents` or `children`) and the three untouched duration maps. Decima's own
//! pre-processing (removing fresh durations from the first wave, filling empty keys) is
//! done by the simulator's duration model, so the trace keeps the raw measurements.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::TraceError;
use super::trace::{JobTrace, StageTrace, WaveSamples, durations, non_negative_u32};

#[derive(Debug, Deserialize)]
pub struct DecimaJob {
    pub schema_version: u32,
    pub size: String,
    pub query: u32,
    pub name: String,
    pub num_stages: usize,
    pub edges: Vec<[i64; 2]>,
    pub stages: Vec<DecimaStage>,
}

#[derive(Debug, Deserialize)]
pub struct DecimaStage {
    pub node_idx: usize,
    pub num_tasks: i64,
    pub task_durations: DecimaDurations,
}

#[derive(Debug, Deserialize)]
pub struct DecimaDurations {
    pub first_wave: BTreeMap<String, Vec<i64>>,
    pub rest_wave: BTreeMap<String, Vec<i64>>,
    pub fresh_durations: BTreeMap<String, Vec<i64>>,
}

impl DecimaJob {
    pub fn into_job(self, file: &Path) -> Result<JobTrace, TraceError> {
        if self.schema_version != 1 {
            return Err(TraceError::invalid(
                file,
                "schema_version",
                format!("unsupported version {} (expected 1)", self.schema_version),
            ));
        }
        if self.num_stages != self.stages.len() {
            return Err(TraceError::invalid(
                file,
                "num_stages",
                format!(
                    "says {} but `stages` has {}",
                    self.num_stages,
                    self.stages.len()
                ),
            ));
        }
        let n = self.stages.len() as i64;
        let mut parents = vec![Vec::new(); self.stages.len()];
        for (i, &[from, to]) in self.edges.iter().enumerate() {
            for end in [from, to] {
                if end < 0 || end >= n {
                    return Err(TraceError::invalid(
                        file,
                        format!("edges[{i}]"),
                        format!(
                            "edge {from} -> {to} refers to missing stage {end} (the job has {n} stages)"
                        ),
                    ));
                }
            }
            parents[to as usize].push(from as u32);
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (s, (st, parents)) in self.stages.into_iter().zip(parents).enumerate() {
            if st.node_idx != s {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].node_idx"),
                    format!("is {} but must equal the stage's position {s}", st.node_idx),
                ));
            }
            let num_tasks = non_negative_u32(file, format!("stages[{s}].num_tasks"), st.num_tasks)?;
            let samples = wave_samples(file, s, &st.task_durations)?;
            stages.push(StageTrace {
                num_tasks,
                parents,
                samples,
                spark_stage_id: None,
                shuffle: None,
            });
        }
        JobTrace::new(file, self.name, self.size, self.query.to_string(), stages)
    }
}

/// Zips the three per-wave maps into per-executor-count samples. The three maps must have
/// the same keys: a key present in one wave but not in another is a missing wave.
fn wave_samples(
    file: &Path,
    s: usize,
    d: &DecimaDurations,
) -> Result<Vec<WaveSamples>, TraceError> {
    let waves = [
        ("first_wave", &d.first_wave),
        ("rest_wave", &d.rest_wave),
        ("fresh_durations", &d.fresh_durations),
    ];
    for (name, map) in waves {
        for (other, other_map) in waves {
            if let Some(key) = map.keys().find(|k| !other_map.contains_key(*k)) {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].task_durations.{other}"),
                    format!("missing wave: executor key \"{key}\" is in {name} but not in {other}"),
                ));
            }
        }
    }
    let mut samples = Vec::with_capacity(d.first_wave.len());
    for (key, first) in &d.first_wave {
        let base = format!("stages[{s}].task_durations");
        let executors: u32 = key.parse().map_err(|_| {
            TraceError::invalid(
                file,
                format!("{base}.first_wave"),
                format!("executor key \"{key}\" is not a non-negative integer"),
            )
        })?;
        samples.push(WaveSamples {
            executors,
            first_wave: durations(file, &format!("{base}.first_wave.\"{key}\""), first)?,
            rest_wave: durations(
                file,
                &format!("{base}.rest_wave.\"{key}\""),
                &d.rest_wave[key],
            )?,
            fresh: durations(
                file,
                &format!("{base}.fresh_durations.\"{key}\""),
                &d.fresh_durations[key],
            )?,
        });
    }
    samples.sort_by_key(|w| w.executors);
    Ok(samples)
}
