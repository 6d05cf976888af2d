//! MPDA's optional third action branch: when the policy first gives slots to a shuffle
//! stage (a stage whose partitions may still change, `StageData::partitionable`), it also
//! chooses the stage's partition count, or a split of its heaviest task, among a small set
//! of levels. This is the learned counterpart of DSCS's parallelism estimation and skew
//! correction and of AQE's coalescing and skew split.
//!
//! Every level is a change Spark can make on the read side of a shuffle that was already
//! written: fewer partitions coalesce adjacent ones (AQE's coalescing), more partitions
//! read each partition in map-output ranges (AQE's `PartialReducerPartitionSpec`), and a
//! split cuts the heaviest partitions into pieces that fit a slot's memory (AQE's skew
//! split). None changes what the map side writes.
//!
//! The levels are part of the model (`PolicyConfig::partition_levels`); this file turns a
//! level into its input features for the head and into the simulator's action.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sim::spark::MAX_STAGE_TASKS;
use crate::sim::{Action, Observation};

/// Features of one (stage, level) row of the partition head, after the stage's own row.
pub const PART_FEATURES: usize = 4;
/// Most pieces a split cuts the heaviest task into.
pub const MAX_SPLIT: u32 = 64;

/// One choice of the partition branch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PartitionLevel {
    /// Leave the stage's partitions as they are.
    Keep,
    /// `round(factor × task slots)` partitions: whole waves of the cluster, DSCS's Pa0
    /// when the factor is 1.
    Slots(f64),
    /// Split each of the heaviest tasks (up to `HEAVY_TASKS`) above twice a piece into
    /// pieces of the mean task's size, or of half a slot's execution memory if smaller
    /// (at most [`MAX_SPLIT`] each).
    Split,
}

/// The levels a model gets with `partition = true`: keep, 1, 2, 4 and 8 waves, and a
/// skew split.
pub fn default_levels() -> Vec<PartitionLevel> {
    vec![
        PartitionLevel::Keep,
        PartitionLevel::Slots(1.0),
        PartitionLevel::Slots(2.0),
        PartitionLevel::Slots(4.0),
        PartitionLevel::Slots(8.0),
        PartitionLevel::Split,
    ]
}

impl fmt::Display for PartitionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionLevel::Keep => write!(f, "keep"),
            PartitionLevel::Slots(x) => write!(f, "slots*{x}"),
            PartitionLevel::Split => write!(f, "split"),
        }
    }
}

impl FromStr for PartitionLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(PartitionLevel::Keep),
            "split" => Ok(PartitionLevel::Split),
            _ => {
                let x = s
                    .strip_prefix("slots*")
                    .and_then(|x| x.parse::<f64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "unknown partition level \"{s}\" (expected keep, split or slots*F with F > 0)"
                        )
                    })?;
                if !(x.is_finite() && x > 0.0 && x <= 1000.0) {
                    return Err(format!(
                        "partition level \"{s}\": the factor must be in (0, 1000]"
                    ));
                }
                Ok(PartitionLevel::Slots(x))
            }
        }
    }
}

impl Serialize for PartitionLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PartitionLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a model's level list: not empty, no repeats.
pub fn validate_levels(levels: &[PartitionLevel]) -> Result<(), String> {
    if levels.is_empty() {
        return Err("partition_levels must hold at least one level".into());
    }
    for (i, a) in levels.iter().enumerate() {
        if levels[..i].contains(a) {
            return Err(format!("partition_levels[{i}]: \"{a}\" is listed twice"));
        }
    }
    Ok(())
}

/// What the stage looks like to the branch: its tasks, bytes and largest tasks, and the
/// cluster's slots and execution memory per slot.
#[derive(Debug, Clone, Copy)]
struct StageShape<'a> {
    tasks: u32,
    bytes: f64,
    max_task: f64,
    heavy: &'a [(u32, f64)],
    slots: f64,
    memory_per_slot: f64,
}

fn shape(obs: &Observation, s: usize) -> Option<StageShape<'_>> {
    let d = obs.stage_data.get(s)?;
    if !d.partitionable {
        return None;
    }
    let (slots, memory) = obs.hosts.iter().fold((0.0, 0.0), |(n, m), h| {
        (n + f64::from(h.slots), m + h.execution_bytes)
    });
    Some(StageShape {
        tasks: obs.stages[s].num_tasks.max(1),
        bytes: d.bytes,
        max_task: d.max_task_bytes(),
        heavy: d.heavy_tasks(),
        slots: f64::from(obs.exec_cap).max(slots).max(1.0),
        memory_per_slot: if slots > 0.0 { memory / slots } else { 0.0 },
    })
}

