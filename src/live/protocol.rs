//! The messages between an in-driver agent (`scripts/spark/mpda_agent.py`) and the live
//! controller, as JSON over HTTP (`super::server`).
//!
//! An agent runs inside each Spark application's driver. It says [`Hello`] once, then posts
//! [`Progress`] every few hundred milliseconds, then [`Goodbye`]; each of the three gets a
//! [`Reply`]: the executor target the agent applies with `requestTotalExecutors` and the
//! executors it kills with `killExecutors`.
//!
//! Every message carries `version` ([`PROTOCOL_VERSION`]) so that an agent injected from an
//! older checkout is refused by name instead of being misread, and unknown fields are refused
//! (`deny_unknown_fields`) for the same reason. Parsing only checks types; [`Message::validate`]
//! then checks ranges and consistency and names the field that broke a rule
//! (`stages[3].complete: must be <= num_tasks (10), found 12`), the project's config pattern.
//! Sizes are bounded twice: the server refuses a body over its byte limit before parsing, and
//! `validate` bounds the number of jobs, stages and executors, so that one bad agent cannot
//! make the controller hold or walk arbitrarily large state.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::validate::{FieldError, in_range};

/// The protocol version this build speaks; a message with any other is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most jobs one `Progress` may list (Spark's status tracker keeps 1,000 by default,
/// `spark.ui.retainedJobs`).
pub const MAX_JOBS: usize = 2_000;
/// Most stages one `Progress` may list (`spark.ui.retainedStages` defaults to 1,000; a
/// TPC-H query has tens).
pub const MAX_STAGES: usize = 4_000;
/// Most stage ids one job may list, and most job ids one stage may list.
pub const MAX_IDS_PER_ENTRY: usize = 4_000;
/// Most executors one `Progress` may list, and most one `Reply` may kill.
pub const MAX_EXECUTORS: usize = 10_000;
/// Most tasks in one stage (Spark's own partition counts are `Int`s, but no workload of this
/// project comes near this, and a larger value is a broken agent).
pub const MAX_TASKS: u32 = 10_000_000;
/// Largest executor target a reply may carry.
pub const MAX_TARGET_EXECUTORS: u32 = 100_000;
/// Longest identifier (application id, executor id), in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest free-text field (job name, host name), in bytes.
pub const MAX_TEXT_LEN: usize = 256;
/// Largest `time_ms`: the year 2286 in Unix milliseconds, so that a number past any real
/// clock (or one that lost precision as a JSON double, above 2^53) is refused.
pub const MAX_TIME_MS: u64 = 10_000_000_000_000;

/// The first message from a driver: which application this is and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub version: u32,
    /// Spark's application id (`sc.applicationId`, e.g. `app-20261127151000-0003`).
    pub app_id: String,
    /// The TPC-H query or trace name the controller matches to a trace DAG (e.g. `q9-2g`).
    pub job_name: String,
    /// The driver's process id, to tell two drivers of one job name apart in logs.
    pub pid: u32,
}

/// A Spark job's status as the driver's status tracker reports it (`JobExecutionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// One Spark job of the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobProgress {
    pub job_id: u32,
    pub status: JobStatus,
    /// The stages of the job (`SparkJobInfo.stageIds`), including ones that never run.
    pub stage_ids: Vec<u32>,
}

/// A stage's status as the agent infers it (Spark's `StageStatus` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Pending,
    Active,
    Complete,
    Failed,
    Skipped,
}

/// One attempt of one stage, with its task counts (`SparkStageInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageProgress {
    pub stage_id: u32,
    pub attempt: u32,
    /// The jobs this stage belongs to (a shared stage may belong to several).
    pub job_ids: Vec<u32>,
    pub num_tasks: u32,
    /// Task attempts running now (speculative copies included).
    pub active: u32,
    /// Tasks finished successfully; never more than `num_tasks`.
    pub complete: u32,
    /// Failed task attempts (retries count again, so this may exceed `num_tasks`).
    pub failed: u32,
    pub status: StageStatus,
}

/// One executor of the application (the driver itself is not listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorProgress {
    /// Spark's executor id, what `killExecutors` takes.
    pub id: String,
    pub host: String,
    pub cores: u32,
    /// Tasks running on it now.
    pub active: u32,
}

/// The application's state, sent periodically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub version: u32,
    pub app_id: String,
    /// The driver's wall clock when it sampled, Unix milliseconds.
    pub time_ms: u64,
    pub jobs: Vec<JobProgress>,
    pub stages: Vec<StageProgress>,
    pub executors: Vec<ExecutorProgress>,
}

