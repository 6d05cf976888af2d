//! Reading one application's event log into the few facts the importer needs.
//!
//! Each line is parsed exactly once: the event name is read from the line's start
//! (Spark's JSON writer always puts `"Event"` first; other lines fall back to a full
//! parse), events we use are deserialised into small typed structs that skip every
//! other field, and all other lines are only checked for valid JSON. The 44 SF1 TPC-H
//! logs of one measurement (300 MB, 37,562 task lines) import in about a second, reading
//! one line at a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::input::{self, Codec, LogInput};
use super::{EventLogError, Warning};

/// What one stage looked like when a job first listed it.
#[derive(Debug, Clone, Deserialize)]
pub struct StageInfo {
    #[serde(rename = "Stage ID")]
    pub stage_id: u64,
    #[serde(rename = "Stage Attempt ID", default)]
    pub attempt: u32,
    #[serde(rename = "Stage Name", default)]
    pub name: String,
    #[serde(rename = "Number of Tasks")]
    pub num_tasks: u32,
    #[serde(rename = "Parent IDs", default)]
    pub parents: Vec<u64>,
    #[serde(rename = "RDD Info", default)]
    pub rdds: Vec<RddInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RddInfo {
    #[serde(rename = "RDD ID")]
    pub rdd_id: u64,
}

impl StageInfo {
    /// The stage's own output RDD: Spark lists it first, before its narrow ancestors.
    pub fn output_rdd(&self) -> Option<u64> {
        self.rdds.first().map(|r| r.rdd_id)
    }
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub job_id: u64,
    /// The grouping property's value, if the job has it.
    pub group: Option<String>,
    pub stages: Vec<u64>,
    /// Executors alive when the job was submitted.
    pub executors_alive: u32,
    /// Where its `JobStart` is, for warnings about the job.
    pub line: u64,
    pub file: PathBuf,
    /// `Some(true)` for `JobSucceeded`, `Some(false)` for a failure, `None` if no
    /// `JobEnd` was logged (the log stops before the job ended).
    pub succeeded: Option<bool>,
    pub end_result: String,
    /// `Submission Time` of its `JobStart` and `Completion Time` of its `JobEnd`, Unix ms
    /// (what a live run's job completion times are read from).
    pub submit_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskRecord {
    pub task_id: u64,
    pub index: u32,
    pub stage_attempt: u32,
    pub success: bool,
    pub launch_ms: u64,
    pub duration_ms: u32,
    pub executor: String,
    pub read_bytes: u64,
    pub read_records: u64,
    pub write_bytes: u64,
    pub write_records: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub memory_spill_bytes: u64,
    pub disk_spill_bytes: u64,
    pub gc_ms: u64,
    /// `Peak Execution Memory`: the most execution memory the task held.
    pub peak_memory_bytes: u64,
    /// `Task Info.Locality` (empty if the log has none).
    pub locality: String,
    pub host: String,
    /// The task had no `Task Metrics`: its shuffle statistics are zeros.
    pub no_metrics: bool,
}

/// The facts of one application, as read from its log.
#[derive(Debug, Default)]
pub struct AppLog {
    pub path: PathBuf,
    pub app_id: String,
    pub app_name: Option<String>,
    pub spark_version: Option<String>,
    /// Codecs of the files read (one per part).
    pub codecs: Vec<&'static str>,
    pub jobs: Vec<JobRecord>,
    /// Each stage's info from the first `JobStart` that lists it, and that job's id.
    pub stage_info: HashMap<u64, (StageInfo, u64)>,
    /// Stages that were submitted, with their last attempt id and its task count.
    pub submitted: HashMap<u64, (u32, u32)>,
    /// `TaskEnd`s by stage id, in log order.
    pub tasks: HashMap<u64, Vec<TaskRecord>>,
    /// Whether the grouping property appears on any job.
    pub property_seen: bool,
    pub lines: u64,
    pub events: u64,
    /// Events of types that are not Spark's own, by type: counted and skipped.
    pub unknown_events: BTreeMap<String, u64>,
    /// `ApplicationStart` and `ApplicationEnd` timestamps, Unix ms.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    /// Every executor the application had, in the order they were added, with the times
    /// they were added and removed (Unix ms): a live run's executors-per-application chart.
    pub executor_spans: Vec<ExecutorSpan>,
}

/// One executor's life in an application, from `ExecutorAdded` to `ExecutorRemoved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSpan {
    pub id: String,
    pub added_ms: u64,
    /// `None` while the log shows it alive (it ended with the application).
    pub removed_ms: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// The events we read. Unknown fields are ignored: every Spark version adds some.

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "Event")]
    event: String,
}