/// The skew split: each listed task above twice the piece size is cut into pieces of
/// about that size (at most [`MAX_SPLIT`]), as AQE splits every skewed partition into
/// pieces of its advisory size. The piece is the mean task, or half a slot's execution
/// memory if that is smaller (DSCS's xp = 2: a task needs twice its data), so that a piece
/// runs without spilling. Calls `cut(task, parts)` for each, largest first, and returns
/// the largest task left after the split (a listed task not cut, or the smallest listed
/// one when all were: an upper bound for the tasks not listed).
fn split_tasks(sh: &StageShape, mut cut: impl FnMut(u32, u32)) -> f64 {
    let mean = sh.bytes / f64::from(sh.tasks);
    let piece = if sh.memory_per_slot > 0.0 {
        mean.min(sh.memory_per_slot / 2.0)
    } else {
        mean
    };
    let mut room = MAX_STAGE_TASKS.saturating_sub(sh.tasks);
    let mut largest: f64 = 0.0;
    for &(task, bytes) in sh.heavy {
        let parts = if piece > 0.0 && bytes > 2.0 * piece {
            ((bytes / piece).ceil() as u32).min(MAX_SPLIT).min(room + 1)
        } else {
            1
        };
        if parts >= 2 {
            room -= parts - 1;
            cut(task, parts);
            largest = largest.max(bytes / f64::from(parts));
        } else {
            // Listed largest first: the first task not cut bounds all the rest.
            return largest.max(bytes);
        }
    }
    largest.max(sh.heavy.last().map_or(sh.max_task, |h| h.1))
}

/// Partitions after a level; `None` for a split.
fn partitions(sh: &StageShape, level: PartitionLevel) -> Option<u32> {
    match level {
        PartitionLevel::Keep => Some(sh.tasks),
        PartitionLevel::Slots(x) => Some(((x * sh.slots).round() as u32).clamp(1, MAX_STAGE_TASKS)),
        PartitionLevel::Split => None,
    }
}

/// Whether stage `s` of `obs` gets a partition decision now.
pub fn eligible(obs: &Observation, s: usize) -> bool {
    shape(obs, s).is_some()
}

/// The head's input features of `level` for stage `s` (which must be [`eligible`]):
/// the change in task count (log), the waves of the cluster it makes, the largest task's
/// bytes over a slot's execution memory after the change (what decides spill), and
/// whether it is a split.
pub fn level_features(obs: &Observation, s: usize, level: PartitionLevel) -> [f32; PART_FEATURES] {
    shape(obs, s).map_or([0.0; PART_FEATURES], |sh| features(sh, level))
}

/// Appends the features of every level of `levels` for stage `s` to `out` (the partition
/// head's rows, in order) and returns true, or appends nothing and returns false when the
/// stage gets no partition decision.
pub fn push_level_features(
    obs: &Observation,
    s: usize,
    levels: &[PartitionLevel],
    out: &mut Vec<f32>,
) -> bool {
    let Some(sh) = shape(obs, s) else {
        return false;
    };
    for &level in levels {
        out.extend_from_slice(&features(sh, level));
    }
    true
}

fn features(sh: StageShape, level: PartitionLevel) -> [f32; PART_FEATURES] {
    let n = f64::from(sh.tasks);
    let (after, largest) = match partitions(&sh, level) {
        Some(p) => {
            let p = f64::from(p);
            // Coalescing merges about n / p neighbours into the heaviest; a finer cut
            // spreads it over p / n map-output ranges.
            let largest = if p >= n {
                sh.max_task * n / p
            } else {
                sh.max_task + sh.bytes / p - sh.bytes / n
            };
            (p, largest)
        }
        None => {
            let mut added = 0.0;
            let largest = split_tasks(&sh, |_, parts| added += f64::from(parts - 1));
            (n + added, largest)
        }
    };
    let memory = if sh.memory_per_slot > 0.0 {
        (largest / sh.memory_per_slot).min(8.0) / 4.0
    } else {
        0.0
    };
    [
        ((after / n).ln() / 2.0) as f32,
        (after / sh.slots / 8.0) as f32,
        memory as f32,
        if level == PartitionLevel::Split {
            1.0
        } else {
            0.0
        },
    ]
}

