//! Spark's engine: the episode on a cluster of hosts, executors and task slots, with task
//! data and skew, execution memory and spill, and locality with delay scheduling.
//!
//! Decisions keep Decima's shape (a stage and a job-level parallelism limit), counted in
//! task slots: a decision *grants* a stage slots, and Spark's TaskScheduler places the
//! granted tasks on free slots through resource offers, one `TaskSetManager` per stage:
//! locality levels (NODE_LOCAL, NO_PREF, RACK_LOCAL, ANY) with delay scheduling
//! (`spark.locality.wait*`). A stage that declines the free slots while it waits for a
//! more local one is marked `locality_wait` and cannot be chosen, so the slots go to the
//! next stage, as Spark offers them to the next task set. Which stage comes first (FIFO,
//! FAIR pools) is the scheduler's business: `spark-fifo` and `spark-fair` in `sched`.
//!
//! A task's duration (each term in `docs/simulator.md`, "Spark realism"):
//! `sample × data/mean data (generated skew only) / host speed + remote bytes / network
//! + 2 × spilled bytes / disk`, where the sample is Decima's (wave and executor key as in
//! [`super::decima`]), remote bytes are what the task reads from other hosts, and spilled
//! bytes are its working set beyond the execution memory Spark's unified memory manager
//! grants it (between nothing and `pool / active tasks`, never more than is free).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::cluster::{ClusterConfig, ClusterSpec, MAX_PREFS, REDUCER_PREF_FRACTION, Reoffer};
use super::durations::{History, KeyTable, sample_duration};
use super::env::Step;
use super::observation::{
    HEAVY_TASKS, HostView, JobView, Observation, PoolView, StageData, StageView,
};
use super::plan::{self, ClusterFacts, Key, PlanConfig, PlannerKind, StageInput};
use super::reward::RewardBook;
use super::stats::{
    EpisodeStats, EpisodeTotals, EventCounts, SparkJobTotals, SparkTotals, TaskRecord,
};
use super::{Action, ExecutorKeys, JobId, SimConfig, SimError, StageId};
use crate::seed::{entity_draw, stream, task_draws};
use crate::workload::JobTrace;
use crate::workload::arrivals::JobArrival;

/// Spark's `TaskLocality`, in its order: a lower level is more local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Locality {
    /// Data cached in the executor; not modelled (no RDD caching), kept for the order.
    ProcessLocal,
    NodeLocal,
    NoPref,
    RackLocal,
    #[default]
    Any,
}

/// No host: an unused entry of a task's preferred hosts.
const NO_HOST: u16 = u16::MAX;
const MB: f64 = 1_048_576.0;
/// Most tasks a scheduler may give one stage by repartitioning or splitting.
pub const MAX_STAGE_TASKS: u32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    TaskDone {
        slot: u32,
        task: u32,
    },
    JobArrival(JobId),
    /// A stage's allowed locality level may widen now.
    LocalityTimer(StageId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Pending,
    Active,
    Done,
}

#[derive(Debug, Clone)]
struct JobRt {
    trace: Arc<JobTrace>,
    arrival_ms: u64,
    first_stage: StageId,
    num_stages: u32,
    stages_done: u32,
    state: JobState,
    completion_ms: u64,
    /// Tasks running.
    running: u32,
    /// Slots granted to its stages and not used yet.
    granted: u32,
    pool: Option<u32>,
    /// Its spilled bytes, task time and launches per locality level, for the stats.
    spilled_bytes: f64,
    task_ms: u64,
    launched_at: [u64; 5],
}

#[derive(Debug, Clone, Default)]
struct StageRt {
    job: JobId,
    local: u32,
    num_tasks: u32,
    /// First task of the stage in the flat task arrays.
    task_base: u32,
    dispatched: u32,
    finished: u32,
    done: bool,
    /// Parents done and tasks left to start (Spark submitted its task set).
    runnable: bool,
    runnable_seq: u64,
    running: u32,
    granted: u32,
    selected: bool,
    /// Lowest task index not started yet (tasks start in index order within a level).
    next_unstarted: u32,
    /// Valid locality levels (`computeValidLocalityLevels`), and the current one.
    levels: [Locality; 4],
    num_levels: u8,
    level: u8,
    last_reset_ms: u64,
    /// Tasks not started that have preferred hosts / none.
    pending_pref: u32,
    pending_nopref: u32,
    /// It declined free slots in the last offer round.
    locality_wait: bool,
    /// When its armed locality timer fires (0: none armed).
    timer_ms: u64,
    /// When the DAGScheduler submitted it.
    submitted_ms: u64,
    bytes: f64,
    /// Its largest tasks (index, bytes), largest first (ties: lower index first),
    /// `num_heavy` of them: what a skew-correcting scheduler splits. Kept when its tasks
    /// change, so that observing copies them.
    heavy: [(u32, f64); HEAVY_TASKS],
    num_heavy: u8,
    /// The data term: a task's sampled duration gains (or loses) the stage's time per
    /// byte for its bytes above (or below) `ref_bytes / ref_tasks`, the mean task of the
    /// stage as the trace measured it. Zero tasks: no term (measured per-task data, whose
    /// skew the samples already hold), until a planner or a scheduler re-cuts the stage.
    ref_tasks: u32,
    ref_bytes: f64,
    /// The stage's mean task time as the trace measured it, ms: with the fixed cost, it
    /// gives the time per byte of the data term.
    ref_ms: f64,
    /// Keys of generated data (hashed onto the partitions); 0: no key-level data.
    keys: u64,
    /// A scheduler set its partition count (`Action::Partition`, once per stage).
    repartitioned: bool,
    /// Its task count is not the trace's (partitioned or split).
    resized: bool,
    mean_ms: f64,
    last_task_ms: f64,
    /// A reduce stage (locality on): its tasks prefer the hosts holding at least 20% of the
    /// map output, and read the share written elsewhere remotely.
    reduce: bool,
    /// A reduce stage whose tasks all prefer the same hosts (none reads nothing), so the
    /// offer takes the first pending task without a scan.
    shared_prefs: bool,
    /// A task's working set is its bytes × `ws_per_byte` + `ws_fixed`: the measured peak
    /// execution memory per byte read (× `peak_factor`) when the trace has it, else
    /// `working_set_factor`; `ws_fixed` is the mean measured peak of a stage that reads no
    /// bytes. Per stage, so that repartitioned data keeps its memory need per byte.
    ws_per_byte: f64,
    ws_fixed: f64,
    /// A planner assigned its tasks to hosts (`task_pin`): a task runs on its host only.
    pinned: bool,
}

impl StageRt {
    fn max_task_bytes(&self) -> f64 {
        if self.num_heavy > 0 {
            self.heavy[0].1
        } else {
            0.0
        }
    }