#[derive(Deserialize)]
struct LogStart {
    #[serde(rename = "Spark Version")]
    spark_version: String,
}

#[derive(Deserialize)]
struct AppStart {
    #[serde(rename = "App Name", default)]
    app_name: Option<String>,
    #[serde(rename = "App ID", default)]
    app_id: Option<String>,
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<u64>,
}

#[derive(Deserialize)]
struct ExecutorEvent {
    #[serde(rename = "Executor ID")]
    executor_id: String,
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<u64>,
}

#[derive(Deserialize)]
struct AppEnd {
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<u64>,
}

#[derive(Deserialize)]
struct JobStart {
    #[serde(rename = "Job ID")]
    job_id: u64,
    #[serde(rename = "Stage Infos")]
    stage_infos: Vec<StageInfo>,
    #[serde(rename = "Properties", default)]
    properties: HashMap<String, serde_json::Value>,
    #[serde(rename = "Submission Time", default)]
    submit_ms: Option<u64>,
}

#[derive(Deserialize)]
struct JobResult {
    #[serde(rename = "Result")]
    result: String,
}

#[derive(Deserialize)]
struct JobEnd {
    #[serde(rename = "Job ID")]
    job_id: u64,
    #[serde(rename = "Job Result")]
    result: JobResult,
    #[serde(rename = "Completion Time", default)]
    end_ms: Option<u64>,
}

#[derive(Deserialize)]
struct StageSubmitted {
    #[serde(rename = "Stage Info")]
    info: StageInfo,
}

#[derive(Deserialize)]
struct EndReason {
    #[serde(rename = "Reason")]
    reason: String,
}

#[derive(Deserialize)]
struct TaskInfo {
    #[serde(rename = "Task ID")]
    task_id: u64,
    #[serde(rename = "Index", default)]
    index: u32,
    #[serde(rename = "Launch Time")]
    launch: u64,
    #[serde(rename = "Finish Time")]
    finish: u64,
    #[serde(rename = "Executor ID")]
    executor: String,
    #[serde(rename = "Host", default)]
    host: String,
    #[serde(rename = "Locality", default)]
    locality: String,
}

#[derive(Deserialize, Default)]
struct InputMetrics {
    #[serde(rename = "Bytes Read", default)]
    bytes: u64,
}

#[derive(Deserialize, Default)]
struct OutputMetrics {
    #[serde(rename = "Bytes Written", default)]
    bytes: u64,
}

#[derive(Deserialize, Default)]
struct ShuffleRead {
    #[serde(rename = "Remote Bytes Read", default)]
    remote_bytes: u64,
    #[serde(rename = "Local Bytes Read", default)]
    local_bytes: u64,
    #[serde(rename = "Total Records Read", default)]
    records: u64,
}

#[derive(Deserialize, Default)]
struct ShuffleWrite {
    #[serde(rename = "Shuffle Bytes Written", default)]
    bytes: u64,
    #[serde(rename = "Shuffle Records Written", default)]
    records: u64,
}

#[derive(Deserialize)]
struct TaskMetrics {
    #[serde(rename = "Shuffle Read Metrics", default)]
    read: Option<ShuffleRead>,
    #[serde(rename = "Shuffle Write Metrics", default)]
    write: Option<ShuffleWrite>,
    #[serde(rename = "Input Metrics", default)]
    input: Option<InputMetrics>,
    #[serde(rename = "Output Metrics", default)]
    output: Option<OutputMetrics>,
    #[serde(rename = "Memory Bytes Spilled", default)]
    memory_spill: u64,
    #[serde(rename = "Disk Bytes Spilled", default)]
    disk_spill: u64,
    #[serde(rename = "JVM GC Time", default)]
    gc_ms: u64,
    #[serde(rename = "Peak Execution Memory", default)]
    peak_memory: u64,
}

#[derive(Deserialize)]
struct TaskEnd {
    #[serde(rename = "Stage ID")]
    stage_id: u64,
    #[serde(rename = "Stage Attempt ID", default)]
    stage_attempt: u32,
    #[serde(rename = "Task End Reason")]
    reason: EndReason,
    #[serde(rename = "Task Info")]
    info: TaskInfo,
    #[serde(rename = "Task Metrics", default)]
    metrics: Option<TaskMetrics>,
}

