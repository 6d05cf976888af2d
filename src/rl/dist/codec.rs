//! Trajectories as bytes between ranks: each flat vector as its length and its values in
//! little-endian order (a copy, where a generic serialiser spent most of the exchange),
//! the episode's statistics as MessagePack. The encoder destructures every struct whole,
//! so a field added to one cannot be forgotten here.

use super::wire::{Raw, Reader, put};
use super::{RlError, group_err};
use crate::model::batch::HostBatch;
use crate::rl::rollout::{RolloutTimes, Taken, Trajectory};

impl Raw for Taken {
    const SIZE: usize = 16;
    fn put(self, out: &mut Vec<u8>) {
        let Taken {
            valid,
            job,
            level,
            part,
        } = self;
        for x in [valid, job, level, part] {
            x.put(out);
        }
    }
    fn get(b: &[u8]) -> Self {
        Taken {
            valid: u32::get(&b[..4]),
            job: u32::get(&b[4..8]),
            level: u32::get(&b[8..12]),
            part: u32::get(&b[12..]),
        }
    }
}

/// Indices (i64 for Burn's index tensors) as u32 when they all fit, which halves most
/// of a graph's bytes; a tag byte says which.
fn put_indices(out: &mut Vec<u8>, v: &[i64]) {
    if v.iter().all(|&x| u32::try_from(x).is_ok()) {
        out.push(4);
        (v.len() as u64).put(out);
        out.reserve(v.len() * 4);
        for &x in v {
            (x as u32).put(out);
        }
    } else {
        out.push(8);
        put(out, v);
    }
}

fn get_indices(r: &mut Reader) -> Result<Vec<i64>, String> {
    match r.one::<u8>()? {
        4 => Ok(r.vec::<u32>()?.into_iter().map(i64::from).collect()),
        8 => r.vec(),
        t => Err(format!("unknown index width tag {t}")),
    }
}

fn put_batch(out: &mut Vec<u8>, b: &HostBatch) {
    let HostBatch {
        graphs,
        x,
        unfinished,
        height,
        node_job,
        node_graph,
        edge_child,
        edge_parent,
        job_x,
        cluster_x,
        job_graph,
        job_min_limit,
        graph_jobs,
        graph_nodes,
        graph_edges,
        valid_nodes,
        valid_node_graph,
        graph_valid,
        pair_job,
        pair_level,
        job_pairs,
        part_valid,
        part_x,
        valid_parts,
    } = b;
    (*graphs as u64).put(out);
    for v in [x, unfinished, job_x, cluster_x, part_x] {
        put(out, v);
    }
    for v in [height, job_min_limit, pair_level] {
        put(out, v);
    }
    for v in [
        node_job,
        node_graph,
        edge_child,
        edge_parent,
        job_graph,
        valid_nodes,
        valid_node_graph,
        pair_job,
        part_valid,
    ] {
        put_indices(out, v);
    }
    for v in [
        graph_jobs,
        graph_nodes,
        graph_edges,
        graph_valid,
        job_pairs,
        valid_parts,
    ] {
        put(out, v);
    }
}

fn get_batch(r: &mut Reader) -> Result<HostBatch, String> {
    let graphs = usize::try_from(r.one::<u64>()?).map_err(|e| e.to_string())?;
    let (x, unfinished, job_x, cluster_x, part_x) =
        (r.vec()?, r.vec()?, r.vec()?, r.vec()?, r.vec()?);
    let (height, job_min_limit, pair_level) = (r.vec()?, r.vec()?, r.vec()?);
    let (node_job, node_graph, edge_child, edge_parent) = (
        get_indices(r)?,
        get_indices(r)?,
        get_indices(r)?,
        get_indices(r)?,
    );
    let (job_graph, valid_nodes, valid_node_graph, pair_job, part_valid) = (
        get_indices(r)?,
        get_indices(r)?,
        get_indices(r)?,
        get_indices(r)?,
        get_indices(r)?,
    );
    let (graph_jobs, graph_nodes, graph_edges, graph_valid, job_pairs, valid_parts) =
        (r.vec()?, r.vec()?, r.vec()?, r.vec()?, r.vec()?, r.vec()?);
    Ok(HostBatch {
        graphs,
        x,
        unfinished,
        height,
        node_job,
        node_graph,
        edge_child,
        edge_parent,
        job_x,
        cluster_x,
        job_graph,
        job_min_limit,
        graph_jobs,
        graph_nodes,
        graph_edges,
        valid_nodes,
        valid_node_graph,
        graph_valid,
        pair_job,
        pair_level,
        job_pairs,
        part_valid,
        part_x,
        valid_parts,
    })
}

