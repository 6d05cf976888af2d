//! The trace model: what one job looks like as measured on a real cluster.
//!
//! A trace is immutable once loaded and validated; episodes share it through `Arc` and
//! only keep their own runtime state. Two on-disk formats map onto this one model: the
//! project's own format (`mpda-trace/1`, see `docs/trace-format.md`) and Decima's JSON
//! conversion (see [`super::decima`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::TraceError;

/// Task-duration samples of one stage, measured in a run with `executors` executors.
///
/// The wave split follows Decima: `first_wave` holds the first task each executor ran in
/// the stage, `rest_wave` the later ones, and `fresh` the first-wave tasks of executors that
/// were new to the job (JVM warm-up included). As in Decima's data, `fresh` is a
/// sub-multiset of `first_wave`; the simulator removes it again before sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSamples {
    pub executors: u32,
    pub first_wave: Vec<u32>,
    pub rest_wave: Vec<u32>,
    pub fresh: Vec<u32>,
}

/// Per-task statistics from the event log, one entry per task of each run the stage was
/// measured in (runs one after the other, tasks in log order), kept so that duration
/// models can be fitted without the raw logs. The JSON key stays `shuffle` (its first four
/// arrays), so older traces load unchanged; the other arrays are absent there (empty).
/// Decima's engine reads none of it; Spark's engine reads the bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShuffleStats {
    #[serde(default)]
    pub read_bytes: Vec<u64>,
    #[serde(default)]
    pub read_records: Vec<u64>,
    #[serde(default)]
    pub write_bytes: Vec<u64>,
    #[serde(default)]
    pub write_records: Vec<u64>,
    /// `Launch Time` to `Finish Time`, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duration_ms: Vec<u32>,
    /// `Input Metrics.Bytes Read`: bytes read from storage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_bytes: Vec<u64>,
    /// `Output Metrics.Bytes Written`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_bytes: Vec<u64>,
    /// `Memory Bytes Spilled` and `Disk Bytes Spilled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_spill_bytes: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disk_spill_bytes: Vec<u64>,
    /// `JVM GC Time`, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gc_ms: Vec<u64>,
    /// `Peak Execution Memory`: the most execution memory the task held. From a run with
    /// memory to spare it is the task's working set, which Spark's engine uses for spill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peak_memory_bytes: Vec<u64>,
    /// `Task Info.Locality`: PROCESS_LOCAL, NODE_LOCAL, NO_PREF, RACK_LOCAL or ANY.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locality: Vec<String>,
    /// `Task Info.Host` and `Task Info.Executor ID`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor: Vec<String>,
}

impl ShuffleStats {
    /// Appends another run's tasks.
    pub fn extend_from(&mut self, o: &ShuffleStats) {
        self.read_bytes.extend_from_slice(&o.read_bytes);
        self.read_records.extend_from_slice(&o.read_records);
        self.write_bytes.extend_from_slice(&o.write_bytes);
        self.write_records.extend_from_slice(&o.write_records);
        self.duration_ms.extend_from_slice(&o.duration_ms);
        self.input_bytes.extend_from_slice(&o.input_bytes);
        self.output_bytes.extend_from_slice(&o.output_bytes);
        self.memory_spill_bytes
            .extend_from_slice(&o.memory_spill_bytes);
        self.disk_spill_bytes.extend_from_slice(&o.disk_spill_bytes);
        self.gc_ms.extend_from_slice(&o.gc_ms);
        self.peak_memory_bytes
            .extend_from_slice(&o.peak_memory_bytes);
        self.locality.extend_from_slice(&o.locality);
        self.host.extend_from_slice(&o.host);
        self.executor.extend_from_slice(&o.executor);
    }

