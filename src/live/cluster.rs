//! A standalone Spark cluster on this machine: a master, K workers and a history server,
//! started from the pinned PySpark of the TPC-H pipeline (`scripts/spark/setup.sh`), or an
//! existing standalone master named by its `spark://HOST:PORT` URL.
//!
//! Why it is built this way:
//! - The PySpark wheel ships `bin/spark-class` but not `sbin/start-master.sh`, so the daemons
//!   are launched directly (`spark-class org.apache.spark.deploy.master.Master ...`), each
//!   as the leader of its own process group. Executors the workers launch inherit the
//!   worker's group, so one signal to a group stops a worker and its executors, and Ctrl-C
//!   in a terminal (which signals only the foreground group) never reaches the cluster
//!   behind mpda's back: mpda catches it and tears down what it started.
//! - Everything binds to loopback: 127.0.0.1, or 127.0.0.(i + 1) for worker i with
//!   `distinct_hosts` (`SPARK_LOCAL_IP`, `--host`); the master's REST
//!   submission server and the UIs' kill links are off, and the RPC ports require Spark's
//!   shared-secret authentication (`spark.authenticate`) with a per-cluster secret, so
//!   another local user cannot submit to or steer the cluster. Applications get the secret
//!   from [`ClusterState::app_conf`] or the private `spark-defaults.conf` it writes.
//! - `spark.port.maxRetries=0`: Spark's default is to try the next port when one is busy,
//!   which would leave mpda polling a stranger's port; a busy port fails loudly instead.
//! - The state file (`cluster.json` in the work dir) is written after every daemon starts,
//!   so `down` can stop a half-started cluster even if `up` itself was killed.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::Config;
use crate::io::{FileError, write_file};
use crate::validate::{FieldError, finite_in, in_range};

/// Every daemon and UI binds here.
pub const LOOPBACK: &str = "127.0.0.1";
/// Spark reserves 300 MB of every executor's heap and refuses an executor smaller than
/// 1.5 × that (`UnifiedMemoryManager`), so a worker offering less can never run one.
pub const MIN_WORKER_MEMORY_MB: u32 = 450;
/// The state file's name inside the work dir.
pub const STATE_FILE: &str = "cluster.json";
/// Format version of the state file; bumped when its shape changes.
const STATE_VERSION: u32 = 1;
/// Where `scripts/spark/setup.sh` and `scripts/tpch/setup.sh` put the venv when
/// `$TPCH_WORK` is unset.
pub const DEFAULT_SPARK_WORK: &str = "/work/spark-runs";
/// The default cluster work dir (state file, logs, event logs, worker dirs).
pub const DEFAULT_CLUSTER_WORK: &str = "/work/spark-runs/cluster";
/// The CFS period used for CPU quotas (the kernel's default).
const CFS_PERIOD_US: u64 = 100_000;

/// Ports of the daemons started here. Each must be free; nothing falls back to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    /// The master's RPC port (`spark://127.0.0.1:PORT`).
    pub master: u16,
    /// The master's web UI, which serves `/json`.
    pub master_ui: u16,
    /// Worker i's web UI is on `worker_ui + i`.
    pub worker_ui: u16,
    /// The history server's UI.
    pub history: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            master: 7077,
            master_ui: 8080,
            worker_ui: 8081,
            history: 18080,
        }
    }
}

/// A CPU quota for one worker and every executor it launches, in cores (0.5 = half a core).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerQuota {
    /// Worker index, 0-based.
    pub worker: usize,
    /// CPU time per wall-clock time, in cores.
    pub cores: f64,
}

impl std::str::FromStr for WorkerQuota {
    type Err = String;
    /// `I=F`: worker I gets F cores of CPU time (`1=0.5`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, f) = s
            .split_once('=')
            .ok_or_else(|| format!("expected WORKER=CORES (e.g. 1=0.5), found {s:?}"))?;
        let worker = i
            .trim()
            .parse()
            .map_err(|_| format!("worker index {i:?} is not a non-negative integer"))?;
        let cores = f
            .trim()
            .parse()
            .map_err(|_| format!("quota {f:?} is not a number"))?;
        Ok(Self { worker, cores })
    }
}

/// What `mpda spark up` starts, or which existing cluster it uses.
///
/// A config section of its own (TOML, unknown keys refused) so that a live-run config can
/// embed it; `mpda spark up` fills it from flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Number of workers.
    pub workers: usize,
    /// Cores each worker offers.
    pub cores: u32,
    /// Memory each worker offers, in MB.
    pub memory_mb: u32,
    /// Optional CPU quotas, for a heterogeneous cluster.
    pub cpu_quota: Vec<WorkerQuota>,
    /// Worker i on its own loopback address, 127.0.0.(i + 1), instead of all on
    /// 127.0.0.1: Spark then sees one host per worker, so reduce tasks prefer the hosts
    /// holding their map output and `spark.locality.wait` matters (the locality
    /// calibration). Still loopback only.
    pub distinct_hosts: bool,
    pub ports: Ports,
    /// State file, logs, worker dirs; event logs too unless `event_log_dir` is set.
    pub work_dir: PathBuf,
    /// Where applications write event logs and the history server reads them.
    pub event_log_dir: Option<PathBuf>,
    /// A folder with `bin/spark-class` (the pyspark package dir); found by itself if unset.
    pub spark_home: Option<PathBuf>,
    /// `spark://HOST:PORT` of an existing standalone master: nothing is started.
    pub master: Option<String>,
    /// The existing master's web UI (default `http://HOST:8080`), for `/json`.
    pub master_ui: Option<String>,
    /// How long `up` waits for every worker to register.
    pub start_timeout_s: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            cores: 1,
            memory_mb: 1024,
            cpu_quota: Vec::new(),
            distinct_hosts: false,
            ports: Ports::default(),
            work_dir: PathBuf::from(DEFAULT_CLUSTER_WORK),
            event_log_dir: None,
            spark_home: None,
            master: None,
            master_ui: None,
            start_timeout_s: 180,
        }
    }
}

