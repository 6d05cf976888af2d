//! Turning the policy's log-probabilities into an action, on the host: a stage from the
//! graph's schedulable stages, then a level for that stage's job.

use super::batch::HostBatch;

/// How to choose among the valid actions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// The most likely action (argmax).
    Greedy,
    /// Sample with two uniforms in [0, 1): one for the stage, one for the level.
    Sample(f64, f64),
}

/// How a policy's level log-probabilities are laid out (`PolicyConfig::level_rows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelRows {
    /// Per (job, level) pair (`HostBatch::job_pairs`): two branches, the level chosen for
    /// the stage's job.
    PerJob,
    /// Per (valid node, level of its job) row (`HostBatch::joint_rows`): one joint head,
    /// each the level's log-probability given the stage.
    PerStage,
}

/// One decision for graph `graph` of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Index into the batch's valid nodes (`HostBatch::valid_nodes`).
    pub valid_index: usize,
    /// Index of the stage in its observation (`Observation::stages`).
    pub stage: usize,
    /// Batch job index of the stage's job.
    pub job: usize,
    /// Index into the batch's (job, level) pairs.
    pub pair: usize,
    pub level: u32,
    /// The limit to send to the simulator.
    pub limit: u32,
    pub stage_logp: f32,
    pub limit_logp: f32,
}

pub(crate) fn pick(logp: &[f32], choice: Option<f64>) -> usize {
    match choice {
        None => logp
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or(0, |(i, _)| i),
        Some(u) => {
            let mut acc = 0.0f64;
            for (i, &lp) in logp.iter().enumerate() {
                acc += f64::from(lp).exp();
                if u < acc {
                    return i;
                }
            }
            // Rounding left u above the total: take the last action with mass.
            logp.iter()
                .rposition(|&lp| lp > f32::NEG_INFINITY)
                .unwrap_or(0)
        }
    }
}

/// Decodes graph `graph`'s action from the policy's outputs (read back to the host), its
/// level log-probabilities laid out as `rows`.
pub fn decode(
    h: &HostBatch,
    stage_logp: &[f32],
    limit_logp: &[f32],
    rows: LevelRows,
    graph: usize,
    choice: Choice,
) -> Decision {
    let (u_stage, u_level) = match choice {
        Choice::Greedy => (None, None),
        Choice::Sample(a, b) => (Some(a), Some(b)),
    };
    let (v0, vn) = h.graph_valid[graph];
    let (v0, vn) = (v0 as usize, vn as usize);
    let i = pick(&stage_logp[v0..v0 + vn], u_stage);
    let node = h.valid_nodes[v0 + i] as usize;
    let job = h.node_job[node] as usize;
    let p0 = h.job_pairs[job].0 as usize;
    let r = h.level_range(v0 + i, rows);
    let k = pick(&limit_logp[r.clone()], u_level);
    let level = h.pair_level[p0 + k];
    Decision {
        valid_index: v0 + i,
        stage: node - h.graph_nodes[graph].0 as usize,
        job,
        pair: p0 + k,
        level,
        limit: h.limit_for_level(job, level),
        stage_logp: stage_logp[v0 + i],
        limit_logp: limit_logp[r.start + k],
    }
}

/// The partition branch's choice for a stage: an index into the model's
/// `partition_levels`, with its log-probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartChoice {
    pub level: usize,
    pub logp: f32,
}

/// Picks a partition level from a stage's level log-probabilities (empty: the stage gets
/// no partition decision). `uniform` is called only when there is a choice to sample, so
/// a model without the branch draws exactly the random numbers it always did.
pub fn decode_part(
    logp: &[f32],
    greedy: bool,
    uniform: impl FnOnce() -> f64,
) -> Option<PartChoice> {
    if logp.is_empty() {
        return None;
    }
    let level = pick(logp, (!greedy).then(uniform));
    Some(PartChoice {
        level,
        logp: logp[level],
    })
}

/// The policy's outputs for every graph of a batch, read back to the host: what
/// [`decode`] reads.
#[derive(Debug, Clone, Default)]
pub struct HostOutput {
    /// Per valid node, in `HostBatch::valid_nodes` order.
    pub stage_logp: Vec<f32>,
    /// Per (job, level) pair, or per joint row (`LevelRows`).
    pub limit_logp: Vec<f32>,
    /// Per graph, for designs with a critic.
    pub value: Option<Vec<f32>>,
    /// Per partition row (`HostBatch::part_valid`); empty without any.
    pub part_logp: Vec<f32>,
}

impl HostOutput {
    /// The partition levels' log-probabilities of valid node `valid` of `batch` (empty
    /// when it gets no partition decision).
    pub fn part_logp_of(&self, batch: &HostBatch, valid: usize) -> &[f32] {
        match batch.valid_parts.get(valid) {
            Some(&(r0, rn)) if !self.part_logp.is_empty() => {
                &self.part_logp[r0 as usize..(r0 + rn) as usize]
            }
            _ => &[],
        }
    }
}

/// One batched forward pass of `policy` on `device` over `batch`, read back to the host:
/// the single path by which Burn inference (a learned scheduler on a GPU, lockstep
/// rollouts) reaches a decision.
pub fn infer(
    policy: &super::Policy,
    batch: &HostBatch,
    needs: super::batch::Needs,
    device: &burn::tensor::Device,
) -> HostOutput {
    let out = policy.forward(&super::batch::GraphTensors::new(batch, needs, device));
    // The networks are built in f32 throughout, so the read-back cannot meet another type.
    let host = |t: burn::tensor::Tensor<1>| {
        t.into_data()
            .try_to_vec::<f32>()
            .expect("the policy's outputs are f32")
    };
    HostOutput {
        stage_logp: host(out.stage_logp),
        limit_logp: host(out.limit_logp),
        value: out.value.map(host),
        part_logp: out.part_logp.map(host).unwrap_or_default(),
    }
}