    /// Each array's name and length, for validation.
    pub fn lengths(&self) -> [(&'static str, usize); 14] {
        [
            ("read_bytes", self.read_bytes.len()),
            ("read_records", self.read_records.len()),
            ("write_bytes", self.write_bytes.len()),
            ("write_records", self.write_records.len()),
            ("duration_ms", self.duration_ms.len()),
            ("input_bytes", self.input_bytes.len()),
            ("output_bytes", self.output_bytes.len()),
            ("memory_spill_bytes", self.memory_spill_bytes.len()),
            ("disk_spill_bytes", self.disk_spill_bytes.len()),
            ("gc_ms", self.gc_ms.len()),
            ("peak_memory_bytes", self.peak_memory_bytes.len()),
            ("locality", self.locality.len()),
            ("host", self.host.len()),
            ("executor", self.executor.len()),
        ]
    }
}

/// One stage of a job: a set of identical parallel tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTrace {
    pub num_tasks: u32,
    /// Indices of the stages that must finish before this one can run.
    pub parents: Vec<u32>,
    /// Samples sorted by ascending executor count, at most one entry per count.
    pub samples: Vec<WaveSamples>,
    /// Spark's stage id, when the trace comes from an event log.
    pub spark_stage_id: Option<u64>,
    pub shuffle: Option<ShuffleStats>,
}

/// A job: a DAG of stages, identified by a unique name and labelled by input size and
/// query so that workloads can sample "query q at size s".
#[derive(Debug, Clone, PartialEq)]
pub struct JobTrace {
    pub name: String,
    pub size: String,
    pub query: String,
    pub stages: Vec<StageTrace>,
    /// `children[s]`: stages that have `s` as a parent (derived, for fast traversal).
    pub children: Vec<Vec<u32>>,
    /// Every `[parent, child]` edge, child after child, each child's parents in order
    /// (derived): an observation copies a job's edges from one allocation instead of
    /// visiting every stage's parent list (over a third of an observation's time at 400
    /// jobs).
    pub edges: Vec<[u32; 2]>,
    /// `pools[s]`: the sampling pools of stage `s` (derived once, see [`StagePools`]).
    pub pools: Vec<StagePools>,
}

impl JobTrace {
    /// Builds a job from stages and checks every invariant the simulator relies on.
    /// `file` is only used to name the source in errors.
    pub fn new(
        file: &Path,
        name: String,
        size: String,
        query: String,
        stages: Vec<StageTrace>,
    ) -> Result<Self, TraceError> {
        validate_stages(file, &stages)?;
        let mut children = vec![Vec::new(); stages.len()];
        for (s, stage) in stages.iter().enumerate() {
            for &p in &stage.parents {
                children[p as usize].push(s as u32);
            }
        }
        let pools = stages.iter().map(StagePools::new).collect();
        let edges = stages
            .iter()
            .enumerate()
            .flat_map(|(c, st)| st.parents.iter().map(move |&p| [p, c as u32]))
            .collect();
        Ok(Self {
            name,
            size,
            query,
            stages,
            children,
            edges,
            pools,
        })
    }

    pub fn num_tasks(&self) -> u64 {
        self.stages.iter().map(|s| u64::from(s.num_tasks)).sum()
    }
}

/// The duration samples of one stage after Decima's pre-processing, laid out flat so that
/// sampling touches one allocation.
///
/// Decima, once per job: (1) removes each fresh duration from the first wave of the same
/// executor key (multiset difference, exact equality), because fresh tasks are first-wave
/// tasks that also paid the executor's warm-up; (2) walks the keys in ascending order and
/// replaces an empty cleaned first wave with the previous key's list; (3) takes the mean of
/// all pooled values as the stage's "rough duration" (a feature, and a work estimate).
#[derive(Debug, Clone, PartialEq)]
pub struct StagePools {
    /// Executor counts of the measurements, ascending.
    pub keys: Vec<u32>,
    values: Vec<u32>,
    /// Per key: start of first wave, rest wave, fresh, and end, in `values`.
    bounds: Vec<[u32; 4]>,
    pub rough_ms: f64,
    /// Smallest value in any pool: a lower bound on any task of the stage.
    pub min_ms: u32,
}