    fn saturated(&self) -> bool {
        self.dispatched + self.granted >= self.num_tasks
    }
    fn pending(&self) -> u32 {
        self.num_tasks - self.dispatched
    }
    /// Its tasks now `tasks` at `base` of the flat arrays (a scheduler repartitioned or
    /// split it): the data term switches on against the trace's mean task, and the mean
    /// task time follows the count, the stage's work kept.
    fn resize(&mut self, base: u32, tasks: u32) {
        if self.ref_tasks == 0 {
            self.ref_tasks = self.num_tasks;
            self.ref_bytes = self.bytes;
            self.ref_ms = self.mean_ms;
        }
        self.mean_ms = self.mean_ms * f64::from(self.num_tasks) / f64::from(tasks);
        self.resized = true;
        self.task_base = base;
        self.num_tasks = tasks;
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotRt {
    exec: u32,
    host: u16,
    busy: bool,
    /// Left idle by the scheduler until the next event: equal to the engine's epoch.
    idle_epoch: u64,
    /// Stage of its last task (the wave of the next one depends on it).
    last_stage: Option<StageId>,
    /// Execution memory held by its task, bytes.
    memory: f64,
    /// Stage and start of its running task.
    stage: StageId,
    start_ms: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ExecRt {
    memory_used: f64,
    running: u32,
}

pub struct SparkEnv {
    cfg: SimConfig,
    cluster: ClusterConfig,
    spec: ClusterSpec,
    waits: [u64; 3],
    keys: KeyTable,
    has_racks: bool,
    /// Configured pools as observed (running tasks filled in at each observation).
    pool_views: Vec<PoolView>,
    seed: u64,
    now: u64,
    jobs: Vec<JobRt>,
    stages: Vec<StageRt>,
    active: Vec<JobId>,
    task_bytes: Vec<f64>,
    task_prefs: Vec<[u16; MAX_PREFS]>,
    task_started: Vec<bool>,
    /// Per task: the host a planner assigned it to (`NO_HOST`: any).
    task_pin: Vec<u16>,
    /// The shuffle planner (the config's, or a scheduler spec's `+planner`).
    plan: PlanConfig,
    /// The re-offer rule in force (`set_reoffer`; the cluster's by default).
    reoffer: Reoffer,
    /// What planners know of the cluster (slots, memory, reducers by capacity).
    facts: ClusterFacts,
    /// Scratch for a stage's keys (generated data), reused.
    key_buf: Vec<Key>,
    /// Busy time per host, ms (utilisation of strong and weak hosts).
    host_busy_ms: Vec<u64>,
    /// Per host: its task slots and its capacity, speed × slots (DSCS's node capacity).
    host_slots: Vec<u32>,
    host_capacity: Vec<f64>,
    /// Per stage: (host, map output bytes) of its finished tasks.
    stage_out: Vec<Vec<(u16, f64)>>,
    slots: Vec<SlotRt>,
    execs: Vec<ExecRt>,
    /// Free slots in the order they are offered.
    free: Vec<u32>,
    /// Stages holding unused grants, oldest grant first.
    grant_order: Vec<StageId>,
    timeline: BinaryHeap<Reverse<(u64, u64, Event)>>,
    push_seq: u64,
    num_source: u32,
    /// Counts events; slots idled in an earlier epoch are free again.
    epoch: u64,
    selected: Vec<StageId>,
    runnable_seq: u64,
    rewards: RewardBook,
    decisions: u64,
    events: EventCounts,
    waves: [u64; 3],
    busy_ms: u64,
    records: Vec<TaskRecord>,
    /// Tasks launched per locality level (NODE_LOCAL, NO_PREF, RACK_LOCAL, ANY) and spilled
    /// bytes, for reports and tests.
    pub launched_at: [u64; 5],
    pub spilled_bytes: f64,
    pub peak_memory_ratio: f64,
    /// Every launch, when `record_tasks` is on (property tests check locality with it).
    pub launches: Vec<Launch>,
}

/// One task launch, as delay scheduling decided it.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    pub stage: StageId,
    pub task: u32,
    pub host: u16,
    pub level: Locality,
    pub at_ms: u64,
    /// When its stage was submitted.
    pub submitted_ms: u64,
    /// The task has preferred hosts, and one of them had a free slot at launch.
    pub preferred_slot_free: bool,
}

impl SparkEnv {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        cfg.validate()
            .map_err(|e| SimError::Config(e.to_string()))?;
        let cluster = cfg
            .cluster
            .clone()
            .ok_or_else(|| SimError::Config("Spark's engine needs [sim.cluster]".into()))?;
        let spec = cluster
            .resolve()
            .map_err(|e| SimError::Config(e.within("cluster").to_string()))?;
        let total = spec.slots();
        let keys = KeyTable::new(&cfg.executor_data_points, total, cfg.key_interpolation);
        // Slots interleaved over executors (slot 0 of each, then slot 1, ...), so that a
        // round of offers spreads over hosts as Spark's shuffled offers do on average.
        let mut slots = Vec::with_capacity(total as usize);
        let most = spec.executors.iter().map(|e| e.slots).max().unwrap_or(0);
        for k in 0..most {
            for (i, e) in spec.executors.iter().enumerate() {
                if k < e.slots {
                    slots.push(SlotRt {
                        exec: i as u32,
                        host: e.host,
                        ..SlotRt::default()
                    });
                }
            }
        }
        let mut host_slots = vec![0u32; spec.hosts.len()];
        for sl in &slots {
            host_slots[sl.host as usize] += 1;
        }
        let host_capacity: Vec<f64> = (spec.hosts.iter().zip(&host_slots))
            .map(|(h, &n)| h.speed * f64::from(n))
            .collect();
        let facts = cluster_facts(&spec, &slots, &host_capacity);
        let plan = cluster.plan.clone();
        let mut names: Vec<&str> = cluster.pools.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        let pool_views = cluster
            .pools
            .iter()
            .map(|p| PoolView {
                weight: p.weight,
                min_share: p.min_share,
                mode: p.mode,
                name_rank: names.iter().position(|n| *n == p.name).unwrap_or(0) as u32,
                running: 0,
            })
            .collect();
        Ok(Self {
            waits: cluster.waits(),
            has_racks: spec.hosts.iter().any(|h| h.rack.is_some()),
            execs: vec![ExecRt::default(); spec.executors.len()],
            free: Vec::with_capacity(slots.len()),
            slots,
            keys,
            pool_views,
            reoffer: cluster.reoffer,
            cluster,
            spec,
            seed: 0,
            now: 0,
            jobs: Vec::new(),
            stages: Vec::new(),
            active: Vec::new(),
            task_bytes: Vec::new(),
            task_prefs: Vec::new(),
            task_started: Vec::new(),
            task_pin: Vec::new(),
            plan,
            facts,
            key_buf: Vec::new(),
            host_busy_ms: vec![0; host_slots.len()],
            host_slots,
            host_capacity,
            stage_out: Vec::new(),
            grant_order: Vec::new(),
            timeline: BinaryHeap::new(),
            push_seq: 0,
            num_source: 0,
            epoch: 1,
            selected: Vec::new(),
            runnable_seq: 0,
            rewards: RewardBook::default(),
            decisions: 0,
            events: EventCounts::default(),
            waves: [0; 3],
            busy_ms: 0,
            records: Vec::new(),
            launched_at: [0; 5],
            spilled_bytes: 0.0,
            peak_memory_ratio: 0.0,
            launches: Vec::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn set_max_time(&mut self, max_time_ms: Option<u64>) {
        self.cfg.max_time_ms = max_time_ms;
    }

    pub fn now_ms(&self) -> u64 {
        self.now
    }

    pub fn job_name(&self, id: JobId) -> &str {
        &self.jobs[id as usize].trace.name
    }

    pub fn num_jobs(&self) -> usize {
        self.jobs.len()
    }

    pub fn records(&self) -> &[TaskRecord] {
        &self.records
    }

    /// The resolved cluster.
    pub fn cluster(&self) -> &ClusterSpec {
        &self.spec
    }

    /// A measured time at the dataset's scale: the fixed cost, then the rest × `scale`.
    fn scaled_ms(&self, ms: f64) -> f64 {
        let d = &self.cluster.data;
        if d.scale == 1.0 {
            return ms;
        }
        let fixed = d.task_overhead_ms.min(ms);
        fixed + (ms - fixed) * d.scale
    }

    /// The shuffle planner of the next episodes: `None` restores the config's.
    pub fn set_plan(&mut self, plan: Option<PlanConfig>) {
        self.plan = plan.unwrap_or_else(|| self.cluster.plan.clone());
    }

    /// Sets the re-offer rule of the next episodes (`None`: the cluster's): a scheduler
    /// that keeps a freed slot on its stage (`Scheduler::reoffer`).
    pub fn set_reoffer(&mut self, reoffer: Option<Reoffer>) {
        self.reoffer = reoffer.unwrap_or(self.cluster.reoffer);
    }

    pub fn reset(&mut self, jobs: &[JobArrival], seed: u64) -> Result<(), SimError> {
        self.prepare(jobs, seed)?;
        self.advance();
        Ok(())
    }

    /// Builds the episode's state at t = 0, before the first offers.
    fn prepare(&mut self, jobs: &[JobArrival], seed: u64) -> Result<(), SimError> {
        if jobs.is_empty() {
            return Err(SimError::NoJobs);
        }
        self.seed = seed;
        self.now = 0;
        self.jobs.clear();
        self.stages.clear();
        self.active.clear();
        self.task_bytes.clear();
        self.task_prefs.clear();
        self.task_started.clear();
        self.task_pin.clear();
        self.host_busy_ms.fill(0);
        self.grant_order.clear();
        self.timeline.clear();
        self.push_seq = 0;
        self.selected.clear();
        self.runnable_seq = 0;
        self.rewards.reset(jobs.len());
        self.decisions = 0;
        self.events = EventCounts::default();
        self.waves = [0; 3];
        self.busy_ms = 0;
        self.records.clear();
        self.launched_at = [0; 5];
        self.spilled_bytes = 0.0;
        self.peak_memory_ratio = 0.0;
        self.launches.clear();
        for (j, a) in jobs.iter().enumerate() {
            let first_stage = self.stages.len() as StageId;
            let trace = &a.job;
            // A log without `Peak Execution Memory` imports as zeros: the job's peaks are
            // measured only if some task's is positive (a stage of such a job with zeros
            // used no execution memory).
            let peaks = self.cluster.memory.enabled
                && trace.stages.iter().any(|st| {
                    st.shuffle
                        .as_ref()
                        .is_some_and(|sh| sh.peak_memory_bytes.iter().any(|&b| b > 0))
                });
            for (local, st) in trace.stages.iter().enumerate() {
                let s = self.stages.len() as StageId;
                let mean_ms = self.scaled_ms(trace.pools[local].rough_ms);
                let task_base = self.task_bytes.len() as u32;
                self.stages.push(StageRt {
                    job: j as JobId,
                    local: local as u32,
                    num_tasks: st.num_tasks,
                    task_base,
                    mean_ms,
                    last_task_ms: mean_ms,
                    ..StageRt::default()
                });
                self.init_tasks(j as JobId, s, trace, peaks);
            }
            self.jobs.push(JobRt {
                trace: Arc::clone(trace),
                arrival_ms: a.arrival_ms,
                first_stage,
                num_stages: trace.stages.len() as u32,
                stages_done: 0,
                state: JobState::Pending,
                completion_ms: 0,
                running: 0,
                granted: 0,
                pool: self.cluster.pool_of(&trace.query).map(|p| p as u32),
                spilled_bytes: 0.0,
                task_ms: 0,
                launched_at: [0; 5],
            });
        }
        let n = self.stages.len();
        if self.stage_out.len() < n {
            self.stage_out.resize_with(n, Vec::new);
        }
        for o in &mut self.stage_out[..n] {
            o.clear();
        }
        for x in &mut self.execs {
            *x = ExecRt::default();
        }
        self.free.clear();
        for (i, sl) in self.slots.iter_mut().enumerate() {
            sl.busy = false;
            sl.idle_epoch = 0;
            sl.last_stage = None;
            sl.memory = 0.0;
            self.free.push(i as u32);
        }
        for (j, a) in jobs.iter().enumerate() {
            if a.arrival_ms == 0 {
                self.activate(j as JobId);
            } else {
                self.push(a.arrival_ms, Event::JobArrival(j as JobId));
            }
        }
        self.num_source = 0;
        Ok(())
    }

    /// A stage's task data and, for input stages, the hosts holding each task's blocks.
    fn init_tasks(&mut self, j: JobId, s: StageId, trace: &JobTrace, peaks: bool) {
        let st = &self.stages[s as usize];
        let (local, n) = (st.local as usize, st.num_tasks as usize);
        let stage = &trace.stages[local];
        let data = &self.cluster.data;
        let base = self.task_bytes.len();
        // Measured per-task reads (shuffle reads plus storage input, the first run of the
        // trace): their skew is already in the duration samples.
        let read = |sh: &crate::workload::trace::ShuffleStats, t: usize| {
            sh.read_bytes.get(t).copied().unwrap_or(0) + sh.input_bytes.get(t).copied().unwrap_or(0)
        };
        let measured = stage
            .shuffle
            .as_ref()
            .filter(|sh| sh.read_bytes.len() >= n && (0..n).any(|t| read(sh, t) > 0));
        let mut scale = false;
        let mut keys = 0;
        match measured {
            // Input stages keep their measured splits: only shuffles have keys.
            Some(sh) if !data.generate_keys || stage.parents.is_empty() => {
                self.task_bytes
                    .extend((0..n).map(|t| read(sh, t) as f64 * data.scale));
            }
            _ => {
                let total = match measured {
                    Some(sh) => (0..n).map(|t| read(sh, t) as f64).sum::<f64>() * data.scale,
                    None => {
                        let mean_ms = trace.pools[local].rough_ms;
                        mean_ms / 1000.0 * n as f64 * data.mb_per_task_s * MB * data.scale
                    }
                };
                if !data.generate_keys && (data.zipf <= 0.0 || n == 1) {
                    self.task_bytes
                        .extend(std::iter::repeat_n(total / n as f64, n));
                } else {
                    scale = data.scale_durations;
                    keys = data
                        .keys
                        .unwrap_or(n as u64 * u64::from(data.keys_per_partition));
                    self.task_bytes.resize(base + n, 0.0);
                    stage_keys(
                        self.seed,
                        [u64::from(j), u64::from(st.local)],
                        keys,
                        data.zipf,
                        total,
                        &mut self.key_buf,
                    );
                    plan::bucket_sizes(&self.key_buf, &[], &mut self.task_bytes[base..]);
                }
            }
        }
        let bytes: f64 = self.task_bytes[base..].iter().sum();
        let mem = &self.cluster.memory;
        let (mut ws_per_byte, mut ws_fixed) = (mem.working_set_factor, 0.0);
        if let Some(sh) =
            (stage.shuffle.as_ref()).filter(|sh| peaks && sh.peak_memory_bytes.len() >= n)
        {
            let f = mem.peak_factor * self.cluster.data.scale;
            let peaks = sh.peak_memory_bytes[..n].iter().map(|&p| p as f64 * f);
            let tasks = &self.task_bytes[base..base + n];
            (ws_per_byte, ws_fixed) = working_set_fit(tasks, peaks);
        }
        self.push_tasks(j, st.local, n as u32, stage.parents.is_empty());
        self.refresh_max(s);
        let st = &mut self.stages[s as usize];
        st.ws_per_byte = ws_per_byte;
        st.ws_fixed = ws_fixed;
        st.bytes = bytes;
        if scale {
            st.ref_tasks = n as u32;
            st.ref_bytes = bytes;
            st.ref_ms = st.mean_ms;
        }
        st.keys = keys;
    }

    /// Appends `n` unstarted tasks of stage `local` of job `j` to the flat task arrays, with
    /// their input blocks' hosts when locality is on and the stage reads input.
    fn push_tasks(&mut self, j: JobId, local: u32, n: u32, is_input: bool) {
        for t in 0..n {
            let prefs = if self.cluster.locality.enabled && is_input {
                self.input_prefs(j, local, t)
            } else {
                [NO_HOST; MAX_PREFS]
            };
            self.task_prefs.push(prefs);
            self.task_started.push(false);
            self.task_pin.push(NO_HOST);
        }
    }

    /// The hosts holding task `t`'s input block: `replication` distinct hosts, drawn per
    /// task (a repartitioned input stage draws its new tasks the same way).
    fn input_prefs(&self, j: JobId, local: u32, t: u32) -> [u16; MAX_PREFS] {
        let hosts = self.spec.hosts.len() as u64;
        let reps = (self.cluster.locality.replication as u64).min(hosts) as usize;
        let mut prefs = [NO_HOST; MAX_PREFS];
        let mut k = 0u64;
        let mut i = 0;
        while i < reps {
            let h = (entity_draw(
                self.seed,
                stream::CLUSTER_DATA,
                [u64::from(j), u64::from(local) << 1, u64::from(t) << 8 | k],
            ) % hosts) as u16;
            k += 1;
            if !prefs[..i].contains(&h) {
                prefs[i] = h;
                i += 1;
            }
        }
        prefs
    }

    pub fn done(&self) -> bool {
        self.num_source == 0
            && (self.timeline.is_empty() || self.cfg.max_time_ms.is_some_and(|m| self.now >= m))
    }

    fn push(&mut self, t: u64, ev: Event) {
        self.push_seq += 1;
        self.timeline.push(Reverse((t, self.push_seq, ev)));
    }

    fn activate(&mut self, j: JobId) {
        self.jobs[j as usize].state = JobState::Active;
        self.active.push(j);
        let (first, n) = (
            self.jobs[j as usize].first_stage,
            self.jobs[j as usize].num_stages,
        );
        let trace = Arc::clone(&self.jobs[j as usize].trace);
        // A partition count is fixed before the map side writes it (the job's code, or
        // DSCS's DAGScheduler): every planner but AQE plans the job's shuffles now.
        if !matches!(self.plan.planner, PlannerKind::Trace | PlannerKind::Aqe) {
            for local in 0..n {
                self.apply_plan(first + local);
            }
        }
        for local in 0..n {
            if trace.stages[local as usize].parents.is_empty() {
                self.submit_stage(first + local);
            }
        }
    }

    /// The DAGScheduler submits a stage's task set: its preferred locations and valid
    /// locality levels are fixed now.
    fn submit_stage(&mut self, s: StageId) {
        self.apply_plan(s);
        self.runnable_seq += 1;
        self.set_locality(s);
        let st = &mut self.stages[s as usize];
        st.runnable = true;
        st.runnable_seq = self.runnable_seq;
        st.submitted_ms = self.now;
    }

    /// A submitted task set's preferred hosts (reduce stages: from the map outputs), its
    /// pending counts and valid locality levels, at the first level.
    fn set_locality(&mut self, s: StageId) {
        let locality = self.cluster.locality.enabled;
        let (base, n) = {
            let st = &self.stages[s as usize];
            (st.task_base as usize, st.num_tasks as usize)
        };
        let job = &self.jobs[self.stages[s as usize].job as usize];
        let first = job.first_stage;
        let parents = &job.trace.stages[self.stages[s as usize].local as usize].parents;
        let (mut shared, mut reduce) = (false, false);
        if locality && !parents.is_empty() {
            // Spark's reduce-task preference: hosts with >= 20% of the map output.
            let mut by_host: [(u16, f64); 16] = [(NO_HOST, 0.0); 16];
            let mut used = 0;
            let mut total = 0.0;
            let mut overflow = false;
            for &p in parents {
                for &(h, b) in &self.stage_out[(first + p) as usize] {
                    total += b;
                    if let Some(e) = by_host[..used].iter_mut().find(|e| e.0 == h) {
                        e.1 += b;
                    } else if used < by_host.len() {
                        by_host[used] = (h, b);
                        used += 1;
                    } else {
                        overflow = true;
                    }
                }
            }
            let mut prefs = [NO_HOST; MAX_PREFS];
            let mut k = 0;
            if total > 0.0 && !overflow {
                for &(h, b) in &by_host[..used] {
                    if b >= REDUCER_PREF_FRACTION * total && k < MAX_PREFS {
                        prefs[k] = h;
                        k += 1;
                    }
                }
            }
            // An empty reduce partition has no location with 20% of its (zero) bytes, so
            // Spark gives it no preference (`getLocationsWithLargestOutputs`); it runs at
            // NO_PREF, which Spark's TaskSetManager reports as PROCESS_LOCAL.
            shared = true;
            for t in 0..n {
                let empty = self.task_bytes[base + t] <= 0.0;
                shared &= !empty;
                self.task_prefs[base + t] = if empty { [NO_HOST; MAX_PREFS] } else { prefs };
            }
            reduce = true;
        }
        let with_pref = self.task_prefs[base..base + n]
            .iter()
            .filter(|p| p[0] != NO_HOST)
            .count() as u32;
        let st = &mut self.stages[s as usize];
        st.shared_prefs = shared;
        st.reduce = reduce;
        st.pending_pref = with_pref;
        st.pending_nopref = st.num_tasks - with_pref;
        let mut levels = [Locality::Any; 4];
        let mut k = 0;
        if with_pref > 0 {
            levels[k] = Locality::NodeLocal;
            k += 1;
        }
        if st.pending_nopref > 0 && with_pref > 0 {
            levels[k] = Locality::NoPref;
            k += 1;
        }
        if with_pref > 0 && self.has_racks {
            levels[k] = Locality::RackLocal;
            k += 1;
        }
        levels[k] = Locality::Any;
        st.levels = levels;
        st.num_levels = k as u8 + 1;
        st.level = 0;
        st.last_reset_ms = self.now;
    }

    /// `Action::Partition`: the stage's data cut into `partitions` tasks, moved to the end
    /// of the flat task arrays (its old entries are left unused).
    fn partition(&mut self, s: StageId, partitions: u32) -> Result<(), String> {
        let st = &self.stages[s as usize];
        if st.done || st.dispatched > 0 || st.granted > 0 {
            return Err("the stage has started or holds slots: partition it before".into());
        }
        if st.repartitioned {
            return Err("the stage was already repartitioned".into());
        }
        if !(1..=MAX_STAGE_TASKS).contains(&partitions) || partitions == st.num_tasks {
            return Err(format!(
                "partitions must be in 1..={MAX_STAGE_TASKS} and differ from the stage's {}",
                st.num_tasks
            ));
        }
        let (old_base, n) = (st.task_base as usize, st.num_tasks as usize);
        let p = partitions as usize;
        let base = self.task_bytes.len();
        self.task_bytes.resize(base + p, 0.0);
        if st.keys > 0 {
            self.load_keys(s);
            plan::bucket_sizes(&self.key_buf, &[], &mut self.task_bytes[base..]);
        } else {
            let (old, new) = self.task_bytes.split_at_mut(base);
            plan::recut(&old[old_base..old_base + n], new);
        }
        self.install_tasks(s, base, None);
        Ok(())
    }

    /// Makes the tasks written at `base..` of `task_bytes` stage `s`'s (a repartition or a
    /// planner's re-cut), each pinned to its host in `pins` if given; its old entries are
    /// left unused.
    fn install_tasks(&mut self, s: StageId, base: usize, pins: Option<&[u16]>) {
        let (j, local) = (self.stages[s as usize].job, self.stages[s as usize].local);
        let tasks = (self.task_bytes.len() - base) as u32;
        let is_input = self.jobs[j as usize].trace.stages[local as usize]
            .parents
            .is_empty();
        self.push_tasks(j, local, tasks, is_input);
        if let Some(pins) = pins {
            self.task_pin[base..].copy_from_slice(pins);
        }
        let bytes: f64 = self.task_bytes[base..].iter().sum();
        let st = &mut self.stages[s as usize];
        st.resize(base as u32, tasks);
        st.repartitioned = true;
        st.pinned = pins.is_some();
        st.next_unstarted = 0;
        st.bytes = bytes;
        st.last_task_ms = st.mean_ms;
        self.refresh_max(s);
        if self.stages[s as usize].runnable {
            self.set_locality(s);
        }
    }

    /// Stage `s`'s generated keys into `key_buf` (empty when its data has no keys).
    fn load_keys(&mut self, s: StageId) {
        let st = &self.stages[s as usize];
        self.key_buf.clear();
        if st.keys > 0 {
            stage_keys(
                self.seed,
                [u64::from(st.job), u64::from(st.local)],
                st.keys,
                self.cluster.data.zipf,
                st.bytes,
                &mut self.key_buf,
            );
        }
    }

    /// The planner's turn on a shuffle stage: at its job's arrival (a partition count the
    /// map side then writes), or for AQE at its submission (its parents' map output is
    /// known): new partitions, salted keys, a bucket-to-host assignment. Stages a
    /// scheduler repartitioned itself, and input stages (their blocks fix their tasks),
    /// keep their tasks.
    fn apply_plan(&mut self, s: StageId) {
        if self.plan.planner == PlannerKind::Trace {
            return;
        }
        let st = &self.stages[s as usize];
        let (j, local) = (st.job, st.local);
        let parents = self.jobs[j as usize].trace.stages[local as usize]
            .parents
            .len();
        if parents == 0 || st.repartitioned || st.dispatched > 0 {
            return;
        }
        let (base, n) = (st.task_base as usize, st.num_tasks as usize);
        self.load_keys(s);
        let input = StageInput {
            keys: &self.key_buf,
            partitions: &self.task_bytes[base..base + n],
            join: parents >= 2,
        };
        let Some(p) = plan::plan(&self.plan, &input, &self.facts) else {
            return;
        };
        if p.tasks.is_empty() {
            return;
        }
        let base = self.task_bytes.len();
        self.task_bytes.extend_from_slice(&p.tasks);
        let pins = (!p.hosts.is_empty()).then_some(&p.hosts[..]);
        self.install_tasks(s, base, pins);
    }

    /// `Action::Split`: task `t` (not started) becomes `parts` tasks with equal shares of
    /// its data; the stage moves to the end of the flat task arrays.
    fn split(&mut self, s: StageId, t: u32, parts: u32) -> Result<(), String> {
        let st = &self.stages[s as usize];
        if st.done || t >= st.num_tasks {
            return Err(format!("the stage has no task {t} left to start"));
        }
        let (old_base, n) = (st.task_base as usize, st.num_tasks as usize);
        if self.task_started[old_base + t as usize] {
            return Err(format!("task {t} has started"));
        }
        if parts < 2 || st.num_tasks + parts - 1 > MAX_STAGE_TASKS {
            return Err(format!(
                "parts must be at least 2, and the stage at most {MAX_STAGE_TASKS} tasks"
            ));
        }
        let base = self.task_bytes.len();
        self.task_bytes.extend_from_within(old_base..old_base + n);
        self.task_prefs.extend_from_within(old_base..old_base + n);
        self.task_started.extend_from_within(old_base..old_base + n);
        self.task_pin.extend_from_within(old_base..old_base + n);
        let piece = self.task_bytes[base + t as usize] / f64::from(parts);
        let prefs = self.task_prefs[base + t as usize];
        let pin = self.task_pin[base + t as usize];
        self.task_bytes[base + t as usize] = piece;
        for _ in 1..parts {
            self.task_bytes.push(piece);
            self.task_prefs.push(prefs);
            self.task_started.push(false);
            self.task_pin.push(pin);
        }
        let st = &mut self.stages[s as usize];
        st.resize(base as u32, n as u32 + parts - 1);
        if st.runnable {
            if prefs[0] != NO_HOST {
                st.pending_pref += parts - 1;
            } else {
                st.pending_nopref += parts - 1;
            }
        }
        self.refresh_max(s);
        Ok(())
    }

    fn refresh_max(&mut self, s: StageId) {
        let st = &self.stages[s as usize];
        let tasks = &self.task_bytes[st.task_base as usize..(st.task_base + st.num_tasks) as usize];
        let mut top = [0u32; HEAVY_TASKS];
        let k = top_tasks(tasks, &mut top);
        let mut heavy = [(0, 0.0); HEAVY_TASKS];
        for (h, &t) in heavy.iter_mut().zip(&top[..k]) {
            *h = (t, tasks[t as usize]);
        }
        let st = &mut self.stages[s as usize];
        st.heavy = heavy;
        st.num_heavy = k as u8;
    }

    fn wait_of(&self, level: Locality) -> u64 {
        match level {
            Locality::ProcessLocal => self.waits[0],
            Locality::NodeLocal => self.waits[1],
            Locality::RackLocal => self.waits[2],
            Locality::NoPref | Locality::Any => 0,
        }
    }

    /// `TaskSetManager.getAllowedLocalityLevel`: skips levels with no pending task, and
    /// widens the level once its wait has passed since the last reset.
    fn allowed_level(&mut self, s: StageId) -> Locality {
        let now = self.now;
        loop {
            let st = &self.stages[s as usize];
            let idx = st.level as usize;
            if idx + 1 >= st.num_levels as usize {
                return st.levels[idx];
            }
            let level = st.levels[idx];
            let more = match level {
                Locality::NodeLocal | Locality::RackLocal => st.pending_pref > 0,
                Locality::NoPref => st.pending_nopref > 0,
                Locality::ProcessLocal => false,
                Locality::Any => true,
            };
            let wait = self.wait_of(level);
            let st = &mut self.stages[s as usize];
            if !more {
                st.last_reset_ms = now;
                st.level += 1;
            } else if now - st.last_reset_ms >= wait {
                st.last_reset_ms += wait;
                st.level += 1;
            } else {
                return level;
            }
        }
    }

    fn same_rack(&self, a: u16, b: u16) -> bool {
        let ra = self.spec.hosts[a as usize].rack;
        ra.is_some() && ra == self.spec.hosts[b as usize].rack
    }

    /// `TaskSetManager.dequeueTask`: a task of `s` that may run on `host` at `max`, the most
    /// local one first; with its locality.
    fn find_task(&self, s: StageId, host: u16, max: Locality) -> Option<(u32, Locality)> {
        let st = &self.stages[s as usize];
        let base = st.task_base as usize;
        let first = st.next_unstarted;
        if first >= st.num_tasks {
            return None;
        }
        if st.pinned {
            // A planner's assignment: the host's next task in the plan's order, or a task
            // assigned to no host; delay scheduling does not apply.
            return (first as usize..st.num_tasks as usize)
                .find(|&t| {
                    let pin = self.task_pin[base + t];
                    !self.task_started[base + t] && (pin == host || pin == NO_HOST)
                })
                .map(|t| (t as u32, Locality::NodeLocal));
        }
        // A task with no preference runs anywhere at once: Spark offers every task set at
        // maxLocality NO_PREF, where delay scheduling does not apply.
        if st.pending_pref == 0 {
            return Some((first, Locality::NoPref));
        }
        let rack_ok = max >= Locality::RackLocal && self.has_racks;
        let in_rack = |prefs: &[u16; MAX_PREFS]| {
            prefs
                .iter()
                .any(|&h| h != NO_HOST && self.same_rack(h, host))
        };
        if st.shared_prefs {
            // A reduce stage: every task prefers the same hosts.
            let prefs = &self.task_prefs[base + first as usize];
            return if prefs.contains(&host) {
                Some((first, Locality::NodeLocal))
            } else if rack_ok && in_rack(prefs) {
                Some((first, Locality::RackLocal))
            } else if max >= Locality::Any {
                Some((first, Locality::Any))
            } else {
                None
            };
        }
        let range = first as usize..st.num_tasks as usize;
        let pending = |t: &usize| !self.task_started[base + t];
        let prefs = |t: usize| &self.task_prefs[base + t];
        if let Some(t) = range
            .clone()
            .filter(pending)
            .find(|&t| prefs(t).contains(&host))
        {
            return Some((t as u32, Locality::NodeLocal));
        }
        if st.pending_nopref > 0
            && let Some(t) = range
                .clone()
                .filter(pending)
                .find(|&t| prefs(t)[0] == NO_HOST)
        {
            return Some((t as u32, Locality::NoPref));
        }
        if rack_ok && let Some(t) = range.clone().filter(pending).find(|&t| in_rack(prefs(t))) {
            return Some((t as u32, Locality::RackLocal));
        }
        (max >= Locality::Any).then_some((first, Locality::Any))
    }

    /// Offers the free slots to every stage holding grants, oldest grant first
    /// (`TaskSchedulerImpl.resourceOffers` with one task set per grant).
    fn dispatch(&mut self) {
        let mut i = 0;
        while i < self.grant_order.len() {
            let s = self.grant_order[i];
            self.offer(s);
            let st = &self.stages[s as usize];
            if st.granted == 0 || st.pending() == 0 {
                let left = st.granted;
                self.stages[s as usize].locality_wait = false;
                if left > 0 {
                    self.stages[s as usize].granted = 0;
                    let j = self.stages[s as usize].job;
                    self.jobs[j as usize].granted -= left;
                }
                self.grant_order.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// One task set's share of an offer round (`resourceOfferSingleTaskSet` over the
    /// levels), with Spark's (3.1+) delay-scheduling timer: it resets when a round
    /// launched tasks and declined no slot, and a declined round arms a timer for the
    /// moment the allowed level widens.
    fn offer(&mut self, s: StageId) {
        if !self.stages[s as usize].runnable || self.stages[s as usize].granted == 0 {
            return;
        }
        let allowed = self.allowed_level(s);
        let mut launched_min: Option<Locality> = None;
        let mut declined = false;
        let mut f = 0;
        while f < self.free.len() {
            let st = &self.stages[s as usize];
            if st.granted == 0 || st.pending() == 0 {
                break;
            }
            let slot = self.free[f];
            if self.slots[slot as usize].idle_epoch == self.epoch {
                f += 1;
                continue;
            }
            let host = self.slots[slot as usize].host;
            match self.find_task(s, host, allowed) {
                Some((t, level)) => {
                    self.free.remove(f);
                    self.launch(slot, s, t, level);
                    launched_min = Some(launched_min.map_or(level, |m| m.min(level)));
                }
                None => {
                    declined = true;
                    f += 1;
                }
            }
        }
        let st = &self.stages[s as usize];
        // A pinned stage declines other hosts' slots for good: it keeps its grants, and its
        // hosts' next free slots take its tasks, with no timer.
        let waiting = declined && st.granted > 0 && st.pending() > 0 && !st.pinned;
        if let Some(min) = launched_min
            && !waiting
        {
            // `resetDelayScheduleTimer(minLaunchedLocality)` → `getLocalityIndex`: the first
            // valid level at least as local. A task without preference is launched as
            // PROCESS_LOCAL by Spark's dequeueTask, so it resets to the most local level.
            let min = if min == Locality::NoPref {
                Locality::ProcessLocal
            } else {
                min
            };
            let st = &mut self.stages[s as usize];
            st.last_reset_ms = self.now;
            if let Some(k) = st.levels[..st.num_levels as usize]
                .iter()
                .position(|&l| l >= min)
            {
                st.level = k as u8;
            }
        }
        self.stages[s as usize].locality_wait = waiting;
        if waiting {
            let st = &self.stages[s as usize];
            let level = st.levels[st.level as usize];
            let at = (st.last_reset_ms + self.wait_of(level)).max(self.now + 1);
            if st.timer_ms != at {
                self.stages[s as usize].timer_ms = at;
                self.push(at, Event::LocalityTimer(s));
            }
        }
    }

    fn launch(&mut self, slot: u32, s: StageId, t: u32, level: Locality) {
        let (j, local, base) = {
            let st = &self.stages[s as usize];
            (st.job, st.local as usize, st.task_base as usize)
        };
        // Decima's key is the executors the job holds, the one starting this task included:
        // here the slots its tasks occupy once this one runs.
        let n = self.jobs[j as usize].running + 1;
        let (u_key, u_sample) = task_draws(self.seed, j, local as u32, t);
        let pools = &self.jobs[j as usize].trace.pools[local];
        let key = match self.cfg.executor_keys {
            ExecutorKeys::DataPoints => self.keys.sample(n, u_key),
            ExecutorKeys::Measured => self.keys.sample_measured(&pools.keys, n, u_key),
        };
        let sl = self.slots[slot as usize];
        let history = match sl.last_stage {
            None => History::NewToJob,
            Some(prev) if self.stages[prev as usize].job != j => History::NewToJob,
            Some(prev) if prev == s => History::SameStage,
            Some(_) => History::OtherStage,
        };
        let (sample, wave) =
            sample_duration(pools, key, history, self.cfg.warmup_delay_ms, u_sample);
        let st = &self.stages[s as usize];
        let bytes = self.task_bytes[base + t as usize];
        let mut ms = self.scaled_ms(f64::from(sample));
        let write = self.cluster.data.write_ms_per_partition;
        if write > 0.0 {
            // The map side writes one segment per output partition: a planner that re-cut
            // a child changes what each of this stage's tasks writes.
            let job = &self.jobs[j as usize];
            let delta: i64 = job.trace.children[local]
                .iter()
                .map(|&c| {
                    let now = self.stages[(job.first_stage + c) as usize].num_tasks;
                    i64::from(now) - i64::from(job.trace.stages[c as usize].num_tasks)
                })
                .sum();
            let floor = self.cluster.data.task_overhead_ms.min(ms);
            ms = (ms + write * delta as f64).max(floor);
        }
        if st.ref_tasks > 0 && st.ref_bytes > 0.0 {
            // The sample is a task of the trace's mean data (with its wave's warm-up and its
            // noise); more or less data costs the stage's time per byte, its mean task time
            // less the fixed cost (launch, deserialisation) over its mean bytes. Additive, so
            // a first-wave warm-up is not multiplied by the data.
            let fixed = self.cluster.data.task_overhead_ms;
            let mean_bytes = st.ref_bytes / f64::from(st.ref_tasks);
            let per_byte = (st.ref_ms - fixed).max(0.0) / mean_bytes;
            ms = (ms + per_byte * (bytes - mean_bytes)).max(fixed.min(ms));
        }
        ms /= self.spec.hosts[sl.host as usize].speed;
        if self.cluster.locality.enabled {
            ms += self.remote_bytes(s, t, sl.host) / (self.cluster.data.network_mb_per_s * MB)
                * 1000.0;
        }
        let mut memory = 0.0;
        if self.cluster.memory.enabled {
            let m = &self.cluster.memory;
            let pool = self.spec.executors[sl.exec as usize].execution_bytes;
            let ex = &mut self.execs[sl.exec as usize];
            let want = bytes * st.ws_per_byte + st.ws_fixed;
            // ExecutionMemoryPool: at most pool / active tasks, and only what is free.
            let cap = pool / f64::from(ex.running + 1);
            memory = want.min(cap).min((pool - ex.memory_used).max(0.0));
            ex.memory_used += memory;
            let spill = want - memory;
            if spill > 0.0 {
                self.spilled_bytes += spill;
                self.jobs[j as usize].spilled_bytes += spill;
                ms += 2.0 * spill / (m.disk_mb_per_s * MB) * 1000.0;
            }
            self.peak_memory_ratio = self.peak_memory_ratio.max(ex.memory_used / pool);
        }
        self.execs[sl.exec as usize].running += 1;
        let dur = (ms.ceil() as u64).max(1);
        self.task_started[base + t as usize] = true;
        let st = &mut self.stages[s as usize];
        if self.task_prefs[base + t as usize][0] != NO_HOST {
            st.pending_pref -= 1;
        } else {
            st.pending_nopref -= 1;
        }
        while st.next_unstarted < st.num_tasks
            && self.task_started[base + st.next_unstarted as usize]
        {
            st.next_unstarted += 1;
        }
        st.dispatched += 1;
        st.running += 1;
        st.granted -= 1;
        if st.dispatched == st.num_tasks {
            st.last_task_ms = dur as f64;
            st.runnable = false;
        }
        let job = &mut self.jobs[j as usize];
        job.granted -= 1;
        job.running += 1;
        job.task_ms += dur;
        job.launched_at[level as usize] += 1;
        self.launched_at[level as usize] += 1;
        self.waves[wave as usize] += 1;
        self.busy_ms += dur;
        let host = sl.host;
        self.host_busy_ms[host as usize] += dur;
        let sl = &mut self.slots[slot as usize];
        sl.busy = true;
        sl.last_stage = Some(s);
        sl.memory = memory;
        sl.stage = s;
        sl.start_ms = self.now;
        if self.cfg.record_tasks {
            let prefs = self.task_prefs[base + t as usize];
            let preferred_slot_free = self.free.iter().any(|&f| {
                let o = &self.slots[f as usize];
                o.idle_epoch != self.epoch && prefs.contains(&o.host)
            });
            self.launches.push(Launch {
                stage: s,
                task: t,
                host,
                level,
                at_ms: self.now,
                submitted_ms: self.stages[s as usize].submitted_ms,
                preferred_slot_free,
            });
            self.records.push(TaskRecord {
                job: j,
                stage: local as u32,
                task: t,
                executor: slot,
                start_ms: self.now,
                end_ms: self.now + dur,
                wave,
            });
        }
        self.push(self.now + dur, Event::TaskDone { slot, task: t });
    }

    /// Bytes task `t` of `s` reads from hosts other than `host`.
    fn remote_bytes(&self, s: StageId, t: u32, host: u16) -> f64 {
        let st = &self.stages[s as usize];
        let bytes = self.task_bytes[(st.task_base + t) as usize];
        if !st.reduce {
            let prefs = &self.task_prefs[(st.task_base + t) as usize];
            return if prefs[0] == NO_HOST || prefs.contains(&host) {
                0.0
            } else {
                bytes
            };
        }
        // A reduce task reads every map output; the share written on its host is local.
        let job = &self.jobs[st.job as usize];
        let (mut here, mut total) = (0.0, 0.0);
        for &p in &job.trace.stages[st.local as usize].parents {
            for &(h, b) in &self.stage_out[(job.first_stage + p) as usize] {
                total += b;
                if h == host {
                    here += b;
                }
            }
        }
        if total > 0.0 {
            bytes * (1.0 - here / total)
        } else {
            0.0
        }
    }

    fn remove_job(&mut self, j: JobId) {
        let job = &self.jobs[j as usize];
        let (first, end) = (job.first_stage, job.first_stage + job.num_stages);
        for s in first..end {
            self.stages[s as usize].granted = 0;
        }
        self.grant_order.retain(|&s| !(first..end).contains(&s));
        self.active.retain(|&x| x != j);
        let job = &mut self.jobs[j as usize];
        job.granted = 0;
        job.state = JobState::Done;
        job.completion_ms = self.now;
        self.rewards.job_done(j);
    }

    fn process(&mut self, ev: Event) {
        match ev {
            Event::TaskDone { slot, task } => {
                self.events.task += 1;
                let sl = self.slots[slot as usize];
                let s = sl.stage;
                let j = self.stages[s as usize].job;
                let host = sl.host;
                let ex = &mut self.execs[sl.exec as usize];
                ex.running -= 1;
                ex.memory_used = (ex.memory_used - sl.memory).max(0.0);
                let out = self.task_bytes[(self.stages[s as usize].task_base + task) as usize];
                let o = &mut self.stage_out[s as usize];
                match o.iter_mut().find(|e| e.0 == host) {
                    Some(e) => e.1 += out,
                    None => o.push((host, out)),
                }
                let sl = &mut self.slots[slot as usize];
                sl.busy = false;
                sl.memory = 0.0;
                self.free.push(slot);
                let st = &mut self.stages[s as usize];
                st.running -= 1;
                st.finished += 1;
                self.jobs[j as usize].running -= 1;
                if st.finished == st.num_tasks {
                    st.done = true;
                    let local = st.local as usize;
                    self.jobs[j as usize].stages_done += 1;
                    let job = &self.jobs[j as usize];
                    let (trace, first) = (Arc::clone(&job.trace), job.first_stage);
                    for &c in &trace.children[local] {
                        let cs = first + c;
                        let ready = trace.stages[c as usize]
                            .parents
                            .iter()
                            .all(|&p| self.stages[(first + p) as usize].done);
                        if ready && !self.stages[cs as usize].runnable {
                            self.submit_stage(cs);
                        }
                    }
                }
                let job = &self.jobs[j as usize];
                if job.stages_done == job.num_stages {
                    self.remove_job(j);
                } else if self.reoffer == Reoffer::Stage
                    && self.stages[s as usize].pending() > 0
                    && !self.stages[s as usize].saturated()
                {
                    // Decima's sticky stages: the slot takes the stage's next task.
                    self.grant(s, 1);
                }
            }
            Event::JobArrival(j) => {
                self.events.job += 1;
                self.activate(j);
            }
            Event::LocalityTimer(s) => {
                self.events.exec += 1;
                let st = &mut self.stages[s as usize];
                if st.timer_ms == self.now {
                    st.timer_ms = 0;
                }
            }
        }
        self.epoch += 1;
    }

    fn grant(&mut self, s: StageId, n: u32) {
        let st = &mut self.stages[s as usize];
        if st.granted == 0 {
            self.grant_order.push(s);
        }
        st.granted += n;
        let j = st.job;
        self.jobs[j as usize].granted += n;
    }

    /// Free slots that no grant waits for: what the next decision places. Grants of stages
    /// not yet submitted hold slots (Decima's committed executors wait for their stage).
    fn unclaimed(&self) -> u32 {
        let free = self
            .free
            .iter()
            .filter(|&&f| self.slots[f as usize].idle_epoch != self.epoch)
            .count() as u32;
        let held: u32 = self
            .grant_order
            .iter()
            .map(|&s| &self.stages[s as usize])
            .filter(|st| !st.runnable)
            .map(|st| st.granted)
            .sum();
        free.saturating_sub(held)
    }

    fn parents_saturated(&self, s: StageId) -> bool {
        let st = &self.stages[s as usize];
        let job = &self.jobs[st.job as usize];
        job.trace.stages[st.local as usize]
            .parents
            .iter()
            .all(|&p| self.stages[(job.first_stage + p) as usize].saturated())
    }

    fn schedulable(&self, s: StageId) -> bool {
        let st = &self.stages[s as usize];
        self.jobs[st.job as usize].state == JobState::Active
            && !st.selected
            && !st.done
            && !st.saturated()
            && !st.locality_wait
            && self.parents_saturated(s)
    }

    fn any_schedulable(&self) -> bool {
        self.active.iter().any(|&j| {
            let job = &self.jobs[j as usize];
            (job.first_stage..job.first_stage + job.num_stages).any(|s| self.schedulable(s))
        })
    }

    /// Runs the timeline until a decision has a choice, or nothing is left.
    fn advance(&mut self) {
        loop {
            self.dispatch();
            let n = self.unclaimed();
            if n > 0 && self.any_schedulable() {
                self.num_source = n;
                return;
            }
            let Some(Reverse((t, _, ev))) = self.timeline.pop() else {
                self.num_source = 0;
                return;
            };
            self.now = t;
            self.process(ev);
        }
    }

    fn min_limit(&self, j: JobId) -> u32 {
        let job = &self.jobs[j as usize];
        job.running + job.granted + 1
    }

    pub fn step(&mut self, action: Action) -> Result<Step, SimError> {
        if self.done() {
            return Err(SimError::EpisodeOver);
        }
        let reject = |reason: String| SimError::InvalidAction { action, reason };
        match action {
            Action::Schedule { stage, limit } => {
                if stage as usize >= self.stages.len() {
                    return Err(reject("no such stage".into()));
                }
                if !self.schedulable(stage) {
                    return Err(reject("the stage is not schedulable now".into()));
                }
                let j = self.stages[stage as usize].job;
                let lo = self.min_limit(j);
                if limit < lo {
                    return Err(reject(format!("limit below the job's minimum {lo}")));
                }
                let st = &self.stages[stage as usize];
                let unassigned = st.num_tasks - st.dispatched - st.granted;
                let n = (limit - lo + 1).min(unassigned).min(self.num_source);
                self.stages[stage as usize].selected = true;
                self.selected.push(stage);
                self.grant(stage, n);
                self.num_source -= n;
            }
            Action::Place { stage, host } => {
                if stage as usize >= self.stages.len() {
                    return Err(reject("no such stage".into()));
                }
                if !self.schedulable(stage) || !self.stages[stage as usize].runnable {
                    return Err(reject(
                        "the stage is not schedulable and runnable now".into(),
                    ));
                }
                let epoch = self.epoch;
                let slots = &self.slots;
                let Some(pos) = self.free.iter().position(|&f| {
                    let sl = &slots[f as usize];
                    u32::from(sl.host) == host && sl.idle_epoch != epoch
                }) else {
                    return Err(reject(format!("host {host} has no free slot")));
                };
                let Some((t, level)) = self.find_task(stage, host as u16, Locality::Any) else {
                    return Err(reject(format!(
                        "no task of the stage may run on host {host} (a planner assigned them elsewhere)"
                    )));
                };
                let slot = self.free.remove(pos);
                self.grant(stage, 1);
                self.launch(slot, stage, t, level);
                self.num_source -= 1;
            }
            Action::Partition { stage, partitions } => {
                if stage as usize >= self.stages.len() {
                    return Err(reject("no such stage".into()));
                }
                self.partition(stage, partitions).map_err(reject)?;
            }
            Action::Split { stage, task, parts } => {
                if stage as usize >= self.stages.len() {
                    return Err(reject("no such stage".into()));
                }
                self.split(stage, task, parts).map_err(reject)?;
            }
            Action::Idle { executors } => {
                if executors == 0 || executors > self.num_source {
                    return Err(reject(format!(
                        "must idle between 1 and {} slots",
                        self.num_source
                    )));
                }
                // The last free slots stay idle until the next event.
                let mut left = executors;
                for k in (0..self.free.len()).rev() {
                    if left == 0 {
                        break;
                    }
                    let sl = &mut self.slots[self.free[k] as usize];
                    if sl.idle_epoch != self.epoch {
                        sl.idle_epoch = self.epoch;
                        left -= 1;
                    }
                }
                self.num_source -= executors;
            }
        }
        self.decisions += 1;
        if self.num_source == 0 {
            for s in self.selected.drain(..) {
                self.stages[s as usize].selected = false;
            }
            self.advance();
        }
        let jobs = &self.jobs;
        let reward = self.rewards.step(
            self.now,
            &self.active,
            |j| {
                let job = &jobs[j as usize];
                let done = (job.state == JobState::Done).then_some(job.completion_ms);
                (job.arrival_ms, done)
            },
            &self.cfg.reward,
        );
        Ok(Step {
            reward,
            done: self.done(),
        })
    }

    pub fn observe(&self, obs: &mut Observation) {
        obs.time_ms = self.now;
        obs.exec_cap = self.slots.len() as u32;
        obs.num_source_exec = self.num_source;
        obs.source_job = None;
        obs.jobs.clear();
        obs.stages.clear();
        obs.edges.clear();
        obs.schedulable.clear();
        obs.stage_data.clear();
        obs.job_pool.clear();
        obs.pools.clear();
        obs.pools.extend_from_slice(&self.pool_views);
        obs.hosts.clear();
        for h in &self.spec.hosts {
            obs.hosts.push(HostView {
                speed: h.speed,
                ..HostView::default()
            });
        }
        for (e, x) in self.spec.executors.iter().enumerate() {
            let hv = &mut obs.hosts[x.host as usize];
            hv.slots += x.slots;
            hv.execution_bytes += x.execution_bytes;
            hv.free_slots += x.slots - self.execs[e].running;
        }
        for (ji, &j) in self.active.iter().enumerate() {
            let job = &self.jobs[j as usize];
            if let Some(p) = job.pool {
                obs.pools[p as usize].running += job.running;
            }
            let base = obs.stages.len() as u32;
            let mut unsaturated = false;
            let mut remaining_work_ms = 0.0;
            for local in 0..job.num_stages {
                let id = job.first_stage + local;
                let st = &self.stages[id as usize];
                let trace_stage = &job.trace.stages[local as usize];
                let saturated = st.saturated();
                unsaturated |= !saturated;
                remaining_work_ms += f64::from(st.pending()) * st.mean_ms;
                for &p in &trace_stage.parents {
                    obs.edges.push([base + p, base + local]);
                }
                let schedulable = self.schedulable(id);
                if schedulable {
                    obs.schedulable.push(obs.stages.len() as u32);
                }
                obs.stages.push(StageView {
                    id,
                    job: ji as u32,
                    index: local,
                    num_tasks: st.num_tasks,
                    dispatched: st.dispatched,
                    finished: st.finished,
                    committed: st.granted,
                    moving: 0,
                    executors: st.running,
                    runnable: st.runnable,
                    runnable_since: st.runnable_seq,
                    saturated,
                    done: st.done,
                    schedulable,
                    mean_task_ms: st.mean_ms,
                    last_task_ms: st.last_task_ms,
                    in_degree: trace_stage.parents.len() as u32,
                    out_degree: job.trace.children[local as usize].len() as u32,
                });
                obs.stage_data.push(StageData {
                    bytes: st.bytes,
                    skew: if st.bytes > 0.0 {
                        st.max_task_bytes() * f64::from(st.num_tasks) / st.bytes
                    } else {
                        0.0
                    },
                    locality_wait: st.locality_wait,
                    heavy: st.heavy,
                    num_heavy: st.num_heavy,
                    partitionable: !trace_stage.parents.is_empty()
                        && !st.repartitioned
                        && !st.done
                        && st.dispatched == 0
                        && st.granted == 0,
                });
            }
            obs.jobs.push(JobView {
                id: j,
                arrival_ms: job.arrival_ms,
                first_stage: base,
                num_stages: job.num_stages,
                executors: job.running,
                exec_map: job.running + job.granted,
                min_limit: self.min_limit(j),
                unsaturated,
                remaining_work_ms,
            });
            obs.job_pool.push(job.pool);
        }
    }

    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    pub fn events(&self) -> EventCounts {
        self.events
    }

    pub fn stats(&self) -> EpisodeStats {
        let mut jobs = self.jobs.iter().map(|j| {
            let done = (j.state == JobState::Done).then_some(j.completion_ms);
            (j.arrival_ms, done)
        });
        let mut stats = EpisodeStats::summarize(EpisodeTotals {
            seed: self.seed,
            jobs: &mut jobs,
            now_ms: self.now,
            busy_ms: self.busy_ms,
            capacity: self.slots.len() as u32,
            decisions: self.decisions,
            events: self.events,
            waves: self.waves,
            rewards: &self.rewards,
        });
        let at = |j: &JobRt, l: Locality| j.launched_at[l as usize];
        let strongest = self.host_capacity.iter().copied().fold(0.0, f64::max);
        let (mut strong, mut other) = ([0.0; 2], [0.0; 2]);
        for (h, &busy) in self.host_busy_ms.iter().enumerate() {
            let acc = if self.host_capacity[h] >= strongest {
                &mut strong
            } else {
                &mut other
            };
            acc[0] += busy as f64;
            acc[1] += f64::from(self.host_slots[h]) * self.now as f64;
        }
        let share = |a: [f64; 2]| if a[1] > 0.0 { a[0] / a[1] } else { 0.0 };
        stats.spark = Some(SparkTotals {
            strong_utilisation: share(strong),
            other_utilisation: share(other),
            spilled_mb: self.spilled_bytes / MB,
            jobs: self
                .jobs
                .iter()
                .map(|j| SparkJobTotals {
                    spilled_mb: j.spilled_bytes / MB,
                    task_time_s: j.task_ms as f64 / 1000.0,
                    node_local: at(j, Locality::NodeLocal),
                    no_pref: at(j, Locality::NoPref),
                    rack_local: at(j, Locality::RackLocal),
                    any: at(j, Locality::Any),
                })
                .collect(),
        });
        stats
    }
}

/// Generated data: `keys` keys with Zipf(`zipf`) frequencies over `total` bytes, each with
/// its hash (Spark's HashPartitioner takes it mod the partition count). The hash depends on
/// the key alone, so a repartitioned stage re-hashes the same keys: a heavy key stays whole
/// in one partition whatever the count, unless a planner salts it.
fn stage_keys(seed: u64, stage: [u64; 2], keys: u64, zipf: f64, total: f64, out: &mut Vec<Key>) {
    out.clear();
    let norm: f64 = (1..=keys).map(|k| (k as f64).powf(-zipf)).sum();
    out.extend((1..=keys).map(|k| {
        let w = (k as f64).powf(-zipf) / norm;
        let hash = entity_draw(seed, stream::CLUSTER_DATA, [stage[0], stage[1] << 1 | 1, k]);
        Key {
            hash,
            bytes: w * total,
        }
    }));
}

/// A stage's working set per task, `bytes × per_byte + fixed`, fitted by least squares on
/// its tasks' measured peaks against their bytes: a fixed part (a task's buffers, whatever
/// its data: Spark's 16 MB pages of a DataFrame aggregation) and a part that grows with the
/// data, both at least 0. Tasks of equal bytes leave the split unknown: proportional then
/// (and all fixed when the stage reads nothing). A merged task of many partitions takes one
/// fixed part, not the sum of theirs.
fn working_set_fit(bytes: &[f64], peaks: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = bytes.len() as f64;
    let (mx, mp) = (
        bytes.iter().sum::<f64>() / n,
        peaks.clone().sum::<f64>() / n,
    );
    if mx <= 0.0 {
        return (0.0, mp);
    }
    let var: f64 = bytes.iter().map(|x| (x - mx).powi(2)).sum();
    if var <= 1e-9 * mx * mx * n {
        return (mp / mx, 0.0);
    }
    let cov: f64 = bytes
        .iter()
        .zip(peaks)
        .map(|(x, p)| (x - mx) * (p - mp))
        .sum();
    let b = cov / var;
    let a = mp - b * mx;
    if b <= 0.0 {
        (0.0, mp)
    } else if a <= 0.0 {
        (mp / mx, 0.0)
    } else {
        (b, a)
    }
}

/// The planners' view of a cluster: its slots, execution memory, and each slot's host in
/// slot order and by capacity: its node's capacity (speed × task slots: DSCS sorts
/// reducers "by node capacity"), then execution memory per slot, then host index.
fn cluster_facts(spec: &ClusterSpec, slots: &[SlotRt], host_capacity: &[f64]) -> ClusterFacts {
    let by_index: Vec<u16> = slots.iter().map(|sl| sl.host).collect();
    let capacity = |sl: &SlotRt| host_capacity[sl.host as usize];
    let per_slot = |sl: &SlotRt| {
        let e = &spec.executors[sl.exec as usize];
        e.execution_bytes / f64::from(e.slots.max(1))
    };
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&slots[a], &slots[b]);
        capacity(sb)
            .total_cmp(&capacity(sa))
            .then(per_slot(sb).total_cmp(&per_slot(sa)))
            .then(sa.host.cmp(&sb.host))
            .then(a.cmp(&b))
    });
    ClusterFacts {
        slots: slots.len() as u32,
        memory_bytes: spec.executors.iter().map(|e| e.execution_bytes).sum(),
        by_capacity: order.iter().map(|&i| slots[i].host).collect(),
        by_index,
    }
}

/// Index of the largest value (the first of equals).
/// The indices of the (up to) `HEAVY_TASKS` largest values of `v` into `out`, largest
/// first, ties to the lower index; returns how many.
fn top_tasks(v: &[f64], out: &mut [u32; HEAVY_TASKS]) -> usize {
    let mut k = 0;
    for (i, &x) in v.iter().enumerate() {
        if k == HEAVY_TASKS && x <= v[out[k - 1] as usize] {
            continue;
        }
        // Insert after every entry at least as large (earlier indices win ties).
        let mut at = k.min(HEAVY_TASKS - 1);
        while at > 0 && v[out[at - 1] as usize] < x {
            at -= 1;
        }
        let end = k.min(HEAVY_TASKS - 1);
        out.copy_within(at..end, at + 1);
        out[at] = i as u32;
        k = (k + 1).min(HEAVY_TASKS);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::live::tests::trace;
    use crate::sim::{Observation, driver};
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    fn cluster(text: &str) -> SimConfig {
        SimConfig {
            executor_keys: ExecutorKeys::Measured,
            record_tasks: true,
            cluster: Some(toml::from_str(text).unwrap()),
            ..SimConfig::default()
        }
    }

    fn arrivals(jobs: &[Arc<JobTrace>]) -> Vec<JobArrival> {
        jobs.iter()
            .map(|j| JobArrival {
                job: Arc::clone(j),
                arrival_ms: 0,
            })
            .collect()
    }

    /// Runs an episode, the first schedulable stage taking every slot it can use.
    fn run(cfg: SimConfig, jobs: &[JobArrival], seed: u64) -> SparkEnv {
        let mut env = SparkEnv::new(cfg).unwrap();
        env.reset(jobs, seed).unwrap();
        finish(&mut env);
        env
    }

    /// Runs a reset episode to its end (at most a million decisions).
    fn finish(env: &mut SparkEnv) {
        let mut obs = Observation::default();
        let mut steps = 0;
        while !env.done() {
            env.observe(&mut obs);
            let a = match obs.schedulable.first() {
                Some(&s) => obs.send_all(s as usize),
                None => obs.idle(),
            };
            env.step(a).unwrap();
            steps += 1;
            assert!(steps < 1_000_000, "no end in sight at {} ms", env.now);
        }
    }

    /// The properties every episode must have: each task ran once, no slot ran two tasks
    /// at a time, memory never over-committed, and no task went to a worse locality level
    /// while a slot on one of its hosts was free, unless its stage had waited its turn.
    fn check_properties(env: &SparkEnv, jobs: &[JobArrival]) {
        let traced: u64 = jobs.iter().map(|a| a.job.num_tasks()).sum();
        // A scheduler may repartition stages: the engine's counts are the truth.
        let total: u64 = env.stages.iter().map(|s| u64::from(s.num_tasks)).sum();
        if !env.stages.iter().any(|s| s.resized) {
            assert_eq!(total, traced);
        }
        let mut seen = std::collections::HashSet::new();
        for r in env.records() {
            assert!(
                seen.insert((r.job, r.stage, r.task)),
                "task ran twice: {r:?}"
            );
        }
        assert_eq!(seen.len() as u64, total, "every task runs once");
        let mut by_slot: Vec<Vec<(u64, u64)>> = vec![Vec::new(); env.slots.len()];
        for r in env.records() {
            by_slot[r.executor as usize].push((r.start_ms, r.end_ms));
        }
        for spans in &mut by_slot {
            spans.sort_unstable();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "a slot ran two tasks at once: {w:?}");
            }
        }
        assert!(
            env.peak_memory_ratio <= 1.0 + 1e-12,
            "memory over-committed: {}",
            env.peak_memory_ratio
        );
        let wait = env.waits[1];
        for l in &env.launches {
            if l.level > Locality::NodeLocal && l.level != Locality::NoPref {
                assert!(
                    !l.preferred_slot_free || l.at_ms - l.submitted_ms >= wait,
                    "launched at {:?} with a preferred slot free before the wait: {l:?}",
                    l.level
                );
            }
        }
    }

    /// Sets the preferred hosts of every task of input stage `s` and submits it again.
    fn set_prefs(env: &mut SparkEnv, s: StageId, hosts: &[u16]) {
        let st = &env.stages[s as usize];
        let base = st.task_base as usize;
        let n = st.num_tasks as usize;
        for (prefs, &h) in env.task_prefs[base..base + n].iter_mut().zip(hosts) {
            *prefs = [NO_HOST; MAX_PREFS];
            prefs[0] = h;
        }
        env.submit_stage(s);
    }

    #[test]
    fn delay_scheduling_escalates_when_the_wait_expires() {
        // TaskSetManagerSuite "basic delay scheduling": an offer on a host the task does not
        // prefer is refused until spark.locality.wait has passed, then taken at ANY.
        for (wait, expect_ms) in [(3000, 3000), (0, 0), (500, 500)] {
            let cfg = cluster(&format!(
                "[[hosts]]\ncount = 2\ncores = 1\nmemory_mb = 2048\n\
                 [locality]\nenabled = true\nreplication = 1\nwait_ms = {wait}"
            ));
            let jobs = arrivals(&[trace("a", &[2], 10_000)]);
            // Both tasks' blocks on host 0, set before the first offers.
            let mut env2 = SparkEnv::new(cfg).unwrap();
            env2.prepare(&jobs, 1).unwrap();
            set_prefs(&mut env2, 0, &[0, 0]);
            env2.advance();
            finish(&mut env2);
            let l = &env2.launches;
            assert_eq!(l.len(), 2);
            assert_eq!(
                (l[0].host, l[0].level, l[0].at_ms),
                (0, Locality::NodeLocal, 0)
            );
            assert_eq!(l[1].host, 1, "wait {wait}");
            assert_eq!(l[1].level, Locality::Any, "wait {wait}");
            assert_eq!(l[1].at_ms, expect_ms, "wait {wait}");
            check_properties(&env2, &jobs);
        }
    }

    #[test]
    fn a_free_preferred_slot_is_taken_first() {
        // Delay scheduling waits for a preferred host only while none is free: with host 1
        // free and preferred, the task starts there at once at NODE_LOCAL.
        let cfg = cluster(
            "[[hosts]]\ncount = 2\ncores = 1\nmemory_mb = 2048\n\
             [locality]\nenabled = true\nreplication = 1",
        );
        let jobs = arrivals(&[trace("a", &[2], 1000)]);
        let mut env = SparkEnv::new(cfg).unwrap();
        env.prepare(&jobs, 1).unwrap();
        set_prefs(&mut env, 0, &[1, 0]);
        env.advance();
        let mut obs = Observation::default();
        env.observe(&mut obs);
        env.step(obs.send_all(obs.schedulable[0] as usize)).unwrap();
        let l = &env.launches;
        assert_eq!(l.len(), 2);
        assert!(
            l.iter()
                .all(|l| l.level == Locality::NodeLocal && l.at_ms == 0)
        );
    }

    #[test]
    fn memory_short_of_the_working_set_spills_and_never_overcommits() {
        // 1 GB executors: (1024 - 300) MB x 0.6 = 434 MB of execution memory for 4 tasks.
        let text = |mem: u64| {
            format!(
                "[[hosts]]\ncount = 2\ncores = 4\nmemory_mb = {mem}\n\
                 [memory]\nenabled = true\n[data]\nmb_per_task_s = 200.0"
            )
        };
        let jobs = arrivals(&[trace("a", &[8, 4], 2000), trace("b", &[6], 3000)]);
        let small = run(cluster(&text(1024)), &jobs, 5);
        check_properties(&small, &jobs);
        assert!(small.spilled_bytes > 0.0, "a 1 GB executor must spill");
        check_job_totals(&small);
        let big = run(cluster(&text(65_536)), &jobs, 5);
        assert_eq!(big.spilled_bytes, 0.0, "64 GB holds every working set");
        assert!(
            small.stats().avg_jct_s > big.stats().avg_jct_s,
            "spilling costs time"
        );
    }

    #[test]
    fn measured_peak_execution_memory_is_the_working_set() {
        // One host, one 1024 MB executor: (1024 - 300) x 0.6 = 434.4 MB of execution memory.
        // Two tasks reading 10 MB each whose reference run peaked at 1000 MB: working sets
        // of 1000 x 0.8 (peak_factor) = 800 MB, so each spills 800 - 434.4 MB. The same job
        // with the peaks zeroed (a log without the field) follows the bytes rule: 25 MB, no
        // spill.
        let with_peaks = |peak: u64| {
            let mut t = (*trace("a", &[2], 1000)).clone();
            t.stages[0].shuffle = Some(crate::workload::trace::ShuffleStats {
                read_bytes: vec![10 << 20; 2],
                read_records: vec![1; 2],
                write_bytes: vec![0; 2],
                write_records: vec![0; 2],
                peak_memory_bytes: vec![peak << 20; 2],
                ..Default::default()
            });
            arrivals(&[Arc::new(t)])
        };
        let text = "[[hosts]]\ncores = 1\nmemory_mb = 1024\n[memory]\nenabled = true";
        let env = run(cluster(text), &with_peaks(1000), 1);
        let want = 2.0 * (800.0 - 434.4) * MB;
        assert!(
            (env.spilled_bytes - want).abs() < 1e-6 * want,
            "{}",
            env.spilled_bytes
        );
        check_job_totals(&env);
        let env = run(cluster(text), &with_peaks(0), 1);
        assert_eq!(env.spilled_bytes, 0.0);
        let env = run(
            cluster(&format!("{text}\nworking_set_factor = 50.0")),
            &with_peaks(0),
            1,
        );
        let want = 2.0 * (500.0 - 434.4) * MB;
        assert!(
            (env.spilled_bytes - want).abs() < 1e-6 * want,
            "{}",
            env.spilled_bytes
        );
    }

    #[test]
    fn a_scheduler_can_place_tasks_on_a_host() {
        // The DSCS hook: every task on the fast host, even when the slow one is free.
        let cfg = cluster(
            "[[hosts]]\ncores = 1\nmemory_mb = 2048\n\
             [[hosts]]\ncores = 1\nmemory_mb = 2048\nspeed = 0.25",
        );
        let jobs = arrivals(&[trace("a", &[3, 2], 1000)]);
        let mut env = SparkEnv::new(cfg.clone()).unwrap();
        env.reset(&jobs, 1).unwrap();
        let mut obs = Observation::default();
        while !env.done() {
            env.observe(&mut obs);
            let fast_free = obs.hosts[0].free_slots > 0;
            let a = match obs.schedulable.first() {
                Some(&s) if fast_free && obs.stages[s as usize].runnable => Action::Place {
                    stage: obs.stages[s as usize].id,
                    host: 0,
                },
                _ => obs.idle(),
            };
            env.step(a).unwrap();
        }
        assert_eq!(env.stats().finished, 1);
        assert!(
            env.launches.iter().all(|l| l.host == 0),
            "{:?}",
            env.launches
        );
        assert_eq!(
            env.stats().makespan_s,
            5.0,
            "five 1 s tasks in a row on host 0"
        );
        // A host without a free slot, or a stage that cannot run, is refused.
        let mut env = SparkEnv::new(cfg).unwrap();
        env.reset(&jobs, 1).unwrap();
        env.observe(&mut obs);
        let s = obs.stages[obs.schedulable[0] as usize].id;
        assert!(env.step(Action::Place { stage: s, host: 7 }).is_err());
        assert!(
            env.step(Action::Place {
                stage: s + 1,
                host: 0
            })
            .is_err()
        );
        env.step(Action::Place { stage: s, host: 0 }).unwrap();
    }

    #[test]
    fn decimas_engine_refuses_a_placement() {
        let mut env = crate::sim::decima::DecimaEnv::new(SimConfig::default()).unwrap();
        let jobs = arrivals(&[trace("a", &[3], 1000)]);
        env.reset(&jobs, 1).unwrap();
        let err = env.step(Action::Place { stage: 0, host: 0 }).unwrap_err();
        assert!(err.to_string().contains("Spark's engine"), "{err}");
    }

    #[test]
    fn a_slow_host_slows_its_tasks() {
        let text = |speed: f64| {
            format!("[[hosts]]\ncount = 1\ncores = 2\nmemory_mb = 4096\nspeed = {speed}")
        };
        let jobs = arrivals(&[trace("a", &[4], 1000)]);
        let fast = run(cluster(&text(1.0)), &jobs, 1).stats().makespan_s;
        let slow = run(cluster(&text(0.5)), &jobs, 1).stats().makespan_s;
        assert_eq!(fast, 2.0);
        assert_eq!(slow, 4.0);
    }

    #[test]
    fn zipf_skew_makes_a_heavy_partition() {
        let text = |zipf: f64| {
            format!("[[hosts]]\ncount = 1\ncores = 4\nmemory_mb = 8192\n[data]\nzipf = {zipf}")
        };
        let jobs = arrivals(&[trace("a", &[20], 1000)]);
        let mut obs = Observation::default();
        let mut skew = |zipf: f64| {
            let mut env = SparkEnv::new(cluster(&text(zipf))).unwrap();
            env.reset(&jobs, 9).unwrap();
            env.observe(&mut obs);
            obs.stage_data[0].skew
        };
        assert!((skew(0.0) - 1.0).abs() < 1e-9);
        let heavy = skew(1.2);
        assert!(
            heavy > 2.0,
            "Zipf 1.2 over 320 keys: the first key alone is ~{heavy}x"
        );
    }

    /// Runs one job's episode after `first` (a repartitioning action) at the first
    /// decision; returns the engine and the stage's total task time in ms.
    fn run_after(text: &str, jobs: &[JobArrival], first: Option<Action>) -> (SparkEnv, u64) {
        let mut env = SparkEnv::new(cluster(text)).unwrap();
        env.reset(jobs, 3).unwrap();
        if let Some(a) = first {
            env.step(a).unwrap();
        }
        finish(&mut env);
        check_properties(&env, jobs);
        let work = env.records().iter().map(|r| r.end_ms - r.start_ms).sum();
        (env, work)
    }

    #[test]
    fn repartitioning_keeps_the_data_and_the_work() {
        // 20 tasks of 1 s on 4 slots, even data; a task's first 50 ms are its fixed cost
        // (`task_overhead_ms`), the rest scales with its data: 10 partitions make tasks of
        // 50 + 1900 ms, 40 make 50 + 475 ms; the stage's bytes stay the same, and its total
        // task time is the data part (19 s) plus 50 ms per task.
        let text = "[[hosts]]\ncores = 4\nmemory_mb = 8192";
        let jobs = arrivals(&[trace("a", &[20], 1000)]);
        let (base, work) = run_after(text, &jobs, None);
        assert_eq!((work, base.stats().makespan_s), (20_000, 5.0));
        let bytes = base.stages[0].bytes;
        for (p, makespan) in [(10, 5.85), (40, 5.25), (7, 5.53)] {
            let (env, work) = run_after(
                text,
                &jobs,
                Some(Action::Partition {
                    stage: 0,
                    partitions: p,
                }),
            );
            let st = &env.stages[0];
            assert_eq!(st.num_tasks, p);
            assert_eq!(env.records().len(), p as usize);
            assert!((st.bytes - bytes).abs() < 1e-6 * bytes, "bytes kept");
            // 7 partitions of 19/7 s each, ceil'd to the ms: at most a ms per task more.
            let kept = 19_000 + 50 * u64::from(p);
            assert!(
                work.abs_diff(kept) <= u64::from(p),
                "work {work} against {kept}"
            );
            assert!(
                (env.stats().makespan_s - makespan).abs() < 0.01,
                "{p} partitions: {}",
                env.stats().makespan_s
            );
        }
    }

    #[test]
    fn fewer_partitions_spill_more() {
        // DSCS: a task needs ~2.5x its data in memory; big partitions spill. Executor pool
        // (1024 - 300) MB x 0.6 = 434 MB over 2 running tasks: 217 MB each. 20 tasks of
        // 1 s at 50 MB per task-second: working sets of 125 MB, no spill; 5 partitions
        // (200 MB, 500 MB working sets) spill most.
        let text = "[[hosts]]\ncores = 2\nmemory_mb = 1024\n\
                    [memory]\nenabled = true\n[data]\nmb_per_task_s = 50";
        let jobs = arrivals(&[trace("a", &[20], 1000)]);
        let spill = |p: u32| {
            let a = (p != 20).then_some(Action::Partition {
                stage: 0,
                partitions: p,
            });
            run_after(text, &jobs, a).0.spilled_bytes
        };
        let (s5, s10, s20, s40) = (spill(5), spill(10), spill(20), spill(40));
        assert_eq!((s20, s40), (0.0, 0.0));
        assert!(s5 > s10 && s10 > 0.0, "5: {s5}, 10: {s10}");
    }

    #[test]
    fn splitting_the_heavy_task_shortens_the_stage() {
        // Zipf 1.2: one partition holds the heaviest keys and its task runs longest.
        // Splitting it in 4 keeps the data and ends the stage sooner.
        let text = "[[hosts]]\ncores = 8\nmemory_mb = 16384\n[data]\nzipf = 1.2";
        let jobs = arrivals(&[trace("a", &[16], 1000)]);
        let (base, _) = run_after(text, &jobs, None);
        let mut env = SparkEnv::new(cluster(text)).unwrap();
        env.reset(&jobs, 3).unwrap();
        let mut obs = Observation::default();
        env.observe(&mut obs);
        let heavy = obs.stage_data[0].heavy_task();
        let skew = obs.stage_data[0].skew;
        assert!(skew > 2.0, "skew {skew}");
        let split = Action::Split {
            stage: 0,
            task: heavy,
            parts: 4,
        };
        let (env, work) = run_after(text, &jobs, Some(split));
        let st = &env.stages[0];
        assert_eq!(st.num_tasks, 19);
        assert!((st.bytes - base.stages[0].bytes).abs() < 1e-6 * st.bytes);
        let base_work: u64 = base.records().iter().map(|r| r.end_ms - r.start_ms).sum();
        // Three more tasks, each with its 50 ms fixed cost; ceilings add at most 4 ms.
        assert!(
            work.abs_diff(base_work + 150) <= 4,
            "{work} against {base_work}"
        );
        let (before, after) = (base.stats().makespan_s, env.stats().makespan_s);
        assert!(after < 0.6 * before, "makespan {before} s -> {after} s");
    }

    #[test]
    fn repartitioning_is_refused_once_tasks_started() {
        let text = "[[hosts]]\ncores = 2\nmemory_mb = 4096";
        let jobs = arrivals(&[trace("a", &[6, 4], 1000)]);
        let mut env = SparkEnv::new(cluster(text)).unwrap();
        env.reset(&jobs, 1).unwrap();
        let p = |stage, partitions| Action::Partition { stage, partitions };
        // The child (not submitted yet) may be cut before it starts, once.
        env.step(p(1, 8)).unwrap();
        assert!(env.step(p(1, 3)).is_err(), "once per stage");
        assert!(env.step(p(0, 0)).is_err());
        assert!(env.step(p(0, 6)).is_err(), "same count");
        assert!(env.step(p(9, 2)).is_err(), "no such stage");
        let mut obs = Observation::default();
        env.observe(&mut obs);
        env.step(obs.send_all(0)).unwrap();
        // Stage 0 runs tasks 0 and 1 now.
        assert!(env.step(p(0, 3)).is_err(), "started");
        let split = |task, parts| Action::Split {
            stage: 0,
            task,
            parts,
        };
        assert!(env.step(split(0, 2)).is_err(), "task 0 started");
        assert!(env.step(split(5, 1)).is_err(), "one part");
        assert!(env.step(split(6, 2)).is_err(), "no task 6");
        env.step(split(5, 3)).unwrap();
        finish(&mut env);
        check_properties(&env, &jobs);
        assert_eq!(env.records().len(), 8 + 8);
        let mut decima = crate::sim::decima::DecimaEnv::new(SimConfig::default()).unwrap();
        decima.reset(&jobs, 1).unwrap();
        let err = decima.step(p(1, 8)).unwrap_err();
        assert!(err.to_string().contains("Spark's engine"), "{err}");
    }

    #[test]
    fn tpch_episodes_keep_every_property_when_stages_are_repartitioned() {
        // A scheduler that, at random decisions, cuts a stage that has not started into
        // 1..3x its tasks, or splits a stage's heaviest task that has not started: every
        // (new) task still runs once, no slot runs two, memory is never over-committed.
        let jobs = tpch_batch();
        let text = "preset = \"dscs\"\n[data]\nzipf = 1.0\n\
                    [locality]\nenabled = true\n[memory]\nenabled = true";
        let mut env = SparkEnv::new(cluster(text)).unwrap();
        env.reset(&jobs, 5).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let mut obs = Observation::default();
        let (mut parted, mut split) = (0, 0);
        while !env.done() {
            env.observe(&mut obs);
            let pick = rng.random_range(0..obs.stages.len().max(1));
            let mut a = match obs.schedulable.first() {
                Some(&s) => obs.send_all(s as usize),
                None => obs.idle(),
            };
            if let Some(st) = obs.stages.get(pick) {
                let fresh = st.dispatched == 0 && st.committed == 0 && !st.done;
                match rng.random_range(0..8) {
                    0 if fresh && !env.stages[st.id as usize].repartitioned => {
                        let p = rng.random_range(1..=3 * st.num_tasks);
                        if p != st.num_tasks {
                            a = Action::Partition {
                                stage: st.id,
                                partitions: p,
                            };
                            parted += 1;
                        }
                    }
                    1 if !st.done => {
                        let t = obs.stage_data[pick].heavy_task();
                        let base = env.stages[st.id as usize].task_base;
                        if !env.task_started[(base + t) as usize] {
                            a = Action::Split {
                                stage: st.id,
                                task: t,
                                parts: rng.random_range(2..5),
                            };
                            split += 1;
                        }
                    }
                    _ => {}
                }
            }
            env.step(a).unwrap();
        }
        assert!(
            parted > 10 && split > 10,
            "{parted} partitions, {split} splits"
        );
        assert_eq!(env.stats().finished, 20);
        check_properties(&env, &jobs);
    }

    #[test]
    fn recut_merges_and_splits_partitions() {
        let mut two = [0.0; 2];
        plan::recut(&[1.0, 2.0, 3.0, 4.0], &mut two);
        assert_eq!(two, [3.0, 7.0]);
        let mut three = [0.0; 3];
        plan::recut(&[3.0, 6.0], &mut three);
        for (got, want) in three.iter().zip([2.0, 1.0 + 2.0, 4.0]) {
            assert!((got - want).abs() < 1e-12, "{three:?}");
        }
        let mut one = [0.0; 1];
        plan::recut(&[1.0, 2.0, 3.0], &mut one);
        assert_eq!(one, [6.0]);
    }

    #[test]
    fn a_chain_runs_to_the_end() {
        let cfg = cluster("[[hosts]]\ncount = 2\ncores = 2\nmemory_mb = 4096");
        let jobs = arrivals(&[trace("a", &[4, 2], 1000), trace("b", &[3], 500)]);
        let env = run(cfg, &jobs, 1);
        let s = env.stats();
        assert_eq!(s.finished, 2);
        assert_eq!(env.records().len(), 9);
    }

    /// Twenty TPC-H jobs of the project's own traces, all at t = 0.
    fn tpch_batch() -> Vec<JobArrival> {
        let lib = crate::workload::TraceLibrary::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tpch"
        )))
        .unwrap();
        let all = lib.jobs();
        arrivals(
            &(0..20)
                .map(|i| Arc::clone(&all[(i * 7) % all.len()]))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn tpch_episodes_keep_every_property() {
        let _ = driver::run_to_end;
        let jobs = tpch_batch();
        for (text, seed) in [
            (
                "preset = \"hetero-small\"\n[locality]\nenabled = true\n[memory]\nenabled = true",
                3,
            ),
            (
                "preset = \"dscs\"\n[data]\nzipf = 1.0\nmb_per_task_s = 100.0\n\
                 [locality]\nenabled = true\nwait_ms = 1000\n[memory]\nenabled = true",
                4,
            ),
        ] {
            let env = run(cluster(text), &jobs, seed);
            assert_eq!(env.stats().finished, 20, "{text}");
            check_properties(&env, &jobs);
            check_job_totals(&env);
            assert!(env.launched_at[Locality::NodeLocal as usize] > 0, "{text}");
        }
    }

    #[test]
    fn every_planner_keeps_the_data_and_every_property() {
        let jobs = tpch_batch();
        let text = |planner: &str| {
            format!(
                "preset = \"dscs\"\n[data]\nzipf = 1.2\nmb_per_task_s = 100.0\ngenerate_keys = true\n\
                 task_overhead_ms = 50.0\n[memory]\nenabled = true\n[plan]\n{planner}"
            )
        };
        let reference = run(cluster(&text("")), &jobs, 5);
        let bytes = |env: &SparkEnv| -> f64 { env.stages.iter().map(|s| s.bytes).sum() };
        for planner in [
            "planner = \"fixed\"\npartitions = 20",
            "planner = \"dscs\"",
            "planner = \"dscs-parallelism\"",
            "planner = \"dscs-skew\"\npartitions = 20",
            "planner = \"dscs-assign\"\npartitions = 20",
            "planner = \"one-to-one\"\npartitions = 20",
            "planner = \"aqe\"",
        ] {
            let env = run(cluster(&text(planner)), &jobs, 5);
            assert_eq!(env.stats().finished, 20, "{planner}");
            check_properties(&env, &jobs);
            check_job_totals(&env);
            let (a, b) = (bytes(&env), bytes(&reference));
            assert!(
                (a - b).abs() <= 1e-9 * b,
                "{planner}: {a} bytes against {b}"
            );
            assert!(
                env.stages.iter().any(|s| s.resized),
                "{planner} planned nothing"
            );
            // A pinned task ran on its host.
            for r in env.records() {
                let st = &env.stages[(env.jobs[r.job as usize].first_stage + r.stage) as usize];
                let pin = env.task_pin[(st.task_base + r.task) as usize];
                assert!(pin == NO_HOST || pin == env.slots[r.executor as usize].host);
            }
            let pinned = env.stages.iter().any(|s| s.pinned);
            assert_eq!(
                pinned,
                planner.contains("assign")
                    || planner.contains("one-to-one")
                    || planner.contains("\"dscs\""),
                "{planner}"
            );
        }
    }

    /// One skewed shuffle (20 map tasks, then 20 reduce tasks reading 16 GB with Zipf 1.2
    /// keys) on `cluster_text`, planned by `planner`: (the reduce stage, the engine).
    fn planned_shuffle(cluster_text: &str, planner: &str) -> SparkEnv {
        let text = format!(
            "{cluster_text}\n[data]\nzipf = 1.2\nmb_per_task_s = 80.0\n\
             [memory]\nenabled = true\n[plan]\n{planner}"
        );
        let jobs = arrivals(&[trace("a", &[20, 20], 10_000)]);
        run(cluster(&text), &jobs, 2)
    }

    #[test]
    fn salting_heavy_keys_cuts_spill_and_capacity_aware_assignment_shortens_the_stage() {
        // 16 slots with 2.4 GB of execution memory each: map tasks (800 MB, 2 GB of working
        // set) fit, the reduce stage's heaviest keys do not.
        let hosts = "[[hosts]]\ncount = 4\ncores = 4\nmemory_mb = 16384";
        let fixed = planned_shuffle(hosts, "planner = \"fixed\"\npartitions = 20");
        let salted = planned_shuffle(hosts, "planner = \"dscs-skew\"\npartitions = 20");
        assert_eq!(fixed.stages[1].num_tasks, 20);
        assert!(salted.stages[1].num_tasks > 20, "salting adds partitions");
        assert!(salted.stages[1].max_task_bytes() < 0.5 * fixed.stages[1].max_task_bytes());
        // Buckets of 20 still hold several mid-sized keys (the parallelism is DSCS's other
        // step), so spill falls by a third here, not to zero.
        assert!(
            salted.spilled_bytes < 0.8 * fixed.spilled_bytes,
            "spilled {} against {} bytes",
            salted.spilled_bytes,
            fixed.spilled_bytes
        );
        // hetero-small: hosts 0-3 at speed 1, hosts 4-7 at half speed.
        let hetero = "preset = \"hetero-small\"";
        let blind = planned_shuffle(hetero, "planner = \"one-to-one\"\npartitions = 64");
        let aware = planned_shuffle(hetero, "planner = \"dscs-assign\"\npartitions = 64");
        let heaviest = |env: &SparkEnv| {
            let st = &env.stages[1];
            env.records()
                .iter()
                .filter(|r| r.stage == 1 && r.task == st.heavy[0].0)
                .map(|r| env.slots[r.executor as usize].host)
                .next()
                .unwrap()
        };
        assert!(
            heaviest(&aware) < 4,
            "the largest bucket runs on a fast host"
        );
        let (a, b) = (aware.stats().makespan_s, blind.stats().makespan_s);
        assert!(a < b, "capacity-aware {a} s against one-to-one {b} s");
    }

    #[test]
    fn a_dataset_scale_multiplies_bytes_and_the_data_part_of_time() {
        let jobs = arrivals(&[trace("a", &[4], 1000)]);
        let text =
            |scale: f64| format!("[[hosts]]\ncores = 4\nmemory_mb = 8192\n[data]\nscale = {scale}");
        let one = run(cluster(&text(1.0)), &jobs, 1);
        let three = run(cluster(&text(3.0)), &jobs, 1);
        assert!((three.stages[0].bytes - 3.0 * one.stages[0].bytes).abs() < 1e-6);
        // Tasks of 1 s: 50 ms of fixed cost, then 950 ms × 3.
        assert_eq!(one.stats().makespan_s, 1.0);
        assert_eq!(three.stats().makespan_s, 2.9);
        assert!(
            SparkEnv::new(cluster(
                "[[hosts]]\ncores = 1\nmemory_mb = 4096\n[data]\nscale = 0"
            ))
            .is_err()
        );
    }

    #[test]
    fn working_sets_split_a_fixed_part_from_a_part_per_byte() {
        // Spark's DataFrame aggregation: every task holds a 16 MB page whatever its data.
        let bytes: Vec<f64> = (1..=80).map(|i| f64::from(i) * MB).collect();
        let (per_byte, fixed) = working_set_fit(&bytes, std::iter::repeat_n(16.0 * MB, 80));
        assert_eq!((per_byte, fixed), (0.0, 16.0 * MB));
        // Peaks of 4 MB + 3 × bytes: both parts found.
        let (per_byte, fixed) = working_set_fit(&bytes, bytes.iter().map(|b| 4.0 * MB + 3.0 * b));
        assert!((per_byte - 3.0).abs() < 1e-9 && (fixed - 4.0 * MB).abs() < 1.0);
        // Equal bytes: proportional; no bytes: all fixed.
        assert_eq!(
            working_set_fit(&[2.0, 2.0], [6.0, 10.0].into_iter()),
            (4.0, 0.0)
        );
        assert_eq!(
            working_set_fit(&[0.0, 0.0], [6.0, 10.0].into_iter()),
            (0.0, 8.0)
        );
    }

    #[test]
    fn more_output_partitions_cost_the_map_side() {
        // 4 map tasks of 1 s, then 4 reduce tasks; re-cut to 24 partitions at the job's
        // arrival, each map task writes 20 more segments at 10 ms each: 1.2 s.
        let jobs = arrivals(&[trace("a", &[4, 4], 1000)]);
        let text = |w: f64, p: u32| {
            format!(
                "[[hosts]]\ncores = 4\nmemory_mb = 8192\n[data]\nwrite_ms_per_partition = {w}\n\
                 [plan]\nplanner = \"fixed\"\npartitions = {p}"
            )
        };
        let map_ms = |env: &SparkEnv| {
            let r = env.records().iter().find(|r| r.stage == 0).unwrap();
            r.end_ms - r.start_ms
        };
        let env = run(cluster(&text(10.0, 24)), &jobs, 1);
        assert_eq!(env.stages[1].num_tasks, 24);
        assert_eq!(map_ms(&env), 1200);
        assert_eq!(map_ms(&run(cluster(&text(0.0, 24)), &jobs, 1)), 1000);
        // Fewer partitions save writes, down to the task's fixed cost at most.
        assert_eq!(map_ms(&run(cluster(&text(10.0, 2)), &jobs, 1)), 980);
        assert_eq!(map_ms(&run(cluster(&text(1000.0, 2)), &jobs, 1)), 50);
    }

    #[test]
    fn the_planner_of_a_spec_overrides_the_configs() {
        let jobs = tpch_batch();
        let cfg = cluster("preset = \"dscs\"\n[data]\ngenerate_keys = true\nzipf = 1.0");
        let mut env = SparkEnv::new(cfg).unwrap();
        env.reset(&jobs, 1).unwrap();
        finish(&mut env);
        assert!(!env.stages.iter().any(|s| s.resized));
        env.set_plan(Some(PlanConfig {
            planner: PlannerKind::Fixed,
            partitions: Some(7),
            ..PlanConfig::default()
        }));
        env.reset(&jobs, 1).unwrap();
        finish(&mut env);
        let shuffle = env.stages.iter().filter(|s| {
            !env.jobs[s.job as usize].trace.stages[s.local as usize]
                .parents
                .is_empty()
        });
        assert!(shuffle.clone().count() > 0);
        assert!(shuffle.clone().all(|s| s.num_tasks == 7));
        env.set_plan(None);
        env.reset(&jobs, 1).unwrap();
        finish(&mut env);
        assert!(!env.stages.iter().any(|s| s.resized));
    }

    /// The per-job totals in the stats add up to the engine's own counters.
    fn check_job_totals(env: &SparkEnv) {
        let t = env
            .stats()
            .spark
            .expect("Spark's engine reports its totals");
        assert_eq!(t.jobs.len(), env.num_jobs());
        let spilled: f64 = t.jobs.iter().map(|j| j.spilled_mb).sum();
        assert!((spilled - env.spilled_bytes / MB).abs() <= 1e-9 * spilled.max(1.0));
        assert!((t.spilled_mb - env.spilled_bytes / MB).abs() <= 1e-12);
        let busy: f64 = t.jobs.iter().map(|j| j.task_time_s * 1000.0).sum();
        assert!((busy - env.busy_ms as f64).abs() < 1e-6 * busy.max(1.0));
        let sum = |f: fn(&crate::sim::SparkJobTotals) -> u64| t.jobs.iter().map(f).sum::<u64>();
        assert_eq!(
            sum(|j| j.node_local),
            env.launched_at[Locality::NodeLocal as usize]
        );
        assert_eq!(
            sum(|j| j.no_pref),
            env.launched_at[Locality::NoPref as usize]
        );
        assert_eq!(
            sum(|j| j.rack_local),
            env.launched_at[Locality::RackLocal as usize]
        );
        assert_eq!(sum(|j| j.any), env.launched_at[Locality::Any as usize]);
    }

    #[test]
    fn local_files_give_input_tasks_no_preferred_host() {
        // replication = 0: input splits of a local file system say "localhost", which
        // Spark's FilePartition.preferredLocations drops, so scan tasks launch at NO_PREF
        // at once; reduce tasks still prefer the hosts holding >= 20% of their map output
        // (MapOutputTracker.getPreferredLocationsForShuffle), so some run NODE_LOCAL, unless
        // they read nothing.
        let jobs = tpch_batch();
        let text = "[[hosts]]\ncount = 2\ncores = 1\nmemory_mb = 1024\n\
                    [locality]\nenabled = true\nreplication = 0";
        let env = run(cluster(text), &jobs, 7);
        check_properties(&env, &jobs);
        check_job_totals(&env);
        let at = |l: Locality| env.launched_at[l as usize];
        assert!(at(Locality::NoPref) > 0 && at(Locality::NodeLocal) > 0);
        for l in &env.launches {
            let input = env.jobs[env.stages[l.stage as usize].job as usize]
                .trace
                .stages[env.stages[l.stage as usize].local as usize]
                .parents
                .is_empty();
            let st = &env.stages[l.stage as usize];
            let empty = env.task_bytes[(st.task_base + l.task) as usize] <= 0.0;
            if input || empty {
                // Spark: an empty reduce partition has no location with 20% of nothing.
                assert_eq!(
                    l.level,
                    Locality::NoPref,
                    "a task launched at {:?}",
                    l.level
                );
            } else {
                assert_ne!(
                    l.level,
                    Locality::NoPref,
                    "a reduce task without preference"
                );
            }
        }
    }

    /// The largest tasks a skew split cuts: largest first, ties to the lower index, at
    /// most `HEAVY_TASKS`, and every one when a stage has fewer.
    #[test]
    fn the_heaviest_tasks_are_listed_largest_first() {
        let mut out = [0u32; HEAVY_TASKS];
        let v = [3.0, 9.0, 1.0, 9.0, 5.0, 0.0, 7.0, 2.0, 8.0, 4.0, 6.0, 9.5];
        assert_eq!(top_tasks(&v, &mut out), HEAVY_TASKS);
        assert_eq!(out, [11, 1, 3, 8, 6, 10, 4, 9]);
        let mut out = [0u32; HEAVY_TASKS];
        assert_eq!(top_tasks(&[2.0, 2.0, 5.0], &mut out), 3);
        assert_eq!(out[..3], [2, 0, 1]);
        assert_eq!(top_tasks(&[], &mut out), 0);
        // Against a sort, on many random stages.
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        for n in 0..200usize {
            let v: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.random_range(0..20u32)))
                .collect();
            let mut idx: Vec<u32> = (0..n as u32).collect();
            idx.sort_by(|&a, &b| v[b as usize].total_cmp(&v[a as usize]).then(a.cmp(&b)));
            let k = top_tasks(&v, &mut out);
            assert_eq!(k, n.min(HEAVY_TASKS));
            assert_eq!(out[..k], idx[..k], "{v:?}");
        }
    }
}
