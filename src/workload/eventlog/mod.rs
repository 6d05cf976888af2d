//! Importing Spark event logs (Spark 3.x and 4.x) into `mpda-trace/1` traces.
//!
//! The rules (grouping, skipped stages, waves, merging, which problems are errors and
//! which are warnings) are documented for users in `docs/trace-format.md`, "Importing
//! Spark event logs"; the code follows that section.
//!
//! Layers: [`input`] finds logs and decompresses them, [`parse`] turns one application's
//! lines into facts, [`groups`] builds one DAG per logical job, and this module merges
//! the runs of the same logical job from several applications and writes the traces.

pub mod groups;
pub mod input;
pub mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::TraceError;
use super::trace::{JobTrace, ShuffleStats, StageTrace, TraceFile, WaveSamples};
use crate::io::FileError;
pub use groups::{GroupCounts, GroupRun, RunStage};
pub use input::{Codec, LogInput, discover};

/// Errors name the file and, for a bad line, its line number, the event and the field,
/// so that a user can look at the offending line directly.
#[derive(Debug, Error)]
pub enum EventLogError {
    #[error(transparent)]
    File(#[from] crate::io::FileError),
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },
    #[error("{}:{line}: malformed JSON: {msg}", path.display())]
    Json {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    #[error("{}:{line}: {event}: field `{field}`: {msg}", path.display())]
    Field {
        path: PathBuf,
        line: u64,
        event: String,
        field: String,
        msg: String,
    },
    #[error(
        "group \"{group}\": the DAG in {} differs from the one in {}: {msg}",
        second.display(),
        first.display()
    )]
    Mismatch {
        group: String,
        first: PathBuf,
        second: PathBuf,
        msg: String,
    },
    #[error("{msg}")]
    Options { msg: String },
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// A problem that does not make the import wrong, reported and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub msg: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.msg),
            None => write!(f, "{}: {}", self.path.display(), self.msg),
        }
    }
}

/// The default grouping property: what `SparkContext.setJobGroup` sets.
pub const DEFAULT_GROUP_PROPERTY: &str = "spark.jobGroup.id";

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub size: String,
    pub prefix: String,
    pub group_property: String,
}

impl ImportOptions {
    pub fn new(size: &str) -> Self {
        Self {
            size: size.to_string(),
            prefix: "tpch".to_string(),
            group_property: DEFAULT_GROUP_PROPERTY.to_string(),
        }
    }
}

/// One imported logical job, ready to be written.
#[derive(Debug, Clone)]
pub struct ImportedJob {
    pub group: String,
    pub trace: JobTrace,
    /// Provenance, written as the trace's `source`.
    pub source: serde_json::Value,
    /// The runs merged into it: (source, application id, executor count).
    pub runs: Vec<(PathBuf, String, u32)>,
}

/// Application-level facts for the summary.
#[derive(Debug, Clone)]
pub struct AppSummary {
    pub path: PathBuf,
    pub app_id: String,
    pub spark_version: Option<String>,
    pub codecs: Vec<&'static str>,
    pub lines: u64,
    pub groups: usize,
}

#[derive(Debug, Clone)]
pub struct Import {
    pub jobs: Vec<ImportedJob>,
    pub apps: Vec<AppSummary>,
    pub warnings: Vec<Warning>,
    pub counts: GroupCounts,
    pub options: ImportOptions,
}

