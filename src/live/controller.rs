//! The live controller: keeps an [`Observation`] of the running applications from their
//! agents' reports and turns a scheduler's decisions into per-application executor targets.
//!
//! Jobs are applications. Each application's stages come from its query's trace DAG; the
//! live Spark stages an agent reports are matched to trace stages once, when first seen (see
//! [`StageMatch`]). Decisions are taken at Decima's events, as live semantics defines them
//! (`crate::sim::live`): an application says hello (job arrival), one of its stages completes,
//! or it says goodbye (its executors are freed). Between decisions every report still gets the
//! application's current target, and the controller kills idle executors of an application
//! holding more than its target (Spark never shrinks an application by itself).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::protocol::{Goodbye, Hello, Message, Progress, Reply, StageStatus};
use super::server::Handler;
use crate::sched::Scheduler;
use crate::sim::Observation;
use crate::sim::live::{LiveJobView, StageProgress, allocate, observe_jobs};
use crate::workload::JobTrace;

/// One job of a live run, as the runner submits it.
#[derive(Debug, Clone)]
pub struct RunJob {
    /// The name its agent says hello with (`MPDA_JOB_NAME`), unique within the run.
    pub name: String,
    pub trace: Arc<JobTrace>,
}

/// Maps an application's live Spark stage ids to its trace's stages.
///
/// A trace holds the stages that ran: a stage Spark skips (its shuffle output already exists,
/// as in a query of several Spark jobs that reuse an exchange) is not in it. So only a live
/// stage that runs (active or complete) is matched, when first seen running; a pending one
/// may still be skipped, and a skipped one never runs.
///
/// Spark numbers stages in the order it builds the DAG, which is stable for one query plan but
/// not guaranteed (two measured runs of one query can number its scan stages differently). So
/// a live stage goes to the trace stage with the same Spark id if that stage has the same task
/// count, else to the first unmatched trace stage with the same task count, else to the first
/// unmatched one; a live stage beyond the trace's is ignored.
#[derive(Debug, Default)]
struct StageMatch {
    by_live: HashMap<u32, usize>,
    taken: Vec<bool>,
}

impl StageMatch {
    fn index(&mut self, trace: &JobTrace, live_id: u32, num_tasks: u32) -> Option<usize> {
        if let Some(&i) = self.by_live.get(&live_id) {
            return Some(i);
        }
        self.taken.resize(trace.stages.len(), false);
        let free = |i: &usize| !self.taken[*i];
        let stages = &trace.stages;
        let i = (0..stages.len())
            .filter(free)
            .find(|&i| {
                stages[i].spark_stage_id == Some(u64::from(live_id))
                    && stages[i].num_tasks == num_tasks
            })
            .or_else(|| {
                (0..stages.len())
                    .filter(free)
                    .find(|&i| stages[i].num_tasks == num_tasks)
            })
            .or_else(|| (0..stages.len()).find(free))?;
        self.taken[i] = true;
        self.by_live.insert(live_id, i);
        Some(i)
    }
}

#[derive(Debug)]
struct Slot {
    job: RunJob,
    app_id: Option<String>,
    arrived_ms: Option<u64>,
    done: bool,
    stages: Vec<StageProgress>,
    running: Vec<u32>,
    matcher: StageMatch,
    /// Some live stage is running with tasks left: the application needs executors now,
    /// whatever its trace view says (a safety net against a mismatched trace).
    live_demand: bool,
    /// Executor ids with their running task counts, from the last report.
    executors: Vec<(String, u32)>,
    /// Executors the controller asked Spark to kill (their leaving is no loss).
    killed: Vec<String>,
    target: u32,
    complete_stages: usize,
}

/// What the controller did, for the report: one row per decision.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRecord {
    /// Milliseconds since the controller started.
    pub time_ms: u64,
    /// Why the decision was taken: `arrival`, `stage`, `departure`.
    pub event: &'static str,
    /// Per job of the run (by index): its target, `None` while it is not active.
    pub targets: Vec<Option<u32>>,
}

