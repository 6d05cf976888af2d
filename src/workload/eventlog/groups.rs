//! From one application's jobs to one stage DAG per logical job (group).
//!
//! A logical job (a TPC-H query, say) is usually several Spark jobs: a sort's sampling
//! job, AQE's one job per query stage, broadcast jobs. Their stages overlap: a later job
//! lists stages that an earlier one ran, and Spark *skips* them (their shuffle output
//! exists). The trace wants each stage that really ran exactly once, with edges between
//! stages that ran, so skipped stages are resolved to the stage that computed the same
//! output RDD.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::parse::{AppLog, JobRecord, TaskRecord};
use super::{EventLogError, Warning};
use crate::workload::trace::ShuffleStats;

/// One stage that ran, with its samples from one application.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStage {
    pub spark_stage_id: u64,
    /// The stage's output RDD: the identity that matches stages across applications,
    /// since Spark may number the stages of one query differently in two runs.
    pub output_rdd: Option<u64>,
    pub num_tasks: u32,
    /// Indices into the group's stage list.
    pub parents: Vec<u32>,
    pub first_wave: Vec<u32>,
    pub rest_wave: Vec<u32>,
    pub fresh: Vec<u32>,
    pub shuffle: ShuffleStats,
}

/// One logical job as it ran in one application.
#[derive(Debug, Clone)]
pub struct GroupRun {
    pub group: String,
    pub app_id: String,
    pub app_name: Option<String>,
    pub spark_version: Option<String>,
    pub source: std::path::PathBuf,
    pub executors: u32,
    pub spark_jobs: Vec<u64>,
    pub stages: Vec<RunStage>,
    /// Stages listed by the group's jobs but not run (their output already existed).
    pub skipped_stages: usize,
}

/// What extraction dropped, for the summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupCounts {
    /// Jobs without the grouping property in an application where other jobs have it
    /// (e.g. the table-registration jobs before the queries).
    pub jobs_without_group: usize,
    /// Groups left out because a job failed or never ended, or nothing ran.
    pub groups_dropped: usize,
}

fn warn(out: &mut Vec<Warning>, app: &AppLog, msg: String) {
    out.push(Warning {
        path: app.path.clone(),
        line: None,
        msg,
    });
}

/// Splits an application's jobs into groups and builds each group's stage DAG.
pub fn extract_groups(
    app: &AppLog,
    property: &str,
    warnings: &mut Vec<Warning>,
    counts: &mut GroupCounts,
) -> Result<Vec<GroupRun>, EventLogError> {
    // Groups in order of their first job.
    let mut order: Vec<String> = Vec::new();
    let mut by_group: HashMap<String, Vec<&JobRecord>> = HashMap::new();
    for job in &app.jobs {
        let key = match (&job.group, app.property_seen) {
            (Some(g), _) => g.clone(),
            (None, true) => {
                counts.jobs_without_group += 1;
                continue;
            }
            (None, false) => format!("job{}", job.job_id),
        };
        by_group
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(job);
    }
    if !app.property_seen && !app.jobs.is_empty() {
        warn(
            warnings,
            app,
            format!(
                "no job has the property {property}: one trace per Spark job ({} jobs)",
                app.jobs.len()
            ),
        );
    }
    let mut out = Vec::new();
    for key in order {
        let jobs = &by_group[&key];
        if let Some(bad) = jobs.iter().find(|j| j.succeeded != Some(true)) {
            let why = match bad.succeeded {
                None => "never ended (the log stops before its JobEnd)".to_string(),
                Some(_) => format!("ended with {}", bad.end_result),
            };
            warnings.push(Warning {
                path: bad.file.clone(),
                line: Some(bad.line),
                msg: format!("group \"{key}\" dropped: Spark job {} {why}", bad.job_id),
            });
            counts.groups_dropped += 1;
            continue;
        }
        match build_group(app, &key, jobs, warnings)? {
            Some(g) => out.push(g),
            None => counts.groups_dropped += 1,
        }
    }
    Ok(out)
}

/// Resolves a listed stage to the run stages (of this group) that produced its output.
struct Resolver<'a> {
    app: &'a AppLog,
    /// Run stages of this group.
    run: &'a BTreeSet<u64>,
    /// Output RDD id -> the submitted stage that computed it (the first one, by id).
    by_rdd: &'a HashMap<u64, u64>,
    memo: HashMap<u64, Vec<u64>>,
    unresolved: BTreeSet<u64>,
}

