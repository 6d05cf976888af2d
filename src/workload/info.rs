//! Statistics of a trace folder, to compare sources at a glance (Decima's traces, ours,
//! imported ones): DAG sizes, task counts and the duration level of each wave.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{JobTrace, TraceLibrary};

/// Statistics of one job, or of several pooled (the totals row).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStats {
    pub size: String,
    pub query: String,
    pub jobs: usize,
    pub stages: usize,
    pub tasks: u64,
    pub tasks_min: u32,
    pub tasks_median: f64,
    pub tasks_mean: f64,
    pub tasks_max: u32,
    /// Means in ms over every sample of every stage and executor key; `None` without
    /// samples of that wave.
    pub first_mean_ms: Option<f64>,
    pub rest_mean_ms: Option<f64>,
    pub fresh_mean_ms: Option<f64>,
    pub executor_keys: BTreeSet<u32>,
}

#[derive(Default)]
struct Acc {
    stage_tasks: Vec<u32>,
    sums: [(f64, u64); 3],
    keys: BTreeSet<u32>,
    jobs: usize,
}

impl Acc {
    fn add(&mut self, job: &JobTrace) {
        self.jobs += 1;
        for s in &job.stages {
            self.stage_tasks.push(s.num_tasks);
            for w in &s.samples {
                self.keys.insert(w.executors);
                for (i, list) in [&w.first_wave, &w.rest_wave, &w.fresh]
                    .into_iter()
                    .enumerate()
                {
                    self.sums[i].0 += list.iter().map(|&d| f64::from(d)).sum::<f64>();
                    self.sums[i].1 += list.len() as u64;
                }
            }
        }
    }

    fn finish(mut self, size: String, query: String) -> TraceStats {
        self.stage_tasks.sort_unstable();
        let n = self.stage_tasks.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => f64::from(self.stage_tasks[n / 2]),
            _ => {
                (f64::from(self.stage_tasks[n / 2 - 1]) + f64::from(self.stage_tasks[n / 2])) / 2.0
            }
        };
        let tasks: u64 = self.stage_tasks.iter().map(|&t| u64::from(t)).sum();
        let mean = |(s, c): (f64, u64)| (c > 0).then(|| s / c as f64);
        TraceStats {
            size,
            query,
            jobs: self.jobs,
            stages: n,
            tasks,
            tasks_min: self.stage_tasks.first().copied().unwrap_or(0),
            tasks_median: median,
            tasks_mean: if n == 0 { 0.0 } else { tasks as f64 / n as f64 },
            tasks_max: self.stage_tasks.last().copied().unwrap_or(0),
            first_mean_ms: mean(self.sums[0]),
            rest_mean_ms: mean(self.sums[1]),
            fresh_mean_ms: mean(self.sums[2]),
            executor_keys: self.keys,
        }
    }
}

/// One row per job, in (size, query) natural order, and a totals row over all jobs.
pub fn library_stats(lib: &TraceLibrary) -> (Vec<TraceStats>, TraceStats) {
    let mut rows = Vec::new();
    let mut total = Acc::default();
    for size in lib.sizes() {
        for query in lib.queries() {
            if let Some(job) = lib.by_size_query(&size, &query) {
                let mut acc = Acc::default();
                acc.add(job);
                total.add(job);
                rows.push(acc.finish(size.clone(), query.clone()));
            }
        }
    }
    let jobs = total.jobs;
    (rows, total.finish("total".into(), format!("{jobs} jobs")))
}

fn keys_text(keys: &BTreeSet<u32>) -> String {
    if keys.is_empty() {
        return "-".into();
    }
    keys.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

const HEADER: [&str; 12] = [
    "size",
    "query",
    "stages",
    "tasks",
    "t/stage min",
    "median",
    "mean",
    "max",
    "first ms",
    "rest ms",
    "fresh ms",
    "executors",
];

fn cells(s: &TraceStats) -> [String; 12] {
    [
        s.size.clone(),
        s.query.clone(),
        s.stages.to_string(),
        s.tasks.to_string(),
        s.tasks_min.to_string(),
        format!("{:.1}", s.tasks_median),
        format!("{:.1}", s.tasks_mean),
        s.tasks_max.to_string(),
        ms(s.first_mean_ms),
        ms(s.rest_mean_ms),
        ms(s.fresh_mean_ms),
        keys_text(&s.executor_keys),
    ]
}

/// The table as aligned text, or as a Markdown table (numbers right-aligned).
pub fn format_table(rows: &[TraceStats], total: &TraceStats, markdown: bool) -> String {
    let mut all: Vec<[String; 12]> = vec![HEADER.map(String::from)];
    all.extend(rows.iter().map(cells));
    all.push(cells(total));
    let widths: Vec<usize> = (0..12)
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let left = |c: usize| c < 2 || c == 11;
    let mut out = String::new();
    for (i, row) in all.iter().enumerate() {
        let parts: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let w = widths[c];
                if left(c) {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        if markdown {
            let _ = writeln!(out, "| {} |", parts.join(" | "));
            if i == 0 {
                let seps: Vec<String> = (0..12)
                    .map(|c| {
                        let w = widths[c].max(3);
                        if left(c) {
                            format!(":{}", "-".repeat(w - 1))
                        } else {
                            format!("{}:", "-".repeat(w - 1))
                        }
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", seps.join(" | "));
            }
        } else {
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        }
    }
    out
}

/// What `mpda trace check` prints for a library that loaded: every trace is valid.
pub fn check_summary(lib: &TraceLibrary) -> String {
    let stages: usize = lib.jobs().iter().map(|j| j.stages.len()).sum();
    let tasks: u64 = lib.jobs().iter().map(|j| j.num_tasks()).sum();
    format!(
        "{}: {} jobs ({} sizes x {} queries), {stages} stages, {tasks} tasks: all valid",
        lib.dir.display(),
        lib.jobs().len(),
        lib.sizes().len(),
        lib.queries().len()
    )
}
