//! What a scheduler sees at a decision: the active jobs, their stages and DAG edges, which
//! stages may be chosen, and the valid parallelism limits.
//!
//! The buffers are reused from decision to decision, so observing allocates nothing once
//! they have grown to the episode's size. Heuristics and learned policies read the same
//! struct; Decima's and MPDA's node features are derived from it in `model::batch`.

use super::cluster::SchedulingMode;
use super::{Action, JobId, StageId};

#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub time_ms: u64,
    /// Total executors of the cluster.
    pub exec_cap: u32,
    /// Executors the scheduler must place in this round (Decima's `num_source_exec`).
    pub num_source_exec: u32,
    /// Index into `jobs` of the job the executors come from, if it is still active;
    /// `None` for the global pool.
    pub source_job: Option<usize>,
    /// Active jobs, in arrival order.
    pub jobs: Vec<JobView>,
    /// Stages of the active jobs, job after job, each job's stages in trace order.
    pub stages: Vec<StageView>,
    /// DAG edges `[parent, child]` as indices into `stages`.
    pub edges: Vec<[u32; 2]>,
    /// Indices into `stages` of the stages that may be chosen now, in Decima's frontier
    /// order (jobs in arrival order, stages in trace order).
    pub schedulable: Vec<u32>,
    /// Spark's engine only (empty on Decima's, so that its observations cost what they
    /// always did): per stage, parallel to `stages`, its data and locality state.
    pub stage_data: Vec<StageData>,
    /// Spark's engine only: per job, parallel to `jobs`, its index into `pools`, or `None`
    /// for a pool of its own (Spark's pool for a name with no configuration). Empty: every
    /// job in a pool of its own.
    pub job_pool: Vec<Option<u32>>,
    /// Configured Spark pools (`[sim.cluster] pools`); empty on Decima's engine.
    pub pools: Vec<PoolView>,
    /// The cluster's hosts (capacity and free slots); empty on Decima's engine, whose
    /// executors are identical.
    pub hosts: Vec<HostView>,
}

/// How many of a stage's largest tasks an observation lists (`StageData::heavy`).
pub const HEAVY_TASKS: usize = 8;

/// What Spark's engine adds to a stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageData {
    /// Data the stage's tasks read, bytes.
    pub bytes: f64,
    /// Largest task's data over the mean task's (1: no skew).
    pub skew: f64,
    /// Waiting for a more local slot (delay scheduling): it declined the free slots.
    pub locality_wait: bool,
    /// Its `num_heavy` largest tasks (index, bytes), largest first, ties to the lower
    /// index: the ones a skew-correcting scheduler splits (`Action::Split`).
    pub heavy: [(u32, f64); HEAVY_TASKS],
    pub num_heavy: u8,
    /// A shuffle stage whose partitions may still change (`Action::Partition` or
    /// `Action::Split`): none of its tasks started or holds a slot, and neither a planner
    /// nor a scheduler re-cut it yet. What MPDA's partition branch acts on.
    pub partitionable: bool,
}

impl StageData {
    /// Its largest tasks (index, bytes), largest first.
    pub fn heavy_tasks(&self) -> &[(u32, f64)] {
        &self.heavy[..self.num_heavy as usize]
    }

    /// Index of its largest task (0 for a stage with none).
    pub fn heavy_task(&self) -> u32 {
        self.heavy_tasks().first().map_or(0, |h| h.0)
    }

    /// Bytes of its largest task.
    pub fn max_task_bytes(&self) -> f64 {
        self.heavy_tasks().first().map_or(0.0, |h| h.1)
    }
}

/// A Spark pool as the FAIR scheduler sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolView {
    pub weight: u32,
    pub min_share: u32,
    pub mode: SchedulingMode,
    /// Rank of the pool's name in byte order among all pools: Spark's last tie-break.
    pub name_rank: u32,
    /// Tasks running in the pool's jobs.
    pub running: u32,
}

/// One host: what a policy needs to weigh a heterogeneous cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostView {
    pub slots: u32,
    pub free_slots: u32,
    /// Relative speed (1.0: the machine the traces were measured on).
    pub speed: f64,
    /// Execution memory over all executors of the host, bytes.
    pub execution_bytes: f64,
}