impl Config for ClusterConfig {
    fn validate(&self) -> Result<(), FieldError> {
        in_range("workers", self.workers, 1, 64)?;
        in_range("cores", self.cores, 1, 1024)?;
        if self.memory_mb < MIN_WORKER_MEMORY_MB {
            return Err(FieldError::new(
                "memory_mb",
                format!(
                    "must be at least {MIN_WORKER_MEMORY_MB} (Spark reserves 300 MB of an \
                     executor's heap and needs 1.5 x that), found {}",
                    self.memory_mb
                ),
            ));
        }
        in_range("memory_mb", self.memory_mb, MIN_WORKER_MEMORY_MB, 1 << 20)?;
        in_range("start_timeout_s", self.start_timeout_s, 5, 3600)?;
        let mut seen = BTreeSet::new();
        for (k, q) in self.cpu_quota.iter().enumerate() {
            let field = format!("cpu_quota[{k}]");
            if q.worker >= self.workers {
                return Err(FieldError::new(
                    format!("{field}.worker"),
                    format!(
                        "must name a worker in 0..{}, found {}",
                        self.workers, q.worker
                    ),
                ));
            }
            if !seen.insert(q.worker) {
                return Err(FieldError::new(
                    format!("{field}.worker"),
                    format!("worker {} has two quotas", q.worker),
                ));
            }
            // The kernel refuses a CFS quota under 1 ms per 100 ms period.
            finite_in(
                &format!("{field}.cores"),
                q.cores,
                0.01,
                f64::from(self.cores),
            )?;
        }
        if self.workers > usize::from(u16::MAX) {
            return Err(FieldError::new("workers", "too many"));
        }
        let p = &self.ports;
        let last_worker_ui = u32::from(p.worker_ui) + self.workers as u32 - 1;
        for (name, port) in [
            ("ports.master", p.master),
            ("ports.master_ui", p.master_ui),
            ("ports.worker_ui", p.worker_ui),
            ("ports.history", p.history),
        ] {
            in_range(name, port, 1024, u16::MAX)?;
        }
        if last_worker_ui > u32::from(u16::MAX) {
            return Err(FieldError::new(
                "ports.worker_ui",
                format!(
                    "worker UIs use {}..={last_worker_ui}, past 65535",
                    p.worker_ui
                ),
            ));
        }
        let worker_uis = u32::from(p.worker_ui)..=last_worker_ui;
        let singles = [
            ("ports.master", p.master),
            ("ports.master_ui", p.master_ui),
            ("ports.history", p.history),
        ];
        for (i, (a, pa)) in singles.iter().enumerate() {
            for (b, pb) in &singles[i + 1..] {
                if pa == pb {
                    return Err(FieldError::new(*b, format!("{pb} is also {a}")));
                }
            }
            if worker_uis.contains(&u32::from(*pa)) {
                return Err(FieldError::new(
                    "ports.worker_ui",
                    format!(
                        "worker UIs use {}..={last_worker_ui}, which includes {a} ({pa})",
                        p.worker_ui
                    ),
                ));
            }
        }
        if let Some(m) = &self.master {
            parse_master_url(m).map_err(|msg| FieldError::new("master", msg))?;
            if let Some(ui) = &self.master_ui {
                parse_http_url(ui).map_err(|msg| FieldError::new("master_ui", msg))?;
            }
        } else if self.master_ui.is_some() {
            return Err(FieldError::new(
                "master_ui",
                "only for an existing cluster (set master too)",
            ));
        }
        if self.work_dir.as_os_str().is_empty() {
            return Err(FieldError::new("work_dir", "must not be empty"));
        }
        Ok(())
    }
}

/// The loopback address worker `i` binds: 127.0.0.1 for every worker, or 127.0.0.(i + 1)
/// with `distinct_hosts` (at most 64 workers, so always a valid address).
pub fn worker_host(distinct_hosts: bool, i: usize) -> String {
    if distinct_hosts {
        format!("127.0.0.{}", i + 1)
    } else {
        LOOPBACK.to_string()
    }
}

/// `spark://HOST:PORT` → (host, port).
pub fn parse_master_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("spark://")
        .ok_or_else(|| format!("expected spark://HOST:PORT, found {url:?}"))?;
    host_port(rest).ok_or_else(|| format!("expected spark://HOST:PORT, found {url:?}"))
}

/// `http://HOST:PORT[/]` → (host, port).
fn parse_http_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("expected http://HOST:PORT, found {url:?}"))?;
    host_port(rest.trim_end_matches('/'))
        .ok_or_else(|| format!("expected http://HOST:PORT, found {url:?}"))
}

fn host_port(s: &str) -> Option<(String, u16)> {
    let (h, p) = s.rsplit_once(':')?;
    let ok_host = !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let port: u16 = p.parse().ok()?;
    (ok_host && port > 0).then(|| (h.to_string(), port))
}

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error(transparent)]
    File(#[from] FileError),
    /// Not a `source`: the message already holds it, and error chains would say it twice.
    #[error("invalid cluster settings: {0}")]
    Field(FieldError),
    #[error("{what} not found: {hint}")]
    Missing { what: String, hint: String },
    #[error("cannot start the {role} ({program}): {error}")]
    Spawn {
        role: String,
        program: PathBuf,
        error: std::io::Error,
    },
    #[error("the {role} exited during start-up ({status}); the end of {}:\n{tail}", log.display())]
    Exited {
        role: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("gave up after {secs} s waiting for {want}; last seen: {seen}")]
    Timeout {
        secs: u64,
        want: String,
        seen: String,
    },
    #[error("interrupted: every process started was stopped")]
    Interrupted,
    #[error("{}: a cluster is already up here ({alive}); run `mpda spark down` first", file.display())]
    AlreadyUp { file: PathBuf, alive: String },
    #[error("{}: no cluster state; run `mpda spark up` first", file.display())]
    NotUp { file: PathBuf },
    #[error("{}: not a cluster state file: {msg}", file.display())]
    State { file: PathBuf, msg: String },
    #[error("master UI {url}: {msg}")]
    Master { url: String, msg: String },
    #[error("cgroup {}: {msg}", path.display())]
    Cgroup { path: PathBuf, msg: String },
    #[error("still running after SIGKILL: {0}")]
    Survivors(String),
}

impl From<FieldError> for ClusterError {
    fn from(e: FieldError) -> Self {
        ClusterError::Field(e)
    }
}

fn cgroup_err(path: &Path, msg: impl fmt::Display) -> ClusterError {
    ClusterError::Cgroup {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Processes, through /proc.

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub pgrp: i32,
    /// Clock ticks after boot: with the pid, identifies the process across pid reuse.
    pub start_time: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, tail) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let f: Vec<&str> = tail.split_whitespace().collect();
    // tail fields: 0 state, 1 ppid, 2 pgrp, ..., 19 starttime (field 22 of the stat line)
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every live (not zombie) process.
fn all_procs() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .filter(|s| s.state != 'Z' && s.state != 'X')
        .collect()
}

fn is_java(pid: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.file_name().is_some_and(|n| n == "java"))
        .unwrap_or(false)
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            let s = String::from_utf8_lossy(&b).replace('\0', " ");
            s.chars().take(160).collect()
        })
        .unwrap_or_default()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale or foreign id only returns an error.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// One daemon this cluster started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Daemon {
    /// `master`, `worker-0`, ..., `history`.
    pub role: String,
    pub pid: i32,
    /// Its own process group (= pid): workers' executors join it.
    pub pgid: i32,
    /// From `/proc/PID/stat`, so a reused pid is never mistaken for it.
    pub start_time: u64,
    pub log: PathBuf,
}

impl Daemon {
    /// Whether this very process is still running.
    pub fn alive(&self) -> bool {
        proc_stat(self.pid)
            .is_some_and(|s| s.start_time == self.start_time && s.state != 'Z' && s.state != 'X')
    }
}

