//! The `[sim.cluster]` section: Spark as it really runs. Hosts with cores, memory and a
//! relative speed; executors on them with Spark's `spark.executor.cores` and
//! `spark.executor.memory`; task slots as Spark counts them; task data and its skew;
//! execution memory and spill; locality with delay scheduling; Spark's FIFO/FAIR pools.
//!
//! With no `[sim.cluster]` section the simulator is Decima's, unchanged. With one, the
//! episode runs on [`super::spark::SparkEnv`]. Every term of the task-duration model is
//! listed in `docs/simulator.md` ("Spark realism") with where its value comes from.

use serde::{Deserialize, Serialize};

use super::plan::PlanConfig;
use crate::validate::{FieldError, finite_in, in_range};

/// Spark's reserved system memory per executor (`RESERVED_SYSTEM_MEMORY_BYTES`), MB.
pub const RESERVED_MEMORY_MB: u64 = 300;
/// Most hosts in one cluster (host ids are `u16`).
pub const MAX_HOSTS: u32 = 10_000;
/// Most task slots in one cluster (the simulator's executor bound).
pub const MAX_SLOTS: u32 = super::MAX_EXECUTORS;
/// Largest locality wait, ms: one hour.
pub const MAX_WAIT_MS: i64 = 3_600_000;
/// Most preferred hosts of one task (HDFS replication, and at most 5 hosts can each hold
/// Spark's 20% of a shuffle's map output).
pub const MAX_PREFS: usize = 5;
/// Spark's `REDUCER_PREF_LOCS_FRACTION`: a reduce task prefers the hosts holding at least
/// this share of its stage's map output.
pub const REDUCER_PREF_FRACTION: f64 = 0.2;

/// A group of identical hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroup {
    /// How many hosts of this kind.
    #[serde(default = "one")]
    pub count: u32,
    /// Cores of one host (what `spark.executor.cores` is carved from).
    pub cores: u32,
    /// Memory of one host, MB.
    pub memory_mb: u64,
    /// Relative speed (CPU frequency against the machine the traces were measured on):
    /// a task's compute time is divided by it.
    #[serde(default = "unit")]
    pub speed: f64,
    /// Rack name; hosts without one share no rack with anyone.
    #[serde(default)]
    pub rack: Option<String>,
    /// `spark.executor.cores` on these hosts; default: one executor with every core.
    #[serde(default)]
    pub executor_cores: Option<u32>,
    /// `spark.executor.memory`, MB; default: the host's memory split evenly over its
    /// executors.
    #[serde(default)]
    pub executor_memory_mb: Option<u64>,
}

fn one() -> u32 {
    1
}
fn unit() -> f64 {
    1.0
}

/// Spark's scheduling mode (`spark.scheduler.mode`, and a pool's `schedulingMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SchedulingMode {
    #[default]
    Fifo,
    Fair,
}

/// One pool of a fairscheduler.xml: `<pool name><weight><minShare><schedulingMode>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub min_share: u32,
    #[serde(default)]
    pub mode: SchedulingMode,
}

/// Which pool each job is submitted to (`spark.scheduler.pool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PoolAssignment {
    /// Query label → pool name. A job whose query is not listed goes to `default_pool`.
    #[serde(default)]
    pub by_query: std::collections::BTreeMap<String, String>,
    /// Pool of unlisted jobs; default: one pool per job, named after the job (Spark creates
    /// a pool with default values for a name it has not been configured with).
    #[serde(default)]
    pub default_pool: Option<String>,
}

/// Spark's `spark.locality.wait*`, ms. Signed so that a negative value gets a clear error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalityConfig {
    /// Model locality at all: preferred hosts, delay scheduling and the fetch of remote data.
    pub enabled: bool,
    /// `spark.locality.wait` (3 s): the default of the three below.
    pub wait_ms: i64,
    pub wait_process_ms: Option<i64>,
    pub wait_node_ms: Option<i64>,
    pub wait_rack_ms: Option<i64>,
    /// Replicas of an input block (HDFS's `dfs.replication`, 3): the preferred hosts of an
    /// input task. 0: input tasks prefer no host, as for files Spark reads from a local
    /// file system (their blocks say `localhost`, which Spark's `FilePartition` ignores)
    /// or an object store; reduce tasks still prefer their map outputs' hosts.
    pub replication: u32,
}

