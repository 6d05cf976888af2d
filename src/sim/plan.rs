//! Shuffle planners: how many partitions a shuffle stage gets, which heavy keys are split,
//! and which reducer runs which bucket, decided when the stage is submitted (its parents'
//! map output is known then), where Spark's Adaptive Query Execution and the DSCS study's
//! modified DAGScheduler both act.
//!
//! Everything here is a pure function of key or partition sizes and of the cluster's
//! facts, so that each algorithm is tested on hand-made stages; Spark's engine
//! (`spark.rs`) installs the result. A planner is chosen by `[sim.cluster.plan]` or, per
//! experiment arm, by a scheduler spec's `+planner[...]` suffix.
//!
//! Choices where the DSCS text is silent (docs/simulator.md, "Shuffle planners"):
//! - Pa0 when the memory ratio exceeds 1: the fewest partitions whose tasks' memory need
//!   (xp × data) fits one slot's share of memory (tms / tcn), rounded up to whole waves
//!   (a multiple of tcn); this gives tcn whenever the ratio is at most tcn, so it agrees
//!   with the text's "ratio ≤ 1 → tcn".
//! - A key's skew is `((size − mean) / mean)²` for keys above the mean, 0 otherwise (the
//!   text's "variance of its size against the mean", counted for heavy keys only: a light
//!   key is never split).
//! - A key is split when its skew is positive and its memory need, xp × size, exceeds one
//!   slot's share tms / tcn: the text compares the size itself, but algorithm 1 turns data
//!   into memory with xp, and read literally, keys between share / xp and share stay whole
//!   and spill.
//! - A split key becomes `m = ceil(xp × size / (tms / tcn))` sub-keys (at least 2), so that
//!   each sub-key's memory need fits one slot's share; tskn is the sum of the m's.
//! - Sub-key i of a key whose hash is h goes to bucket `(h + i) mod P`: the m prefixes are
//!   chosen to land in m distinct buckets (random prefixes could collide and defeat the
//!   split).
//! - Heterogeneous assignment keeps Pa1 buckets (no re-hash): α = ceil(Pa1 / tcn) rounds,
//!   Pa2 = α × tcn reducer places, the buckets sorted by size (largest first) and dealt
//!   round by round to the reducers sorted by capacity (strongest first), so the last,
//!   partial round goes to the strongest reducers, as the text says.
//! - A reducer is a task slot; reducers are sorted by their node's capacity (speed × task
//!   slots, the node's throughput), then by execution memory per slot, then by host index
//!   (a stable order). The study's strong nodes are those with more cores.

use serde::{Deserialize, Serialize};

use crate::validate::{FieldError, in_range};

/// Most tasks a planned stage may have (the engine's limit on a stage's tasks).
pub const MAX_PARTITIONS: u32 = 100_000;
/// Spark's `spark.sql.shuffle.partitions` default.
pub const SPARK_DEFAULT_PARTITIONS: u32 = 200;
const MB: f64 = 1_048_576.0;

/// Which planner adapts a shuffle stage at its submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PlannerKind {
    /// None: the trace's own partitioning (what every engine did before planners).
    #[default]
    Trace,
    /// Spark's fixed `spark.sql.shuffle.partitions` / `spark.default.parallelism`.
    Fixed,
    /// DSCS: parallelism estimation, skew correction and heterogeneous assignment.
    Dscs,
    /// DSCS's algorithm 1 alone.
    DscsParallelism,
    /// DSCS's algorithm 2 alone, on the fixed partition count.
    DscsSkew,
    /// DSCS's algorithm 3 alone, on the fixed partition count.
    DscsAssign,
    /// The study's baseline for algorithm 3: bucket i to reducer i mod tcn, capacity-blind.
    OneToOne,
    /// Spark's AQE: post-shuffle coalescing and the skew-join split.
    Aqe,
}

/// The planners by name, with a line of help (for `mpda schedulers` and errors).
pub const PLANNERS: &[(&str, &str)] = &[
    ("trace", "no planner: the trace's own partitioning"),
    (
        "fixed",
        "Spark's fixed shuffle partitions: [partitions=200] (spark.sql.shuffle.partitions)",
    ),
    (
        "dscs",
        "DSCS: parallelism estimation, skew correction (salting), heterogeneous assignment; [xp=2]",
    ),
    (
        "dscs-parallelism",
        "DSCS's parallelism estimation alone (Pa0); [xp=2]",
    ),
    (
        "dscs-skew",
        "DSCS's skew correction alone on [partitions=N] (default: the trace's); [xp=2]",
    ),
    (
        "dscs-assign",
        "DSCS's capacity-aware bucket-to-reducer assignment alone on [partitions=N]",
    ),
    (
        "one-to-one",
        "static bucket i -> reducer i mod slots, capacity-blind, on [partitions=N]",
    ),
    (
        "aqe",
        "Spark's AQE: coalesce to [advisory_mb=64, min_partition_mb=1, parallelism_first=true] from [partitions=200], split skewed join partitions [skew_factor=5, skew_threshold_mb=256, skew_joins_only=true]",
    ),
];

