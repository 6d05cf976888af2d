//! Live semantics: the scheduling that mpda can apply to an unpatched Spark, and a simulator
//! of it.
//!
//! On a standalone Spark, mpda controls how many executors each application (one job) holds,
//! through `requestTotalExecutors` and `killExecutors`; the order of stages inside a job is
//! Spark's own FIFO (lowest stage first among those whose parents are done). So a Decima-style
//! decision `(stage, limit)` keeps only its job-level meaning: how many executors the stage's
//! job gets.
//!
//! [`allocate`] turns a scheduler into such job-level targets. It is shared by the live
//! controller (`crate::live::controller`) and by [`LiveSim`], so that the simulator predicts
//! a live run with the very decision procedure the controller applies:
//!
//! - at each decision event (a job's application registers with the master, a stage
//!   completes, a job ends), all executors are re-placed from scratch: the observation shows
//!   every active job holding none and the scheduler places the whole cluster, one `Action`
//!   at a time, exactly as in one Decima scheduling round (each chosen stage takes
//!   `min(limit - min_limit + 1, its unassigned tasks, executors left)`);
//! - a job holding more than its target gives back its idle executors at once and the busy
//!   ones as their tasks end (the controller kills them; Spark would never shrink an
//!   application by itself);
//! - a job holding fewer gets free executors in arrival order (the standalone master's order
//!   of waiting applications), each ready after `executor_start_ms` (a fresh executor JVM).
//!
//! Spark's own two behaviours are modelled as [`LivePolicy::SparkDefault`] (an application
//! takes every free core when it registers and keeps them until it ends) and
//! [`LivePolicy::Static`] (the same, with at most `cores_max` executors per application,
//! Spark's `spark.cores.max`).

use std::sync::Arc;

use super::durations::{History, KeyTable, sample_duration};
use super::{Action, JobView, KeyInterpolation, Observation, StageView};
use crate::seed::task_draws;
use crate::workload::{JobArrival, JobTrace};

/// One stage's progress as both the controller (from Spark's status tracker) and the live
/// simulator know it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageProgress {
    pub num_tasks: u32,
    /// Tasks started (finished ones included).
    pub started: u32,
    pub finished: u32,
}

impl StageProgress {
    fn saturated(&self) -> bool {
        self.started >= self.num_tasks
    }
    fn done(&self) -> bool {
        self.finished >= self.num_tasks
    }
}

/// An active job as [`observe_jobs`] needs it.
pub struct LiveJobView<'a> {
    /// Episode-wide id (arrival order), kept stable while other jobs come and go.
    pub id: u32,
    pub trace: &'a JobTrace,
    pub arrival_ms: u64,
    pub stages: &'a [StageProgress],
    /// Per stage: tasks running now.
    pub running: &'a [u32],
}