impl StagePools {
    pub fn new(stage: &StageTrace) -> Self {
        let mut values = Vec::new();
        let mut bounds = Vec::with_capacity(stage.samples.len());
        let mut prev_first: Option<(usize, usize)> = None;
        for w in &stage.samples {
            let start = values.len();
            let mut fresh_left: Vec<u32> = w.fresh.clone();
            for &d in &w.first_wave {
                if let Some(i) = fresh_left.iter().position(|&f| f == d) {
                    fresh_left.swap_remove(i);
                } else {
                    values.push(d);
                }
            }
            if values.len() == start
                && let Some((a, b)) = prev_first
            {
                values.extend_from_within(a..b);
            }
            prev_first = Some((start, values.len()));
            let rest = values.len();
            values.extend_from_slice(&w.rest_wave);
            let fresh = values.len();
            values.extend_from_slice(&w.fresh);
            bounds.push([start as u32, rest as u32, fresh as u32, values.len() as u32]);
        }
        let rough_ms = if values.is_empty() {
            0.0
        } else {
            values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
        };
        let min_ms = values.iter().copied().min().unwrap_or(0);
        Self {
            keys: stage.samples.iter().map(|w| w.executors).collect(),
            values,
            bounds,
            rough_ms,
            min_ms,
        }
    }

    /// Cleaned first-wave samples of key index `k`.
    pub fn first(&self, k: usize) -> &[u32] {
        let b = self.bounds[k];
        &self.values[b[0] as usize..b[1] as usize]
    }

    pub fn rest(&self, k: usize) -> &[u32] {
        let b = self.bounds[k];
        &self.values[b[1] as usize..b[2] as usize]
    }

    pub fn fresh(&self, k: usize) -> &[u32] {
        let b = self.bounds[k];
        &self.values[b[2] as usize..b[3] as usize]
    }

    /// Index of executor key `key`, or of the largest key when the stage has no
    /// measurement at `key` (Decima's rule, e.g. q6 at 2g lacks keys above 13).
    pub fn key_index(&self, key: u32) -> usize {
        self.keys.binary_search(&key).unwrap_or(self.keys.len() - 1)
    }
}

/// Most stages in one job (TPC-H: at most 18 here, Decima's traces fewer than 30).
pub const MAX_STAGES: usize = 10_000;
/// Most tasks in one stage (ours: at most 200).
pub const MAX_TASKS: u32 = 1_000_000;
/// Longest task duration, ms: 10^9 (11.6 days). With the warm-up delay (at most a day) it
/// stays far below `u32::MAX`, and a job's work (stages x tasks x duration, below 10^19 ms)
/// keeps the weighted-fair weights finite.
pub const MAX_DURATION_MS: u32 = 1_000_000_000;
/// Largest executor count a measurement may be keyed by (the simulator's executor bound).
pub const MAX_EXECUTOR_KEY: u32 = 100_000;