impl PlannerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Fixed => "fixed",
            Self::Dscs => "dscs",
            Self::DscsParallelism => "dscs-parallelism",
            Self::DscsSkew => "dscs-skew",
            Self::DscsAssign => "dscs-assign",
            Self::OneToOne => "one-to-one",
            Self::Aqe => "aqe",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Trace,
            Self::Fixed,
            Self::Dscs,
            Self::DscsParallelism,
            Self::DscsSkew,
            Self::DscsAssign,
            Self::OneToOne,
            Self::Aqe,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// The parameters it reads (every other one is refused).
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Self::Trace => &[],
            Self::Fixed | Self::DscsAssign | Self::OneToOne => &["partitions"],
            Self::Dscs | Self::DscsParallelism => &["xp"],
            Self::DscsSkew => &["partitions", "xp"],
            Self::Aqe => &[
                "partitions",
                "advisory_mb",
                "min_partition_mb",
                "parallelism_first",
                "skew_factor",
                "skew_threshold_mb",
                "skew_joins_only",
            ],
        }
    }
}

/// `[sim.cluster.plan]`: the planner and its parameters (Spark's names in comments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanConfig {
    pub planner: PlannerKind,
    /// Partitions of a shuffle before the planner adapts it: `fixed`'s count and `aqe`'s
    /// initial count (default 200, `spark.sql.shuffle.partitions`); the base of
    /// `dscs-skew`, `dscs-assign` and `one-to-one` (default: the trace's count).
    pub partitions: Option<u32>,
    /// DSCS's memory need per byte of data (the study's xp, default 2).
    pub xp: f64,
    /// `spark.sql.adaptive.advisoryPartitionSizeInBytes` (64 MB).
    pub advisory_mb: f64,
    /// `spark.sql.adaptive.coalescePartitions.minPartitionSize` (1 MB).
    pub min_partition_mb: f64,
    /// `spark.sql.adaptive.coalescePartitions.parallelismFirst` (true): the target is at
    /// most the data over the default parallelism (the cluster's slots).
    pub parallelism_first: bool,
    /// `spark.sql.adaptive.skewJoin.skewedPartitionFactor` (5).
    pub skew_factor: f64,
    /// `spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes` (256 MB).
    pub skew_threshold_mb: f64,
    /// Spark splits skewed partitions of sort-merge and shuffled hash joins only
    /// (`OptimizeSkewedJoin`); in a trace a join is a stage with two or more parents.
    pub skew_joins_only: bool,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            planner: PlannerKind::Trace,
            partitions: None,
            xp: 2.0,
            advisory_mb: 64.0,
            min_partition_mb: 1.0,
            parallelism_first: true,
            skew_factor: 5.0,
            skew_threshold_mb: 256.0,
            skew_joins_only: true,
        }
    }
}

/// `v` must be finite and above `lo` (`strict`) or at least `lo`; `what` says why.
fn finite_above(field: &str, v: f64, lo: f64, strict: bool, what: &str) -> Result<(), FieldError> {
    let ok = v.is_finite() && if strict { v > lo } else { v >= lo };
    if !ok {
        let op = if strict { ">" } else { ">=" };
        return Err(FieldError::new(
            field,
            format!("must be a finite number {op} {lo} ({what}), found {v}"),
        ));
    }
    Ok(())
}

impl PlanConfig {
    /// Checks every field; names are relative to `[sim.cluster.plan]`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(p) = self.partitions {
            in_range("partitions", p, 1, MAX_PARTITIONS)?;
        }
        finite_above("xp", self.xp, 0.0, true, "memory needed per byte of data")?;
        if self.xp > 1000.0 {
            return Err(FieldError::new(
                "xp",
                format!("must be at most 1000, found {}", self.xp),
            ));
        }
        finite_above(
            "advisory_mb",
            self.advisory_mb,
            0.0,
            true,
            "the target partition size",
        )?;
        finite_above("min_partition_mb", self.min_partition_mb, 0.0, false, "MB")?;
        finite_above(
            "skew_factor",
            self.skew_factor,
            1.0,
            false,
            "a partition is skewed when larger than this many medians",
        )?;
        finite_above(
            "skew_threshold_mb",
            self.skew_threshold_mb,
            0.0,
            false,
            "MB",
        )?;
        Ok(())
    }

    /// The short name of this planner with the parameters that differ from the defaults,
    /// as a spec suffix writes it (`dscs-skew[partitions=20]`).
    pub fn label(&self) -> String {
        let d = Self::default();
        let mut p = Vec::new();
        if let Some(n) = self.partitions {
            p.push(format!("partitions={n}"));
        }
        let mut f = |name: &str, v: f64, dv: f64| {
            if v != dv {
                p.push(format!("{name}={v}"));
            }
        };
        f("xp", self.xp, d.xp);
        f("advisory_mb", self.advisory_mb, d.advisory_mb);
        f(
            "min_partition_mb",
            self.min_partition_mb,
            d.min_partition_mb,
        );
        f("skew_factor", self.skew_factor, d.skew_factor);
        f(
            "skew_threshold_mb",
            self.skew_threshold_mb,
            d.skew_threshold_mb,
        );
        if self.parallelism_first != d.parallelism_first {
            p.push(format!("parallelism_first={}", self.parallelism_first));
        }
        if self.skew_joins_only != d.skew_joins_only {
            p.push(format!("skew_joins_only={}", self.skew_joins_only));
        }
        if p.is_empty() {
            self.planner.name().to_string()
        } else {
            format!("{}[{}]", self.planner.name(), p.join(","))
        }
    }
}