pub fn encode(ts: &[Trajectory]) -> Result<Vec<u8>, RlError> {
    let mut out = Vec::new();
    (ts.len() as u64).put(&mut out);
    for t in ts {
        let Trajectory {
            sequence,
            batch,
            taken,
            logp,
            values,
            rewards,
            times_ms,
            end_ms,
            stats,
            times,
        } = t;
        (*sequence as u64).put(&mut out);
        put_batch(&mut out, batch);
        put(&mut out, taken);
        for v in [logp, values, rewards] {
            put(&mut out, v);
        }
        put(&mut out, times_ms);
        end_ms.put(&mut out);
        let RolloutTimes {
            simulation_s,
            observation_s,
            inference_s,
        } = *times;
        for x in [simulation_s, observation_s, inference_s] {
            x.put(&mut out);
        }
        let s = rmp_serde::to_vec(stats)
            .map_err(|e| group_err(format!("encoding an episode's statistics: {e}")))?;
        put(&mut out, &s);
    }
    Ok(out)
}

pub fn decode(b: &[u8]) -> Result<Vec<Trajectory>, String> {
    let mut r = Reader::new(b);
    let n = r.one::<u64>()?;
    let mut out = Vec::with_capacity(n.min(1 << 16) as usize);
    for _ in 0..n {
        let sequence = usize::try_from(r.one::<u64>()?).map_err(|e| e.to_string())?;
        let batch = get_batch(&mut r)?;
        let taken = r.vec()?;
        let (logp, values, rewards) = (r.vec()?, r.vec()?, r.vec()?);
        let times_ms = r.vec()?;
        let end_ms = r.one()?;
        let times = RolloutTimes {
            simulation_s: r.one()?,
            observation_s: r.one()?,
            inference_s: r.one()?,
        };
        let bytes: Vec<u8> = r.vec()?;
        let stats = rmp_serde::from_slice(&bytes).map_err(|e| e.to_string())?;
        out.push(Trajectory {
            sequence,
            batch,
            taken,
            logp,
            values,
            rewards,
            times_ms,
            end_ms,
            stats,
            times,
        });
    }
    if r.rest() > 0 {
        return Err(format!("{} bytes after the trajectories", r.rest()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::rollout::Taken;
    fn trajectory(seed: u32) -> Trajectory {
        let f = |k: u32| {
            (0..5 + k)
                .map(|i| (i * seed) as f32 * 0.25)
                .collect::<Vec<f32>>()
        };
        let mut t = Trajectory {
            sequence: seed as usize,
            taken: vec![Taken {
                valid: 1,
                job: seed,
                level: 3,
                part: seed % 3,
            }],
            logp: f(1),
            values: f(2),
            rewards: f(3),
            times_ms: vec![1, u64::MAX, 7],
            end_ms: 99,
            ..Trajectory::default()
        };
        t.batch.graphs = 2;
        t.batch.x = f(4);
        t.batch.node_job = vec![-1, i64::MAX];
        t.batch.edge_child = vec![0, 7, i64::from(u32::MAX)];
        t.batch.graph_jobs = vec![(1, 2), (3, u32::MAX)];
        t.stats.avg_jct_s = f64::NAN;
        t.stats.jct_s = vec![Some(1.5), None];
        t.times.inference_s = 0.125;
        // Spark's engine adds its totals; Decima's leaves them out of the compact form.
        if seed == 5 {
            t.stats.spark = Some(crate::sim::SparkTotals {
                spilled_mb: 2.5,
                jobs: vec![crate::sim::SparkJobTotals {
                    any: 3,
                    ..Default::default()
                }],
                strong_utilisation: 0.75,
                other_utilisation: 0.5,
            });
        }
        t
    }

    #[test]
    fn trajectories_survive_the_exchange_codec() {
        let ts = vec![trajectory(3), trajectory(5)];
        let bytes = encode(&ts).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(encode(&back).unwrap(), bytes, "not a fixed point");
        let (a, b) = (&ts[1], &back[1]);
        assert_eq!((a.sequence, a.end_ms), (b.sequence, b.end_ms));
        assert_eq!(a.taken, b.taken);
        assert_eq!(a.batch.x, b.batch.x);
        assert_eq!(a.batch.graph_jobs, b.batch.graph_jobs);
        assert_eq!(a.batch.node_job, b.batch.node_job);
        assert_eq!(a.batch.edge_child, b.batch.edge_child);
        assert_eq!(a.times_ms, b.times_ms);
        assert_eq!(a.stats.jct_s, b.stats.jct_s);
        assert_eq!(
            (&ts[0].stats.spark, &a.stats.spark),
            (&back[0].stats.spark, &b.stats.spark)
        );
        assert!(b.stats.avg_jct_s.is_nan());
        assert_eq!(a.times, b.times);
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        let mut long = bytes.clone();
        long.push(1);
        assert!(decode(&long).is_err());
    }
}