impl Default for LocalityConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            wait_ms: 3000,
            wait_process_ms: None,
            wait_node_ms: None,
            wait_rack_ms: None,
            replication: 3,
        }
    }
}

/// `memory.peak_factor`'s default: fitted by scripts/calibrate/spill.sh on TPC-H SF 2 runs
/// at 512 MB executors (docs/simulator.md, "Calibration", memory).
pub const PEAK_FACTOR: f64 = 0.8;

/// Spark's unified memory manager, for execution memory and spill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    pub enabled: bool,
    /// `spark.memory.fraction` (0.6): share of (executor memory − 300 MB) for execution and
    /// storage; with no cached data, execution may use all of it.
    pub fraction: f64,
    /// Working set of a task over its data (DSCS: "about 2–3x"), for stages whose trace
    /// did not measure their peak execution memory.
    pub working_set_factor: f64,
    /// Working set of a task over the `Peak Execution Memory` its trace measured (in a run
    /// with memory to spare), for stages that have it; fitted on real spilling runs
    /// (docs/simulator.md, "Calibration", memory).
    pub peak_factor: f64,
    /// Disk bandwidth for writing and reading back spilled bytes, MB/s.
    pub disk_mb_per_s: f64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            fraction: 0.6,
            working_set_factor: 2.5,
            peak_factor: PEAK_FACTOR,
            disk_mb_per_s: 200.0,
        }
    }
}

/// A task's fixed cost, ms: the measured tasks of tpch-live/ (per-task durations and
/// bytes) give a median of 45 ms for tasks that read nothing and a median intercept of
/// 60 ms for per-stage least-squares fits of duration on bytes (101 stages; quartiles 38
/// and 107 ms).
pub const TASK_OVERHEAD_MS: f64 = 50.0;

/// Task data: how much each task reads, and how skewed the keys are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// For stages whose trace has no per-task bytes: a stage's bytes are its tasks' mean
    /// duration × tasks × this rate (MB per task-second measured on the reference machine).
    pub mb_per_task_s: f64,
    /// Zipf exponent of key frequencies (0: uniform keys, no skew).
    pub zipf: f64,
    /// Keys per partition (keys are hashed onto partitions as Spark's HashPartitioner does).
    pub keys_per_partition: u32,
    /// Distinct keys of every generated shuffle, instead of `keys_per_partition` × tasks:
    /// the key count of the workload's generator (1000 words, 20 k-means clusters).
    pub keys: Option<u64>,
    /// Scale a task's duration by its data over the stage's mean data (on by default when
    /// data is generated with skew; durations from traces already hold their skew).
    pub scale_durations: bool,
    /// Network bandwidth for fetching data from another host, MB/s.
    pub network_mb_per_s: f64,
    /// Generate keys (Zipf(`zipf`), `keys_per_partition` per task) even for stages whose
    /// trace measured per-task bytes, over the measured total: the key-level detail that
    /// salting and re-hashing need (an event log records partitions, not keys).
    pub generate_keys: bool,
    /// Fixed cost of a task (launch, deserialisation, commit), ms: the part of a task's
    /// time that does not scale with its data when a stage is re-cut; fitted on runs of
    /// [`TASK_OVERHEAD_MS`] (docs/simulator.md, "Shuffle planners").
    pub task_overhead_ms: f64,
    /// The map side's cost per output partition, ms per map task: when a planner re-cuts a
    /// shuffle from the trace's P partitions to P', each task of the stages writing it
    /// takes (P' − P) × this more (or less). 0 by default (not measured for JVM jobs);
    /// 5.8 ms for the PySpark RDD jobs of the DSCS experiments (`scripts/dscs/fit_costs.py`).
    pub write_ms_per_partition: f64,
    /// Dataset scale: every stage's bytes (and measured peak memory) × `scale`, and each
    /// task's time beyond its fixed cost × `scale` (time linear in data), to run a workload
    /// measured on small data at a study's data size. 1: as measured.
    pub scale: f64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            mb_per_task_s: 10.0,
            zipf: 0.0,
            keys_per_partition: 16,
            keys: None,
            scale_durations: true,
            network_mb_per_s: 125.0,
            generate_keys: false,
            task_overhead_ms: TASK_OVERHEAD_MS,
            write_ms_per_partition: 0.0,
            scale: 1.0,
        }
    }
}