/// Everything the controller saw and did, read back after the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ControlLog {
    pub decisions: Vec<TargetRecord>,
    /// Executors the controller asked to kill, in all.
    pub kills: u64,
    pub messages: u64,
    /// Messages it could not use (an unknown job or application), with the reason; the agent
    /// got an empty reply and its application ran under Spark's own behaviour.
    pub errors: Vec<String>,
    /// Per job: the Spark application id its agent reported.
    pub app_ids: Vec<Option<String>>,
    /// Per job: when its agent said hello (Unix ms): the application had registered.
    pub hello_unix_ms: Vec<Option<u64>>,
    /// Executors that left an application without the controller killing them (a crashed
    /// or killed executor JVM, a lost worker): `<ms> job-i: executor <id> lost`.
    pub lost_executors: Vec<String>,
}

/// The controller state; shared with the server through [`SharedController`].
pub struct Controller {
    slots: Vec<Slot>,
    exec_cap: u32,
    scheduler: Box<dyn Scheduler>,
    start: Instant,
    obs: Observation,
    targets: Vec<u32>,
    active: Vec<usize>,
    log: ControlLog,
}

impl Controller {
    pub fn new(
        jobs: Vec<RunJob>,
        exec_cap: u32,
        mut scheduler: Box<dyn Scheduler>,
        seed: u64,
    ) -> Self {
        scheduler.reset(seed);
        let n = jobs.len();
        Self {
            slots: jobs
                .into_iter()
                .map(|job| Slot {
                    stages: job
                        .trace
                        .stages
                        .iter()
                        .map(|s| StageProgress {
                            num_tasks: s.num_tasks,
                            ..Default::default()
                        })
                        .collect(),
                    running: vec![0; job.trace.stages.len()],
                    job,
                    app_id: None,
                    arrived_ms: None,
                    done: false,
                    matcher: StageMatch::default(),
                    live_demand: false,
                    executors: Vec::new(),
                    killed: Vec::new(),
                    target: 0,
                    complete_stages: 0,
                })
                .collect(),
            exec_cap,
            scheduler,
            start: Instant::now(),
            obs: Observation::default(),
            targets: Vec::new(),
            active: Vec::new(),
            log: ControlLog {
                app_ids: vec![None; n],
                hello_unix_ms: vec![None; n],
                ..Default::default()
            },
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn slot_of_app(&self, app_id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.app_id.as_deref() == Some(app_id))
    }

    /// Re-places every executor with the scheduler (see `crate::sim::live::allocate`).
    fn decide(&mut self, event: &'static str) {
        self.active.clear();
        self.active.extend(
            (0..self.slots.len())
                .filter(|&i| self.slots[i].arrived_ms.is_some() && !self.slots[i].done),
        );
        // Arrival order: the order agents said hello.
        self.active
            .sort_by_key(|&i| (self.slots[i].arrived_ms.unwrap_or(u64::MAX), i));
        let views: Vec<LiveJobView<'_>> = self
            .active
            .iter()
            .map(|&i| {
                let s = &self.slots[i];
                LiveJobView {
                    id: i as u32,
                    trace: &s.job.trace,
                    arrival_ms: s.arrived_ms.unwrap_or(0),
                    stages: &s.stages,
                    running: &s.running,
                }
            })
            .collect();
        let now = self.now_ms();
        observe_jobs(&views, self.exec_cap, now, &mut self.obs);
        let scheduler = &mut self.scheduler;
        if let Err(e) = allocate(
            &mut self.obs,
            &mut |o| scheduler.decide(o),
            &mut self.targets,
        ) {
            self.log
                .errors
                .push(format!("{} ms: {}: {e}", now, self.scheduler.name()));
            return;
        }
        for (k, &i) in self.active.iter().enumerate() {
            self.slots[i].target = self.targets[k];
        }
        // Work conservation: executors the scheduler left unplaced go, one each in arrival
        // order, to applications that have a running stage with tasks left but no target
        // (their trace view ran out of work before Spark did).
        let mut left = self
            .exec_cap
            .saturating_sub(self.targets.iter().sum::<u32>());
        for &i in &self.active {
            if left == 0 {
                break;
            }
            if self.slots[i].target == 0 && self.slots[i].live_demand {
                self.slots[i].target = 1;
                left -= 1;
            }
        }
        let targets = (0..self.slots.len())
            .map(|i| self.active.contains(&i).then_some(self.slots[i].target))
            .collect();
        self.log.decisions.push(TargetRecord {
            time_ms: now,
            event,
            targets,
        });
    }

    /// The reply to application `i`: its target, and idle executors to kill while it holds
    /// more than that.
    fn reply(&mut self, i: usize) -> Reply {
        let slot = &self.slots[i];
        let held = slot.executors.len() as u32;
        let mut kill: Vec<String> = Vec::new();
        if held > slot.target {
            let mut idle: Vec<&(String, u32)> = slot
                .executors
                .iter()
                .filter(|(_, active)| *active == 0)
                .collect();
            // Newest first: Spark's executor ids are numbers, younger ones larger.
            idle.sort_by_key(|(id, _)| std::cmp::Reverse(id.parse::<u64>().unwrap_or(0)));
            kill.extend(
                idle.into_iter()
                    .take((held - slot.target) as usize)
                    .map(|(id, _)| id.clone()),
            );
        }
        self.log.kills += kill.len() as u64;
        // A killed executor leaves the agent's reports; drop it here too until the next one.
        let killed = kill.clone();
        self.slots[i]
            .executors
            .retain(|(id, _)| !killed.contains(id));
        self.slots[i].killed.extend(killed);
        Reply {
            target_executors: Some(self.slots[i].target),
            kill,
        }
    }

    fn hello(&mut self, m: Hello) -> Reply {
        let Some(i) = self.slots.iter().position(|s| s.job.name == m.job_name) else {
            self.log.errors.push(format!(
                "hello from {}: no job named {:?} in this run",
                m.app_id, m.job_name
            ));
            return Reply::default();
        };
        if self.slots[i].app_id.is_some() {
            self.log.errors.push(format!(
                "hello from {}: job {:?} already has application {}",
                m.app_id,
                m.job_name,
                self.slots[i].app_id.as_deref().unwrap_or("")
            ));
            return Reply::default();
        }
        self.slots[i].app_id = Some(m.app_id.clone());
        self.log.app_ids[i] = Some(m.app_id);
        self.log.hello_unix_ms[i] = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64);
        self.slots[i].arrived_ms = Some(self.now_ms());
        self.decide("arrival");
        self.reply(i)
    }