impl Import {
    /// What `mpda trace import` prints: a line per written trace (`files`, in job order),
    /// then the totals.
    pub fn summary(&self, files: &[PathBuf]) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (job, file) in self.jobs.iter().zip(files) {
            let keys: Vec<String> = job.runs.iter().map(|r| r.2.to_string()).collect();
            let _ = writeln!(
                out,
                "{}: group {}, {} stages, {} tasks, executors {} ({} run(s))",
                file.display(),
                job.group,
                job.trace.stages.len(),
                job.trace.num_tasks(),
                keys.join(","),
                job.runs.len()
            );
        }
        let versions: std::collections::BTreeSet<&str> = self
            .apps
            .iter()
            .filter_map(|a| a.spark_version.as_deref())
            .collect();
        let _ = writeln!(
            out,
            "imported {} group(s) from {} application(s) (Spark {}): {} stages, {} tasks, {} \
             task samples; {} job(s) without {} dropped, {} group(s) dropped, {} warning(s)",
            self.jobs.len(),
            self.apps.len(),
            versions.into_iter().collect::<Vec<_>>().join(", "),
            self.num_stages(),
            self.num_tasks(),
            self.num_samples(),
            self.counts.jobs_without_group,
            self.options.group_property,
            self.counts.groups_dropped,
            self.warnings.len()
        );
        out
    }

    pub fn num_stages(&self) -> usize {
        self.jobs.iter().map(|j| j.trace.stages.len()).sum()
    }

    pub fn num_tasks(&self) -> u64 {
        self.jobs.iter().map(|j| j.trace.num_tasks()).sum()
    }

    /// Task-duration samples across all executor counts (a stage measured in two runs
    /// has twice its task count in samples).
    pub fn num_samples(&self) -> usize {
        self.jobs
            .iter()
            .flat_map(|j| &j.trace.stages)
            .flat_map(|s| &s.samples)
            .map(|w| w.first_wave.len() + w.rest_wave.len())
            .sum()
    }
}

/// A label safe as a file name: anything but letters, digits, `.`, `_` and `-` becomes
/// `_` (a job group may be any string).
fn file_safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() || t.chars().all(|c| c == '.') {
        format!("_{t}")
    } else {
        t
    }
}

/// The query label of a group: `q3` becomes `3`, so that imported traces use the same
/// labels as Decima's (`--queries 3` selects both); other ids are kept.
pub fn query_label(group: &str) -> String {
    match group.strip_prefix('q').or_else(|| group.strip_prefix('Q')) {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
        _ => file_safe(group),
    }
}

/// Reads every input (log files, rolling folders, folders of logs), builds one DAG per
/// logical job and application, and merges the runs of each logical job into one trace
/// with one duration entry per executor count.
pub fn import(inputs: &[PathBuf], opts: &ImportOptions) -> Result<Import, EventLogError> {
    if opts.size.is_empty() || file_safe(&opts.size) != opts.size {
        return Err(EventLogError::Options {
            msg: format!(
                "--size \"{}\" must be a non-empty label of letters, digits, '.', '_' or '-'",
                opts.size
            ),
        });
    }
    if inputs.is_empty() {
        return Err(EventLogError::Options {
            msg: "no input event logs given".into(),
        });
    }
    let mut logs = Vec::new();
    for p in inputs {
        logs.extend(discover(p)?);
    }
    let mut warnings = Vec::new();
    let mut counts = GroupCounts::default();
    let mut apps = Vec::new();
    let mut runs: Vec<GroupRun> = Vec::new();
    let mut seen_apps: BTreeMap<String, PathBuf> = BTreeMap::new();
    for log in &logs {
        let app = parse::read_app(log, &opts.group_property, &mut warnings)?;
        if let Some(prev) = seen_apps.insert(app.app_id.clone(), log.path.clone()) {
            return Err(EventLogError::Input {
                path: log.path.clone(),
                msg: format!(
                    "application {} was already read from {}: give each log once",
                    app.app_id,
                    prev.display()
                ),
            });
        }
        let g = groups::extract_groups(&app, &opts.group_property, &mut warnings, &mut counts)?;
        apps.push(AppSummary {
            path: log.path.clone(),
            app_id: app.app_id.clone(),
            spark_version: app.spark_version.clone(),
            codecs: app.codecs.clone(),
            lines: app.lines,
            groups: g.len(),
        });
        runs.extend(g);
    }
    let jobs = merge(runs, opts)?;
    Ok(Import {
        jobs,
        apps,
        warnings,
        counts,
        options: opts.clone(),
    })
}