/// When a task ends, who decides what its slot runs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reoffer {
    /// Spark: every freed slot is offered again through the scheduler.
    #[default]
    EverySlot,
    /// Decima: a slot stays on its stage while the stage has tasks to start.
    Stage,
}

/// The `[sim.cluster]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// A named cluster (`dscs`, `hetero-small`); `hosts` replaces its hosts when given.
    pub preset: Option<String>,
    pub hosts: Vec<HostGroup>,
    /// `spark.task.cpus`.
    pub task_cpus: Option<u32>,
    pub reoffer: Reoffer,
    /// Pools of a fairscheduler.xml, for the `spark-fair` scheduler (which puts a job
    /// with no pool in a pool of its own, as Spark does for an unknown pool name).
    pub pools: Vec<PoolConfig>,
    pub assign: PoolAssignment,
    pub locality: LocalityConfig,
    pub memory: MemoryConfig,
    pub data: DataConfig,
    /// The shuffle planner (DSCS, AQE, fixed partitions) applied at each shuffle stage's
    /// submission; a scheduler spec's `+planner[...]` overrides it per experiment arm.
    pub plan: PlanConfig,
}

/// One host of a resolved cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub cores: u32,
    pub memory_mb: u64,
    pub speed: f64,
    /// Rack index, if the host has a rack.
    pub rack: Option<u16>,
}

/// One executor of a resolved cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Executor {
    pub host: u16,
    pub slots: u32,
    /// Execution memory of the unified pool, bytes: (memory − 300 MB) × fraction.
    pub execution_bytes: f64,
}

/// A cluster ready to simulate: hosts, executors and their slots.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub hosts: Vec<Host>,
    pub executors: Vec<Executor>,
    pub racks: Vec<String>,
}

impl ClusterSpec {
    pub fn slots(&self) -> u32 {
        self.executors.iter().map(|e| e.slots).sum()
    }
}

/// The names `preset` accepts.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "dscs",
        "the DSCS study's cluster: 5 x 2 cores x 4 GB, 2 x 1 core x 2 GB, 2 x 4 cores x 8 GB",
    ),
    (
        "dscs-pagerank",
        "the DSCS study's PageRank cluster: 2 x 2 cores x 1 GB, 2 x 4 cores x 1 GB (12 slots)",
    ),
    (
        "hetero-small",
        "4 fast hosts (8 cores, 32 GB, speed 1.0) and 4 slow ones (8 cores, 16 GB, speed 0.5), two racks",
    ),
];

fn group(count: u32, cores: u32, memory_mb: u64, speed: f64, rack: Option<&str>) -> HostGroup {
    HostGroup {
        count,
        cores,
        memory_mb,
        speed,
        rack: rack.map(str::to_string),
        executor_cores: None,
        executor_memory_mb: None,
    }
}

/// The hosts of a preset.
pub fn preset_hosts(name: &str) -> Option<Vec<HostGroup>> {
    match name {
        // DSCS's speeds are relative CPU capacities; its paper gives cores and memory only,
        // so every host runs at the reference speed.
        "dscs" => Some(vec![
            group(5, 2, 4096, 1.0, None),
            group(2, 1, 2048, 1.0, None),
            group(2, 4, 8192, 1.0, None),
        ]),
        // The study's skew experiments: 4 workers of 1 GB, two with 2 cores, two with 4.
        "dscs-pagerank" => Some(vec![
            group(2, 2, 1024, 1.0, None),
            group(2, 4, 1024, 1.0, None),
        ]),
        "hetero-small" => Some(vec![
            group(4, 8, 32_768, 1.0, Some("rack-a")),
            group(4, 8, 16_384, 0.5, Some("rack-b")),
        ]),
        _ => None,
    }
}