fn validate_stages(file: &Path, stages: &[StageTrace]) -> Result<(), TraceError> {
    if stages.is_empty() {
        return Err(TraceError::invalid(
            file,
            "stages",
            "a job needs at least one stage",
        ));
    }
    if stages.len() > MAX_STAGES {
        return Err(TraceError::invalid(
            file,
            "stages",
            format!(
                "must have at most {MAX_STAGES} stages, found {}",
                stages.len()
            ),
        ));
    }
    let n = stages.len() as u32;
    for (s, stage) in stages.iter().enumerate() {
        if stage.num_tasks == 0 {
            return Err(TraceError::invalid(
                file,
                format!("stages[{s}].num_tasks"),
                "a stage must have at least one task (found 0)",
            ));
        }
        if stage.num_tasks > MAX_TASKS {
            return Err(TraceError::invalid(
                file,
                format!("stages[{s}].num_tasks"),
                format!("must be in 1..={MAX_TASKS}, found {}", stage.num_tasks),
            ));
        }
        if let Some(sh) = &stage.shuffle {
            // Per-task arrays: one entry per task of each run the stage was measured in. The
            // four shuffle arrays are always there; the others are absent (empty) in traces
            // imported before they existed.
            let arrays = sh.lengths();
            let tasks = stage.num_tasks as usize;
            if let Some((name, len)) = arrays.iter().enumerate().find_map(|(i, &(name, len))| {
                let absent = i >= 4 && len == 0;
                (!absent && (len != arrays[0].1 || len % tasks != 0)).then_some((name, len))
            }) {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].shuffle.{name}"),
                    format!(
                        "per-task arrays must all have the same length, a multiple of num_tasks ({tasks}); found {len} (read_bytes has {})",
                        arrays[0].1
                    ),
                ));
            }
        }
        for (i, &p) in stage.parents.iter().enumerate() {
            if p >= n {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].parents[{i}]"),
                    format!(
                        "edge from missing stage {p} (the job has stages 0..{})",
                        n - 1
                    ),
                ));
            }
            if p == s as u32 {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].parents[{i}]"),
                    format!("cyclic graph: stage {s} is its own parent"),
                ));
            }
            if stage.parents[..i].contains(&p) {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].parents[{i}]"),
                    format!("duplicate parent {p}"),
                ));
            }
        }
        if stage.samples.is_empty() {
            return Err(TraceError::invalid(
                file,
                format!("stages[{s}].durations"),
                "missing wave: no duration samples at all",
            ));
        }
        for (k, w) in stage.samples.iter().enumerate() {
            if w.executors == 0 || w.executors > MAX_EXECUTOR_KEY {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].durations[{k}].executors"),
                    format!(
                        "executor count must be in 1..={MAX_EXECUTOR_KEY}, found {}",
                        w.executors
                    ),
                ));
            }
            if k > 0 && stage.samples[k - 1].executors >= w.executors {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].durations[{k}].executors"),
                    "executor counts must be unique and ascending",
                ));
            }
            // The loaders check this per value with its exact path; a trace built in code
            // (the event-log importer) is checked here.
            for (wave, values) in [
                ("first_wave", &w.first_wave),
                ("rest_wave", &w.rest_wave),
                ("fresh", &w.fresh),
            ] {
                if let Some(i) = values.iter().position(|&d| d > MAX_DURATION_MS) {
                    return Err(TraceError::invalid(
                        file,
                        format!("stages[{s}].durations[{k}].{wave}[{i}]"),
                        format!(
                            "duration {} ms is too large (at most {MAX_DURATION_MS})",
                            values[i]
                        ),
                    ));
                }
            }
            if w.first_wave.is_empty() && w.fresh.is_empty() {
                return Err(TraceError::invalid(
                    file,
                    format!("stages[{s}].durations[{k}]"),
                    format!(
                        "missing wave: executor key {} has neither first_wave nor fresh samples",
                        w.executors
                    ),
                ));
            }
        }
    }
    if let Some(cycle_at) = find_cycle(stages) {
        return Err(TraceError::invalid(
            file,
            format!("stages[{cycle_at}].parents"),
            format!("cyclic graph: stage {cycle_at} depends on itself through its parents"),
        ));
    }
    Ok(())
}

/// Returns a stage on a cycle, if the parent relation has one.
fn find_cycle(stages: &[StageTrace]) -> Option<usize> {
    let mut graph = petgraph::graphmap::DiGraphMap::<u32, ()>::new();
    for s in 0..stages.len() as u32 {
        graph.add_node(s);
    }
    for (s, stage) in stages.iter().enumerate() {
        for &p in &stage.parents {
            graph.add_edge(p, s as u32, ());
        }
    }
    petgraph::algo::toposort(&graph, None)
        .err()
        .map(|c| c.node_id() as usize)
}

// ---------------------------------------------------------------------------------------
// The project's own on-disk format.

pub const FORMAT_TAG: &str = "mpda-trace/1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    pub format: String,
    pub name: String,
    pub size: String,
    pub query: String,
    /// Free-form provenance (tool, Spark version, settings, machine, date).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub source: serde_json::Value,
    pub stages: Vec<StageFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageFile {
    pub num_tasks: i64,
    #[serde(default)]
    pub parents: Vec<i64>,
    pub durations: Vec<WaveFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_stage_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle: Option<ShuffleStats>,
}