/// How an application ended, as its driver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// The driver exited without the application saying which (an interpreter exit hook).
    Unknown,
}

/// The last message from a driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goodbye {
    pub version: u32,
    pub app_id: String,
    pub outcome: Outcome,
}

/// The controller's answer to any message: what the agent should apply now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The application's executor total (`requestTotalExecutors`); `None` leaves it as is.
    pub target_executors: Option<u32>,
    /// Executor ids to kill (`killExecutors`), chosen by the controller when it moves
    /// executors to another application.
    pub kill: Vec<String>,
}

/// A validated message from an agent, as the server hands it to its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Progress(Progress),
    Goodbye(Goodbye),
}

impl Message {
    /// The application the message is about.
    pub fn app_id(&self) -> &str {
        match self {
            Message::Hello(m) => &m.app_id,
            Message::Progress(m) => &m.app_id,
            Message::Goodbye(m) => &m.app_id,
        }
    }

    /// Checks ranges and consistency after parsing; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            Message::Hello(m) => m.validate(),
            Message::Progress(m) => m.validate(),
            Message::Goodbye(m) => m.validate(),
        }
    }
}

fn check_version(version: u32) -> Result<(), FieldError> {
    if version != PROTOCOL_VERSION {
        return Err(FieldError::new(
            "version",
            format!("must be {PROTOCOL_VERSION} (this controller's protocol), found {version}"),
        ));
    }
    Ok(())
}

/// An identifier: 1 to [`MAX_ID_LEN`] bytes of `[A-Za-z0-9._:-]`, so that it is safe in a
/// log line, a file name and a py4j call alike.
fn check_id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1..={MAX_ID_LEN} bytes, found {}", value.len()),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(FieldError::new(
            field,
            format!("must use only ASCII letters, digits and . _ - :, found {c:?}"),
        ));
    }
    Ok(())
}

/// Free text: 1 to [`MAX_TEXT_LEN`] bytes, no control characters (log lines stay lines).
fn check_text(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1..={MAX_TEXT_LEN} bytes, found {}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_len(field: &str, len: usize, max: usize) -> Result<(), FieldError> {
    if len > max {
        return Err(FieldError::new(
            field,
            format!("must list at most {max} entries, found {len}"),
        ));
    }
    Ok(())
}

/// Spark's ids are non-negative `Int`s.
fn check_spark_id(field: &str, value: u32) -> Result<(), FieldError> {
    in_range(field, value, 0, i32::MAX as u32)
}

impl Hello {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_version(self.version)?;
        check_id("app_id", &self.app_id)?;
        check_text("job_name", &self.job_name)?;
        in_range("pid", self.pid, 1, u32::MAX)
    }
}

impl Goodbye {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_version(self.version)?;
        check_id("app_id", &self.app_id)
    }
}

impl StageProgress {
    fn validate(&self) -> Result<(), FieldError> {
        check_spark_id("stage_id", self.stage_id)?;
        in_range("attempt", self.attempt, 0, i32::MAX as u32)?;
        check_len("job_ids", self.job_ids.len(), MAX_IDS_PER_ENTRY)?;
        for (j, id) in self.job_ids.iter().enumerate() {
            check_spark_id(&format!("job_ids[{j}]"), *id)?;
        }
        in_range("num_tasks", self.num_tasks, 0, MAX_TASKS)?;
        if self.complete > self.num_tasks {
            return Err(FieldError::new(
                "complete",
                format!(
                    "must be <= num_tasks ({}), found {}",
                    self.num_tasks, self.complete
                ),
            ));
        }
        in_range("active", self.active, 0, MAX_TASKS)?;
        in_range("failed", self.failed, 0, MAX_TASKS)
    }
}

impl ExecutorProgress {
    fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        check_text("host", &self.host)?;
        in_range("cores", self.cores, 1, 100_000)?;
        in_range("active", self.active, 0, MAX_TASKS)
    }
}

impl Progress {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_version(self.version)?;
        check_id("app_id", &self.app_id)?;
        in_range("time_ms", self.time_ms, 0, MAX_TIME_MS)?;
        check_len("jobs", self.jobs.len(), MAX_JOBS)?;
        check_len("stages", self.stages.len(), MAX_STAGES)?;
        check_len("executors", self.executors.len(), MAX_EXECUTORS)?;