/// Every JVM of the cluster still running: members of its process groups, and Java
/// processes working inside its work dir (executors, whichever group they are in).
pub fn cluster_jvms(state: &ClusterState) -> Vec<(i32, String)> {
    let groups: BTreeSet<i32> = state.daemons.iter().map(|d| d.pgid).collect();
    let me = std::process::id() as i32;
    all_procs()
        .into_iter()
        .filter(|s| s.pid != me)
        .filter(|s| {
            groups.contains(&s.pgrp)
                || (is_java(s.pid)
                    && std::fs::read_link(format!("/proc/{}/cwd", s.pid))
                        .is_ok_and(|cwd| cwd.starts_with(&state.work_dir)))
        })
        .map(|s| (s.pid, cmdline(s.pid)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// cgroups.

/// Which cgroup hierarchy holds the `cpu` controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The `cpu` controller's root: `/sys/fs/cgroup/cpu` (v1) or `/sys/fs/cgroup` (v2).
#[derive(Debug, Clone, PartialEq)]
pub struct CpuCgroups {
    pub version: CgroupVersion,
    pub root: PathBuf,
}

impl CpuCgroups {
    /// Finds a writable `cpu` controller under `base` (normally `/sys/fs/cgroup`): v1
    /// first (the one this machine mounts), then v2.
    pub fn detect(base: &Path) -> Result<Self, ClusterError> {
        let v1 = base.join("cpu");
        if v1.join("cpu.cfs_quota_us").is_file() {
            return Self::writable(CgroupVersion::V1, v1);
        }
        let controllers = base.join("cgroup.controllers");
        if let Ok(text) = std::fs::read_to_string(&controllers) {
            if text.split_whitespace().any(|c| c == "cpu") {
                return Self::writable(CgroupVersion::V2, base.to_path_buf());
            }
            return Err(cgroup_err(
                &controllers,
                "cgroup v2 without the cpu controller, and no v1 cpu controller at \
                 cpu/cpu.cfs_quota_us: CPU quotas are unavailable",
            ));
        }
        Err(cgroup_err(
            base,
            "no cpu controller: neither cgroup v1 (cpu/cpu.cfs_quota_us) nor v2 \
             (cgroup.controllers); CPU quotas are unavailable",
        ))
    }

    fn writable(version: CgroupVersion, root: PathBuf) -> Result<Self, ClusterError> {
        // access(2), not the mode bits: cgroupfs shows r-x to root yet lets root create
        // groups, and a read-only mount answers EROFS here.
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(root.as_os_str().as_bytes())
            .map_err(|_| cgroup_err(&root, "path holds a NUL byte"))?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(cgroup_err(&root, format!("not writable: {e}")));
        }
        Ok(Self { version, root })
    }

    /// The cluster's parent group: one per cluster id, so two clusters never share one.
    pub fn cluster_dir(&self, cluster_id: &str) -> PathBuf {
        self.root.join(format!("mpda-{cluster_id}"))
    }

    /// Worker `worker`'s group.
    pub fn worker_dir(&self, cluster_id: &str, worker: usize) -> PathBuf {
        self.cluster_dir(cluster_id)
            .join(format!("worker-{worker}"))
    }

    /// The control files and values that limit a group to `cores` of CPU time.
    pub fn limits(&self, cores: f64) -> Vec<(&'static str, String)> {
        let quota = ((cores * CFS_PERIOD_US as f64).round() as u64).max(1000);
        match self.version {
            CgroupVersion::V1 => vec![
                ("cpu.cfs_period_us", CFS_PERIOD_US.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
            ],
            CgroupVersion::V2 => vec![("cpu.max", format!("{quota} {CFS_PERIOD_US}"))],
        }
    }

    /// Makes worker `worker`'s group with its limit and returns its folder. Control files
    /// are written in place: the kernel's files cannot be replaced by a rename.
    pub fn create(
        &self,
        cluster_id: &str,
        worker: usize,
        cores: f64,
    ) -> Result<PathBuf, ClusterError> {
        let parent = self.cluster_dir(cluster_id);
        if self.version == CgroupVersion::V2 {
            // v2 exposes cpu.max in a child only if every ancestor delegates `cpu`.
            write_control(&self.root.join("cgroup.subtree_control"), "+cpu")?;
        }
        mkdir(&parent)?;
        if self.version == CgroupVersion::V2 {
            write_control(&parent.join("cgroup.subtree_control"), "+cpu")?;
        }
        let dir = self.worker_dir(cluster_id, worker);
        mkdir(&dir)?;
        for (file, value) in self.limits(cores) {
            write_control(&dir.join(file), &value)?;
        }
        Ok(dir)
    }
}

fn mkdir(dir: &Path) -> Result<(), ClusterError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cgroup_err(dir, format!("cannot create: {e}"))),
    }
}

fn write_control(file: &Path, value: &str) -> Result<(), ClusterError> {
    std::fs::write(file, value)
        .map_err(|e| cgroup_err(file, format!("cannot write {value:?}: {e}")))
}

/// Moves process `pid` (and, in v1, all its threads) into the group at `dir`; children
/// it starts later (a worker's executors) are born there.
pub fn attach_to_cgroup(dir: &Path, pid: i32) -> Result<(), ClusterError> {
    write_control(&dir.join("cgroup.procs"), &pid.to_string())
}

/// Removes groups, deepest first, retrying while the kernel still counts exiting tasks.
/// Returns the ones that would not go.
pub fn remove_cgroups(dirs: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let mut failed = Vec::new();
    let mut all: Vec<&PathBuf> = dirs.iter().collect();
    all.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in all {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    failed.push((d.clone(), e.to_string()));
                    break;
                }
            }
        }
    }
    failed
}

// ---------------------------------------------------------------------------------------
// The state file.

/// What `up` left: enough for `status` and `down` in another process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterState {
    pub version: u32,
    /// Random hex; names the cgroups.
    pub id: String,
    /// `starting` while `up` runs, `up` once every worker registered, `external`.
    pub phase: String,
    pub master_url: String,
    pub master_ui: String,
    pub history_ui: Option<String>,
    pub work_dir: PathBuf,
    pub event_log_dir: Option<PathBuf>,
    pub spark_home: Option<PathBuf>,
    pub workers: usize,
    pub cores: u32,
    pub memory_mb: u32,
    pub cpu_quota: Vec<WorkerQuota>,
    /// Workers on 127.0.0.(i + 1) (see [`ClusterConfig::distinct_hosts`]).
    #[serde(default)]
    pub distinct_hosts: bool,
    /// The ports mpda started the daemons on (none for an external cluster).
    pub ports: Option<Ports>,
    pub daemons: Vec<Daemon>,
    pub cgroups: Vec<PathBuf>,
    /// File holding the shared secret of `spark.authenticate` (in a 0700 folder).
    pub secret_file: Option<PathBuf>,
}

impl ClusterState {
    pub fn file(work_dir: &Path) -> PathBuf {
        work_dir.join(STATE_FILE)
    }