impl ClusterConfig {
    /// Checks every field; names are relative to `[sim.cluster]`.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.resolve().map(|_| ())
    }

    /// The wait of a level, ms (Spark: a per-level override, else `spark.locality.wait`).
    pub fn waits(&self) -> [u64; 3] {
        let l = &self.locality;
        let w = |o: Option<i64>| o.unwrap_or(l.wait_ms).max(0) as u64;
        [w(l.wait_process_ms), w(l.wait_node_ms), w(l.wait_rack_ms)]
    }

    /// Builds the hosts and executors, checking every value on the way.
    pub fn resolve(&self) -> Result<ClusterSpec, FieldError> {
        let groups = match (&self.preset, self.hosts.is_empty()) {
            (_, false) => self.hosts.clone(),
            (Some(p), true) => preset_hosts(p).ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
                FieldError::new(
                    "preset",
                    format!("unknown preset \"{p}\"; known: {}", names.join(", ")),
                )
            })?,
            (None, true) => {
                return Err(FieldError::new(
                    "hosts",
                    "name a preset or list at least one host group",
                ));
            }
        };
        let task_cpus = self.task_cpus.unwrap_or(1);
        in_range("task_cpus", task_cpus, 1, 1024)?;
        let mut spec = ClusterSpec {
            hosts: Vec::new(),
            executors: Vec::new(),
            racks: Vec::new(),
        };
        for (i, g) in groups.iter().enumerate() {
            let f = |name: &str| format!("hosts[{i}].{name}");
            in_range(&f("count"), g.count, 1, MAX_HOSTS)?;
            in_range(&f("cores"), g.cores, 1, 4096)?;
            finite_in(&f("speed"), g.speed, f64::MIN_POSITIVE, 1000.0).map_err(|_| {
                FieldError::new(
                    f("speed"),
                    format!("must be a finite number above 0, found {}", g.speed),
                )
            })?;
            let ecores = g.executor_cores.unwrap_or(g.cores);
            in_range(&f("executor_cores"), ecores, 1, g.cores)?;
            if ecores < task_cpus {
                return Err(FieldError::new(
                    f("executor_cores"),
                    format!("{ecores} cores cannot run one task of task_cpus = {task_cpus}"),
                ));
            }
            let per_host = g.cores / ecores;
            let emem = g
                .executor_memory_mb
                .unwrap_or(g.memory_mb / u64::from(per_host));
            if emem <= RESERVED_MEMORY_MB {
                let field = if g.executor_memory_mb.is_some() {
                    f("executor_memory_mb")
                } else {
                    f("memory_mb")
                };
                return Err(FieldError::new(
                    field,
                    format!(
                        "an executor gets {emem} MB, not above Spark's {RESERVED_MEMORY_MB} MB reserved memory"
                    ),
                ));
            }
            if emem * u64::from(per_host) > g.memory_mb {
                return Err(FieldError::new(
                    f("executor_memory_mb"),
                    format!(
                        "{per_host} executors x {emem} MB do not fit in the host's {} MB",
                        g.memory_mb
                    ),
                ));
            }
            let rack = g.rack.as_ref().map(|r| {
                let idx = spec.racks.iter().position(|x| x == r).unwrap_or_else(|| {
                    spec.racks.push(r.clone());
                    spec.racks.len() - 1
                });
                idx as u16
            });
            for _ in 0..g.count {
                if spec.hosts.len() as u32 >= MAX_HOSTS {
                    return Err(FieldError::new(
                        "hosts",
                        format!("more than {MAX_HOSTS} hosts"),
                    ));
                }
                let host = spec.hosts.len() as u16;
                spec.hosts.push(Host {
                    cores: g.cores,
                    memory_mb: g.memory_mb,
                    speed: g.speed,
                    rack,
                });
                for _ in 0..per_host {
                    spec.executors.push(Executor {
                        host,
                        slots: ecores / task_cpus,
                        execution_bytes: (emem - RESERVED_MEMORY_MB) as f64
                            * 1_048_576.0
                            * self.memory.fraction,
                    });
                }
            }
        }
        if u64::from(spec.slots()) > u64::from(MAX_SLOTS) {
            return Err(FieldError::new(
                "hosts",
                format!("{} task slots, more than {MAX_SLOTS}", spec.slots()),
            ));
        }
        let l = &self.locality;
        for (name, w) in [
            ("locality.wait_ms", Some(l.wait_ms)),
            ("locality.wait_process_ms", l.wait_process_ms),
            ("locality.wait_node_ms", l.wait_node_ms),
            ("locality.wait_rack_ms", l.wait_rack_ms),
        ] {
            if let Some(w) = w {
                in_range(name, w, 0, MAX_WAIT_MS)?;
            }
        }
        in_range("locality.replication", l.replication, 0, MAX_PREFS as u32)?;
        let m = &self.memory;
        finite_in("memory.fraction", m.fraction, 0.01, 1.0)?;
        finite_in(
            "memory.working_set_factor",
            m.working_set_factor,
            0.0,
            1000.0,
        )?;
        finite_in("memory.peak_factor", m.peak_factor, 0.0, 1000.0)?;
        finite_in("memory.disk_mb_per_s", m.disk_mb_per_s, 0.001, 1e9)?;
        let d = &self.data;
        finite_in("data.mb_per_task_s", d.mb_per_task_s, 0.0, 1e9)?;
        finite_in("data.zipf", d.zipf, 0.0, 10.0)?;
        in_range(
            "data.keys_per_partition",
            d.keys_per_partition,
            1,
            1_000_000,
        )?;
        finite_in("data.network_mb_per_s", d.network_mb_per_s, 0.001, 1e9)?;
        finite_in("data.task_overhead_ms", d.task_overhead_ms, 0.0, 1e7)?;
        finite_in("data.scale", d.scale, 1e-6, 1e6)?;
        finite_in(
            "data.write_ms_per_partition",
            d.write_ms_per_partition,
            0.0,
            1e6,
        )?;
        if let Some(k) = d.keys {
            in_range("data.keys", k, 1, 10_000_000)?;
        }
        self.plan.validate().map_err(|e| e.within("plan"))?;
        self.validate_pools()?;
        Ok(spec)
    }

    fn validate_pools(&self) -> Result<(), FieldError> {
        for (i, p) in self.pools.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(FieldError::new(
                    format!("pools[{i}].name"),
                    "must not be empty",
                ));
            }
            if self.pools[..i].iter().any(|q| q.name == p.name) {
                return Err(FieldError::new(
                    format!("pools[{i}].name"),
                    format!("pool \"{}\" is defined twice", p.name),
                ));
            }
            in_range(&format!("pools[{i}].weight"), p.weight, 1, 1_000_000)?;
            in_range(&format!("pools[{i}].min_share"), p.min_share, 0, MAX_SLOTS)?;
        }
        let known = |n: &str| self.pools.iter().any(|p| p.name == n);
        for (q, pool) in &self.assign.by_query {
            if !known(pool) {
                return Err(FieldError::new(
                    format!("assign.by_query.{q}"),
                    format!("job sent to unknown pool \"{pool}\""),
                ));
            }
        }
        if let Some(d) = &self.assign.default_pool
            && !known(d)
        {
            return Err(FieldError::new(
                "assign.default_pool",
                format!("unknown pool \"{d}\""),
            ));
        }
        for (i, p) in self.pools.iter().enumerate() {
            let used = self.assign.default_pool.as_deref() == Some(p.name.as_str())
                || self.assign.by_query.values().any(|v| *v == p.name);
            if !used {
                return Err(FieldError::new(
                    format!("pools[{i}]"),
                    format!(
                        "pool \"{}\" is used by no job (assign.by_query, assign.default_pool)",
                        p.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The pool of a job with query label `query`: an index into [`Self::pools`], or `None`
    /// for a pool of its own.
    pub fn pool_of(&self, query: &str) -> Option<usize> {
        let name = self
            .assign
            .by_query
            .get(query)
            .or(self.assign.default_pool.as_ref())?;
        self.pools.iter().position(|p| &p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClusterConfig {
        toml::from_str(text).unwrap()
    }

    fn err(text: &str) -> FieldError {
        parse(text).validate().unwrap_err()
    }

    #[test]
    fn dscs_preset_has_the_studys_hosts() {
        let s = parse("preset = \"dscs\"").resolve().unwrap();
        assert_eq!(s.hosts.len(), 9);
        assert_eq!(s.slots(), 5 * 2 + 2 + 2 * 4);
        let mem: u64 = s.hosts.iter().map(|h| h.memory_mb).sum();
        assert_eq!(mem, 5 * 4096 + 2 * 2048 + 2 * 8192);
        let p = parse("preset = \"dscs-pagerank\"").resolve().unwrap();
        assert_eq!((p.hosts.len(), p.slots()), (4, 12));
        // 1 GB executors: (1024 - 300) MB x 0.6 of execution memory each.
        let exec: f64 = p.executors.iter().map(|e| e.execution_bytes).sum();
        assert!((exec - 4.0 * 724.0 * 0.6 * 1_048_576.0).abs() < 1.0);
    }

    #[test]
    fn executors_split_hosts_as_spark_does() {
        let s = parse(
            "[[hosts]]\ncount = 2\ncores = 8\nmemory_mb = 16384\nexecutor_cores = 3\n\
             executor_memory_mb = 4096",
        )
        .resolve()
        .unwrap();
        // 8 cores / 3 per executor: 2 executors per host, 2 cores left unused.
        assert_eq!(s.executors.len(), 4);
        assert_eq!(s.slots(), 12);
        let e = (4096.0 - 300.0) * 1_048_576.0 * 0.6;
        assert!((s.executors[0].execution_bytes - e).abs() < 1.0);
    }

    #[test]
    fn bad_clusters_name_the_field() {
        let e = err("[[hosts]]\ncores = 0\nmemory_mb = 4096");
        assert_eq!(e.field, "hosts[0].cores");
        let e = err("[[hosts]]\ncores = 2\nmemory_mb = 4096\nexecutor_memory_mb = 200");
        assert_eq!(e.field, "hosts[0].executor_memory_mb");
        assert!(e.msg.contains("300 MB"), "{e}");
        let e = err("[[hosts]]\ncores = 2\nmemory_mb = 4096\nspeed = 0.0");
        assert_eq!(e.field, "hosts[0].speed");
        let e = err("[[hosts]]\ncores = 2\nmemory_mb = 4096\nspeed = -1.0");
        assert_eq!(e.field, "hosts[0].speed");
        let e = err("preset = \"dscs\"\n[locality]\nwait_ms = -5");
        assert_eq!(e.field, "locality.wait_ms");
        let e = err("preset = \"dscs\"\n[locality]\nwait_node_ms = -1");
        assert_eq!(e.field, "locality.wait_node_ms");
        let e = err("preset = \"nope\"");
        assert_eq!(e.field, "preset");
        let e = err("");
        assert_eq!(e.field, "hosts");
    }

    #[test]
    fn bad_pools_name_the_field() {
        let e = err("preset = \"dscs\"\n[[pools]]\nname = \"etl\"\n\
             [[pools]]\nname = \"adhoc\"\n[assign]\ndefault_pool = \"etl\"");
        assert_eq!(e.field, "pools[1]");
        assert!(e.msg.contains("used by no job"), "{e}");
        let e = err("preset = \"dscs\"\n[[pools]]\nname = \"etl\"\n\
             [assign]\ndefault_pool = \"etl\"\nby_query = { \"5\" = \"missing\" }");
        assert_eq!(e.field, "assign.by_query.5");
        assert!(e.msg.contains("unknown pool"), "{e}");
    }

    #[test]
    fn waits_default_to_spark_locality_wait() {
        let c = parse("preset = \"dscs\"\n[locality]\nwait_ms = 1000\nwait_rack_ms = 0");
        assert_eq!(c.waits(), [1000, 1000, 0]);
        assert_eq!(ClusterConfig::default().waits(), [3000, 3000, 3000]);
    }
}