const LOG_START: &str = "SparkListenerLogStart";
const APP_START: &str = "SparkListenerApplicationStart";
const APP_END: &str = "SparkListenerApplicationEnd";
const EXEC_ADDED: &str = "SparkListenerExecutorAdded";
const EXEC_REMOVED: &str = "SparkListenerExecutorRemoved";
const JOB_START: &str = "SparkListenerJobStart";
const JOB_END: &str = "SparkListenerJobEnd";
const STAGE_SUBMITTED: &str = "SparkListenerStageSubmitted";
const TASK_END: &str = "SparkListenerTaskEnd";

/// Spark's own events: skipped silently when we do not use them. Anything else (a
/// third-party listener's event, a garbled name) is counted and reported.
fn is_spark_event(name: &str) -> bool {
    name.starts_with("SparkListener") || name.starts_with("org.apache.spark.")
}

/// The event name of a line written by Spark, read without parsing the line.
fn fast_event_name(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(b"{\"Event\":\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// serde_json's message without its " at line 1 column N" suffix (each of our lines is
/// one JSON document, so its line is always 1), plus the column.
fn json_msg(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(m) if e.column() > 0 => format!("{m} (column {})", e.column()),
        Some(m) => m.to_string(),
        None => full,
    }
}

/// Where a line came from, for errors and warnings.
struct Loc<'a> {
    file: &'a Path,
    line: u64,
}

impl Loc<'_> {
    fn field(
        &self,
        event: &str,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> EventLogError {
        EventLogError::Field {
            path: self.file.to_path_buf(),
            line: self.line,
            event: event.to_string(),
            field: field.into(),
            msg: msg.into(),
        }
    }
}

fn parse_typed<T: DeserializeOwned>(
    loc: &Loc,
    event: &str,
    line: &[u8],
) -> Result<T, EventLogError> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let r: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = r.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            EventLogError::Json {
                path: loc.file.to_path_buf(),
                line: loc.line,
                msg: json_msg(&inner),
            }
        } else {
            loc.field(
                event,
                if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                json_msg(&inner),
            )
        }
    })?;
    de.end().map_err(|e| EventLogError::Json {
        path: loc.file.to_path_buf(),
        line: loc.line,
        msg: json_msg(&e),
    })?;
    Ok(value)
}

/// Per-application state while reading.
struct Reader<'a> {
    app: AppLog,
    property: &'a str,
    alive: HashSet<String>,
    warnings: &'a mut Vec<Warning>,
    ended_jobs: HashMap<u64, String>,
}