    pub fn load(work_dir: &Path) -> Result<Self, ClusterError> {
        let file = Self::file(work_dir);
        let text = match crate::io::read_text(&file) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Err(ClusterError::NotUp { file }),
            Err(e) => return Err(e.into()),
        };
        let state: Self = serde_json::from_str(&text).map_err(|e| ClusterError::State {
            file: file.clone(),
            msg: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(ClusterError::State {
                file,
                msg: format!(
                    "version {} (this mpda writes {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    pub fn save(&self) -> Result<(), ClusterError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| ClusterError::State {
            file: Self::file(&self.work_dir),
            msg: e.to_string(),
        })?;
        write_file(&Self::file(&self.work_dir), json.as_bytes())?;
        Ok(())
    }

    /// The settings an application needs to run on this cluster: master, the shared
    /// secret, event logs, loopback. The secret comes from the private secret file.
    pub fn app_conf(&self) -> Result<Vec<(String, String)>, ClusterError> {
        let mut conf = vec![
            ("spark.master".to_string(), self.master_url.clone()),
            ("spark.driver.host".into(), LOOPBACK.into()),
            ("spark.driver.bindAddress".into(), LOOPBACK.into()),
            ("spark.ui.killEnabled".into(), "false".into()),
        ];
        if let Some(dir) = &self.event_log_dir {
            conf.push(("spark.eventLog.enabled".into(), "true".into()));
            conf.push((
                "spark.eventLog.dir".into(),
                format!("file://{}", dir.display()),
            ));
        }
        if let Some(file) = &self.secret_file {
            let secret = crate::io::read_text(file)?;
            conf.push(("spark.authenticate".into(), "true".into()));
            conf.push((
                "spark.authenticate.secret".into(),
                secret.trim().to_string(),
            ));
        }
        Ok(conf)
    }
}

// ---------------------------------------------------------------------------------------
// The master's `/json`.

/// The master's state as its UI's `/json` reports it (Spark's `JsonProtocol`); fields
/// this code does not use are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MasterState {
    pub url: String,
    pub status: String,
    pub workers: Vec<WorkerInfo>,
    pub aliveworkers: usize,
    pub cores: u32,
    pub coresused: u32,
    pub memory: u64,
    pub memoryused: u64,
    pub activeapps: Vec<AppInfo>,
    pub completedapps: Vec<AppInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub webuiaddress: String,
    pub cores: u32,
    pub coresused: u32,
    pub memory: u64,
    pub memoryused: u64,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub cores: i64,
    pub state: String,
    pub duration: i64,
}

impl MasterState {
    /// Reads `/json/` from the master UI at `ui` (`http://HOST:PORT`).
    pub fn fetch(ui: &str) -> Result<Self, ClusterError> {
        let url = format!("{}/json/", ui.trim_end_matches('/'));
        let err = |msg: String| ClusterError::Master {
            url: url.clone(),
            msg,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(3)))
            .build()
            .into();
        let mut resp = agent.get(&url).call().map_err(|e| err(e.to_string()))?;
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&body).map_err(|e| err(format!("not the master's /json: {e}")))
    }

    /// Workers that are ALIVE.
    pub fn alive(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.iter().filter(|w| w.state == "ALIVE")
    }

    fn summary(&self) -> String {
        format!(
            "status {:?}, {} ALIVE worker(s) of {}, {} core(s)",
            self.status,
            self.alive().count(),
            self.workers.len(),
            self.cores
        )
    }
}

/// Whether a plain GET of `url` answers 2xx (the history server's readiness).
fn http_ok(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .build()
        .into();
    agent.get(url).call().is_ok()
}

// ---------------------------------------------------------------------------------------
// Finding Spark and Java.

/// `cfg.spark_home`, else `$SPARK_HOME`, else the pyspark package of the shared venv
/// (`$TPCH_WORK/.venv-tpch`, default `/work/spark-runs/.venv-tpch`).
pub fn find_spark_home(configured: Option<&Path>) -> Result<PathBuf, ClusterError> {
    let hint = "run scripts/spark/setup.sh, or pass --spark-home DIR (a folder with \
                bin/spark-class, e.g. the pyspark package folder)";
    let ok = |p: &Path| p.join("bin/spark-class").is_file();
    if let Some(p) = configured {
        return if ok(p) {
            Ok(p.to_path_buf())
        } else {
            Err(ClusterError::Missing {
                what: format!("{}/bin/spark-class", p.display()),
                hint: hint.into(),
            })
        };
    }
    if let Some(p) = std::env::var_os("SPARK_HOME").map(PathBuf::from)
        && ok(&p)
    {
        return Ok(p);
    }
    let work = std::env::var_os("TPCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SPARK_WORK));
    let lib = work.join(".venv-tpch/lib");
    if let Ok(dir) = std::fs::read_dir(&lib) {
        let mut found: Vec<PathBuf> = dir
            .filter_map(|e| Some(e.ok()?.path().join("site-packages/pyspark")))
            .filter(|p| ok(p))
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return Ok(p);
        }
    }
    Err(ClusterError::Missing {
        what: format!("Spark (no $SPARK_HOME, no pyspark under {})", lib.display()),
        hint: hint.into(),
    })
}

/// `$JAVA_HOME/bin/java`, else `java` on `$PATH`.
pub fn find_java() -> Result<PathBuf, ClusterError> {
    if let Some(h) = std::env::var_os("JAVA_HOME") {
        let j = PathBuf::from(h).join("bin/java");
        if j.is_file() {
            return Ok(j);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let j = dir.join("java");
            if j.is_file() {
                return Ok(j);
            }
        }
    }
    Err(ClusterError::Missing {
        what: "Java (no $JAVA_HOME/bin/java, no java on $PATH)".into(),
        hint: "run scripts/spark/setup.sh (installs openjdk-17-jre-headless as root)".into(),
    })
}

// ---------------------------------------------------------------------------------------
// up / status / down.

/// Daemons being started: stops them all when dropped unless `up` finished, so an error,
/// an interruption or a panic during start-up leaves nothing behind.
struct Launch {
    state: ClusterState,
    children: Vec<Child>,
    armed: bool,
}

impl Drop for Launch {
    fn drop(&mut self) {
        if self.armed {
            let _ = stop_all(&self.state, Duration::from_secs(5));
            for c in &mut self.children {
                let _ = c.wait();
            }
            remove_cgroups(&self.state.cgroups);
            let _ = std::fs::remove_file(ClusterState::file(&self.state.work_dir));
        }
    }
}