#[derive(Debug, Clone, Default)]
pub struct JobView {
    pub id: JobId,
    pub arrival_ms: u64,
    /// Range of this job's stages in `Observation::stages`.
    pub first_stage: u32,
    pub num_stages: u32,
    /// Executors attached to the job (running or idle in it).
    pub executors: u32,
    /// Executors attached, moving to, or committed to the job from elsewhere
    /// (Decima's `exec_map`).
    pub exec_map: u32,
    /// Smallest valid parallelism limit: `exec_map + 1`, less the executors being placed if
    /// they come from this job. Every limit at or above it is valid; limits above
    /// `min_limit + num_source_exec - 1` behave like that one.
    pub min_limit: u32,
    /// Whether some stage still lacks an executor for one of its tasks (Decima's
    /// "unfinished" job in its fair-share heuristic).
    pub unsaturated: bool,
    /// Sum over stages of undispatched tasks × mean task duration, ms.
    pub remaining_work_ms: f64,
}

impl JobView {
    pub fn stage_range(&self) -> std::ops::Range<usize> {
        self.first_stage as usize..(self.first_stage + self.num_stages) as usize
    }
}

#[derive(Debug, Clone, Default)]
pub struct StageView {
    /// Episode-wide id, used in [`super::Action::Schedule`].
    pub id: StageId,
    /// Index into `Observation::jobs`.
    pub job: u32,
    /// Index of the stage within its job's trace.
    pub index: u32,
    pub num_tasks: u32,
    /// Tasks started so far.
    pub dispatched: u32,
    pub finished: u32,
    /// Executors committed to it but not yet sent.
    pub committed: u32,
    /// Executors moving to it.
    pub moving: u32,
    /// Executors whose current task is on it.
    pub executors: u32,
    /// Parents all finished and tasks left to start: tasks can start here now.
    pub runnable: bool,
    /// Order in which the stage became runnable within its job (Decima's job frontier
    /// order); meaningful only when `runnable`.
    pub runnable_since: u64,
    /// Every task has an executor running it, committed to it, or moving to it.
    pub saturated: bool,
    pub done: bool,
    /// May be chosen now: unsaturated, parents saturated, not yet chosen this round.
    pub schedulable: bool,
    /// Mean of all duration samples of the stage (Decima's `rough_duration`), ms.
    pub mean_task_ms: f64,
    /// Decima's `tasks[-1].duration`: the mean until the last task starts, then that
    /// task's sampled duration. Reproduced because Decima's work feature uses it.
    pub last_task_ms: f64,
    pub in_degree: u32,
    pub out_degree: u32,
}

impl StageView {
    /// Tasks not started yet.
    pub fn remaining_tasks(&self) -> u32 {
        self.num_tasks - self.dispatched
    }

    /// Tasks that have no executor running, committed or moving: what one more executor
    /// could still take.
    pub fn unassigned_tasks(&self) -> u32 {
        self.num_tasks
            .saturating_sub(self.dispatched + self.committed + self.moving)
    }
}

impl Observation {
    /// The job of stage `s` (an index into `stages`).
    pub fn job_of(&self, s: usize) -> &JobView {
        &self.jobs[self.stages[s].job as usize]
    }

    /// Whether stage `s`'s job is the job the executors come from.
    pub fn is_source(&self, job: usize) -> bool {
        self.source_job == Some(job)
    }

    /// The limit that sends `n` executors (before clipping to the stage's tasks).
    pub fn limit_for(&self, job: usize, n: u32) -> u32 {
        self.jobs[job].min_limit + n.max(1) - 1
    }

    /// Sends stage `s` every executor being placed that it can use.
    pub fn send_all(&self, s: usize) -> Action {
        Action::Schedule {
            stage: self.stages[s].id,
            limit: self.limit_for(self.stages[s].job as usize, self.num_source_exec),
        }
    }

    /// Leaves every executor being placed idle.
    pub fn idle(&self) -> Action {
        Action::Idle {
            executors: self.num_source_exec,
        }
    }
}