impl Resolver<'_> {
    /// What stage `s` stands for without looking at other skipped stages: a run stage
    /// stands for itself; a skipped stage for the submitted stage with the same output
    /// RDD; a stage that ran outside the group (or is unknown) for nothing, since its
    /// output existed before the group started. A skipped stage without such a twin
    /// stands for what its parents stand for (so that no dependency is lost).
    fn direct(&mut self, s: u64) -> Result<Vec<u64>, Vec<u64>> {
        if self.run.contains(&s) {
            return Ok(vec![s]);
        }
        if self.app.submitted.contains_key(&s) {
            return Ok(Vec::new());
        }
        let Some((info, _)) = self.app.stage_info.get(&s) else {
            return Ok(Vec::new());
        };
        match info.output_rdd().and_then(|r| self.by_rdd.get(&r)) {
            Some(&t) => Ok(if self.run.contains(&t) {
                vec![t]
            } else {
                Vec::new()
            }),
            None => {
                self.unresolved.insert(s);
                Err(info.parents.clone())
            }
        }
    }

    /// The run stages of this group that stage `root` stands for. Iterative, so that a
    /// long chain of skipped stages in a hostile log cannot overflow the stack; a cycle
    /// (impossible in a real log) is cut where it closes.
    fn resolve(&mut self, root: u64) -> Vec<u64> {
        let mut stack = vec![(root, false)];
        let mut on_path: HashSet<u64> = HashSet::new();
        while let Some((s, expanded)) = stack.pop() {
            if self.memo.contains_key(&s) {
                continue;
            }
            match self.direct(s) {
                Ok(v) => {
                    self.memo.insert(s, v);
                }
                Err(parents) if !expanded => {
                    on_path.insert(s);
                    stack.push((s, true));
                    for p in parents {
                        if !self.memo.contains_key(&p) && !on_path.contains(&p) {
                            stack.push((p, false));
                        }
                    }
                }
                Err(parents) => {
                    on_path.remove(&s);
                    let mut v: Vec<u64> = parents
                        .iter()
                        .filter_map(|p| self.memo.get(p))
                        .flatten()
                        .copied()
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    self.memo.insert(s, v);
                }
            }
        }
        self.memo.get(&root).cloned().unwrap_or_default()
    }
}