fn random_hex(bytes: usize) -> Result<String, FileError> {
    let path = Path::new("/dev/urandom");
    let mut buf = vec![0u8; bytes];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(FileError::on(path, "read"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn create_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(FileError::on(dir, "create"))
}

fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts the cluster `cfg` describes (or records the existing master it names), waits
/// until the master reports every worker ALIVE with its cores and memory and the history
/// server answers, and writes the state file. `stop` (set by SIGINT/SIGTERM) interrupts
/// the wait; everything started is then stopped. `progress` hears each step.
pub fn up(
    cfg: &ClusterConfig,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<ClusterState, ClusterError> {
    cfg.validate()?;
    create_dir(&cfg.work_dir)?;
    let work_dir = cfg
        .work_dir
        .canonicalize()
        .map_err(FileError::on(&cfg.work_dir, "resolve"))?;
    if let Ok(old) = ClusterState::load(&work_dir) {
        let alive: Vec<String> = old
            .daemons
            .iter()
            .filter(|d| d.alive())
            .map(|d| format!("{} pid {}", d.role, d.pid))
            .collect();
        if !alive.is_empty() || old.phase == "external" {
            let alive = if alive.is_empty() {
                format!("external master {}", old.master_url)
            } else {
                alive.join(", ")
            };
            return Err(ClusterError::AlreadyUp {
                file: ClusterState::file(&work_dir),
                alive,
            });
        }
        // A stale state (its processes are gone): clear its cgroups before reusing the dir.
        remove_cgroups(&old.cgroups);
    }
    let id = random_hex(6)?;
    if let Some(url) = &cfg.master {
        return up_external(cfg, url, work_dir, id, progress);
    }

    let spark_home = find_spark_home(cfg.spark_home.as_deref())?;
    let java = find_java()?;
    let cgroups = if cfg.cpu_quota.is_empty() {
        None
    } else {
        Some(CpuCgroups::detect(Path::new("/sys/fs/cgroup"))?)
    };
    let event_dir = match &cfg.event_log_dir {
        Some(d) => d.clone(),
        None => work_dir.join("events"),
    };
    create_dir(&event_dir)?;
    let event_dir = event_dir
        .canonicalize()
        .map_err(FileError::on(&event_dir, "resolve"))?;
    let logs = work_dir.join("logs");
    create_dir(&logs)?;
    // The secret lives in a folder only this user can enter.
    let private = work_dir.join("private");
    create_dir(&private)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))
            .map_err(FileError::on(&private, "chmod"))?;
    }
    let secret = random_hex(32)?;
    let secret_file = private.join("secret");
    write_file(&secret_file, secret.as_bytes())?;

    let p = &cfg.ports;
    let state = ClusterState {
        version: STATE_VERSION,
        id: id.clone(),
        phase: "starting".into(),
        master_url: format!("spark://{LOOPBACK}:{}", p.master),
        master_ui: format!("http://{LOOPBACK}:{}", p.master_ui),
        history_ui: Some(format!("http://{LOOPBACK}:{}", p.history)),
        work_dir: work_dir.clone(),
        event_log_dir: Some(event_dir.clone()),
        spark_home: Some(spark_home.clone()),
        workers: cfg.workers,
        cores: cfg.cores,
        memory_mb: cfg.memory_mb,
        cpu_quota: cfg.cpu_quota.clone(),
        distinct_hosts: cfg.distinct_hosts,
        ports: Some(cfg.ports.clone()),
        daemons: Vec::new(),
        cgroups: Vec::new(),
        secret_file: Some(secret_file),
    };
    let mut launch = Launch {
        state,
        children: Vec::new(),
        armed: true,
    };
    launch.state.save()?;
    let conf_file = private.join("spark-defaults.conf");
    let conf: String = launch
        .state
        .app_conf()?
        .iter()
        .map(|(k, v)| format!("{k} {v}\n"))
        .collect();
    write_file(&conf_file, conf.as_bytes())?;

    // Options every daemon shares: authentication on, no port hopping, no kill links.
    let common = "-Dspark.authenticate=true -Dspark.port.maxRetries=0 -Dspark.ui.killEnabled=false";
    let class = |c: &str| format!("org.apache.spark.deploy.{c}");
    // Per daemon: role, bind address, spark-class arguments, and its *_OPTS variable.
    type Spec<'a> = (String, String, Vec<String>, (&'a str, String));
    let mut specs: Vec<Spec> = Vec::new();
    specs.push((
        "master".into(),
        LOOPBACK.into(),
        vec![
            class("master.Master"),
            "--host".into(),
            LOOPBACK.into(),
            "--port".into(),
            p.master.to_string(),
            "--webui-port".into(),
            p.master_ui.to_string(),
        ],
        (
            "SPARK_MASTER_OPTS",
            format!("{common} -Dspark.master.rest.enabled=false"),
        ),
    ));
    let hosts: Vec<String> = (0..cfg.workers)
        .map(|i| worker_host(cfg.distinct_hosts, i))
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        let dir = work_dir.join(format!("worker-{i}"));
        create_dir(&dir)?;
        specs.push((
            format!("worker-{i}"),
            host.clone(),
            vec![
                class("worker.Worker"),
                "--host".into(),
                host.clone(),
                "--cores".into(),
                cfg.cores.to_string(),
                "--memory".into(),
                format!("{}M", cfg.memory_mb),
                "--webui-port".into(),
                (u32::from(p.worker_ui) + i as u32).to_string(),
                "--work-dir".into(),
                dir.display().to_string(),
                launch.state.master_url.clone(),
            ],
            ("SPARK_WORKER_OPTS", common.to_string()),
        ));
    }
    specs.push((
        "history".into(),
        LOOPBACK.into(),
        vec![class("history.HistoryServer")],
        (
            "SPARK_HISTORY_OPTS",
            format!(
                "{common} -Dspark.history.fs.logDirectory=file://{} -Dspark.history.ui.port={}",
                event_dir.display(),
                p.history
            ),
        ),
    ));

    let spark_class = spark_home.join("bin/spark-class");
    for (role, bind, args, (opts_var, opts)) in specs {
        if stop.load(Ordering::SeqCst) {
            return Err(ClusterError::Interrupted);
        }
        progress(&format!("starting the {role}"));
        let log = logs.join(format!("{role}.log"));
        let out = File::create(&log).map_err(FileError::on(&log, "create"))?;
        let err = out.try_clone().map_err(FileError::on(&log, "open"))?;
        let mut cmd = Command::new(&spark_class);
        cmd.args(&args)
            .current_dir(&work_dir)
            .env("SPARK_HOME", &spark_home)
            .env("SPARK_LOCAL_IP", &bind)
            .env("SPARK_LOCAL_DIRS", work_dir.join("local"))
            .env("SPARK_NO_DAEMONIZE", "1")
            .env("_SPARK_AUTH_SECRET", &secret)
            .env(opts_var, opts)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if std::env::var_os("JAVA_HOME").is_none()
            && let Some(home) = java.parent().and_then(Path::parent)
        {
            cmd.env("JAVA_HOME", home);
        }
        // Its own process group: signals to the group reach it and its executors.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|error| ClusterError::Spawn {
            role: role.clone(),
            program: spark_class.clone(),
            error,
        })?;
        let pid = child.id() as i32;
        let start_time = proc_stat(pid).map(|s| s.start_time).unwrap_or(0);
        launch.children.push(child);
        launch.state.daemons.push(Daemon {
            role: role.clone(),
            pid,
            pgid: pid,
            start_time,
            log,
        });
        launch.state.save()?;
        if let (Some(cg), Some(w)) = (&cgroups, role.strip_prefix("worker-")) {
            let w: usize = w.parse().unwrap_or(usize::MAX);
            if let Some(q) = cfg.cpu_quota.iter().find(|q| q.worker == w) {
                let dir = cg.create(&id, w, q.cores)?;
                let parent = cg.cluster_dir(&id);
                if !launch.state.cgroups.contains(&parent) {
                    launch.state.cgroups.push(parent);
                }
                launch.state.cgroups.push(dir.clone());
                launch.state.save()?;
                attach_to_cgroup(&dir, pid)?;
            }
        }
    }

    progress("waiting for the workers to register");
    let deadline = Instant::now() + Duration::from_secs(cfg.start_timeout_s);
    let mut seen: String;
    let history = launch.state.history_ui.clone().unwrap_or_default();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(ClusterError::Interrupted);
        }
        for (d, c) in launch.state.daemons.iter().zip(launch.children.iter_mut()) {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(ClusterError::Exited {
                    role: d.role.clone(),
                    status: status.to_string(),
                    log: d.log.clone(),
                    tail: log_tail(&d.log, 20),
                });
            }
        }
        match MasterState::fetch(&launch.state.master_ui) {
            Ok(m) => {
                let ready = m
                    .alive()
                    .filter(|w| {
                        hosts.contains(&w.host)
                            && w.cores == cfg.cores
                            && w.memory == u64::from(cfg.memory_mb)
                    })
                    .count();
                seen = m.summary();
                if m.status == "ALIVE" && ready == cfg.workers {
                    if http_ok(&format!("{history}/api/v1/applications")) {
                        break;
                    }
                    seen = format!("{seen}; the history server not answering yet");
                }
            }
            Err(e) => seen = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::Timeout {
                secs: cfg.start_timeout_s,
                want: format!(
                    "{} ALIVE worker(s) with {} core(s) and {} MB each, and the history server",
                    cfg.workers, cfg.cores, cfg.memory_mb
                ),
                seen,
            });
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    launch.state.phase = "up".into();
    launch.state.save()?;
    launch.armed = false;
    // The daemons outlive this process: dropping a `Child` neither kills nor waits.
    Ok(launch.state.clone())
}

