//! Decima's engine: `reset`, `observe`, `step` (the default, with no `[sim.cluster]`).
//!
//! This is a line-by-line port of decima-sim's `Environment` (spark_env/env.py) and of
//! the executor bookkeeping it relies on (free pools, commitments, moving executors), with
//! its Python objects replaced by flat vectors indexed by ids. The comments name the
//! decima-sim function each piece mirrors; `docs/simulator.md` explains the mechanics.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::durations::{History, KeyTable, sample_duration};
use super::env::Step;
use super::observation::{JobView, Observation, StageView};
use super::reward::RewardBook;
use super::stats::{EpisodeStats, EpisodeTotals, EventCounts, TaskRecord};
use super::{Action, ExecId, ExecutorKeys, JobId, SimConfig, SimError, StageId};
use crate::seed::task_draws;
use crate::workload::JobTrace;
use crate::workload::arrivals::JobArrival;

/// Where the executors being placed come from (the key of Decima's `exec_commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The global pool of executors attached to no job.
    Global,
    /// Executors idle in a job's pool.
    Pool(JobId),
    /// Executors that free up from a stage, now or as their tasks end.
    Stage(StageId),
}

/// A persistent commitment: `amount` executors from `source` go to `target` (a stage, or
/// idle when `None`) as they become free. Kept in one insertion-ordered list, which gives
/// each source the FIFO order of Decima's per-source `OrderedDict`.
#[derive(Debug, Clone, Copy)]
struct Commit {
    source: Source,
    target: Option<StageId>,
    amount: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    TaskDone { exec: ExecId, stage: StageId },
    JobArrival(JobId),
    ExecArrival(ExecId),
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
    /// Executors attached to the job (Decima's `job_dag.executors`).
    executors: u32,
    /// Executors moving to one of its stages.
    moving_in: u32,
    /// Commitments to its stages from sources outside the job.
    outside_commit: u32,
}

#[derive(Debug, Clone, Default)]
struct StageRt {
    job: JobId,
    local: u32,
    num_tasks: u32,
    next_task: u32,
    finished: u32,
    done: bool,
    /// Executors whose current task is on this stage (Decima's `node.executors`).
    executors_on: u32,
    /// Executors committed to this stage (Decima's `node_commit`).
    committed: u32,
    /// Executors moving to this stage.
    moving: u32,
    /// Chosen in the current round (Decima's `node_selected`).
    selected: bool,
    /// In the job's runnable frontier, and since when (insertion order).
    in_frontier: bool,
    frontier_seq: u64,
    mean_ms: f64,
    last_task_ms: f64,
}