    fn progress(&mut self, m: Progress) -> Reply {
        let Some(i) = self.slot_of_app(&m.app_id) else {
            self.log
                .errors
                .push(format!("progress from {}: no hello from it", m.app_id));
            return Reply::default();
        };
        let slot = &mut self.slots[i];
        if slot.done {
            return Reply::default();
        }
        slot.running.iter_mut().for_each(|r| *r = 0);
        let had_demand = slot.live_demand;
        slot.live_demand = m
            .stages
            .iter()
            .any(|st| matches!(st.status, StageStatus::Active) && st.complete < st.num_tasks);
        let starving = slot.live_demand && !had_demand && slot.target == 0;
        for st in &m.stages {
            let ran = matches!(st.status, StageStatus::Active | StageStatus::Complete);
            if !ran && !slot.matcher.by_live.contains_key(&st.stage_id) {
                continue;
            }
            let Some(k) = slot
                .matcher
                .index(&slot.job.trace, st.stage_id, st.num_tasks)
            else {
                continue;
            };
            let n = slot.stages[k].num_tasks;
            let (finished, started) = match st.status {
                StageStatus::Complete | StageStatus::Skipped => (n, n),
                _ => (st.complete.min(n), (st.complete + st.active).min(n)),
            };
            // Reports may come out of order: progress never goes back.
            let p = &mut slot.stages[k];
            p.finished = p.finished.max(finished);
            p.started = p.started.max(started).max(p.finished);
            slot.running[k] = if matches!(st.status, StageStatus::Active) {
                st.active
            } else {
                0
            };
        }
        let now = self.start.elapsed().as_millis();
        for (id, _) in &slot.executors {
            if !slot.killed.contains(id) && !m.executors.iter().any(|e| &e.id == id) {
                self.log
                    .lost_executors
                    .push(format!("{now} ms: {}: executor {id} lost", slot.job.name));
            }
        }
        slot.executors = m
            .executors
            .iter()
            .map(|e| (e.id.clone(), e.active))
            .collect();
        let complete = slot
            .stages
            .iter()
            .filter(|s| s.finished >= s.num_tasks)
            .count();
        if complete != slot.complete_stages || starving {
            slot.complete_stages = complete;
            self.decide("stage");
        }
        self.reply(i)
    }