/// A key of a shuffle: its hash (the partitioner's input) and its bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    pub hash: u64,
    pub bytes: f64,
}

/// What a planner knows of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// tcn: task slots.
    pub slots: u32,
    /// tms: execution memory of every executor together, bytes.
    pub memory_bytes: f64,
    /// The host of each reducer (one per slot), strongest first.
    pub by_capacity: Vec<u16>,
    /// The host of each reducer (one per slot) in the cluster's own slot order.
    pub by_index: Vec<u16>,
}

/// A stage as its planner sees it at submission.
#[derive(Debug, Clone, Copy)]
pub struct StageInput<'a> {
    /// Its keys (generated data), or empty when the data has no key-level detail
    /// (measured per-task bytes): then each partition below is one unsplittable unit.
    pub keys: &'a [Key],
    /// Its partitions' bytes as the trace cut them.
    pub partitions: &'a [f64],
    /// It joins two or more shuffles (AQE's skew split applies to joins).
    pub join: bool,
}

/// A planner's result: the stage's tasks (bytes each) and, when it assigns buckets to
/// reducers, each task's host (tasks sorted in the order the host runs them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StagePlan {
    pub tasks: Vec<f64>,
    pub hosts: Vec<u16>,
    /// DSCS's intermediate numbers, for reports and tests (0 where a step did not run).
    pub pa0: u32,
    pub tskn: u32,
    pub pa1: u32,
    pub alpha: u32,
    pub pa2: u32,
}

/// DSCS algorithm 1: the initial parallelism Pa0 of a stage whose parents wrote
/// `parent_bytes`, on `tcn` slots with `tms` bytes of execution memory.
pub fn initial_parallelism(parent_bytes: f64, tms: f64, tcn: u32, xp: f64) -> u32 {
    let tcn = tcn.max(1);
    if tms <= 0.0 {
        return tcn;
    }
    // Tasks needed so that each task's need, xp × its data, fits tms / tcn.
    let ratio = xp * parent_bytes * f64::from(tcn) / tms;
    if ratio <= 1.0 {
        return tcn;
    }
    let waves = (ratio / f64::from(tcn)).ceil().max(1.0);
    (waves * f64::from(tcn)).min(f64::from(MAX_PARTITIONS)) as u32
}

/// The skew of a key of `bytes` among keys of mean `mean` (0 for keys at or below it).
pub fn key_skew(bytes: f64, mean: f64) -> f64 {
    if mean <= 0.0 || bytes <= mean {
        0.0
    } else {
        ((bytes - mean) / mean).powi(2)
    }
}

/// DSCS algorithm 2: the keys to split (index into `keys`, sub-keys) and tskn, their sum:
/// keys above the mean whose memory need (xp × bytes) exceeds a slot's share (tms / tcn).
pub fn split_keys(keys: &[Key], tms: f64, tcn: u32, xp: f64, out: &mut Vec<(usize, u32)>) -> u32 {
    out.clear();
    if keys.is_empty() {
        return 0;
    }
    let mean = keys.iter().map(|k| k.bytes).sum::<f64>() / keys.len() as f64;
    let share = tms / f64::from(tcn.max(1));
    let mut tskn = 0u32;
    for (i, k) in keys.iter().enumerate() {
        if key_skew(k.bytes, mean) > 0.0 && xp * k.bytes > share {
            let m = ((xp * k.bytes / share).ceil() as u32).clamp(2, MAX_PARTITIONS);
            out.push((i, m));
            tskn = tskn.saturating_add(m);
        }
    }
    tskn
}

/// Bucket sizes: key `k` to bucket `hash mod P`; a split key's sub-key i to
/// `(hash + i) mod P` with an equal share of its bytes. `split` is sorted by key index.
pub fn bucket_sizes(keys: &[Key], split: &[(usize, u32)], out: &mut [f64]) {
    out.fill(0.0);
    let p = out.len() as u64;
    if p == 0 {
        return;
    }
    let mut next = split.iter().peekable();
    for (i, k) in keys.iter().enumerate() {
        let m = match next.peek() {
            Some(&&(j, m)) if j == i => {
                next.next();
                m
            }
            _ => 1,
        };
        let share = k.bytes / f64::from(m);
        for s in 0..u64::from(m) {
            out[(k.hash.wrapping_add(s) % p) as usize] += share;
        }
    }
}

/// DSCS algorithm 3's rounds for `buckets` buckets on `tcn` reducers: (α, Pa2 = α × tcn),
/// with (α − 1) × tcn < buckets ≤ α × tcn.
pub fn rounds(buckets: u32, tcn: u32) -> (u32, u32) {
    let tcn = tcn.max(1);
    let alpha = buckets.div_ceil(tcn).max(1);
    (alpha, alpha * tcn)
}