/// Durations are read as signed integers so that a negative value gets a precise error
/// instead of serde's generic "invalid value".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveFile {
    pub executors: i64,
    pub first_wave: Vec<i64>,
    pub rest_wave: Vec<i64>,
    pub fresh: Vec<i64>,
}

/// Checks one list of durations (ms) and converts it.
pub(crate) fn durations(file: &Path, field: &str, values: &[i64]) -> Result<Vec<u32>, TraceError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v < 0 {
                Err(TraceError::invalid(
                    file,
                    format!("{field}[{i}]"),
                    format!("negative duration {v} ms"),
                ))
            } else {
                u32::try_from(v)
                    .ok()
                    .filter(|&d| d <= MAX_DURATION_MS)
                    .ok_or_else(|| {
                        TraceError::invalid(
                            file,
                            format!("{field}[{i}]"),
                            format!("duration {v} ms is too large (at most {MAX_DURATION_MS})"),
                        )
                    })
            }
        })
        .collect()
}

pub(crate) fn non_negative_u32(file: &Path, field: String, v: i64) -> Result<u32, TraceError> {
    u32::try_from(v).map_err(|_| {
        TraceError::invalid(
            file,
            field,
            format!("must be a non-negative 32-bit integer, found {v}"),
        )
    })
}

impl TraceFile {
    pub fn into_job(self, file: &Path) -> Result<JobTrace, TraceError> {
        if self.format != FORMAT_TAG {
            return Err(TraceError::invalid(
                file,
                "format",
                format!("expected \"{FORMAT_TAG}\", found \"{}\"", self.format),
            ));
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (s, st) in self.stages.into_iter().enumerate() {
            let num_tasks = non_negative_u32(file, format!("stages[{s}].num_tasks"), st.num_tasks)?;
            let parents = st
                .parents
                .iter()
                .enumerate()
                .map(|(i, &p)| non_negative_u32(file, format!("stages[{s}].parents[{i}]"), p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut samples = Vec::with_capacity(st.durations.len());
            for (k, w) in st.durations.iter().enumerate() {
                let base = format!("stages[{s}].durations[{k}]");
                samples.push(WaveSamples {
                    executors: non_negative_u32(file, format!("{base}.executors"), w.executors)?,
                    first_wave: durations(file, &format!("{base}.first_wave"), &w.first_wave)?,
                    rest_wave: durations(file, &format!("{base}.rest_wave"), &w.rest_wave)?,
                    fresh: durations(file, &format!("{base}.fresh"), &w.fresh)?,
                });
            }
            stages.push(StageTrace {
                num_tasks,
                parents,
                samples,
                spark_stage_id: st.spark_stage_id,
                shuffle: st.shuffle,
            });
        }
        JobTrace::new(file, self.name, self.size, self.query, stages)
    }

    pub fn from_job(job: &JobTrace, source: serde_json::Value) -> Self {
        let to_i64 = |v: &[u32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
        Self {
            format: FORMAT_TAG.to_string(),
            name: job.name.clone(),
            size: job.size.clone(),
            query: job.query.clone(),
            source,
            stages: job
                .stages
                .iter()
                .map(|s| StageFile {
                    num_tasks: i64::from(s.num_tasks),
                    parents: s.parents.iter().map(|&p| i64::from(p)).collect(),
                    durations: s
                        .samples
                        .iter()
                        .map(|w| WaveFile {
                            executors: i64::from(w.executors),
                            first_wave: to_i64(&w.first_wave),
                            rest_wave: to_i64(&w.rest_wave),
                            fresh: to_i64(&w.fresh),
                        })
                        .collect(),
                    spark_stage_id: s.spark_stage_id,
                    shuffle: s.shuffle.clone(),
                })
                .collect(),
        }
    }
}