    fn goodbye(&mut self, m: Goodbye) -> Reply {
        let Some(i) = self.slot_of_app(&m.app_id) else {
            self.log
                .errors
                .push(format!("goodbye from {}: no hello from it", m.app_id));
            return Reply::default();
        };
        if !self.slots[i].done {
            self.slots[i].done = true;
            self.decide("departure");
        }
        Reply::default()
    }

    pub fn handle_message(&mut self, msg: Message) -> Reply {
        self.log.messages += 1;
        match msg {
            Message::Hello(m) => self.hello(m),
            Message::Progress(m) => self.progress(m),
            Message::Goodbye(m) => self.goodbye(m),
        }
    }

    /// Marks a job finished without a goodbye (its driver exited or was killed), freeing its
    /// executors for the others.
    pub fn job_exited(&mut self, name: &str) {
        if let Some(i) = self.slots.iter().position(|s| s.job.name == name)
            && self.slots[i].arrived_ms.is_some()
            && !self.slots[i].done
        {
            self.slots[i].done = true;
            self.decide("departure");
        }
    }

    pub fn log(&self) -> &ControlLog {
        &self.log
    }
}

/// The controller behind the server's handler, readable by the runner meanwhile.
#[derive(Clone)]
pub struct SharedController(pub Arc<Mutex<Controller>>);

impl Handler for SharedController {
    fn handle(&mut self, msg: Message) -> Reply {
        match self.0.lock() {
            Ok(mut c) => c.handle_message(msg),
            // A panic inside a decision poisoned the lock: answer nothing, so that every
            // application goes on under Spark's own behaviour.
            Err(_) => Reply::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::protocol::{
        ExecutorProgress, JobProgress, JobStatus, PROTOCOL_VERSION, StageProgress as LiveStage,
    };
    use crate::sched::SchedulerSpec;

    fn trace(name: &str, tasks: &[u32]) -> Arc<JobTrace> {
        crate::sim::live::tests::trace(name, tasks, 100)
    }

    fn hello(app: &str, job: &str) -> Message {
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            app_id: app.into(),
            job_name: job.into(),
            pid: 1,
        })
    }

    fn progress(app: &str, complete0: u32, execs: &[(&str, u32)]) -> Message {
        Message::Progress(Progress {
            version: PROTOCOL_VERSION,
            app_id: app.into(),
            time_ms: 1,
            jobs: vec![JobProgress {
                job_id: 0,
                status: JobStatus::Running,
                stage_ids: vec![0, 1],
            }],
            stages: vec![LiveStage {
                stage_id: 0,
                attempt: 0,
                job_ids: vec![0],
                num_tasks: 4,
                active: 0,
                complete: complete0,
                failed: 0,
                status: if complete0 == 4 {
                    StageStatus::Complete
                } else {
                    StageStatus::Active
                },
            }],
            executors: execs
                .iter()
                .map(|(id, active)| ExecutorProgress {
                    id: (*id).into(),
                    host: "127.0.0.1".into(),
                    cores: 1,
                    active: *active,
                })
                .collect(),
        })
    }