/// DSCS algorithm 3: the buckets in the order they run (largest first, ties to the lower
/// index) and the reducer of each (position r goes to reducer `r mod tcn`, reducers
/// strongest first, so the last, partial round lands on the strongest).
pub fn assign_by_capacity(sizes: &[f64], tcn: u32, order: &mut Vec<u32>, reducer: &mut Vec<u32>) {
    order.clear();
    order.extend(0..sizes.len() as u32);
    order.sort_by(|&a, &b| {
        sizes[b as usize]
            .total_cmp(&sizes[a as usize])
            .then(a.cmp(&b))
    });
    reducer.clear();
    reducer.extend((0..sizes.len() as u32).map(|r| r % tcn.max(1)));
}

/// Spark's AQE on a shuffle's partitions: skewed partitions of a join split
/// (`OptimizeSkewedJoin`), the others coalesced in order (`ShufflePartitionsUtil`).
/// `parallelism` is Spark's default parallelism (the cluster's slots).
pub fn aqe(parts: &[f64], cfg: &PlanConfig, parallelism: u32, join: bool, out: &mut Vec<f64>) {
    out.clear();
    if parts.is_empty() {
        return;
    }
    let total: f64 = parts.iter().sum();
    let advisory = cfg.advisory_mb * MB;
    let min_size = cfg.min_partition_mb * MB;
    // coalescePartitions: with parallelismFirst, at most total / default parallelism, but
    // never below the minimum partition size (16 bytes without it, as Spark has it).
    let target = if cfg.parallelism_first {
        let max_target = (total / f64::from(parallelism.max(1))).ceil().max(16.0);
        advisory.min(max_target).max(min_size)
    } else {
        advisory
    };
    let skewed = |p: f64, median: f64| -> bool {
        (join || !cfg.skew_joins_only)
            && p > cfg.skew_factor * median
            && p > cfg.skew_threshold_mb * MB
    };
    let median = {
        let mut v = parts.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    // OptimizeSkewedJoin's split target: the advisory size or the mean of the
    // non-skewed partitions, whichever is larger.
    let (mut sum, mut count) = (0.0, 0usize);
    for &p in parts {
        if !skewed(p, median) {
            sum += p;
            count += 1;
        }
    }
    let split_target = advisory.max(if count > 0 { sum / count as f64 } else { 0.0 });
    let mut group: Option<f64> = None;
    for &p in parts {
        if skewed(p, median) {
            if let Some(g) = group.take() {
                out.push(g);
            }
            let pieces = (p / split_target).ceil().max(1.0) as usize;
            out.extend(std::iter::repeat_n(p / pieces as f64, pieces));
            continue;
        }
        group = match group {
            Some(g) if g + p > target => {
                out.push(g);
                Some(p)
            }
            Some(g) => Some(g + p),
            None => Some(p),
        };
    }
    if let Some(g) = group {
        out.push(g);
    }
    // Spark merges a coalesced partition smaller than the minimum size into a neighbour.
    if min_size > 0.0 && out.len() > 1 {
        let mut k = 0;
        while k < out.len() && out.len() > 1 {
            if out[k] < min_size {
                let v = out.remove(k);
                let into = if k > 0 { k - 1 } else { 0 };
                out[into] += v;
                k = into;
            } else {
                k += 1;
            }
        }
    }
}

/// Even re-cut of measured partitions into `n` (data with no key-level detail).
pub fn recut(old: &[f64], parts: &mut [f64]) {
    let (n, m) = (old.len() as f64, parts.len() as f64);
    for (k, p) in parts.iter_mut().enumerate() {
        let (lo, hi) = (k as f64 * n / m, (k + 1) as f64 * n / m);
        let mut sum = 0.0;
        let mut i = lo.floor() as usize;
        while i < old.len() && (i as f64) < hi {
            let overlap = hi.min(i as f64 + 1.0) - lo.max(i as f64);
            sum += old[i] * overlap.max(0.0);
            i += 1;
        }
        *p = sum;
    }
}

/// Cuts the stage's data into `p` tasks: keys hashed, or measured partitions re-cut.
fn cut(input: &StageInput, p: u32, out: &mut Vec<f64>) {
    out.clear();
    out.resize(p as usize, 0.0);
    if input.keys.is_empty() {
        recut(input.partitions, out);
    } else {
        bucket_sizes(input.keys, &[], out);
    }
}

/// DSCS's partition count before salting: Pa0 (algorithm 1) for the planners that
/// estimate it, else `given`; with whether it is Pa0.
fn dscs_base(cfg: &PlanConfig, total: f64, tms: f64, tcn: u32, given: u32) -> (u32, bool) {
    if matches!(
        cfg.planner,
        PlannerKind::Dscs | PlannerKind::DscsParallelism
    ) {
        (initial_parallelism(total, tms, tcn, cfg.xp), true)
    } else {
        (given.max(1), false)
    }
}

/// DSCS's algorithm 2 (for the planners that salt) on `base` partitions: the split keys,
/// tskn, and the bucket sizes of the Pa1 = base + tskn partitions.
fn dscs_buckets(
    cfg: &PlanConfig,
    keys: &[Key],
    base: u32,
    tms: f64,
    tcn: u32,
) -> (Vec<(usize, u32)>, u32, Vec<f64>) {
    let mut split = Vec::new();
    let tskn = if matches!(cfg.planner, PlannerKind::Dscs | PlannerKind::DscsSkew) {
        split_keys(keys, tms, tcn, cfg.xp, &mut split)
    } else {
        0
    };
    let p = base.saturating_add(tskn).min(MAX_PARTITIONS);
    let mut buckets = vec![0.0; p as usize];
    bucket_sizes(keys, &split, &mut buckets);
    (split, tskn, buckets)
}

/// Plans one shuffle stage. Returns `None` when the planner leaves it as the trace cut it.
pub fn plan(cfg: &PlanConfig, input: &StageInput, facts: &ClusterFacts) -> Option<StagePlan> {
    use PlannerKind as K;
    let tcn = facts.slots.max(1);
    let tms = facts.memory_bytes;
    let total: f64 = input.partitions.iter().sum();
    let own = input.partitions.len() as u32;
    let mut out = StagePlan::default();
    match cfg.planner {
        K::Trace => return None,
        K::Fixed => {
            let p = cfg.partitions.unwrap_or(SPARK_DEFAULT_PARTITIONS);
            cut(input, p, &mut out.tasks);
        }
        K::Aqe => {
            let p = cfg.partitions.unwrap_or(SPARK_DEFAULT_PARTITIONS);
            let mut initial = Vec::new();
            cut(input, p, &mut initial);
            aqe(&initial, cfg, tcn, input.join, &mut out.tasks);
        }
        K::Dscs | K::DscsParallelism | K::DscsSkew | K::DscsAssign | K::OneToOne => {
            let (base, is_pa0) = dscs_base(cfg, total, tms, tcn, cfg.partitions.unwrap_or(own));
            if is_pa0 {
                out.pa0 = base;
            }
            // Data measured without keys: re-cut into the base count first, each piece an
            // unsplittable key of its own bucket (hash = index), so that only salting
            // moves its bytes.
            let keys_buf: Vec<Key>;
            let keys = if input.keys.is_empty() {
                let mut pieces = vec![0.0; base as usize];
                recut(input.partitions, &mut pieces);
                keys_buf = pieces
                    .iter()
                    .enumerate()
                    .map(|(i, &bytes)| Key {
                        hash: i as u64,
                        bytes,
                    })
                    .collect();
                &keys_buf[..]
            } else {
                input.keys
            };
            let (_, tskn, buckets) = dscs_buckets(cfg, keys, base, tms, tcn);
            let p = buckets.len() as u32;
            out.tasks = buckets;
            if matches!(cfg.planner, K::Dscs | K::DscsSkew) {
                (out.tskn, out.pa1) = (tskn, p);
            }
            if matches!(cfg.planner, K::Dscs | K::DscsAssign | K::OneToOne) {
                let (alpha, pa2) = rounds(p, tcn);
                (out.alpha, out.pa2) = (alpha, pa2);
                let (mut order, mut reducer) = (Vec::new(), Vec::new());
                let hosts = if cfg.planner == K::OneToOne {
                    order.extend(0..p);
                    reducer.extend((0..p).map(|r| r % tcn));
                    &facts.by_index
                } else {
                    assign_by_capacity(&out.tasks, tcn, &mut order, &mut reducer);
                    &facts.by_capacity
                };
                let sizes = std::mem::take(&mut out.tasks);
                out.tasks = order.iter().map(|&b| sizes[b as usize]).collect();
                out.hosts = reducer
                    .iter()
                    .map(|&r| hosts.get(r as usize).copied().unwrap_or(0))
                    .collect();
            }
        }
    }
    Some(out)
}

/// A shuffle's keys as a sampling pass over a real job measures them (`mpda plan`): the
/// heavy keys by name, and how many keys and bytes there are in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySample {
    pub total_bytes: f64,
    pub distinct_keys: u64,
    pub keys: Vec<NamedKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKey {
    pub key: String,
    pub bytes: f64,
}

impl KeySample {
    pub fn validate(&self) -> Result<(), FieldError> {
        finite_above("total_bytes", self.total_bytes, 0.0, false, "bytes")?;
        if self.distinct_keys == 0 || self.distinct_keys < self.keys.len() as u64 {
            return Err(FieldError::new(
                "distinct_keys",
                format!(
                    "must be at least 1 and at least the {} keys listed, found {}",
                    self.keys.len(),
                    self.distinct_keys
                ),
            ));
        }
        let mut listed = 0.0;
        for (i, k) in self.keys.iter().enumerate() {
            finite_above(&format!("keys[{i}].bytes"), k.bytes, 0.0, false, "bytes")?;
            listed += k.bytes;
        }
        if listed > self.total_bytes * (1.0 + 1e-9) {
            return Err(FieldError::new(
                "total_bytes",
                format!(
                    "{} is less than the listed keys' {listed}",
                    self.total_bytes
                ),
            ));
        }
        Ok(())
    }

    /// The keys as planners take them: the listed keys hashed as Java's `String.hashCode`
    /// (Spark's HashPartitioner on string keys), then the unlisted ones as equal keys.
    pub fn keys(&self) -> Vec<Key> {
        let listed: f64 = self.keys.iter().map(|k| k.bytes).sum();
        let rest = self.distinct_keys - self.keys.len() as u64;
        let mut out: Vec<Key> = self
            .keys
            .iter()
            .map(|k| Key {
                hash: u64::from(java_string_hash(&k.key)),
                bytes: k.bytes,
            })
            .collect();
        if rest > 0 {
            let each = (self.total_bytes - listed).max(0.0) / rest as f64;
            // At most a million stand-ins: enough to spread the light keys over buckets.
            let n = rest.min(1_000_000);
            let each = each * rest as f64 / n as f64;
            out.extend((0..n).map(|i| Key {
                hash: i,
                bytes: each,
            }));
        }
        out
    }
}

/// Java's `String.hashCode`, as an unsigned value (Spark's `nonNegativeMod` differs for
/// negative hashes; bucket sizes are then an approximation of Spark's placement).
pub fn java_string_hash(s: &str) -> u32 {
    let h = s
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    h.unsigned_abs()
}

/// What `mpda plan` prints: a DSCS plan for a sampled shuffle on a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct KeyPlan {
    pub planner: String,
    pub slots: u32,
    pub execution_mb: f64,
    pub pa0: u32,
    pub tskn: u32,
    pub partitions: u32,
    pub alpha: u32,
    pub pa2: u32,
    /// The keys to salt and their sub-key counts (`--salt key=m` for the job).
    pub salt: Vec<(String, u32)>,
    pub largest_task_mb: f64,
    pub mean_task_mb: f64,
}