/// Builds the observation of a from-scratch placement: every active job holds nothing and the
/// whole cluster (`exec_cap` executors) is to be placed from the global pool. Stage ids are
/// `job_id << 16 | stage index`, so that an action names a stage independently of the set of
/// active jobs.
pub fn observe_jobs(jobs: &[LiveJobView<'_>], exec_cap: u32, now_ms: u64, obs: &mut Observation) {
    obs.time_ms = now_ms;
    obs.exec_cap = exec_cap;
    obs.num_source_exec = exec_cap;
    obs.source_job = None;
    obs.jobs.clear();
    obs.stages.clear();
    obs.edges.clear();
    obs.schedulable.clear();
    obs.pools.clear();
    obs.stage_data.clear();
    obs.job_pool.clear();
    obs.hosts.clear();
    for (ji, job) in jobs.iter().enumerate() {
        let base = obs.stages.len() as u32;
        let n = job.trace.stages.len() as u32;
        let mut unsaturated = false;
        let mut remaining_work_ms = 0.0;
        for local in 0..n {
            let st = job.stages[local as usize];
            let trace_stage = &job.trace.stages[local as usize];
            let mean = job.trace.pools[local as usize].rough_ms;
            let parents_done = trace_stage
                .parents
                .iter()
                .all(|&p| job.stages[p as usize].done());
            unsaturated |= !st.saturated();
            remaining_work_ms += f64::from(st.num_tasks - st.started.min(st.num_tasks)) * mean;
            for &p in &trace_stage.parents {
                obs.edges.push([base + p, base + local]);
            }
            obs.stages.push(StageView {
                id: job.id << 16 | local,
                job: ji as u32,
                index: local,
                num_tasks: st.num_tasks,
                dispatched: st.started.min(st.num_tasks),
                finished: st.finished.min(st.num_tasks),
                committed: 0,
                moving: 0,
                executors: job.running[local as usize],
                runnable: parents_done && !st.saturated(),
                runnable_since: u64::from(local),
                saturated: st.saturated(),
                done: st.done(),
                schedulable: false,
                mean_task_ms: mean,
                last_task_ms: mean,
                in_degree: trace_stage.parents.len() as u32,
                out_degree: job.trace.children[local as usize].len() as u32,
            });
        }
        for local in 0..n {
            let i = (base + local) as usize;
            let ok = !obs.stages[i].saturated
                && job.trace.stages[local as usize]
                    .parents
                    .iter()
                    .all(|&p| obs.stages[(base + p) as usize].saturated);
            if ok {
                obs.stages[i].schedulable = true;
                obs.schedulable.push(i as u32);
            }
        }
        obs.jobs.push(JobView {
            id: job.id,
            arrival_ms: job.arrival_ms,
            first_stage: base,
            num_stages: n,
            executors: 0,
            exec_map: 0,
            min_limit: 1,
            unsaturated,
            remaining_work_ms,
        });
    }
}

/// An action [`allocate`] could not apply: the scheduler broke the observation's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AllocateError {
    /// The action that broke a rule, if one did.
    pub action: Option<Action>,
    pub reason: String,
}

/// Places the whole cluster from scratch with `decide`, one Decima round: returns the
/// executors each job of `obs.jobs` gets, in `targets` (cleared first). `obs` must come from
/// [`observe_jobs`]; it is updated as executors are committed, as the simulator does within a
/// round.
pub fn allocate(
    obs: &mut Observation,
    decide: &mut dyn FnMut(&Observation) -> Action,
    targets: &mut Vec<u32>,
) -> Result<(), AllocateError> {
    targets.clear();
    targets.resize(obs.jobs.len(), 0);
    while obs.num_source_exec > 0 && !obs.schedulable.is_empty() {
        let action = decide(obs);
        let (stage, limit) = match action {
            Action::Idle { .. } => break,
            Action::Schedule { stage, limit } => (stage, limit),
            Action::Place { .. } | Action::Partition { .. } | Action::Split { .. } => {
                return Err(AllocateError {
                    action: Some(action),
                    reason: format!(
                        "scheduler answered {action:?}: a live run controls executors per \
                         application, not where a task runs or how a stage is partitioned"
                    ),
                });
            }
        };
        let reject = |reason: &str| AllocateError {
            action: Some(action),
            reason: format!("scheduler answered {action:?}: {reason}"),
        };
        let pos = obs
            .schedulable
            .iter()
            .position(|&s| obs.stages[s as usize].id == stage)
            .ok_or_else(|| reject("the stage is not schedulable now"))?;
        let s = obs.schedulable.remove(pos) as usize;
        let j = obs.stages[s].job as usize;
        let lo = obs.jobs[j].min_limit;
        if limit < lo {
            return Err(reject(&format!("limit below the job's minimum {lo}")));
        }
        let n = (limit - lo + 1)
            .min(obs.stages[s].unassigned_tasks())
            .min(obs.num_source_exec);
        obs.stages[s].schedulable = false;
        obs.stages[s].committed += n;
        obs.num_source_exec -= n;
        obs.jobs[j].exec_map += n;
        obs.jobs[j].min_limit = obs.jobs[j].exec_map + 1;
        targets[j] += n;
    }
    Ok(())
}