fn build_group(
    app: &AppLog,
    key: &str,
    jobs: &[&JobRecord],
    warnings: &mut Vec<Warning>,
) -> Result<Option<GroupRun>, EventLogError> {
    let job_ids: HashSet<u64> = jobs.iter().map(|j| j.job_id).collect();
    let mut listed: BTreeSet<u64> = BTreeSet::new();
    for j in jobs {
        listed.extend(j.stages.iter().copied());
    }
    // A stage ran in this group if it was submitted and the first job listing it is ours.
    let run: BTreeSet<u64> = listed
        .iter()
        .copied()
        .filter(|s| {
            app.submitted.contains_key(s)
                && app
                    .stage_info
                    .get(s)
                    .is_some_and(|(_, job)| job_ids.contains(job))
        })
        .collect();
    if run.is_empty() {
        warn(
            warnings,
            app,
            format!("group \"{key}\" dropped: none of its stages ran"),
        );
        return Ok(None);
    }
    let skipped = listed
        .iter()
        .filter(|s| !app.submitted.contains_key(s))
        .count();
    let mut by_rdd: HashMap<u64, u64> = HashMap::new();
    let mut submitted_ids: Vec<u64> = app.submitted.keys().copied().collect();
    submitted_ids.sort_unstable();
    for s in submitted_ids {
        if let Some(rdd) = app.stage_info.get(&s).and_then(|(i, _)| i.output_rdd()) {
            by_rdd.entry(rdd).or_insert(s);
        }
    }
    let mut resolver = Resolver {
        app,
        run: &run,
        by_rdd: &by_rdd,
        memo: HashMap::new(),
        unresolved: BTreeSet::new(),
    };
    let index: HashMap<u64, u32> = run
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, i as u32))
        .collect();

    // The executor count of the measurement: executors alive when the group's jobs began.
    let alive: BTreeSet<u32> = jobs.iter().map(|j| j.executors_alive).collect();
    let mut executors = alive.iter().copied().max().unwrap_or(0);
    if alive.len() > 1 {
        warn(
            warnings,
            app,
            format!(
                "group \"{key}\": the executor count changed while it ran ({:?}); using {executors}",
                alive
            ),
        );
    }

    // Each executor's earliest task in the group (any outcome: a failed task warms the
    // JVM too), by (launch time, task id).
    let mut earliest: HashMap<&str, (u64, u64)> = HashMap::new();
    for s in &run {
        for t in app.tasks.get(s).map_or(&[][..], |v| &v[..]) {
            let k = (t.launch_ms, t.task_id);
            earliest
                .entry(t.executor.as_str())
                .and_modify(|e| *e = (*e).min(k))
                .or_insert(k);
        }
    }
    if executors == 0 {
        executors = earliest.len().max(1) as u32;
        warn(
            warnings,
            app,
            format!(
                "group \"{key}\": no executor was registered when it ran; using the {executors} \
                 executor(s) that ran its tasks"
            ),
        );
    }

    let mut stages = Vec::with_capacity(run.len());
    for &s in &run {
        let (info, _) = &app.stage_info[&s];
        let mut parents: Vec<u32> = Vec::new();
        for &p in &info.parents {
            for r in resolver.resolve(p) {
                if r != s {
                    parents.push(index[&r]);
                }
            }
        }
        parents.sort_unstable();
        parents.dedup();
        let (attempt, _) = app.submitted[&s];
        let all = app.tasks.get(&s).map_or(&[][..], |v| &v[..]);
        let mut kept: Vec<&TaskRecord> = all
            .iter()
            .filter(|t| t.success && t.stage_attempt == attempt)
            .collect();
        kept.sort_by_key(|t| (t.launch_ms, t.task_id));
        let mut seen_index = HashSet::new();
        let before = kept.len();
        kept.retain(|t| seen_index.insert(t.index));
        if kept.len() < before {
            warn(
                warnings,
                app,
                format!(
                    "group \"{key}\": stage {s}: {} duplicate successful task(s) of the same \
                     partition (speculation?) ignored",
                    before - kept.len()
                ),
            );
        }
        if kept.is_empty() {
            warn(
                warnings,
                app,
                format!(
                    "group \"{key}\" dropped: stage {s} (attempt {attempt}) has no successful task"
                ),
            );
            return Ok(None);
        }
        if kept.len() != info.num_tasks as usize {
            warn(
                warnings,
                app,
                format!(
                    "group \"{key}\": stage {s} lists {} tasks but {} succeeded in attempt \
                     {attempt}; the trace keeps {}",
                    info.num_tasks,
                    kept.len(),
                    info.num_tasks
                ),
            );
        }
        let no_metrics = kept.iter().filter(|t| t.no_metrics).count();
        if no_metrics > 0 {
            warn(
                warnings,
                app,
                format!(
                    "group \"{key}\": stage {s}: {no_metrics} task(s) without Task Metrics; \
                     their shuffle statistics are 0"
                ),
            );
        }
        let mut stage = RunStage {
            spark_stage_id: s,
            output_rdd: info.output_rdd(),
            num_tasks: info.num_tasks.max(1),
            parents,
            first_wave: Vec::new(),
            rest_wave: Vec::new(),
            fresh: Vec::new(),
            shuffle: ShuffleStats::default(),
        };
        let mut in_stage: HashSet<&str> = HashSet::new();
        for t in &kept {
            if in_stage.insert(t.executor.as_str()) {
                stage.first_wave.push(t.duration_ms);
                if earliest.get(t.executor.as_str()) == Some(&(t.launch_ms, t.task_id)) {
                    stage.fresh.push(t.duration_ms);
                }
            } else {
                stage.rest_wave.push(t.duration_ms);
            }
            let sh = &mut stage.shuffle;
            sh.read_bytes.push(t.read_bytes);
            sh.read_records.push(t.read_records);
            sh.write_bytes.push(t.write_bytes);
            sh.write_records.push(t.write_records);
            sh.duration_ms.push(t.duration_ms);
            sh.input_bytes.push(t.input_bytes);
            sh.output_bytes.push(t.output_bytes);
            sh.memory_spill_bytes.push(t.memory_spill_bytes);
            sh.disk_spill_bytes.push(t.disk_spill_bytes);
            sh.gc_ms.push(t.gc_ms);
            sh.peak_memory_bytes.push(t.peak_memory_bytes);
            sh.locality.push(t.locality.clone());
            sh.host.push(t.host.clone());
            sh.executor.push(t.executor.clone());
        }
        stages.push(stage);
    }
    if !resolver.unresolved.is_empty() {
        warn(
            warnings,
            app,
            format!(
                "group \"{key}\": skipped stage(s) {:?} match no submitted stage by output RDD; \
                 their parents were used instead",
                resolver.unresolved
            ),
        );
    }
    let mut spark_jobs: Vec<u64> = job_ids.into_iter().collect();
    spark_jobs.sort_unstable();
    Ok(Some(GroupRun {
        group: key.to_string(),
        app_id: app.app_id.clone(),
        app_name: app.app_name.clone(),
        spark_version: app.spark_version.clone(),
        source: app.path.clone(),
        executors,
        spark_jobs,
        stages,
        skipped_stages: skipped,
    }))
}