/// DSCS's numbers for a sampled shuffle (parallelism, salting, rounds) on `slots` slots
/// with `execution_mb` of execution memory in all.
pub fn plan_sample(cfg: &PlanConfig, sample: &KeySample, slots: u32, execution_mb: f64) -> KeyPlan {
    let keys = sample.keys();
    let tms = execution_mb * MB;
    let tcn = slots.max(1);
    let given = cfg.partitions.unwrap_or(SPARK_DEFAULT_PARTITIONS);
    let (pa0, _) = dscs_base(cfg, sample.total_bytes, tms, tcn, given);
    let (split, tskn, buckets) = dscs_buckets(cfg, &keys, pa0, tms, tcn);
    let p = buckets.len() as u32;
    let (alpha, pa2) = rounds(p, tcn);
    KeyPlan {
        planner: cfg.label(),
        slots: tcn,
        execution_mb,
        pa0,
        tskn,
        partitions: p,
        alpha,
        pa2,
        salt: split
            .iter()
            .map(|&(i, m)| (sample.keys[i].key.clone(), m))
            .collect(),
        largest_task_mb: buckets.iter().copied().fold(0.0, f64::max) / MB,
        mean_task_mb: sample.total_bytes / f64::from(p) / MB,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: f64 = 1024.0 * MB;

    fn keys(sizes: &[f64]) -> Vec<Key> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &b)| Key {
                hash: i as u64,
                bytes: b,
            })
            .collect()
    }

    #[test]
    fn pa0_is_the_cores_when_the_data_fits_else_whole_waves_that_fit() {
        // 8 slots, 8 GB of execution memory: 1 GB per slot.
        // 100 MB × 2 × 8 / 8 GB = 0.195 <= 1: one wave.
        assert_eq!(initial_parallelism(100.0 * MB, 8.0 * GB, 8, 2.0), 8);
        // 3 GB × 2 = 6 GB of need, 1 GB per slot: 6 tasks fit; still one wave of 8.
        assert_eq!(initial_parallelism(3.0 * GB, 8.0 * GB, 8, 2.0), 8);
        // 20 GB × 2 = 40 GB: 40 tasks of 1 GB → 5 waves of 8.
        assert_eq!(initial_parallelism(20.0 * GB, 8.0 * GB, 8, 2.0), 40);
        // 21 GB × 2 = 42 tasks → 6 waves = 48.
        assert_eq!(initial_parallelism(21.0 * GB, 8.0 * GB, 8, 2.0), 48);
        // xp = 3 needs more.
        assert_eq!(initial_parallelism(20.0 * GB, 8.0 * GB, 8, 3.0), 64);
    }

    #[test]
    fn heavy_keys_above_a_slots_memory_are_split_and_counted() {
        // 4 slots, 4 GB: 1 GB per slot. Mean of the keys = (3 + 0.5 + 0.25 + 0.25) / 4 = 1 GB.
        let k = keys(&[3.0 * GB, 0.5 * GB, 0.25 * GB, 0.25 * GB]);
        let mut split = Vec::new();
        let tskn = split_keys(&k, 4.0 * GB, 4, 2.0, &mut split);
        // Key 0: skew ((3 - 1) / 1)^2 = 4 > 0 and 3 GB > 1 GB: 2 × 3 / 1 = 6 sub-keys.
        assert_eq!(split, vec![(0, 6)]);
        assert_eq!(tskn, 6);
        assert_eq!(key_skew(3.0, 1.0), 4.0);
        assert_eq!(key_skew(0.5, 1.0), 0.0);
        // A large key that is not above the mean (uniform keys) is never split.
        let even = keys(&[2.0 * GB; 4]);
        assert_eq!(split_keys(&even, 4.0 * GB, 4, 2.0, &mut split), 0);
        assert!(split.is_empty());
        // Pa1 = Pa0 + tskn in a whole plan.
        let facts = ClusterFacts {
            slots: 4,
            memory_bytes: 4.0 * GB,
            by_capacity: vec![0, 0, 1, 1],
            by_index: vec![0, 0, 1, 1],
        };
        let input = StageInput {
            keys: &k,
            partitions: &[4.0 * GB],
            join: false,
        };
        let cfg = PlanConfig {
            planner: PlannerKind::DscsSkew,
            partitions: Some(4),
            ..PlanConfig::default()
        };
        let p = plan(&cfg, &input, &facts).unwrap();
        assert_eq!((p.tskn, p.pa1, p.tasks.len()), (6, 10, 10));
    }

    #[test]
    fn buckets_follow_the_hash_and_sub_keys_spread() {
        let k = keys(&[60.0, 10.0, 20.0, 30.0, 5.0]);
        let mut b = vec![0.0; 4];
        // hash = index: bucket 0 gets keys 0 and 4, 1 gets 1, 2 gets 2, 3 gets 3.
        bucket_sizes(&k, &[], &mut b);
        assert_eq!(b, vec![65.0, 10.0, 20.0, 30.0]);
        // Key 0 split in 3: 20 each to buckets 0, 1, 2.
        bucket_sizes(&k, &[(0, 3)], &mut b);
        assert_eq!(b, vec![25.0, 30.0, 40.0, 30.0]);
        // Key 3 split in 2 wraps: buckets 3 and 0.
        bucket_sizes(&k, &[(3, 2)], &mut b);
        assert_eq!(b, vec![80.0, 10.0, 20.0, 15.0]);
        let total: f64 = b.iter().sum();
        assert_eq!(total, 125.0);
    }

    #[test]
    fn rounds_and_the_bucket_to_reducer_map() {
        assert_eq!(rounds(10, 4), (3, 12));
        assert_eq!(rounds(8, 4), (2, 8));
        assert_eq!(rounds(3, 4), (1, 4));
        // Sizes of 6 buckets on 4 reducers (strongest first): sorted 60, 50, 40, 30 | 20, 10.
        let sizes = [30.0, 60.0, 10.0, 50.0, 20.0, 40.0];
        let (mut order, mut reducer) = (Vec::new(), Vec::new());
        assign_by_capacity(&sizes, 4, &mut order, &mut reducer);
        assert_eq!(order, vec![1, 3, 5, 0, 4, 2]);
        assert_eq!(reducer, vec![0, 1, 2, 3, 0, 1]);
        // In a whole plan: reducers 0, 1 on host 7 (strong), 2, 3 on host 2 (weak).
        let facts = ClusterFacts {
            slots: 4,
            memory_bytes: 1e12,
            by_capacity: vec![7, 7, 2, 2],
            by_index: vec![2, 2, 7, 7],
        };
        let k = keys(&sizes);
        let input = StageInput {
            keys: &k,
            partitions: &sizes,
            join: false,
        };
        let cfg = PlanConfig {
            planner: PlannerKind::DscsAssign,
            partitions: Some(6),
            ..PlanConfig::default()
        };
        let p = plan(&cfg, &input, &facts).unwrap();
        assert_eq!(p.tasks, vec![60.0, 50.0, 40.0, 30.0, 20.0, 10.0]);
        assert_eq!(p.hosts, vec![7, 7, 2, 2, 7, 7]);
        assert_eq!((p.alpha, p.pa2), (2, 8));
        // One-to-one: bucket order kept, reducers in slot order.
        let cfg = PlanConfig {
            planner: PlannerKind::OneToOne,
            ..cfg
        };
        let p = plan(&cfg, &input, &facts).unwrap();
        assert_eq!(p.tasks, sizes.to_vec());
        assert_eq!(p.hosts, vec![2, 2, 7, 7, 2, 2]);
    }

    #[test]
    fn dscs_runs_all_three_steps() {
        // 4 slots, 4 GB (1 GB per slot); 8 keys: one of 3 GB, seven of 0.5 GB = 6.5 GB.
        let mut sizes = vec![3.0 * GB];
        sizes.extend([0.5 * GB; 7]);
        let k = keys(&sizes);
        let facts = ClusterFacts {
            slots: 4,
            memory_bytes: 4.0 * GB,
            by_capacity: vec![1, 1, 0, 0],
            by_index: vec![0, 0, 1, 1],
        };
        let input = StageInput {
            keys: &k,
            partitions: &[6.5 * GB],
            join: false,
        };
        let p = plan(
            &PlanConfig {
                planner: PlannerKind::Dscs,
                ..PlanConfig::default()
            },
            &input,
            &facts,
        )
        .unwrap();
        // Pa0: 2 × 6.5 GB × 4 / 4 GB = 13 → 4 waves = 16. Key 0 (mean 0.8125 GB): 6 sub-keys.
        assert_eq!(p.pa0, 16);
        assert_eq!(p.tskn, 6);
        assert_eq!(p.pa1, 22);
        assert_eq!((p.alpha, p.pa2), (6, 24));
        assert_eq!(p.tasks.len(), 22);
        assert!((p.tasks.iter().sum::<f64>() - 6.5 * GB).abs() < 1.0);
        // Largest first, and no task above the largest sub-key or small key.
        assert!(p.tasks.windows(2).all(|w| w[0] >= w[1]));
        // Key 0's six sub-keys share buckets 0-5 with keys 1-5 (hash = index): the
        // largest task is 1 GB, against 3.5 GB for bucket 0 without the split.
        assert!((p.tasks[0] - 1.0 * GB).abs() < 1.0);
        assert_eq!(&p.hosts[..4], &[1, 1, 0, 0]);
        // The last partial round (22 - 20 = 2 buckets) goes to the strongest reducers.
        assert_eq!(&p.hosts[20..], &[1, 1]);
    }

    #[test]
    fn aqe_coalesces_to_the_target_and_splits_skewed_joins() {
        let cfg = PlanConfig {
            planner: PlannerKind::Aqe,
            ..PlanConfig::default()
        };
        // 10 partitions of 10 MB on 2 slots: target min(64 MB, 100 MB / 2 = 50 MB) = 50 MB.
        let parts = [10.0 * MB; 10];
        let mut out = Vec::new();
        aqe(&parts, &cfg, 2, false, &mut out);
        assert_eq!(out, vec![50.0 * MB, 50.0 * MB]);
        // Without parallelismFirst: 64 MB groups (6 partitions, then 4).
        let no_pf = PlanConfig {
            parallelism_first: false,
            ..cfg.clone()
        };
        aqe(&parts, &no_pf, 2, false, &mut out);
        assert_eq!(out, vec![60.0 * MB, 40.0 * MB]);
        // A skewed partition (1 GB > 5 × median 10 MB and > 256 MB) of a join: split into
        // ceil(1024 / 64) = 16 pieces; not split when the stage is no join.
        let mut skewed = vec![10.0 * MB; 9];
        skewed.insert(4, 1024.0 * MB);
        aqe(&skewed, &no_pf, 64, true, &mut out);
        assert_eq!(out.len(), 1 + 16 + 1);
        assert_eq!(out[1], 64.0 * MB);
        assert_eq!(out[0], 40.0 * MB);
        aqe(&skewed, &no_pf, 64, false, &mut out);
        assert_eq!(out, vec![40.0 * MB, 1024.0 * MB, 50.0 * MB]);
        // Tiny partitions below the minimum size merge into a neighbour.
        let tiny = [0.1 * MB, 0.1 * MB];
        aqe(&tiny, &cfg, 64, false, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_sampled_shuffle_gets_its_salt_list() {
        // Java: "a".hashCode() = 97, "hello".hashCode() = 99162322.
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // 4 slots, 4 GB: 1 GB per slot. 10 GB over 1000 keys: "hot" 3 GB, "warm" 0.4 GB.
        let sample = KeySample {
            total_bytes: 10.0 * GB,
            distinct_keys: 1000,
            keys: vec![
                NamedKey {
                    key: "hot".into(),
                    bytes: 3.0 * GB,
                },
                NamedKey {
                    key: "warm".into(),
                    bytes: 0.4 * GB,
                },
            ],
        };
        sample.validate().unwrap();
        assert_eq!(sample.keys().len(), 1000);
        let cfg = PlanConfig {
            planner: PlannerKind::Dscs,
            ..PlanConfig::default()
        };
        let p = plan_sample(&cfg, &sample, 4, 4096.0);
        // Pa0: 2 × 10 × 4 / 4 = 20 → 5 waves of 4. "hot": 2 × 3 / 1 → 6 sub-keys; "warm":
        // 0.8 GB of need fits 1 GB, kept whole.
        assert_eq!((p.pa0, p.tskn, p.partitions), (20, 6, 26));
        assert_eq!(p.salt, vec![("hot".to_string(), 6)]);
        assert_eq!((p.alpha, p.pa2), (7, 28));
        assert!(p.largest_task_mb < 1024.0, "{}", p.largest_task_mb);
        // Bad samples name the field.
        let bad = KeySample {
            distinct_keys: 1,
            ..sample.clone()
        };
        assert_eq!(bad.validate().unwrap_err().field, "distinct_keys");
        let bad = KeySample {
            total_bytes: 1.0,
            ..sample.clone()
        };
        assert_eq!(bad.validate().unwrap_err().field, "total_bytes");
        let mut bad = sample;
        bad.keys[1].bytes = f64::NAN;
        assert_eq!(bad.validate().unwrap_err().field, "keys[1].bytes");
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let bad = |f: &dyn Fn(&mut PlanConfig)| {
            let mut c = PlanConfig::default();
            f(&mut c);
            c.validate().unwrap_err().field
        };
        assert_eq!(bad(&|c| c.xp = 0.0), "xp");
        assert_eq!(bad(&|c| c.xp = -1.0), "xp");
        assert_eq!(bad(&|c| c.advisory_mb = 0.0), "advisory_mb");
        assert_eq!(bad(&|c| c.skew_factor = 0.5), "skew_factor");
        assert_eq!(bad(&|c| c.partitions = Some(0)), "partitions");
        assert_eq!(bad(&|c| c.xp = f64::NAN), "xp");
        assert!(PlanConfig::default().validate().is_ok());
    }
}