fn up_external(
    cfg: &ClusterConfig,
    url: &str,
    work_dir: PathBuf,
    id: String,
    progress: &mut dyn FnMut(&str),
) -> Result<ClusterState, ClusterError> {
    let (host, _) = parse_master_url(url).map_err(|m| FieldError::new("master", m))?;
    let ui = cfg
        .master_ui
        .clone()
        .unwrap_or_else(|| format!("http://{host}:8080"));
    progress(&format!("checking the existing master at {ui}"));
    let m = MasterState::fetch(&ui)?;
    if m.status != "ALIVE" || m.alive().count() == 0 {
        return Err(ClusterError::Master {
            url: ui,
            msg: format!("not usable: {}", m.summary()),
        });
    }
    let state = ClusterState {
        version: STATE_VERSION,
        id,
        phase: "external".into(),
        master_url: url.to_string(),
        master_ui: ui,
        history_ui: None,
        work_dir,
        event_log_dir: cfg.event_log_dir.clone(),
        spark_home: None,
        workers: m.alive().count(),
        cores: m.alive().map(|w| w.cores).max().unwrap_or(0),
        memory_mb: m.alive().map(|w| w.memory as u32).max().unwrap_or(0),
        cpu_quota: Vec::new(),
        distinct_hosts: false,
        ports: None,
        daemons: Vec::new(),
        cgroups: Vec::new(),
        secret_file: None,
    };
    state.save()?;
    Ok(state)
}

/// What `status` found.
#[derive(Debug)]
pub struct ClusterStatus {
    pub state: ClusterState,
    /// Each daemon with whether it still runs.
    pub daemons: Vec<(Daemon, bool)>,
    pub master: Result<MasterState, String>,
}

/// Reads the state file in `work_dir` and asks the master.
pub fn status(work_dir: &Path) -> Result<ClusterStatus, ClusterError> {
    let state = ClusterState::load(work_dir)?;
    let daemons = state
        .daemons
        .iter()
        .map(|d| (d.clone(), d.alive()))
        .collect();
    let master = MasterState::fetch(&state.master_ui).map_err(|e| e.to_string());
    Ok(ClusterStatus {
        state,
        daemons,
        master,
    })
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.state;
        writeln!(
            f,
            "cluster {} ({}) in {}",
            s.id,
            s.phase,
            s.work_dir.display()
        )?;
        writeln!(f, "master  {}  UI {}", s.master_url, s.master_ui)?;
        if let Some(h) = &s.history_ui {
            writeln!(f, "history {h}")?;
        }
        if let Some(e) = &s.event_log_dir {
            writeln!(f, "event logs {}", e.display())?;
        }
        for (d, alive) in &self.daemons {
            writeln!(
                f,
                "  {:<10} pid {:<8} {}",
                d.role,
                d.pid,
                if *alive { "running" } else { "NOT RUNNING" }
            )?;
        }
        match &self.master {
            Err(e) => writeln!(f, "master unreachable: {e}")?,
            Ok(m) => {
                writeln!(
                    f,
                    "master {}: {} worker(s) ALIVE of {}, cores {} (used {}), memory {} MB (used {})",
                    m.status,
                    m.alive().count(),
                    m.workers.len(),
                    m.cores,
                    m.coresused,
                    m.memory,
                    m.memoryused
                )?;
                for w in &m.workers {
                    let quota = w
                        .webuiaddress
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u32>().ok())
                        .and_then(|port| {
                            let i = port.checked_sub(worker_ui_base(s)?)? as usize;
                            s.cpu_quota.iter().find(|q| q.worker == i)
                        })
                        .map(|q| format!("  cpu quota {} core(s)", q.cores))
                        .unwrap_or_default();
                    writeln!(
                        f,
                        "  {} {}:{} {} cores {}/{} used, memory {}/{} MB{quota}",
                        w.id, w.host, w.port, w.state, w.coresused, w.cores, w.memoryused, w.memory
                    )?;
                }
                writeln!(
                    f,
                    "applications: {} active, {} completed",
                    m.activeapps.len(),
                    m.completedapps.len()
                )?;
                for a in &m.activeapps {
                    writeln!(f, "  {} {:?} {} cores {}", a.id, a.name, a.state, a.cores)?;
                }
            }
        }
        Ok(())
    }
}

/// The first worker UI port, when mpda started the workers.
fn worker_ui_base(s: &ClusterState) -> Option<u32> {
    s.ports.as_ref().map(|p| u32::from(p.worker_ui))
}

/// What `down` did.
#[derive(Debug, Default)]
pub struct DownReport {
    /// Daemons that stopped on SIGTERM.
    pub stopped: Vec<String>,
    /// Daemons (or other JVMs of the cluster) that needed SIGKILL.
    pub killed: Vec<String>,
    pub cgroups_removed: usize,
    /// True for an external cluster: nothing was ours to stop.
    pub external: bool,
}