impl Reader<'_> {
    fn executors_alive(&self) -> u32 {
        let real = self.alive.iter().filter(|e| *e != "driver").count();
        if real > 0 {
            real as u32
        } else {
            self.alive.len() as u32
        }
    }

    fn event(&mut self, loc: &Loc, name: &str, line: &[u8]) -> Result<(), EventLogError> {
        match name {
            LOG_START => {
                let e: LogStart = parse_typed(loc, name, line)?;
                self.app.spark_version.get_or_insert(e.spark_version);
            }
            APP_START => {
                let e: AppStart = parse_typed(loc, name, line)?;
                if let Some(id) = e.app_id {
                    self.app.app_id = id;
                }
                self.app.app_name = e.app_name.or(self.app.app_name.take());
                self.app.start_ms = self.app.start_ms.or(e.timestamp);
            }
            APP_END => {
                let e: AppEnd = parse_typed(loc, name, line)?;
                self.app.end_ms = e.timestamp;
            }
            EXEC_ADDED => {
                let e: ExecutorEvent = parse_typed(loc, name, line)?;
                if let Some(t) = e.timestamp {
                    self.app.executor_spans.push(ExecutorSpan {
                        id: e.executor_id.clone(),
                        added_ms: t,
                        removed_ms: None,
                    });
                }
                self.alive.insert(e.executor_id);
            }
            EXEC_REMOVED => {
                let e: ExecutorEvent = parse_typed(loc, name, line)?;
                if let Some(span) = self
                    .app
                    .executor_spans
                    .iter_mut()
                    .rev()
                    .find(|s| s.id == e.executor_id && s.removed_ms.is_none())
                {
                    span.removed_ms = e.timestamp;
                }
                self.alive.remove(&e.executor_id);
            }
            JOB_START => {
                let e: JobStart = parse_typed(loc, name, line)?;
                let group = match e.properties.get(self.property) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => {
                        return Err(loc.field(
                            name,
                            format!("Properties.{}", self.property),
                            format!("expected a string, found {other}"),
                        ));
                    }
                };
                self.app.property_seen |= group.is_some();
                let mut stages = Vec::with_capacity(e.stage_infos.len());
                for info in e.stage_infos {
                    stages.push(info.stage_id);
                    self.app
                        .stage_info
                        .entry(info.stage_id)
                        .or_insert((info, e.job_id));
                }
                if self.app.jobs.iter().any(|j| j.job_id == e.job_id) {
                    return Err(loc.field(
                        name,
                        "Job ID",
                        format!("job {} started twice", e.job_id),
                    ));
                }
                self.app.jobs.push(JobRecord {
                    job_id: e.job_id,
                    group,
                    stages,
                    executors_alive: self.executors_alive(),
                    line: loc.line,
                    file: loc.file.to_path_buf(),
                    succeeded: None,
                    end_result: String::new(),
                    submit_ms: e.submit_ms,
                    end_ms: None,
                });
            }
            JOB_END => {
                let e: JobEnd = parse_typed(loc, name, line)?;
                if let Some(job) = self.app.jobs.iter_mut().find(|j| j.job_id == e.job_id) {
                    job.end_ms = e.end_ms;
                }
                self.ended_jobs.insert(e.job_id, e.result.result);
            }
            STAGE_SUBMITTED => {
                let e: StageSubmitted = parse_typed(loc, name, line)?;
                let entry = self
                    .app
                    .submitted
                    .entry(e.info.stage_id)
                    .or_insert((e.info.attempt, e.info.num_tasks));
                if e.info.attempt >= entry.0 {
                    *entry = (e.info.attempt, e.info.num_tasks);
                }
            }
            TASK_END => {
                let e: TaskEnd = parse_typed(loc, name, line)?;
                let success = e.reason.reason == "Success";
                let duration_ms = if e.info.finish < e.info.launch {
                    if success {
                        return Err(loc.field(
                            name,
                            "Task Info.Finish Time",
                            format!(
                                "finish time {} is before launch time {} (task {})",
                                e.info.finish, e.info.launch, e.info.task_id
                            ),
                        ));
                    }
                    0
                } else {
                    u32::try_from(e.info.finish - e.info.launch).map_err(|_| {
                        loc.field(
                            name,
                            "Task Info.Finish Time",
                            format!(
                                "task {} ran {} ms, more than 49 days",
                                e.info.task_id,
                                e.info.finish - e.info.launch
                            ),
                        )
                    })?
                };
                let m = e.metrics.as_ref();
                let (read, write) = match &e.metrics {
                    Some(m) => (
                        m.read.as_ref().map_or((0, 0), |r| {
                            (r.remote_bytes.saturating_add(r.local_bytes), r.records)
                        }),
                        m.write.as_ref().map_or((0, 0), |w| (w.bytes, w.records)),
                    ),
                    None => ((0, 0), (0, 0)),
                };
                self.app
                    .tasks
                    .entry(e.stage_id)
                    .or_default()
                    .push(TaskRecord {
                        task_id: e.info.task_id,
                        index: e.info.index,
                        stage_attempt: e.stage_attempt,
                        success,
                        launch_ms: e.info.launch,
                        duration_ms,
                        executor: e.info.executor,
                        read_bytes: read.0,
                        read_records: read.1,
                        write_bytes: write.0,
                        write_records: write.1,
                        input_bytes: m.and_then(|m| m.input.as_ref()).map_or(0, |i| i.bytes),
                        output_bytes: m.and_then(|m| m.output.as_ref()).map_or(0, |o| o.bytes),
                        memory_spill_bytes: m.map_or(0, |m| m.memory_spill),
                        disk_spill_bytes: m.map_or(0, |m| m.disk_spill),
                        gc_ms: m.map_or(0, |m| m.gc_ms),
                        peak_memory_bytes: m.map_or(0, |m| m.peak_memory),
                        locality: e.info.locality.clone(),
                        host: e.info.host.clone(),
                        no_metrics: e.metrics.is_none(),
                    });
            }
            other => {
                if !is_spark_event(other) {
                    *self
                        .app
                        .unknown_events
                        .entry(other.to_string())
                        .or_default() += 1;
                }
                // Still a JSON check: a garbled line is an error wherever it is.
                parse_typed::<IgnoredAny>(loc, other, line)?;
            }
        }
        Ok(())
    }
}