    fn controller(spec: &str) -> Controller {
        let jobs = vec![
            RunJob {
                name: "job-0".into(),
                trace: trace("a", &[4, 4]),
            },
            RunJob {
                name: "job-1".into(),
                trace: trace("b", &[4, 4]),
            },
        ];
        let sched = SchedulerSpec::parse(spec).unwrap().build().unwrap();
        Controller::new(jobs, 2, sched, 1)
    }

    #[test]
    fn fair_splits_and_fifo_gives_all_to_the_first_application() {
        let mut c = controller("fair");
        assert_eq!(
            c.handle_message(hello("app-a", "job-0")).target_executors,
            Some(2)
        );
        assert_eq!(
            c.handle_message(hello("app-b", "job-1")).target_executors,
            Some(1)
        );
        // a holds 2 executors, one idle: over its new target of 1, the idle one is killed.
        let r = c.handle_message(progress("app-a", 1, &[("1", 1), ("2", 0)]));
        assert_eq!(r.target_executors, Some(1));
        assert_eq!(r.kill, vec!["2".to_string()]);
        // b leaves: a gets both back.
        c.handle_message(Message::Goodbye(Goodbye {
            version: PROTOCOL_VERSION,
            app_id: "app-b".into(),
            outcome: crate::live::protocol::Outcome::Succeeded,
        }));
        let r = c.handle_message(progress("app-a", 1, &[("1", 1)]));
        assert_eq!((r.target_executors, r.kill.len()), (Some(2), 0));

        let mut c = controller("fifo");
        c.handle_message(hello("app-a", "job-0"));
        assert_eq!(
            c.handle_message(hello("app-b", "job-1")).target_executors,
            Some(0)
        );
        assert_eq!(c.log().decisions.len(), 2);
    }

    #[test]
    fn unknown_jobs_and_applications_get_an_empty_reply_and_are_logged() {
        let mut c = controller("fair");
        assert_eq!(c.handle_message(hello("app-x", "job-9")), Reply::default());
        assert_eq!(
            c.handle_message(progress("app-y", 0, &[])),
            Reply::default()
        );
        c.handle_message(hello("app-a", "job-0"));
        assert_eq!(c.handle_message(hello("app-z", "job-0")), Reply::default());
        assert_eq!(c.log().errors.len(), 3, "{:?}", c.log().errors);
    }

    #[test]
    fn skipped_and_pending_stages_do_not_use_up_the_trace() {
        let mut c = controller("fifo");
        c.handle_message(hello("app-a", "job-0"));
        let stage = |id: u32, status: StageStatus, complete: u32| LiveStage {
            stage_id: id,
            attempt: 0,
            job_ids: vec![0],
            num_tasks: 4,
            active: 0,
            complete,
            failed: 0,
            status,
        };
        let mut p = match progress("app-a", 4, &[]) {
            Message::Progress(p) => p,
            _ => unreachable!(),
        };
        // Stage 0 ran, 1 was skipped, 2 is pending (may be skipped too), 3 runs: it is the
        // trace's second stage.
        p.stages = vec![
            stage(0, StageStatus::Complete, 4),
            stage(1, StageStatus::Skipped, 0),
            stage(2, StageStatus::Pending, 0),
            stage(3, StageStatus::Active, 1),
        ];
        let r = c.handle_message(Message::Progress(p));
        assert_eq!(r.target_executors, Some(2), "{:?}", c.log());
        let slot = &c.slots[0];
        assert_eq!(slot.stages[1].finished, 1);
        assert_eq!(slot.matcher.by_live.len(), 2);
    }

    #[test]
    fn a_completed_stage_is_a_decision() {
        let mut c = controller("fair");
        c.handle_message(hello("app-a", "job-0"));
        c.handle_message(progress("app-a", 2, &[]));
        assert_eq!(c.log().decisions.len(), 1);
        c.handle_message(progress("app-a", 4, &[]));
        assert_eq!(c.log().decisions.len(), 2);
        assert_eq!(c.log().decisions[1].event, "stage");
    }
}