        let mut seen_jobs = HashSet::with_capacity(self.jobs.len());
        for (i, job) in self.jobs.iter().enumerate() {
            let at = |f: &str| format!("jobs[{i}].{f}");
            check_spark_id(&at("job_id"), job.job_id)?;
            if !seen_jobs.insert(job.job_id) {
                return Err(FieldError::new(
                    at("job_id"),
                    format!("job {} is listed twice", job.job_id),
                ));
            }
            check_len(&at("stage_ids"), job.stage_ids.len(), MAX_IDS_PER_ENTRY)?;
            for (k, id) in job.stage_ids.iter().enumerate() {
                check_spark_id(&at(&format!("stage_ids[{k}]")), *id)?;
            }
        }

        let mut seen_stages = HashSet::with_capacity(self.stages.len());
        for (i, stage) in self.stages.iter().enumerate() {
            stage
                .validate()
                .map_err(|e| e.within(&format!("stages[{i}]")))?;
            if !seen_stages.insert((stage.stage_id, stage.attempt)) {
                return Err(FieldError::new(
                    format!("stages[{i}].attempt"),
                    format!(
                        "stage {} attempt {} is listed twice",
                        stage.stage_id, stage.attempt
                    ),
                ));
            }
        }

        let mut seen_execs = HashSet::with_capacity(self.executors.len());
        for (i, exec) in self.executors.iter().enumerate() {
            exec.validate()
                .map_err(|e| e.within(&format!("executors[{i}]")))?;
            if !seen_execs.insert(exec.id.as_str()) {
                return Err(FieldError::new(
                    format!("executors[{i}].id"),
                    format!("executor {:?} is listed twice", exec.id),
                ));
            }
        }
        Ok(())
    }
}

impl Reply {
    /// The controller's own replies are checked too, so that a bug in a handler is a 500 the
    /// agent ignores instead of a kill list it applies.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(n) = self.target_executors {
            in_range("target_executors", n, 0, MAX_TARGET_EXECUTORS)?;
        }
        check_len("kill", self.kill.len(), MAX_EXECUTORS)?;
        for (i, id) in self.kill.iter().enumerate() {
            check_id(&format!("kill[{i}]"), id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress {
            version: PROTOCOL_VERSION,
            app_id: "app-20261127151000-0003".into(),
            time_ms: 1_764_256_000_000,
            jobs: vec![JobProgress {
                job_id: 0,
                status: JobStatus::Running,
                stage_ids: vec![0, 1],
            }],
            stages: vec![StageProgress {
                stage_id: 0,
                attempt: 0,
                job_ids: vec![0],
                num_tasks: 10,
                active: 2,
                complete: 8,
                failed: 0,
                status: StageStatus::Active,
            }],
            executors: vec![ExecutorProgress {
                id: "0".into(),
                host: "127.0.0.1".into(),
                cores: 1,
                active: 1,
            }],
        }
    }

    #[test]
    fn a_good_progress_passes_and_bad_fields_are_named() {
        assert_eq!(progress().validate(), Ok(()));

        let mut p = progress();
        p.stages[0].complete = 12;
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "stages[0].complete: must be <= num_tasks (10), found 12"
        );

        let mut p = progress();
        p.version = 2;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .starts_with("version:")
        );

        let mut p = progress();
        p.executors.push(p.executors[0].clone());
        assert_eq!(p.validate().unwrap_err().field, "executors[1].id");

        let mut p = progress();
        p.app_id = "app 1".into();
        assert_eq!(p.validate().unwrap_err().field, "app_id");

        let mut p = progress();
        p.jobs[0].stage_ids[1] = u32::MAX;
        assert_eq!(p.validate().unwrap_err().field, "jobs[0].stage_ids[1]");

        let mut p = progress();
        p.stages = vec![p.stages[0].clone(); MAX_STAGES + 1];
        assert_eq!(p.validate().unwrap_err().field, "stages");
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_by_the_parser() {
        let mut v = serde_json::to_value(progress()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Progress>(v).is_err());
        let bad = r#"{"version":1,"app_id":"a","outcome":"exploded"}"#;
        assert!(serde_json::from_str::<Goodbye>(bad).is_err());
    }

    #[test]
    fn replies_are_checked() {
        let ok = Reply {
            target_executors: Some(3),
            kill: vec!["7".into()],
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = Reply {
            target_executors: None,
            kill: vec!["7; rm".into()],
        };
        assert_eq!(bad.validate().unwrap_err().field, "kill[0]");
        assert_eq!(
            serde_json::to_string(&Reply::default()).unwrap(),
            r#"{"target_executors":null,"kill":[]}"#
        );
    }
}