/// Where `b` differs from `a` when `b`'s stage `map[i]` stands for `a`'s stage `i`.
fn dag_difference(a: &GroupRun, b: &GroupRun, map: &[usize]) -> Option<String> {
    let mut inverse = vec![0u32; map.len()];
    for (i, &j) in map.iter().enumerate() {
        inverse[j] = i as u32;
    }
    for (i, x) in a.stages.iter().enumerate() {
        let y = &b.stages[map[i]];
        if x.num_tasks != y.num_tasks {
            return Some(format!(
                "stage {i} (Spark stage {} / {}) has {} tasks against {}",
                y.spark_stage_id, x.spark_stage_id, y.num_tasks, x.num_tasks
            ));
        }
        let mut parents: Vec<u32> = y.parents.iter().map(|&p| inverse[p as usize]).collect();
        parents.sort_unstable();
        if x.parents != parents {
            return Some(format!(
                "stage {i} (Spark stage {} / {}) has parents {:?} against {:?}",
                y.spark_stage_id, x.spark_stage_id, parents, x.parents
            ));
        }
    }
    None
}

/// Pairs the stages of `other` with those of `base`: `map[i]` is `other`'s stage for
/// `base`'s stage `i`. Spark numbers stages in the order its scheduler walks the
/// dependencies, which can differ between two runs of the same query, so stages are
/// paired by the creation order of their output RDDs (the same plan creates its RDDs in
/// the same order); where that pairing does not give the same DAG, by position.
fn match_stages(base: &GroupRun, other: &GroupRun) -> Result<Vec<usize>, String> {
    let n = base.stages.len();
    if other.stages.len() != n {
        return Err(format!("{} stages against {n}", other.stages.len()));
    }
    let by_rdd = |r: &GroupRun| {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by_key(|&i| (r.stages[i].output_rdd, r.stages[i].spark_stage_id));
        idx
    };
    let (ob, oo) = (by_rdd(base), by_rdd(other));
    let mut map = vec![0usize; n];
    for k in 0..n {
        map[ob[k]] = oo[k];
    }
    let Some(by_rdd_diff) = dag_difference(base, other, &map) else {
        return Ok(map);
    };
    let identity: Vec<usize> = (0..n).collect();
    match dag_difference(base, other, &identity) {
        None => Ok(identity),
        Some(_) => Err(by_rdd_diff),
    }
}

/// Merges runs of the same logical job: one trace per group, one duration entry per
/// executor count; runs with the same count pool their samples. The DAGs must agree.
pub fn merge(runs: Vec<GroupRun>, opts: &ImportOptions) -> Result<Vec<ImportedJob>, EventLogError> {
    let mut by_group: BTreeMap<String, Vec<GroupRun>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in runs {
        let label = query_label(&r.group);
        if !by_group.contains_key(&label) {
            order.push(label.clone());
        }
        by_group.entry(label).or_default().push(r);
    }
    // Natural order of labels: 2 before 10.
    order.sort_by_key(|l| (l.parse::<u64>().unwrap_or(u64::MAX), l.clone()));
    let mut out = Vec::with_capacity(order.len());
    for label in order {
        let group_runs = &by_group[&label];
        let base = &group_runs[0];
        for other in &group_runs[1..] {
            if other.group != base.group {
                return Err(EventLogError::Options {
                    msg: format!(
                        "groups \"{}\" ({}) and \"{}\" ({}) both map to query label \"{label}\"",
                        base.group,
                        base.source.display(),
                        other.group,
                        other.source.display()
                    ),
                });
            }
        }
        let mut maps = Vec::with_capacity(group_runs.len());
        for other in group_runs {
            maps.push(
                match_stages(base, other).map_err(|msg| EventLogError::Mismatch {
                    group: base.group.clone(),
                    first: base.source.clone(),
                    second: other.source.clone(),
                    msg,
                })?,
            );
        }
        let mut stages = Vec::with_capacity(base.stages.len());
        for (i, st) in base.stages.iter().enumerate() {
            let mut by_exec: BTreeMap<u32, WaveSamples> = BTreeMap::new();
            let mut shuffle = ShuffleStats::default();
            for (r, map) in group_runs.iter().zip(&maps) {
                let s = &r.stages[map[i]];
                let w = by_exec.entry(r.executors).or_insert_with(|| WaveSamples {
                    executors: r.executors,
                    first_wave: Vec::new(),
                    rest_wave: Vec::new(),
                    fresh: Vec::new(),
                });
                w.first_wave.extend_from_slice(&s.first_wave);
                w.rest_wave.extend_from_slice(&s.rest_wave);
                w.fresh.extend_from_slice(&s.fresh);
                shuffle.extend_from(&s.shuffle);
            }
            stages.push(StageTrace {
                num_tasks: st.num_tasks,
                parents: st.parents.clone(),
                samples: by_exec.into_values().collect(),
                spark_stage_id: Some(st.spark_stage_id),
                shuffle: Some(shuffle),
            });
        }
        let name = format!("{}-{}-{}", opts.prefix, opts.size, label);
        let trace = JobTrace::new(&base.source, name, opts.size.clone(), label.clone(), stages)?;
        let refs: Vec<&GroupRun> = group_runs.iter().collect();
        let source = provenance(&refs, &maps, opts);
        out.push(ImportedJob {
            group: base.group.clone(),
            trace,
            source,
            runs: group_runs
                .iter()
                .map(|r| (r.source.clone(), r.app_id.clone(), r.executors))
                .collect(),
        });
    }
    Ok(out)
}