/// Sends SIGTERM to every process group, waits up to `grace`, sends SIGKILL to what is
/// left, then kills any JVM still working in the cluster's dir. Returns (stopped, killed).
fn stop_all(state: &ClusterState, grace: Duration) -> (Vec<String>, Vec<String>) {
    let live: Vec<&Daemon> = state.daemons.iter().filter(|d| d.alive()).collect();
    for d in &live {
        signal(-d.pgid, libc::SIGTERM);
    }
    let groups_alive = |d: &Daemon| all_procs().iter().any(|s| s.pgrp == d.pgid);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|d| groups_alive(d)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stopped = Vec::new();
    let mut killed = Vec::new();
    for d in &live {
        if groups_alive(d) {
            signal(-d.pgid, libc::SIGKILL);
            killed.push(d.role.clone());
        } else {
            stopped.push(d.role.clone());
        }
    }
    // Executors that left the group (none do today, but a JVM in our dir is ours).
    for (pid, cmd) in cluster_jvms(state) {
        if !state.daemons.iter().any(|d| d.pgid == pid) {
            signal(pid, libc::SIGKILL);
            killed.push(format!("pid {pid} ({cmd})"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !cluster_jvms(state).is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    (stopped, killed)
}

/// Stops every process of the cluster in `work_dir` (SIGTERM to each process group,
/// SIGKILL after `grace`), removes its cgroups, checks in `/proc` that none of its JVMs
/// is left, and removes the state file. For an external cluster it only forgets it.
pub fn down(work_dir: &Path, grace: Duration) -> Result<DownReport, ClusterError> {
    let state = ClusterState::load(work_dir)?;
    let file = ClusterState::file(work_dir);
    let remove_state = || std::fs::remove_file(&file).map_err(FileError::on(&file, "remove"));
    if state.phase == "external" {
        remove_state()?;
        return Ok(DownReport {
            external: true,
            ..DownReport::default()
        });
    }
    let (stopped, killed) = stop_all(&state, grace);
    let left = cluster_jvms(&state);
    if !left.is_empty() {
        let list: Vec<String> = left.iter().map(|(p, c)| format!("pid {p}: {c}")).collect();
        return Err(ClusterError::Survivors(list.join("; ")));
    }
    let failed = remove_cgroups(&state.cgroups);
    if let Some((path, msg)) = failed.first() {
        return Err(cgroup_err(path, format!("cannot remove: {msg}")));
    }
    remove_state()?;
    Ok(DownReport {
        stopped,
        killed,
        cgroups_removed: state.cgroups.len(),
        external: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(cfg: &ClusterConfig) -> String {
        cfg.validate().expect_err("should be refused").field
    }

    #[test]
    fn the_default_config_is_valid() {
        ClusterConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_settings_name_their_field() {
        let ok = ClusterConfig::default();
        let zero = ClusterConfig {
            workers: 0,
            ..ok.clone()
        };
        assert_eq!(field_of(&zero), "workers");
        let small = ClusterConfig {
            memory_mb: 299,
            ..ok.clone()
        };
        let e = small.validate().unwrap_err();
        assert_eq!(e.field, "memory_mb");
        assert!(e.msg.contains("300 MB"), "{e}");
        let no_cores = ClusterConfig {
            cores: 0,
            ..ok.clone()
        };
        assert_eq!(field_of(&no_cores), "cores");
        let q = |worker, cores| ClusterConfig {
            cpu_quota: vec![WorkerQuota { worker, cores }],
            ..ok.clone()
        };
        assert_eq!(field_of(&q(2, 0.5)), "cpu_quota[0].worker");
        assert_eq!(field_of(&q(0, 0.0)), "cpu_quota[0].cores");
        assert_eq!(field_of(&q(0, f64::NAN)), "cpu_quota[0].cores");
        assert_eq!(
            field_of(&q(0, 1.5)),
            "cpu_quota[0].cores",
            "above the worker's cores"
        );
        q(1, 0.25).validate().unwrap();
        let twice = ClusterConfig {
            cpu_quota: vec![
                WorkerQuota {
                    worker: 1,
                    cores: 0.5,
                },
                WorkerQuota {
                    worker: 1,
                    cores: 0.7,
                },
            ],
            ..ok.clone()
        };
        assert_eq!(field_of(&twice), "cpu_quota[1].worker");
        let mut same = ok.clone();
        same.ports.history = same.ports.master;
        assert_eq!(field_of(&same), "ports.history");
        let mut overlap = ok.clone();
        overlap.ports.worker_ui = overlap.ports.master_ui - 1; // workers use 8079 and 8080
        assert_eq!(field_of(&overlap), "ports.worker_ui");
        let mut low = ok.clone();
        low.ports.master = 80;
        assert_eq!(field_of(&low), "ports.master");
        let bad_master = ClusterConfig {
            master: Some("http://localhost:7077".into()),
            ..ok.clone()
        };
        assert_eq!(field_of(&bad_master), "master");
        let ui_alone = ClusterConfig {
            master_ui: Some("http://localhost:8080".into()),
            ..ok.clone()
        };
        assert_eq!(field_of(&ui_alone), "master_ui");
        let external = ClusterConfig {
            master: Some("spark://spark-master.local:7077".into()),
            master_ui: Some("http://127.0.0.1:9090/".into()),
            ..ok
        };
        external.validate().unwrap();
    }

    #[test]
    fn toml_is_read_with_the_config_pattern() {
        let cfg = ClusterConfig::parse(
            "workers = 3\nmemory_mb = 600\ncpu_quota = [{ worker = 2, cores = 0.5 }]\n\
             [ports]\nmaster = 17077\n",
            Path::new("live.toml"),
        )
        .unwrap();
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.ports.master, 17077);
        assert_eq!(cfg.ports.history, Ports::default().history);
        let e = ClusterConfig::parse("wrokers = 3\n", Path::new("live.toml")).unwrap_err();
        assert!(e.to_string().contains("live.toml"), "{e}");
        let e = ClusterConfig::parse("memory_mb = 100\n", Path::new("live.toml")).unwrap_err();
        assert!(e.to_string().starts_with("live.toml: memory_mb:"), "{e}");
    }

    #[test]
    fn quotas_parse_from_the_command_line() {
        let q: WorkerQuota = "1=0.5".parse().unwrap();
        assert_eq!(
            q,
            WorkerQuota {
                worker: 1,
                cores: 0.5
            }
        );
        assert!("1:0.5".parse::<WorkerQuota>().is_err());
        assert!("x=0.5".parse::<WorkerQuota>().is_err());
        assert!("1=half".parse::<WorkerQuota>().is_err());
    }

    #[test]
    fn master_urls() {
        assert_eq!(
            parse_master_url("spark://127.0.0.1:7077").unwrap(),
            ("127.0.0.1".to_string(), 7077)
        );
        for bad in [
            "spark://:7077",
            "spark://h",
            "spark://h:0",
            "spark://h:99999",
            "h:7077",
            "spark://a b:1",
        ] {
            assert!(parse_master_url(bad).is_err(), "{bad}");
        }
    }

    fn sample_state(work: &Path) -> ClusterState {
        ClusterState {
            version: STATE_VERSION,
            id: "abc123".into(),
            phase: "up".into(),
            master_url: "spark://127.0.0.1:7077".into(),
            master_ui: "http://127.0.0.1:8080".into(),
            history_ui: Some("http://127.0.0.1:18080".into()),
            work_dir: work.to_path_buf(),
            event_log_dir: Some(work.join("events")),
            spark_home: Some("/opt/spark".into()),
            workers: 2,
            cores: 1,
            memory_mb: 512,
            cpu_quota: vec![WorkerQuota {
                worker: 1,
                cores: 0.5,
            }],
            distinct_hosts: false,
            ports: Some(Ports::default()),
            daemons: vec![Daemon {
                role: "master".into(),
                pid: 42,
                pgid: 42,
                start_time: 12345,
                log: work.join("logs/master.log"),
            }],
            cgroups: vec!["/sys/fs/cgroup/cpu/mpda-abc123".into()],
            secret_file: Some(work.join("private/secret")),
        }
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = sample_state(dir.path());
        s.save().unwrap();
        assert_eq!(ClusterState::load(dir.path()).unwrap(), s);
        // The secret is read from its file, never stored in the state.
        let text = std::fs::read_to_string(ClusterState::file(dir.path())).unwrap();
        assert!(!text.contains("authenticate.secret"));
        write_file(&dir.path().join("private/secret"), b"s3cret\n").unwrap();
        let conf = s.app_conf().unwrap();
        assert!(conf.contains(&("spark.authenticate.secret".into(), "s3cret".into())));
        assert!(conf.contains(&("spark.master".into(), "spark://127.0.0.1:7077".into())));
    }

    #[test]
    fn a_missing_or_broken_state_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = ClusterState::load(dir.path()).unwrap_err();
        assert!(matches!(e, ClusterError::NotUp { .. }), "{e}");
        assert!(e.to_string().contains("cluster.json"), "{e}");
        write_file(&ClusterState::file(dir.path()), b"{ \"version\": 1 }").unwrap();
        let e = ClusterState::load(dir.path()).unwrap_err();
        assert!(matches!(e, ClusterError::State { .. }), "{e}");
        let mut s = sample_state(dir.path());
        s.version = 99;
        s.save().unwrap();
        let e = ClusterState::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
        // `down` on a dir without a cluster says so instead of doing anything.
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            down(empty.path(), Duration::from_secs(1)),
            Err(ClusterError::NotUp { .. })
        ));
    }

    #[test]
    fn proc_stat_lines_parse_even_with_odd_command_names() {
        let line = "18163 (java (x) y) S 1 18163 18163 0 -1 4194560 1 0 0 0 10 2 0 0 20 0 \
                    40 0 987654 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.pid, s.state, s.pgrp, s.start_time),
            (18163, 'S', 18163, 987654)
        );
        assert!(parse_stat("garbage").is_none());
        let me = proc_stat(std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
    }

    #[test]
    fn cgroup_v1_paths_and_files() {
        let base = tempfile::tempdir().unwrap();
        let v1 = base.path().join("cpu");
        std::fs::create_dir(&v1).unwrap();
        std::fs::write(v1.join("cpu.cfs_quota_us"), "-1").unwrap();
        let cg = CpuCgroups::detect(base.path()).unwrap();
        assert_eq!(cg.version, CgroupVersion::V1);
        assert_eq!(cg.worker_dir("ab", 3), v1.join("mpda-ab/worker-3"));
        let dir = cg.create("ab", 3, 0.25).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.cfs_quota_us"), "25000");
        attach_to_cgroup(&dir, 777).unwrap();
        assert_eq!(read("cgroup.procs"), "777");
        // The kernel's floor of 1 ms per period.
        assert_eq!(cg.limits(0.001)[1].1, "1000");
    }

    #[test]
    fn cgroup_v2_delegates_cpu_and_writes_cpu_max() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(
            base.path().join("cgroup.controllers"),
            "cpuset cpu io memory",
        )
        .unwrap();
        let cg = CpuCgroups::detect(base.path()).unwrap();
        assert_eq!(cg.version, CgroupVersion::V2);
        let dir = cg.create("cd", 0, 1.5).unwrap();
        assert_eq!(dir, base.path().join("mpda-cd/worker-0"));
        assert_eq!(
            std::fs::read_to_string(dir.join("cpu.max")).unwrap(),
            "150000 100000"
        );
        for f in ["cgroup.subtree_control", "mpda-cd/cgroup.subtree_control"] {
            assert_eq!(
                std::fs::read_to_string(base.path().join(f)).unwrap(),
                "+cpu",
                "{f}"
            );
        }
    }

    #[test]
    fn no_cpu_controller_is_a_clear_error() {
        let base = tempfile::tempdir().unwrap();
        let e = CpuCgroups::detect(base.path()).unwrap_err().to_string();
        assert!(e.contains("neither cgroup v1") && e.contains("v2"), "{e}");
        std::fs::write(base.path().join("cgroup.controllers"), "memory io").unwrap();
        let e = CpuCgroups::detect(base.path()).unwrap_err().to_string();
        assert!(e.contains("without the cpu controller"), "{e}");
    }

    #[test]
    fn empty_groups_are_removed_deepest_first() {
        let base = tempfile::tempdir().unwrap();
        let parent = base.path().join("mpda-x");
        let child = parent.join("worker-0");
        std::fs::create_dir_all(&child).unwrap();
        let failed = remove_cgroups(&[parent.clone(), child.clone()]);
        assert!(failed.is_empty(), "{failed:?}");
        assert!(!parent.exists());
    }

    #[test]
    fn the_masters_json_parses() {
        let json = r#"{
          "url" : "spark://127.0.0.1:27077",
          "workers" : [ { "id" : "worker-1", "host" : "127.0.0.1", "port" : 45997,
            "webuiaddress" : "http://127.0.0.1:28081", "cores" : 1, "coresused" : 0,
            "coresfree" : 1, "memory" : 512, "memoryused" : 0, "memoryfree" : 512,
            "resources" : { }, "state" : "ALIVE", "lastheartbeat" : 1795792298900 },
            { "id" : "worker-2", "host" : "127.0.0.1", "port" : 1, "cores" : 1, "state" : "DEAD" } ],
          "aliveworkers" : 1, "cores" : 1, "coresused" : 0, "memory" : 512, "memoryused" : 0,
          "resources" : [ { } ], "activeapps" : [ { "id" : "app-1", "name" : "q1", "cores" : 2,
            "state" : "RUNNING", "duration" : 10 } ], "completedapps" : [ ],
          "activedrivers" : [ ], "status" : "ALIVE" }"#;
        let m: MasterState = serde_json::from_str(json).unwrap();
        assert_eq!(m.alive().count(), 1);
        assert_eq!(m.workers[0].port, 45997);
        assert_eq!(m.activeapps[0].name, "q1");
    }

    #[test]
    fn spark_home_must_hold_spark_class() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_spark_home(Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("bin/spark-class"), "{e}");
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/spark-class"), "").unwrap();
        assert_eq!(find_spark_home(Some(dir.path())).unwrap(), dir.path());
    }
}