/// Who decides the executors per application in a live run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePolicy {
    /// An mpda scheduler, through [`allocate`].
    Scheduler,
    /// Spark standalone as configured by default: an application takes every free executor
    /// when it registers (and any freed later, oldest application first) and keeps them.
    SparkDefault,
    /// The static split: as `SparkDefault`, with at most `cores_max` executors each.
    Static { cores_max: u32 },
}

/// The timing of a live cluster that the traces do not hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveTiming {
    /// From a job's submission to its application registering with the master (driver
    /// process and JVM, SparkContext), ms. From then on it holds executors and the controller
    /// hears from its agent: a decision event.
    pub register_ms: u64,
    /// From the application's first executor being ready to its first Spark job (the runner
    /// waits for an executor, then registers the tables and plans the query), ms.
    pub plan_ms: u64,
    /// From an executor being granted to it running tasks (a fresh executor JVM), ms.
    pub executor_start_ms: u64,
    /// From the last task's end to the job's end as Spark logs it, ms.
    pub job_end_ms: u64,
    /// Multiplies every sampled task duration (1: the traces' durations as measured).
    pub duration_scale: f64,
    /// The CPU cores that every driver, executor start-up and task of the run share (one
    /// machine, as here); `None`: no sharing, each takes its full-speed time.
    pub host_cores: Option<f64>,
    /// Cores a starting or planning driver can use at once (a JVM starts with parallel JIT
    /// and GC threads); its full-speed times above were measured with that many.
    pub driver_cores: f64,
    /// Cores a starting executor JVM can use at once.
    pub executor_start_cores: f64,
    /// Cores a driver keeps busy while tasks of its run (launching them, taking their
    /// results and statuses, tracking map outputs): with `host_cores`, a load that shares the
    /// cores with the rest while the job has a task running. 0: none.
    pub driver_load_cores: f64,
    /// The runner waits this long after registering for a first executor, then runs the
    /// query without one (`scripts/tpch/run_tpch.py`: 120 s).
    pub executor_wait_ms: u64,
}

/// What one live-semantics episode gives back.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEpisode {
    /// Per job (arrival order): completion time minus submission time, ms.
    pub jct_ms: Vec<f64>,
    /// Allocation rounds run.
    pub decisions: u64,
    /// Executor grants (fresh executor JVMs started).
    pub grants: u64,
}

/// Work that takes time, and CPU when the host's cores are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// A driver starting, up to its registration with the master.
    Register(u32),
    /// A driver that has its first executor registering its tables and planning the query,
    /// up to its first Spark job.
    Plan(u32),
    /// An executor JVM starting, for its `grant`-th grant (a stale one is ignored).
    ExecStart {
        exec: u32,
        grant: u64,
    },
    Task {
        exec: u32,
        stage: u32,
    },
    /// A running driver's own load; never finishes, removed when its job ends.
    DriverLoad(u32),
}

#[derive(Debug, Clone, Copy)]
struct Activity {
    work: Work,
    /// Work left, core-ms.
    remaining: f64,
    /// Most cores it can use at once.
    cap: f64,
    /// Cores it gets now (water-filling, see `LiveSim::share`).
    cores: f64,
    /// Start order: simultaneous completions are handled in it.
    seq: u64,
}

#[derive(Clone, Default)]
struct Exec {
    job: Option<u32>,
    /// Ready to take tasks (its JVM has started).
    ready: bool,
    /// The stage of its running task.
    running: Option<u32>,
    /// The stage of its previous task in its current job.
    last: Option<u32>,
    /// Which grant it is on (`LiveSim::grants` when it was granted).
    grant: u64,
}

struct Job {
    trace: Arc<JobTrace>,
    arrival_ms: f64,
    /// Registered with the master: holds executors, seen by the allocation.
    registered: bool,
    /// Planning began: it had its first executor (the runner waits for one before it runs
    /// the query, `scripts/tpch/run_tpch.py`).
    planning: bool,
    /// Its first Spark job was submitted: tasks may start.
    ready: bool,
    done: bool,
    stages: Vec<StageProgress>,
    running: Vec<u32>,
    held: u32,
    target: u32,
    completion_ms: f64,
}