fn provenance(runs: &[&GroupRun], maps: &[Vec<usize>], opts: &ImportOptions) -> serde_json::Value {
    let versions: BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r.spark_version.as_deref())
        .collect();
    serde_json::json!({
        "tool": format!("mpda trace import {}", env!("CARGO_PKG_VERSION")),
        "spark_versions": versions,
        "group_property": opts.group_property,
        "group": runs[0].group,
        "executor_counts": groups::executor_counts(runs),
        "apps": runs.iter().zip(maps).map(|(r, map)| serde_json::json!({
            "app_id": r.app_id,
            "app_name": r.app_name,
            "event_log": r.source.file_name().map(|n| n.to_string_lossy().to_string()),
            "executors": r.executors,
            "spark_version": r.spark_version,
            "spark_jobs": r.spark_jobs,
            "skipped_stages": r.skipped_stages,
            // This run's Spark stage id for each stage of the trace, in trace order.
            "spark_stage_ids": map.iter().map(|&j| r.stages[j].spark_stage_id).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "imported": today_utc(),
    })
}

/// Today's date in UTC as `YYYY-MM-DD` (civil-from-days, H. Hinnant's algorithm), to
/// avoid a date-time dependency for one field.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date((secs / 86_400) as i64)
}

fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes each job as `DIR/<size>/<query>.json` (or `.json.gz`), atomically, and removes
/// the same query's file with the other extension so that the folder never holds two
/// traces of one query. Returns the files written.
pub fn write_traces(
    import: &Import,
    out_dir: &Path,
    gzip: bool,
) -> Result<Vec<PathBuf>, EventLogError> {
    let dir = out_dir.join(&import.options.size);
    let mut written = Vec::with_capacity(import.jobs.len());
    for job in &import.jobs {
        let file = TraceFile::from_job(&job.trace, job.source.clone());
        let mut json = serde_json::to_vec(&file)
            .map_err(|e| FileError::on(&dir, "write")(std::io::Error::other(e)))?;
        json.push(b'\n');
        let stem = &job.trace.query;
        let (path, other) = if gzip {
            (
                dir.join(format!("{stem}.json.gz")),
                dir.join(format!("{stem}.json")),
            )
        } else {
            (
                dir.join(format!("{stem}.json")),
                dir.join(format!("{stem}.json.gz")),
            )
        };
        let write_err = FileError::on(&path, "write");
        let bytes = if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&json)
                .map_err(FileError::on(&path, "write"))?;
            enc.finish().map_err(FileError::on(&path, "write"))?
        } else {
            json
        };
        crate::io::write_atomic(&path, &bytes).map_err(write_err)?;
        if other.exists() {
            std::fs::remove_file(&other).map_err(FileError::on(&other, "remove"))?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_labels() {
        assert_eq!(query_label("q3"), "3");
        assert_eq!(query_label("q03"), "03");
        assert_eq!(query_label("Q12"), "12");
        assert_eq!(query_label("q3a"), "q3a");
        assert_eq!(query_label("etl/daily run"), "etl_daily_run");
        assert_eq!(query_label("job7"), "job7");
        assert_eq!(query_label(".."), "_..");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_780), "2026-11-23");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