/// Appends to `out` the simulator's actions for `level` on stage `s`, in order: nothing
/// when it changes nothing (keep, a count equal to the stage's, no skewed task), one
/// `Partition`, or one `Split` per skewed task.
pub fn level_actions(obs: &Observation, s: usize, level: PartitionLevel, out: &mut Vec<Action>) {
    let Some(sh) = shape(obs, s) else {
        return;
    };
    let stage = obs.stages[s].id;
    match partitions(&sh, level) {
        Some(p) if p == sh.tasks => {}
        Some(partitions) => out.push(Action::Partition { stage, partitions }),
        None => {
            split_tasks(&sh, |task, parts| {
                out.push(Action::Split { stage, task, parts })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{HEAVY_TASKS, HostView, StageData, StageView};

    fn obs(tasks: u32, bytes: f64, max: f64) -> Observation {
        let mut o = Observation {
            exec_cap: 12,
            ..Observation::default()
        };
        o.stages.push(StageView {
            id: 7,
            num_tasks: tasks,
            ..StageView::default()
        });
        let mut heavy = [(0, 0.0); HEAVY_TASKS];
        heavy[0] = (3, max);
        heavy[1] = (9, max / 4.0);
        heavy[2] = (1, bytes / f64::from(tasks));
        o.stage_data.push(StageData {
            bytes,
            heavy,
            num_heavy: 3,
            partitionable: true,
            ..StageData::default()
        });
        for (slots, mem) in [(4, 4e8), (8, 8e8)] {
            o.hosts.push(HostView {
                slots,
                execution_bytes: mem,
                ..HostView::default()
            });
        }
        o
    }

    #[test]
    fn levels_parse_print_and_reject() {
        for s in ["keep", "split", "slots*2", "slots*0.5"] {
            assert_eq!(s.parse::<PartitionLevel>().unwrap().to_string(), s);
        }
        for bad in ["", "slots*0", "slots*-1", "slots*x", "waves*2", "slots*inf"] {
            assert!(bad.parse::<PartitionLevel>().is_err(), "{bad}");
        }
        assert!(validate_levels(&[]).is_err());
        let twice = [PartitionLevel::Keep, PartitionLevel::Keep];
        assert!(validate_levels(&twice).unwrap_err().contains("[1]"));
        assert!(validate_levels(&default_levels()).is_ok());
    }

    fn actions(o: &Observation, level: PartitionLevel) -> Vec<Action> {
        let mut out = Vec::new();
        level_actions(o, 0, level, &mut out);
        out
    }

    #[test]
    fn levels_become_the_simulators_actions() {
        let o = obs(80, 80e6, 10e6);
        assert_eq!(actions(&o, PartitionLevel::Keep), []);
        assert_eq!(
            actions(&o, PartitionLevel::Slots(2.0)),
            [Action::Partition {
                stage: 7,
                partitions: 24
            }]
        );
        // 84 tasks are 7 waves of 12 slots: slots*7 is a keep.
        let o84 = obs(84, 84e6, 10e6);
        assert_eq!(actions(&o84, PartitionLevel::Slots(7.0)), []);
        // The heaviest task holds 10 mean tasks: 10 pieces; the next 2.5: 3 pieces; the
        // third is a mean task and stays whole.
        assert_eq!(
            actions(&o, PartitionLevel::Split),
            [
                Action::Split {
                    stage: 7,
                    task: 3,
                    parts: 10
                },
                Action::Split {
                    stage: 7,
                    task: 9,
                    parts: 3
                }
            ]
        );
        // With 1 MB of execution memory per slot, pieces are 0.5 MB, not the 1 MB mean:
        // the 10 MB task in 20, the 2.5 MB one in 5, the 1 MB one stays (not above twice
        // a piece).
        let mut tight = obs(80, 80e6, 10e6);
        for h in &mut tight.hosts {
            h.execution_bytes = f64::from(h.slots) * 1e6;
        }
        assert_eq!(
            actions(&tight, PartitionLevel::Split),
            [
                Action::Split {
                    stage: 7,
                    task: 3,
                    parts: 20
                },
                Action::Split {
                    stage: 7,
                    task: 9,
                    parts: 5
                }
            ]
        );
        let mut shut = obs(80, 80e6, 10e6);
        shut.stage_data[0].partitionable = false;
        assert!(!eligible(&shut, 0));
        assert_eq!(actions(&shut, PartitionLevel::Slots(2.0)), []);
    }

    #[test]
    fn features_say_what_a_level_does_to_the_largest_task() {
        // 12 slots with 100 MB each; 80 tasks of 1 MB, the heaviest 10 MB.
        let o = obs(80, 80e6, 10e6);
        let keep = level_features(&o, 0, PartitionLevel::Keep);
        assert_eq!(keep[0], 0.0);
        assert!((keep[2] - 0.1 / 4.0).abs() < 1e-6);
        let split = level_features(&o, 0, PartitionLevel::Split);
        assert_eq!(split[3], 1.0);
        // 80 + 9 + 2 tasks; the largest left is the 1 MB mean task.
        assert!((split[0] - (91.0f32 / 80.0).ln() / 2.0).abs() < 1e-6);
        assert!((split[2] - 0.01 / 4.0).abs() < 1e-6);
        let coarse = level_features(&o, 0, PartitionLevel::Slots(1.0));
        assert!(coarse[0] < 0.0 && coarse[2] > keep[2]);
        let fine = level_features(&o, 0, PartitionLevel::Slots(8.0));
        assert!(fine[0] > 0.0 && fine[2] < keep[2]);
    }
}