impl StageRt {
    fn no_more_tasks(&self) -> bool {
        self.next_task >= self.num_tasks
    }
    /// Decima's `saturated`: every task has an executor running, committed or moving.
    fn saturated(&self) -> bool {
        self.next_task + self.committed + self.moving >= self.num_tasks
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct ExecRt {
    job: Option<JobId>,
    /// The stage of its current or last task; cleared by `detach_node`. Decima keeps both
    /// `executor.node` and `executor.task`, which always point to the same stage.
    node: Option<StageId>,
    /// In a free pool (the pool is its job, or the global pool when `job` is `None`).
    free: bool,
    moving_to: Option<StageId>,
}

pub struct DecimaEnv {
    cfg: SimConfig,
    keys: KeyTable,
    seed: u64,
    now: u64,
    jobs: Vec<JobRt>,
    stages: Vec<StageRt>,
    /// Active jobs in arrival order.
    active: Vec<JobId>,
    execs: Vec<ExecRt>,
    /// Free executors in insertion order; an executor's pool is its `job`.
    free: Vec<ExecId>,
    commits: Vec<Commit>,
    timeline: BinaryHeap<Reverse<(u64, u64, Event)>>,
    push_seq: u64,
    exec_to_schedule: Vec<ExecId>,
    source_job: Option<JobId>,
    num_source_exec: u32,
    selected: Vec<StageId>,
    frontier_seq: u64,
    scratch: Vec<ExecId>,
    // reward bookkeeping
    rewards: RewardBook,
    // statistics
    decisions: u64,
    events: EventCounts,
    waves: [u64; 3],
    busy_ms: u64,
    records: Vec<TaskRecord>,
}

impl DecimaEnv {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        cfg.validate()
            .map_err(|e| SimError::Config(e.to_string()))?;
        let keys = KeyTable::new(
            &cfg.executor_data_points,
            cfg.executors,
            cfg.key_interpolation,
        );
        let n = cfg.executors as usize;
        Ok(Self {
            keys,
            seed: 0,
            now: 0,
            jobs: Vec::new(),
            stages: Vec::new(),
            active: Vec::new(),
            execs: vec![ExecRt::default(); n],
            free: Vec::with_capacity(n),
            commits: Vec::new(),
            timeline: BinaryHeap::new(),
            push_seq: 0,
            exec_to_schedule: Vec::with_capacity(n),
            source_job: None,
            num_source_exec: 0,
            selected: Vec::new(),
            frontier_seq: 0,
            scratch: Vec::with_capacity(n),
            rewards: RewardBook::default(),
            decisions: 0,
            events: EventCounts::default(),
            waves: [0; 3],
            busy_ms: 0,
            records: Vec::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Changes the time limit for the next episodes: training draws a different episode
    /// length for each episode (Decima's stochastic episode length).
    pub fn set_max_time(&mut self, max_time_ms: Option<u64>) {
        self.cfg.max_time_ms = max_time_ms;
    }

    pub fn now_ms(&self) -> u64 {
        self.now
    }

    /// Name of job `id` of the current episode.
    pub fn job_name(&self, id: JobId) -> &str {
        &self.jobs[id as usize].trace.name
    }

    pub fn num_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Tasks run so far, if `record_tasks` is on.
    pub fn records(&self) -> &[TaskRecord] {
        &self.records
    }

    /// Starts an episode. Jobs arriving at t = 0 are present at once (Decima's initial
    /// jobs); later ones arrive through the timeline. All executors start in the global
    /// pool and the first decision places all of them.
    pub fn reset(&mut self, jobs: &[JobArrival], seed: u64) -> Result<(), SimError> {
        if jobs.is_empty() {
            return Err(SimError::NoJobs);
        }
        self.seed = seed;
        self.now = 0;
        self.jobs.clear();
        self.stages.clear();
        self.active.clear();
        self.commits.clear();
        self.timeline.clear();
        self.push_seq = 0;
        self.selected.clear();
        self.frontier_seq = 0;
        self.rewards.reset(jobs.len());
        self.decisions = 0;
        self.events = EventCounts::default();
        self.waves = [0; 3];
        self.busy_ms = 0;
        self.records.clear();
        for (j, a) in jobs.iter().enumerate() {
            let first_stage = self.stages.len() as StageId;
            let trace = &a.job;
            for (local, st) in trace.stages.iter().enumerate() {
                let mean_ms = trace.pools[local].rough_ms;
                self.stages.push(StageRt {
                    job: j as JobId,
                    local: local as u32,
                    num_tasks: st.num_tasks,
                    mean_ms,
                    last_task_ms: mean_ms,
                    ..StageRt::default()
                });
            }
            self.jobs.push(JobRt {
                trace: Arc::clone(trace),
                arrival_ms: a.arrival_ms,
                first_stage,
                num_stages: trace.stages.len() as u32,
                stages_done: 0,
                state: JobState::Pending,
                completion_ms: 0,
                executors: 0,
                moving_in: 0,
                outside_commit: 0,
            });
        }
        for (j, a) in jobs.iter().enumerate() {
            if a.arrival_ms == 0 {
                self.activate(j as JobId);
            } else {
                self.push(a.arrival_ms, Event::JobArrival(j as JobId));
            }
        }
        self.free.clear();
        self.exec_to_schedule.clear();
        for (i, e) in self.execs.iter_mut().enumerate() {
            *e = ExecRt {
                free: true,
                ..ExecRt::default()
            };
            self.free.push(i as ExecId);
            self.exec_to_schedule.push(i as ExecId);
        }
        self.source_job = None;
        self.num_source_exec = self.cfg.executors;
        Ok(())
    }

    /// Decima's `done`: nothing to place, and the timeline is empty or time is up.
    #[inline]
    pub fn done(&self) -> bool {
        self.num_source_exec == 0
            && (self.timeline.is_empty() || self.cfg.max_time_ms.is_some_and(|m| self.now >= m))
    }

    fn push(&mut self, t: u64, ev: Event) {
        self.push_seq += 1;
        self.timeline.push(Reverse((t, self.push_seq, ev)));
    }

    fn activate(&mut self, j: JobId) {
        let job = &mut self.jobs[j as usize];
        job.state = JobState::Active;
        self.active.push(j);
        let (first, n) = (job.first_stage, job.num_stages);
        let trace = Arc::clone(&job.trace);
        for local in 0..n {
            if trace.stages[local as usize].parents.is_empty() {
                self.add_to_frontier(first + local);
            }
        }
    }

    fn add_to_frontier(&mut self, s: StageId) {
        self.frontier_seq += 1;
        let st = &mut self.stages[s as usize];
        st.in_frontier = true;
        st.frontier_seq = self.frontier_seq;
    }

    // --- executor bookkeeping (executor.py, free_executors.py, moving_executors.py) ---

    fn detach_node(&mut self, e: ExecId) {
        if let Some(s) = self.execs[e as usize].node.take() {
            self.stages[s as usize].executors_on -= 1;
        }
    }

    fn detach_job(&mut self, e: ExecId) {
        if let Some(j) = self.execs[e as usize].job.take() {
            self.jobs[j as usize].executors -= 1;
        }
        self.detach_node(e);
    }

    /// `FreeExecutors.add`: into the job's pool (stays attached) or the global pool.
    fn free_add(&mut self, pool: Option<JobId>, e: ExecId) {
        match pool {
            None => self.detach_job(e),
            Some(j) => {
                debug_assert_eq!(self.execs[e as usize].job, Some(j));
                self.detach_node(e);
            }
        }
        debug_assert!(!self.execs[e as usize].free);
        self.execs[e as usize].free = true;
        self.free.push(e);
    }

    fn free_remove(&mut self, e: ExecId) {
        if self.execs[e as usize].free {
            self.execs[e as usize].free = false;
            let i = self
                .free
                .iter()
                .position(|&x| x == e)
                .expect("free flag in sync");
            self.free.remove(i);
        }
    }

    /// Executors in a pool, in insertion order, into `exec_to_schedule`.
    fn load_pool(&mut self, pool: Option<JobId>) {
        self.exec_to_schedule.clear();
        for &e in &self.free {
            if self.execs[e as usize].job == pool {
                self.exec_to_schedule.push(e);
            }
        }
    }

    fn move_exec(&mut self, e: ExecId, s: StageId) {
        self.detach_job(e);
        self.execs[e as usize].moving_to = Some(s);
        let st = &mut self.stages[s as usize];
        st.moving += 1;
        let j = st.job;
        self.jobs[j as usize].moving_in += 1;
        self.push(self.now + self.cfg.moving_delay_ms, Event::ExecArrival(e));
    }

    // --- commitments (executor_commit.py) ---

    fn job_of_source(&self, src: Source) -> Option<JobId> {
        match src {
            Source::Global => None,
            Source::Pool(j) => Some(j),
            Source::Stage(s) => Some(self.stages[s as usize].job),
        }
    }

    fn commit_add(&mut self, src: Source, target: Option<StageId>, amount: u32) {
        if let Some(c) = self
            .commits
            .iter_mut()
            .find(|c| c.source == src && c.target == target)
        {
            c.amount += amount;
        } else {
            self.commits.push(Commit {
                source: src,
                target,
                amount,
            });
        }
        if let Some(s) = target {
            self.stages[s as usize].committed += amount;
            let tj = self.stages[s as usize].job;
            if self.job_of_source(src) != Some(tj) {
                self.jobs[tj as usize].outside_commit += amount;
            }
        }
    }

    fn commit_pending(&self, src: Source) -> bool {
        self.commits.iter().any(|c| c.source == src)
    }

    /// Takes one executor's worth of the oldest commitment of `src`.
    fn commit_pop(&mut self, src: Source) -> Option<Option<StageId>> {
        let i = self.commits.iter().position(|c| c.source == src)?;
        let target = self.commits[i].target;
        self.commits[i].amount -= 1;
        if self.commits[i].amount == 0 {
            self.commits.remove(i);
        }
        if let Some(s) = target {
            self.stages[s as usize].committed -= 1;
            let tj = self.stages[s as usize].job;
            if self.job_of_source(src) != Some(tj) {
                self.jobs[tj as usize].outside_commit -= 1;
            }
        }
        Some(target)
    }

    fn source_of(&self, e: ExecId) -> Source {
        let ex = &self.execs[e as usize];
        match (ex.node, ex.job) {
            (Some(s), _) => Source::Stage(s),
            (None, Some(j)) => Source::Pool(j),
            (None, None) => Source::Global,
        }
    }

    // --- frontier (env.get_frontier_nodes) ---

    fn parents_saturated(&self, s: StageId) -> bool {
        let st = &self.stages[s as usize];
        let job = &self.jobs[st.job as usize];
        job.trace.stages[st.local as usize]
            .parents
            .iter()
            .all(|&p| self.stages[(job.first_stage + p) as usize].saturated())
    }

    fn env_schedulable(&self, s: StageId) -> bool {
        let st = &self.stages[s as usize];
        !st.selected && !st.saturated() && self.parents_saturated(s)
    }

    fn first_env_frontier(&self) -> Option<StageId> {
        self.active.iter().find_map(|&j| {
            let job = &self.jobs[j as usize];
            (job.first_stage..job.first_stage + job.num_stages).find(|&s| self.env_schedulable(s))
        })
    }

    /// Decima's executor limits: `exec_map + 1`, less the executors being placed if they
    /// come from this job.
    fn min_limit(&self, j: JobId) -> u32 {
        let job = &self.jobs[j as usize];
        let exec_map = job.executors + job.moving_in + job.outside_commit;
        let own = if self.source_job == Some(j) {
            self.num_source_exec
        } else {
            0
        };
        (exec_map.saturating_sub(own) + 1).max(1)
    }

    // --- tasks (node.schedule) ---

    fn start_task(&mut self, e: ExecId, s: StageId) {
        let (j, local) = {
            let st = &self.stages[s as usize];
            debug_assert!(!st.no_more_tasks());
            (st.job, st.local as usize)
        };
        let n = self.jobs[j as usize].executors;
        let task = self.stages[s as usize].next_task;
        let (u_key, u_sample) = task_draws(self.seed, j, local as u32, task);
        let keys = &self.jobs[j as usize].trace.pools[local].keys;
        let key = match self.cfg.executor_keys {
            ExecutorKeys::DataPoints => self.keys.sample(n, u_key),
            ExecutorKeys::Measured => self.keys.sample_measured(keys, n, u_key),
        };
        let history = match self.execs[e as usize].node {
            None => History::NewToJob,
            Some(prev) if self.stages[prev as usize].job != j => History::NewToJob,
            Some(prev) if prev == s => History::SameStage,
            Some(_) => History::OtherStage,
        };
        let pools = &self.jobs[j as usize].trace.pools[local];
        let (dur, wave) = sample_duration(pools, key, history, self.cfg.warmup_delay_ms, u_sample);
        self.detach_node(e);
        self.execs[e as usize].node = Some(s);
        let st = &mut self.stages[s as usize];
        st.executors_on += 1;
        st.next_task += 1;
        if st.no_more_tasks() {
            st.last_task_ms = f64::from(dur);
            st.in_frontier = false;
        }
        self.waves[wave as usize] += 1;
        self.busy_ms += u64::from(dur);
        let end = self.now + u64::from(dur);
        if self.cfg.record_tasks {
            self.records.push(TaskRecord {
                job: j,
                stage: local as u32,
                task,
                executor: e,
                start_ms: self.now,
                end_ms: end,
                wave,
            });
        }
        self.push(end, Event::TaskDone { exec: e, stage: s });
    }

    /// `Environment.schedule`: pairs executors to place with the source's commitments.
    fn schedule(&mut self) {
        let Some(&first) = self.exec_to_schedule.first() else {
            return;
        };
        let src = self.source_of(first);
        let mut next = 0;
        while next < self.exec_to_schedule.len() && self.commit_pending(src) {
            let target = self.commit_pop(src).expect("pending commitment");
            let e = self.exec_to_schedule[next];
            next += 1;
            self.free_remove(e);
            match target {
                None => {
                    let job = self.execs[e as usize].job;
                    let busy = job.is_some_and(|j| {
                        let job = &self.jobs[j as usize];
                        (job.first_stage..job.first_stage + job.num_stages)
                            .any(|s| !self.stages[s as usize].no_more_tasks())
                    });
                    self.free_add(if busy { job } else { None }, e);
                }
                Some(s) if !self.stages[s as usize].no_more_tasks() => {
                    let sj = self.stages[s as usize].job;
                    if self.execs[e as usize].job == Some(sj) {
                        if self.stages[s as usize].in_frontier {
                            self.start_task(e, s);
                        } else {
                            self.free_add(Some(sj), e);
                        }
                    } else {
                        self.move_exec(e, s);
                    }
                }
                Some(_) => self.backup_schedule(e),
            }
        }
        self.exec_to_schedule.drain(..next);
    }

    /// `Environment.backup_schedule`: keeps the cluster work-conserving when an executor
    /// reaches a stage that no longer needs it.
    fn backup_schedule(&mut self, e: ExecId) {
        if let Some(j) = self.execs[e as usize].job {
            let job = &self.jobs[j as usize];
            let target = (job.first_stage..job.first_stage + job.num_stages)
                .filter(|&s| {
                    let st = &self.stages[s as usize];
                    st.in_frontier && !st.saturated()
                })
                .min_by_key(|&s| self.stages[s as usize].frontier_seq);
            if let Some(s) = target {
                self.start_task(e, s);
                return;
            }
        }
        if let Some(s) = self.first_env_frontier() {
            // Decima sends it with a moving delay even within the same job.
            self.move_exec(e, s);
            return;
        }
        let job = self.execs[e as usize].job;
        self.free_add(job, e);
    }

    /// `Environment.assign_executor`: where an executor goes when its task ends.
    fn assign_executor(&mut self, e: ExecId, frontier_changed: bool) {
        let node = self.execs[e as usize]
            .node
            .expect("a finishing executor has a stage");
        if !self.stages[node as usize].no_more_tasks() {
            // Stages are sticky: keep working on the same stage without asking.
            self.start_task(e, node);
        } else if frontier_changed {
            let source_job = self.execs[e as usize].job;
            if self.commit_pending(Source::Stage(node)) {
                self.exec_to_schedule.clear();
                self.exec_to_schedule.push(e);
                self.schedule();
            } else {
                self.free_add(source_job, e);
            }
            self.load_pool(source_job);
            self.source_job = source_job;
            self.num_source_exec = self.exec_to_schedule.len() as u32;
        } else {
            self.exec_to_schedule.clear();
            self.exec_to_schedule.push(e);
            if self.commit_pending(Source::Stage(node)) {
                self.schedule();
            } else {
                // Ask for every executor still on the stage; only `e` moves now, the
                // others follow the commitments as their tasks end.
                self.source_job = self.execs[e as usize].job;
                self.num_source_exec = self.stages[node as usize].executors_on;
            }
        }
    }

    /// `Environment.remove_job`.
    fn remove_job(&mut self, j: JobId) {
        // The job's idle executors move, in order, to the end of the global pool.
        let (execs, scratch) = (&self.execs, &mut self.scratch);
        scratch.clear();
        self.free.retain(|&e| {
            let mine = execs[e as usize].job == Some(j);
            if mine {
                scratch.push(e);
            }
            !mine
        });
        self.free.extend_from_slice(&self.scratch);
        for e in 0..self.execs.len() as ExecId {
            if self.execs[e as usize].job == Some(j) {
                self.detach_job(e);
            }
        }
        let (first, end) = {
            let job = &self.jobs[j as usize];
            (job.first_stage, job.first_stage + job.num_stages)
        };
        let in_job = |s: StageId| (first..end).contains(&s);
        let mut i = 0;
        while i < self.commits.len() {
            let c = self.commits[i];
            let src_job = self.job_of_source(c.source);
            if src_job == Some(j) || c.target.is_some_and(in_job) {
                if let Some(s) = c.target {
                    self.stages[s as usize].committed -= c.amount;
                    let tj = self.stages[s as usize].job;
                    if src_job != Some(tj) {
                        self.jobs[tj as usize].outside_commit -= c.amount;
                    }
                }
                self.commits.remove(i);
            } else {
                i += 1;
            }
        }
        // Executors still moving to the job lose their destination; they fall back to
        // the backup schedule when they arrive.
        for ex in &mut self.execs {
            if ex.moving_to.is_some_and(in_job) {
                ex.moving_to = None;
            }
        }
        for s in first..end {
            self.stages[s as usize].moving = 0;
        }
        self.active.retain(|&x| x != j);
        let job = &mut self.jobs[j as usize];
        job.moving_in = 0;
        job.state = JobState::Done;
        job.completion_ms = self.now;
        self.rewards.job_done(j);
    }

    // --- the event loop (Environment.step) ---

    /// Applies a decision and runs the timeline to the next decision.
    #[inline]
    pub fn step(&mut self, action: Action) -> Result<Step, SimError> {
        if self.done() {
            return Err(SimError::EpisodeOver);
        }
        let reject = |reason: String| SimError::InvalidAction { action, reason };
        let src = self.source_of(self.exec_to_schedule[0]);
        match action {
            Action::Schedule { stage, limit } => {
                let st = self
                    .stages
                    .get(stage as usize)
                    .ok_or_else(|| reject("no such stage".into()))?;
                let j = st.job;
                if self.jobs[j as usize].state != JobState::Active || !self.env_schedulable(stage) {
                    return Err(reject("the stage is not schedulable now".into()));
                }
                let lo = self.min_limit(j);
                if limit < lo {
                    return Err(reject(format!("limit below the job's minimum {lo}")));
                }
                let st = &self.stages[stage as usize];
                let unassigned = st.num_tasks - st.next_task - st.committed - st.moving;
                let n = (limit - lo + 1).min(unassigned).min(self.num_source_exec);
                self.stages[stage as usize].selected = true;
                self.selected.push(stage);
                self.commit_add(src, Some(stage), n);
                self.num_source_exec -= n;
            }
            Action::Place { .. } | Action::Partition { .. } | Action::Split { .. } => {
                return Err(reject(
                    "placing or repartitioning tasks needs Spark's engine ([sim.cluster])".into(),
                ));
            }
            Action::Idle { executors } => {
                if executors == 0 || executors > self.num_source_exec {
                    return Err(reject(format!(
                        "must idle between 1 and {} executors",
                        self.num_source_exec
                    )));
                }
                self.commit_add(src, None, executors);
                self.num_source_exec -= executors;
            }
        }
        self.decisions += 1;
        if self.num_source_exec == 0 {
            for s in self.selected.drain(..) {
                self.stages[s as usize].selected = false;
            }
            self.schedule();
        }
        while self.num_source_exec == 0 {
            let Some(Reverse((t, _, ev))) = self.timeline.pop() else {
                break;
            };
            self.now = t;
            self.process(ev);
        }
        let reward = self.reward();
        Ok(Step {
            reward,
            done: self.done(),
        })
    }

    fn process(&mut self, ev: Event) {
        match ev {
            Event::TaskDone { exec, stage } => {
                self.events.task += 1;
                let j = self.stages[stage as usize].job;
                let st = &mut self.stages[stage as usize];
                st.finished += 1;
                let mut frontier_changed = false;
                if st.finished == st.num_tasks {
                    st.done = true;
                    let local = st.local as usize;
                    self.jobs[j as usize].stages_done += 1;
                    let job = &self.jobs[j as usize];
                    let (trace, first) = (Arc::clone(&job.trace), job.first_stage);
                    for &c in &trace.children[local] {
                        let cs = first + c;
                        let ready = !self.stages[cs as usize].no_more_tasks()
                            && trace.stages[c as usize]
                                .parents
                                .iter()
                                .all(|&p| self.stages[(first + p) as usize].done);
                        if ready && !self.stages[cs as usize].in_frontier {
                            self.add_to_frontier(cs);
                            frontier_changed = true;
                        }
                    }
                }
                self.assign_executor(exec, frontier_changed);
                let job = &self.jobs[j as usize];
                if job.stages_done == job.num_stages {
                    self.remove_job(j);
                }
            }
            Event::JobArrival(j) => {
                self.events.job += 1;
                self.activate(j);
                if self
                    .free
                    .iter()
                    .any(|&e| self.execs[e as usize].job.is_none())
                {
                    self.load_pool(None);
                    self.source_job = None;
                    self.num_source_exec = self.exec_to_schedule.len() as u32;
                }
            }
            Event::ExecArrival(e) => {
                self.events.exec += 1;
                match self.execs[e as usize].moving_to.take() {
                    Some(s) => {
                        let j = self.stages[s as usize].job;
                        self.stages[s as usize].moving -= 1;
                        let job = &mut self.jobs[j as usize];
                        job.moving_in -= 1;
                        job.executors += 1;
                        self.execs[e as usize].job = Some(j);
                        if self.stages[s as usize].no_more_tasks() {
                            self.backup_schedule(e);
                        } else if self.stages[s as usize].in_frontier {
                            self.start_task(e, s);
                        } else {
                            self.free_add(Some(j), e);
                        }
                    }
                    None => self.backup_schedule(e),
                }
            }
        }
    }

    /// The step's reward (see [`RewardBook`]).
    fn reward(&mut self) -> f64 {
        let jobs = &self.jobs;
        self.rewards.step(
            self.now,
            &self.active,
            |j| {
                let job = &jobs[j as usize];
                let done = (job.state == JobState::Done).then_some(job.completion_ms);
                (job.arrival_ms, done)
            },
            &self.cfg.reward,
        )
    }

    // --- observation ---

    /// Writes the current decision's observation into `obs`, reusing its buffers.
    #[inline]
    pub fn observe(&self, obs: &mut Observation) {
        obs.time_ms = self.now;
        obs.exec_cap = self.cfg.executors;
        obs.num_source_exec = self.num_source_exec;
        obs.source_job = self
            .source_job
            .and_then(|sj| self.active.iter().position(|&j| j == sj));
        obs.jobs.clear();
        obs.stages.clear();
        obs.edges.clear();
        obs.schedulable.clear();
        obs.pools.clear();
        obs.stage_data.clear();
        obs.job_pool.clear();
        obs.hosts.clear();
        for (ji, &j) in self.active.iter().enumerate() {
            let job = &self.jobs[j as usize];
            let base = obs.stages.len() as u32;
            let mut unsaturated = false;
            let mut remaining_work_ms = 0.0;
            for local in 0..job.num_stages {
                let id = job.first_stage + local;
                let st = &self.stages[id as usize];
                let trace_stage = &job.trace.stages[local as usize];
                let saturated = st.saturated();
                unsaturated |= !saturated;
                remaining_work_ms += f64::from(st.num_tasks - st.next_task) * st.mean_ms;
                obs.stages.push(StageView {
                    id,
                    job: ji as u32,
                    index: local,
                    num_tasks: st.num_tasks,
                    dispatched: st.next_task,
                    finished: st.finished,
                    committed: st.committed,
                    moving: st.moving,
                    executors: st.executors_on,
                    runnable: st.in_frontier,
                    runnable_since: st.frontier_seq,
                    saturated,
                    done: st.done,
                    // Decided below: unsaturated, not selected, every parent saturated.
                    schedulable: !saturated && !st.selected,
                    mean_task_ms: st.mean_ms,
                    last_task_ms: st.last_task_ms,
                    in_degree: trace_stage.parents.len() as u32,
                    out_degree: job.trace.children[local as usize].len() as u32,
                });
            }
            for &[p, c] in &job.trace.edges {
                obs.edges.push([base + p, base + c]);
                if !obs.stages[(base + p) as usize].saturated {
                    obs.stages[(base + c) as usize].schedulable = false;
                }
            }
            for i in base..base + job.num_stages {
                if obs.stages[i as usize].schedulable {
                    obs.schedulable.push(i);
                }
            }
            obs.jobs.push(JobView {
                id: j,
                arrival_ms: job.arrival_ms,
                first_stage: base,
                num_stages: job.num_stages,
                executors: job.executors,
                exec_map: job.executors + job.moving_in + job.outside_commit,
                min_limit: self.min_limit(j),
                unsaturated,
                remaining_work_ms,
            });
        }
    }

    /// Decisions made so far.
    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    /// Events processed so far.
    pub fn events(&self) -> EventCounts {
        self.events
    }

    /// Summary of the episode so far (normally called once `done`).
    pub fn stats(&self) -> EpisodeStats {
        let mut jobs = self.jobs.iter().map(|j| {
            let done = (j.state == JobState::Done).then_some(j.completion_ms);
            (j.arrival_ms, done)
        });
        EpisodeStats::summarize(EpisodeTotals {
            seed: self.seed,
            jobs: &mut jobs,
            now_ms: self.now,
            busy_ms: self.busy_ms,
            capacity: self.cfg.executors,
            decisions: self.decisions,
            events: self.events,
            waves: self.waves,
            rewards: &self.rewards,
        })
    }
}