/// Summary of the executors keyed by count, for provenance.
pub fn executor_counts(runs: &[&GroupRun]) -> Vec<u32> {
    let set: BTreeSet<u32> = runs.iter().map(|r| r.executors).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::eventlog::parse::{RddInfo, StageInfo};
    use std::path::PathBuf;

    /// An application with one job in group "g" listing `stages` (id, parents, rdd,
    /// submitted), each submitted stage with one successful task on executor "0".
    fn app(stages: &[(u64, Vec<u64>, u64, bool)]) -> AppLog {
        let mut a = AppLog {
            app_id: "app-test".into(),
            property_seen: true,
            ..Default::default()
        };
        for (id, parents, rdd, submitted) in stages {
            let info = StageInfo {
                stage_id: *id,
                attempt: 0,
                name: String::new(),
                num_tasks: 1,
                parents: parents.clone(),
                rdds: vec![RddInfo { rdd_id: *rdd }],
            };
            a.stage_info.insert(*id, (info, 0));
            if *submitted {
                a.submitted.insert(*id, (0, 1));
                a.tasks.entry(*id).or_default().push(TaskRecord {
                    task_id: *id,
                    index: 0,
                    stage_attempt: 0,
                    success: true,
                    launch_ms: *id,
                    duration_ms: 10,
                    executor: "0".into(),
                    no_metrics: false,
                    ..TaskRecord::default()
                });
            }
        }
        a.jobs.push(JobRecord {
            job_id: 0,
            group: Some("g".into()),
            stages: stages.iter().map(|s| s.0).collect(),
            executors_alive: 1,
            line: 1,
            file: PathBuf::new(),
            succeeded: Some(true),
            end_result: "JobSucceeded".into(),
            submit_ms: None,
            end_ms: None,
        });
        a
    }

    fn parents_of(a: &AppLog) -> (Vec<Vec<u32>>, Vec<Warning>) {
        let mut w = Vec::new();
        let g = extract_groups(a, "p", &mut w, &mut GroupCounts::default()).unwrap();
        (g[0].stages.iter().map(|s| s.parents.clone()).collect(), w)
    }

    #[test]
    fn long_chain_of_skipped_stages_without_twins_resolves_without_recursion() {
        let n = 200_000u64;
        let mut stages = vec![(0, vec![], 1_000_000, true)];
        for s in 1..=n {
            stages.push((s, vec![s - 1], 1_000_000 + s, false));
        }
        stages.push((n + 1, vec![n], 2_000_000, true));
        let (parents, w) = parents_of(&app(&stages));
        assert_eq!(parents, vec![vec![], vec![0]]);
        assert!(w[0].msg.contains("match no submitted stage by output RDD"));
    }

    #[test]
    fn cycles_of_skipped_stages_are_cut() {
        let stages = vec![
            (0, vec![], 10, true),
            (1, vec![2, 0], 11, false),
            (2, vec![1], 12, false),
            (3, vec![1], 13, true),
            (4, vec![4, 3], 14, true),
        ];
        let (parents, _) = parents_of(&app(&stages));
        assert_eq!(parents, vec![vec![], vec![0], vec![1]]);
    }

    #[test]
    fn skipped_stage_maps_to_its_twin_by_output_rdd() {
        let stages = vec![
            (0, vec![], 10, true),
            (1, vec![0], 11, true),
            (2, vec![], 10, false), // same output RDD as stage 0
            (3, vec![2, 1], 12, true),
        ];
        let (parents, _) = parents_of(&app(&stages));
        assert_eq!(parents, vec![vec![], vec![0], vec![0, 1]]);
    }
}