/// A simulator of live semantics (see the module doc): executors belong to applications,
/// each application runs its stages in Spark's FIFO order, and executors move only through
/// job-level targets, paying a fresh JVM's start-up.
///
/// Everything that takes time is an activity: a driver's start-up, its planning, an executor
/// JVM's start-up, a task. With `host_cores`, the activities share that many cores (processor
/// sharing: with n running, each advances at min(1, cores / n) of full speed), which is how
/// drivers, executors and tasks slow each other down on one small machine. Without, each
/// takes its full-speed time.
pub struct LiveSim {
    exec_cap: u32,
    timing: LiveTiming,
    policy: LivePolicy,
    keys: KeyTable,
    seed: u64,
    now: f64,
    seq: u64,
    /// Job arrivals not yet reached, in time order.
    arrivals: Vec<(f64, u32)>,
    /// The runner's executor-wait deadlines: (time, job), unordered (a handful at most).
    timers: Vec<(f64, u32)>,
    next_arrival: usize,
    work: Vec<Activity>,
    finished: Vec<Activity>,
    jobs: Vec<Job>,
    execs: Vec<Exec>,
    decisions: u64,
    grants: u64,
    obs: Observation,
    active: Vec<u32>,
    targets: Vec<u32>,
    order: Vec<usize>,
}