/// Reads one application's log. `property` is the job property that groups jobs; it is
/// looked up here so that jobs need not keep all their properties.
pub fn read_app(
    log: &LogInput,
    property: &str,
    warnings: &mut Vec<Warning>,
) -> Result<AppLog, EventLogError> {
    let fallback_id = log
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("app")
        .trim_start_matches("eventlog_v2_")
        .trim_end_matches(".inprogress")
        .to_string();
    let mut r = Reader {
        app: AppLog {
            path: log.path.clone(),
            app_id: fallback_id,
            ..Default::default()
        },
        property,
        alive: HashSet::new(),
        warnings,
        ended_jobs: HashMap::new(),
    };
    let nparts = log.parts.len();
    for (i, part) in log.parts.iter().enumerate() {
        let last = i + 1 == nparts;
        let (stream, codec) = input::open(part)?;
        r.app.codecs.push(codec.name());
        read_lines(&mut r, part, stream, codec, last && log.in_progress)?;
    }
    let mut app = r.app;
    if app.events == 0 {
        return Err(EventLogError::Input {
            path: log.path.clone(),
            msg: "not a Spark event log: no events in it".into(),
        });
    }
    if app.spark_version.is_none() && app.jobs.is_empty() {
        return Err(EventLogError::Input {
            path: log.path.clone(),
            msg: "not a Spark event log: no SparkListenerLogStart and no job".into(),
        });
    }
    for job in &mut app.jobs {
        if let Some(res) = r.ended_jobs.get(&job.job_id) {
            job.succeeded = Some(res == "JobSucceeded");
            job.end_result = res.clone();
        }
    }
    for (name, n) in &app.unknown_events {
        r.warnings.push(Warning {
            path: log.path.clone(),
            line: None,
            msg: format!("skipped {n} event(s) of unknown type \"{name}\""),
        });
    }
    Ok(app)
}

fn read_lines(
    r: &mut Reader,
    file: &Path,
    mut stream: Box<dyn BufRead>,
    codec: Codec,
    in_progress: bool,
) -> Result<(), EventLogError> {
    let mut buf = Vec::with_capacity(1 << 14);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = match stream.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let msg = format!(
                    "{} stream is corrupt or truncated after line {line_no}: {e}",
                    codec.name()
                );
                if in_progress {
                    r.warnings.push(Warning {
                        path: file.to_path_buf(),
                        line: Some(line_no + 1),
                        msg: format!("{msg} (the log is still in progress; reading stops here)"),
                    });
                    return Ok(());
                }
                return Err(EventLogError::Input {
                    path: file.to_path_buf(),
                    msg,
                });
            }
        };
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        r.app.lines += 1;
        let complete = buf.last() == Some(&b'\n');
        let mut line = &buf[..];
        while let [rest @ .., b'\n' | b'\r' | b' ' | b'\t'] = line {
            line = rest;
        }
        if line.is_empty() {
            continue;
        }
        let loc = Loc {
            file,
            line: line_no,
        };
        let name: Option<String> = match fast_event_name(line) {
            Some(n) => Some(n.to_string()),
            None => match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(v) => match v.get("Event") {
                    Some(_) => Some(
                        serde_json::from_value::<Head>(v)
                            .map_err(|e| loc.field("(unknown event)", "Event", json_msg(&e)))?
                            .event,
                    ),
                    None => {
                        return Err(loc.field(
                            "(unknown event)",
                            "Event",
                            "missing field `Event`: not a Spark event-log line",
                        ));
                    }
                },
                Err(e) => {
                    if !complete {
                        truncated_warning(r, &loc, &json_msg(&e));
                        return Ok(());
                    }
                    return Err(EventLogError::Json {
                        path: file.to_path_buf(),
                        line: line_no,
                        msg: json_msg(&e),
                    });
                }
            },
        };
        let Some(name) = name else { continue };
        match r.event(&loc, &name, line) {
            Ok(()) => r.app.events += 1,
            Err(EventLogError::Json { msg, .. }) if !complete => {
                truncated_warning(r, &loc, &msg);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// A last line without its newline that does not parse is what a log still being
/// written (or cut off by a crash) ends with: the events before it are sound.
fn truncated_warning(r: &mut Reader, loc: &Loc, msg: &str) {
    r.warnings.push(Warning {
        path: loc.file.to_path_buf(),
        line: Some(loc.line),
        msg: format!("truncated final line skipped ({msg}); the log may still be in progress"),
    });
}