impl LiveSim {
    pub fn new(exec_cap: u32, timing: LiveTiming, policy: LivePolicy) -> Self {
        Self {
            exec_cap,
            timing,
            policy,
            keys: KeyTable::new(&[1], exec_cap, KeyInterpolation::Linear),
            seed: 0,
            now: 0.0,
            seq: 0,
            arrivals: Vec::new(),
            timers: Vec::new(),
            next_arrival: 0,
            work: Vec::new(),
            finished: Vec::new(),
            jobs: Vec::new(),
            execs: Vec::new(),
            decisions: 0,
            grants: 0,
            obs: Observation::default(),
            active: Vec::new(),
            targets: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Starts an activity that takes `ms` at full speed with up to `cap` cores.
    fn start(&mut self, work: Work, ms: f64, cap: f64) {
        self.seq += 1;
        let full = self.timing.host_cores.map_or(cap, |c| cap.min(c));
        self.work.push(Activity {
            work,
            remaining: ms.max(0.0) * full,
            cap,
            cores: full,
            seq: self.seq,
        });
    }

    /// Shares the host's cores among the running activities: each gets an equal share, at
    /// most its cap, and what a capped one leaves goes to the others (water-filling).
    fn share(&mut self) {
        let Some(total) = self.timing.host_cores else {
            for a in &mut self.work {
                a.cores = a.cap;
            }
            return;
        };
        self.order.clear();
        self.order.extend(0..self.work.len());
        let work = &self.work;
        self.order
            .sort_by(|&a, &b| work[a].cap.total_cmp(&work[b].cap).then(a.cmp(&b)));
        let mut left = total;
        let n = self.order.len();
        for (k, &i) in self.order.iter().enumerate() {
            let c = self.work[i].cap.min(left / (n - k) as f64);
            self.work[i].cores = c;
            left -= c;
        }
    }

    /// Runs one episode to its end. `decide` is asked only under [`LivePolicy::Scheduler`].
    pub fn run(
        &mut self,
        arrivals: &[JobArrival],
        seed: u64,
        decide: &mut dyn FnMut(&Observation) -> Action,
    ) -> Result<LiveEpisode, AllocateError> {
        self.seed = seed;
        self.now = 0.0;
        self.seq = 0;
        self.work.clear();
        self.decisions = 0;
        self.grants = 0;
        self.execs = vec![Exec::default(); self.exec_cap as usize];
        self.jobs = arrivals
            .iter()
            .map(|a| Job {
                trace: Arc::clone(&a.job),
                arrival_ms: a.arrival_ms as f64,
                registered: false,
                planning: false,
                ready: false,
                done: false,
                stages: a
                    .job
                    .stages
                    .iter()
                    .map(|s| StageProgress {
                        num_tasks: s.num_tasks,
                        ..Default::default()
                    })
                    .collect(),
                running: vec![0; a.job.stages.len()],
                held: 0,
                target: 0,
                completion_ms: 0.0,
            })
            .collect();
        self.arrivals = arrivals
            .iter()
            .enumerate()
            .map(|(j, a)| (a.arrival_ms as f64, j as u32))
            .collect();
        self.arrivals
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.next_arrival = 0;
        self.timers.clear();
        loop {
            self.share();
            let t_work = self
                .work
                .iter()
                .map(|a| a.remaining / a.cores)
                .min_by(f64::total_cmp)
                .map(|r| self.now + r);
            let t_arrival = self
                .arrivals
                .get(self.next_arrival)
                .map(|a| a.0)
                .into_iter()
                .chain(self.timers.iter().map(|t| t.0))
                .min_by(f64::total_cmp);
            let t = match (t_work, t_arrival) {
                (None, None) => break,
                (Some(w), Some(a)) => w.min(a),
                (Some(w), None) => w,
                (None, Some(a)) => a,
            };
            if !t.is_finite() {
                break;
            }
            let dt = (t - self.now).max(0.0);
            self.now = t;
            for a in &mut self.work {
                a.remaining -= dt * a.cores;
            }
            // Arrivals first, then every activity that is done, in start order.
            while let Some(&(ta, j)) = self.arrivals.get(self.next_arrival)
                && ta <= self.now
            {
                self.next_arrival += 1;
                let t = self.timing;
                self.start(Work::Register(j), t.register_ms as f64, t.driver_cores);
            }
            let mut k = 0;
            while k < self.timers.len() {
                if self.timers[k].0 <= self.now {
                    let (_, j) = self.timers.swap_remove(k);
                    if !self.jobs[j as usize].done {
                        self.begin_planning(j);
                    }
                } else {
                    k += 1;
                }
            }
            let mut decision = false;
            let mut finished = std::mem::take(&mut self.finished);
            finished.clear();
            self.work.retain(|a| {
                let done = a.remaining <= 1e-6;
                if done {
                    finished.push(*a);
                }
                !done
            });
            finished.sort_by_key(|a| a.seq);
            for a in &finished {
                decision |= self.complete(a.work);
            }
            self.finished = finished;
            if decision {
                self.decide(decide)?;
            }
        }
        let stuck = self.jobs.iter().filter(|j| !j.done).count();
        if stuck > 0 {
            return Err(AllocateError {
                action: None,
                reason: format!(
                    "{stuck} job(s) never finish: nothing is left to happen while they wait \
                     for executors the scheduler never gives them"
                ),
            });
        }
        Ok(LiveEpisode {
            jct_ms: self
                .jobs
                .iter()
                .map(|j| j.completion_ms - j.arrival_ms)
                .collect(),
            decisions: self.decisions,
            grants: self.grants,
        })
    }

    /// Handles one finished activity; returns whether it is a decision event.
    fn complete(&mut self, work: Work) -> bool {
        match work {
            Work::Register(j) => {
                self.jobs[j as usize].registered = true;
                self.timers
                    .push((self.now + self.timing.executor_wait_ms as f64, j));
                true
            }
            Work::Plan(j) => {
                self.jobs[j as usize].ready = true;
                self.dispatch_job(j);
                false
            }
            Work::DriverLoad(_) => false,
            Work::ExecStart { exec: e, grant } => {
                let ex = &self.execs[e as usize];
                let Some(j) = ex.job.filter(|_| ex.grant == grant && !ex.ready) else {
                    return false;
                };
                self.execs[e as usize].ready = true;
                self.begin_planning(j);
                let job = &self.jobs[j as usize];
                if job.held > job.target {
                    self.release(e);
                    self.grant_free();
                } else {
                    self.dispatch(e);
                }
                false
            }
            Work::Task { exec, stage } => self.task_done(exec, stage),
        }
    }

    /// The runner plans its query once it has an executor, or once it gave up waiting.
    fn begin_planning(&mut self, j: u32) {
        if !self.jobs[j as usize].planning {
            self.jobs[j as usize].planning = true;
            let t = self.timing;
            self.start(Work::Plan(j), t.plan_ms as f64, t.driver_cores);
        }
    }

    /// Starts or stops job `j`'s driver load as its running task count leaves or reaches 0.
    fn driver_load(&mut self, j: u32) {
        if self.timing.host_cores.is_none() || self.timing.driver_load_cores <= 0.0 {
            return;
        }
        let busy = self.jobs[j as usize].running.iter().any(|&r| r > 0);
        let on = self
            .work
            .iter()
            .any(|a| matches!(a.work, Work::DriverLoad(x) if x == j));
        if busy && !on {
            self.start(
                Work::DriverLoad(j),
                f64::INFINITY,
                self.timing.driver_load_cores,
            );
        } else if !busy && on {
            self.work
                .retain(|a| !matches!(a.work, Work::DriverLoad(x) if x == j));
        }
    }

    /// Recomputes the targets and moves executors accordingly.
    fn decide(
        &mut self,
        decide: &mut dyn FnMut(&Observation) -> Action,
    ) -> Result<(), AllocateError> {
        self.active.clear();
        self.active.extend((0..self.jobs.len() as u32).filter(|&j| {
            let job = &self.jobs[j as usize];
            job.registered && !job.done
        }));
        match self.policy {
            LivePolicy::Scheduler => {
                let views: Vec<LiveJobView<'_>> = self
                    .active
                    .iter()
                    .map(|&j| {
                        let job = &self.jobs[j as usize];
                        LiveJobView {
                            id: j,
                            trace: &job.trace,
                            arrival_ms: job.arrival_ms as u64,
                            stages: &job.stages,
                            running: &job.running,
                        }
                    })
                    .collect();
                observe_jobs(&views, self.exec_cap, self.now as u64, &mut self.obs);
                allocate(&mut self.obs, decide, &mut self.targets)?;
                self.decisions += 1;
                for (i, &j) in self.active.iter().enumerate() {
                    self.jobs[j as usize].target = self.targets[i];
                }
            }
            LivePolicy::SparkDefault | LivePolicy::Static { .. } => {
                let cap = match self.policy {
                    LivePolicy::Static { cores_max } => cores_max,
                    _ => self.exec_cap,
                };
                for &j in &self.active {
                    self.jobs[j as usize].target = cap;
                }
            }
        }
        // Shrink: ready, idle executors of jobs over target go back at once (one still
        // starting goes when it is ready: the controller cannot see it before).
        for e in 0..self.execs.len() as u32 {
            let ex = &self.execs[e as usize];
            if let Some(j) = ex.job
                && ex.ready
                && ex.running.is_none()
                && self.jobs[j as usize].held > self.jobs[j as usize].target
            {
                self.release(e);
            }
        }
        self.grant_free();
        Ok(())
    }

    fn release(&mut self, e: u32) {
        // An executor still starting stops starting.
        self.work
            .retain(|a| !matches!(a.work, Work::ExecStart { exec, .. } if exec == e));
        let ex = &mut self.execs[e as usize];
        if let Some(j) = ex.job.take() {
            self.jobs[j as usize].held -= 1;
        }
        *ex = Exec::default();
    }

    /// Free executors go to jobs below target, oldest first.
    fn grant_free(&mut self) {
        for e in 0..self.execs.len() as u32 {
            if self.execs[e as usize].job.is_some() {
                continue;
            }
            let Some(j) = (0..self.jobs.len() as u32).find(|&j| {
                let job = &self.jobs[j as usize];
                job.registered && !job.done && job.held < job.target
            }) else {
                return;
            };
            self.jobs[j as usize].held += 1;
            self.execs[e as usize] = Exec {
                job: Some(j),
                ..Exec::default()
            };
            self.grants += 1;
            self.execs[e as usize].grant = self.grants;
            let t = self.timing;
            let grant = self.grants;
            self.start(
                Work::ExecStart { exec: e, grant },
                t.executor_start_ms as f64,
                t.executor_start_cores,
            );
        }
    }

    /// Spark's FIFO inside one application: the lowest stage whose parents are done and that
    /// has tasks left to start.
    fn next_stage(&self, j: u32) -> Option<u32> {
        let job = &self.jobs[j as usize];
        (0..job.stages.len()).find_map(|s| {
            let st = job.stages[s];
            let parents_done = job.trace.stages[s]
                .parents
                .iter()
                .all(|&p| job.stages[p as usize].done());
            (parents_done && !st.saturated()).then_some(s as u32)
        })
    }

    fn dispatch_job(&mut self, j: u32) {
        for x in 0..self.execs.len() as u32 {
            if self.execs[x as usize].job == Some(j) {
                self.dispatch(x);
            }
        }
    }

    /// Gives a ready, idle executor its job's next task, if any.
    fn dispatch(&mut self, e: u32) {
        let ex = &self.execs[e as usize];
        let Some(j) = ex.job else { return };
        if !ex.ready || ex.running.is_some() || !self.jobs[j as usize].ready {
            return;
        }
        let Some(s) = self.next_stage(j) else { return };
        let history = match ex.last {
            None => History::NewToJob,
            Some(p) if p == s => History::SameStage,
            Some(_) => History::OtherStage,
        };
        let job = &self.jobs[j as usize];
        let task = job.stages[s as usize].started;
        let (u_key, u_sample) = task_draws(self.seed, j, s, task);
        let pools = &job.trace.pools[s as usize];
        let key = self.keys.sample_measured(&pools.keys, job.held, u_key);
        let (dur, _) = sample_duration(pools, key, history, 0, u_sample);
        let dur = f64::from(dur) * self.timing.duration_scale;
        let job = &mut self.jobs[j as usize];
        job.stages[s as usize].started += 1;
        job.running[s as usize] += 1;
        let ex = &mut self.execs[e as usize];
        ex.running = Some(s);
        ex.last = Some(s);
        self.start(Work::Task { exec: e, stage: s }, dur, 1.0);
        self.driver_load(j);
    }

    /// A task ended; returns whether this is a decision event (a stage or the job completed).
    fn task_done(&mut self, e: u32, s: u32) -> bool {
        let j = self.execs[e as usize]
            .job
            .expect("a running executor has a job");
        self.execs[e as usize].running = None;
        let job = &mut self.jobs[j as usize];
        job.running[s as usize] -= 1;
        job.stages[s as usize].finished += 1;
        let stage_done = job.stages[s as usize].done();
        self.driver_load(j);
        let job = &mut self.jobs[j as usize];
        if job.stages.iter().all(StageProgress::done) {
            job.done = true;
            job.completion_ms = self.now + self.timing.job_end_ms as f64;
            for x in 0..self.execs.len() as u32 {
                if self.execs[x as usize].job == Some(j) {
                    self.release(x);
                }
            }
            return true;
        }
        if job.held > job.target {
            self.release(e);
            self.grant_free();
        } else if stage_done {
            // Every idle executor of the job may have work now.
            self.dispatch_job(j);
        } else {
            self.dispatch(e);
        }
        stage_done
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::workload::{StageTrace, WaveSamples};

    /// A chain of stages with `tasks[i]` tasks each, every task `ms` long; shared with the
    /// controller's tests.
    pub(crate) fn trace(name: &str, tasks: &[u32], ms: u32) -> Arc<JobTrace> {
        let stages = tasks
            .iter()
            .enumerate()
            .map(|(i, &n)| StageTrace {
                num_tasks: n,
                parents: if i == 0 { vec![] } else { vec![i as u32 - 1] },
                samples: vec![WaveSamples {
                    executors: 1,
                    first_wave: vec![ms],
                    rest_wave: vec![ms],
                    fresh: vec![ms],
                }],
                spark_stage_id: Some(i as u64),
                shuffle: None,
            })
            .collect();
        Arc::new(
            JobTrace::new(
                std::path::Path::new("test"),
                name.into(),
                "s".into(),
                name.into(),
                stages,
            )
            .unwrap(),
        )
    }

    fn timing() -> LiveTiming {
        LiveTiming {
            register_ms: 1000,
            plan_ms: 0,
            executor_start_ms: 500,
            job_end_ms: 0,
            duration_scale: 1.0,
            host_cores: None,
            driver_cores: 1.0,
            executor_start_cores: 1.0,
            driver_load_cores: 0.0,
            executor_wait_ms: 120_000,
        }
    }

    /// Gives each decision's stage every executor it can use (FIFO across jobs).
    fn greedy(obs: &Observation) -> Action {
        obs.send_all(obs.schedulable[0] as usize)
    }

    #[test]
    fn one_job_runs_its_stages_in_order_on_all_executors() {
        let jobs = vec![JobArrival {
            job: trace("a", &[4, 2], 100),
            arrival_ms: 0,
        }];
        let mut sim = LiveSim::new(2, timing(), LivePolicy::Scheduler);
        let ep = sim.run(&jobs, 1, &mut greedy).unwrap();
        // ready at 1000, executors at 1500, 4 tasks on 2 = 200 ms, then 2 tasks = 100 ms.
        assert_eq!(ep.jct_ms, vec![1800.0]);
        assert_eq!(ep.grants, 2);
    }

    #[test]
    fn spark_default_holds_executors_and_static_splits_them() {
        let jobs = vec![
            JobArrival {
                job: trace("a", &[4], 100),
                arrival_ms: 0,
            },
            JobArrival {
                job: trace("b", &[4], 100),
                arrival_ms: 0,
            },
        ];
        let mut never = |_: &Observation| -> Action { panic!("not asked") };
        let mut sim = LiveSim::new(2, timing(), LivePolicy::SparkDefault);
        let ep = sim.run(&jobs, 1, &mut never).unwrap();
        // a takes both executors (1500..1700); b gets them back fresh at 2200, ends 2400.
        assert_eq!(ep.jct_ms, vec![1700.0, 2400.0]);
        let mut sim = LiveSim::new(2, timing(), LivePolicy::Static { cores_max: 1 });
        let ep = sim.run(&jobs, 1, &mut never).unwrap();
        assert_eq!(ep.jct_ms, vec![1900.0, 1900.0]);
    }

    #[test]
    fn shared_cores_slow_every_activity_down() {
        let jobs = vec![JobArrival {
            job: trace("a", &[2], 100),
            arrival_ms: 0,
        }];
        let mut t = LiveTiming {
            register_ms: 0,
            executor_start_ms: 0,
            ..timing()
        };
        let run = |t: LiveTiming| {
            let mut sim = LiveSim::new(2, t, LivePolicy::Scheduler);
            sim.run(&jobs, 1, &mut greedy).unwrap().jct_ms
        };
        // Two 100 ms tasks at once: 100 ms on their own cores, 200 ms sharing one.
        assert_eq!(run(t), vec![100.0]);
        t.host_cores = Some(1.0);
        assert_eq!(run(t), vec![200.0]);
        t.host_cores = Some(2.0);
        assert_eq!(run(t), vec![100.0]);
        t.duration_scale = 1.5;
        assert_eq!(run(t), vec![150.0]);
    }

    #[test]
    fn allocate_refuses_a_stage_that_is_not_schedulable() {
        let t = trace("a", &[4, 2], 100);
        let stages = [
            StageProgress {
                num_tasks: 4,
                ..Default::default()
            },
            StageProgress {
                num_tasks: 2,
                ..Default::default()
            },
        ];
        let running = [0, 0];
        let views = [LiveJobView {
            id: 0,
            trace: &t,
            arrival_ms: 0,
            stages: &stages,
            running: &running,
        }];
        let mut obs = Observation::default();
        observe_jobs(&views, 3, 0, &mut obs);
        let mut targets = Vec::new();
        let mut bad = |_: &Observation| Action::Schedule { stage: 1, limit: 1 };
        assert!(allocate(&mut obs, &mut bad, &mut targets).is_err());
        observe_jobs(&views, 3, 0, &mut obs);
        allocate(&mut obs, &mut greedy, &mut targets).unwrap();
        assert_eq!(targets, vec![3]);
    }
}
