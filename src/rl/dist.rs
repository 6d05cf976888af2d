//! Data-parallel training across processes: the ranks of an MPI job
//! (`mpirun -n N mpda train`), or one process alone.
//!
//! The design is synchronous and keeps results independent of the rank count:
//! - every rank plans the same iteration (plans depend only on the config and iteration);
//! - each rank rolls out its contiguous share of the plans, and all ranks then hold every
//!   trajectory ([`share_rollouts`]), so advantages are computed on the whole batch;
//! - a minibatch is cut into `grad_shards × ranks` parts exactly as one process cuts it into
//!   that many shards; each rank computes the gradients of its parts, all ranks gather every
//!   part's gradients and add them on the host in part order ([`GradParts`]), the same f32
//!   additions in the same order as one process makes;
//! - every rank then takes the same clipped Adam step, so the weights never diverge;
//! - rank 0 alone evaluates, writes checkpoints, metrics and curves.
//!
//! So `mpirun -n N` with `grad_shards = g` gives bit for bit the weights of one process with
//! `grad_shards = g × N`. The only collective is an all-gather of bytes, in rank order.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::RlError;
use super::learner::StepStats;
use super::rollout::{EpisodePlan, Trajectory};
use crate::model::Policy;

/// The processes that train together. Every rank calls the collectives in the same order.
pub trait Group {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Every rank's bytes, in rank order, on every rank. Blocks until all ranks call it.
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, RlError>;
    /// Rank 0 evaluates and writes the run's files.
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
    /// Every rank reached the same end of training: leaving may now finalise MPI, which
    /// waits for all ranks. Without this call (a rank that failed), dropping the group
    /// leaves MPI as it is, so that [`abort_all`] can still end the job.
    fn done(&self) {}
    /// What the collectives have cost this rank so far: wall seconds inside them (transfer
    /// and waiting for slower ranks) and bytes received.
    fn comm(&self) -> Comm {
        Comm::default()
    }
}

/// Time and volume of a rank's collectives.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Comm {
    pub seconds: f64,
    pub bytes: u64,
    pub calls: u64,
}

impl Comm {
    /// What was spent between `earlier` and `self`.
    pub fn since(self, earlier: Comm) -> Comm {
        Comm {
            seconds: self.seconds - earlier.seconds,
            bytes: self.bytes - earlier.bytes,
            calls: self.calls - earlier.calls,
        }
    }

    pub fn add(&mut self, o: Comm) {
        self.seconds += o.seconds;
        self.bytes += o.bytes;
        self.calls += o.calls;
    }

    pub fn describe(&self) -> String {
        format!(
            "{:.1} MB in {:.2} s ({} all-gathers)",
            self.bytes as f64 / 1e6,
            self.seconds,
            self.calls
        )
    }
}

/// One process training alone.
pub struct Solo;

impl Group for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, RlError> {
        Ok(vec![mine.to_vec()])
    }
}

fn group_err(msg: impl Into<String>) -> RlError {
    RlError::Group(msg.into())
}

/// The world size the launcher gave this process, if any: Open MPI's `mpirun`, MPICH's
/// Hydra (`PMI_SIZE`), or a Slurm job step (`srun`; not `SLURM_NTASKS`, which a batch
/// script's own shell has too).
pub fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.trim().parse().ok())
}

/// Worker threads for one rank when `--threads` is not given: the machine's cores shared by
/// the ranks the launcher started on it, so that N ranks on one machine do not each start a
/// thread per core. None outside a launch of several ranks on this machine.
pub fn threads_per_rank() -> Option<usize> {
    let cores = std::thread::available_parallelism().ok()?.get();
    threads_per_rank_from(&|k| std::env::var(k).ok(), cores)
}

fn threads_per_rank_from(env: &dyn Fn(&str) -> Option<String>, cores: usize) -> Option<usize> {
    let local: usize = [
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MPI_LOCALNRANKS",
        "SLURM_NTASKS_PER_NODE",
    ]
    .iter()
    .find_map(|k| env(k)?.trim().parse().ok())?;
    (local > 1).then(|| (cores / local).max(1))
}

/// The group this process belongs to: the MPI world when a launcher started several ranks,
/// else [`Solo`]. A binary built without the `mpi` feature refuses to run as one of several
/// ranks, where each would silently train alone.
pub fn join() -> Result<Box<dyn Group>, RlError> {
    match launched_size() {
        None | Some(0) | Some(1) => Ok(Box::new(Solo)),
        #[cfg(feature = "mpi")]
        Some(_) => Ok(Box::new(mpi_group::MpiGroup::init()?)),
        #[cfg(not(feature = "mpi"))]
        Some(n) => Err(group_err(format!(
            "launched as one of {n} MPI ranks, but this binary was built without the `mpi` \
             feature, so each rank would train alone; rebuild with \
             `cargo build --release --features mpi`"
        ))),
    }
}

/// Runs `f` as this process's part of training: alone, or as one rank of an MPI job
/// ([`join`]). A rank whose `f` fails prints its error and ends the whole job: returning
/// would wait in MPI_Finalize for ranks that wait for it in a collective.
pub fn run_as_rank<E>(f: impl FnOnce(Box<dyn Group>) -> Result<(), E>) -> Result<(), E>
where
    E: std::fmt::Display + From<RlError>,
{
    let group = join()?;
    if group.size() == 1 {
        return f(group);
    }
    let rank = group.rank();
    if let Err(e) = f(group) {
        eprintln!("error (rank {rank}): {e:#}");
        abort_all(1);
    }
    Ok(())
}

/// Ends every rank of the MPI job now (MPI_Abort), after this rank failed. Only for a
/// process that joined a group of several ranks ([`join`]); without the feature there are
/// none, and it exits.
pub fn abort_all(code: i32) -> ! {
    #[cfg(feature = "mpi")]
    // SAFETY: MPI_Abort on the world communicator; MPI was initialised by `join` (the only
    // caller is a rank of a group of several), and it does not return.
    unsafe {
        mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::exit(code)
}

/// A 64-bit digest of bytes (splitmix64 chained over 8-byte words and the length): for
/// comparing what ranks hold, not for security.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut words: Vec<u64> = bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect();
    words.push(bytes.len() as u64);
    crate::seed::mix_words(&words)
}

/// Checks that every rank holds the same `value` (a digest of `what`); the error names the
/// first rank that differs from rank 0.
pub fn agree(group: &dyn Group, what: &str, value: u64) -> Result<(), RlError> {
    if group.size() == 1 {
        return Ok(());
    }
    let all = group.all_gather(&value.to_le_bytes())?;
    let of = |b: &[u8]| -> Result<u64, RlError> {
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| {
            group_err(format!("a rank sent {} bytes for {what}, not 8", b.len()))
        })?))
    };
    let root = of(&all[0])?;
    for (rank, b) in all.iter().enumerate().skip(1) {
        let v = of(b)?;
        if v != root {
            return Err(group_err(format!(
                "the ranks disagree on {what}: rank 0 has {root:016x}, rank {rank} has {v:016x}; \
                 every rank must start from the same files and arguments"
            )));
        }
    }
    Ok(())
}

/// True on every rank if any rank's flag is set (a stop request seen by one rank stops all
/// of them at the same iteration).
pub fn any(group: &dyn Group, flag: bool) -> Result<bool, RlError> {
    if group.size() == 1 {
        return Ok(flag);
    }
    let all = group.all_gather(&[u8::from(flag)])?;
    Ok(all.iter().any(|b| b.first() == Some(&1)))
}

/// The contiguous share of `n` items that `rank` of `size` takes: the first `n % size`
/// ranks take one more.
pub fn share(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Rolls out this rank's share of `plans` with `roll`, then gives every rank all the
/// trajectories, in plan order.
pub fn share_rollouts(
    group: &dyn Group,
    plans: &[EpisodePlan],
    roll: impl FnOnce(&[EpisodePlan]) -> Result<Vec<Trajectory>, RlError>,
) -> Result<Vec<Trajectory>, RlError> {
    if group.size() == 1 {
        return roll(plans);
    }
    let mine = roll(&plans[share(plans.len(), group.rank(), group.size())])?;
    let bytes = codec::encode(&mine)?;
    let mut all = Vec::with_capacity(plans.len());
    for (rank, b) in group.all_gather(&bytes)?.iter().enumerate() {
        let part = codec::decode(b)
            .map_err(|e| group_err(format!("the trajectories rank {rank} sent: {e}")))?;
        if part.len() != share(plans.len(), rank, group.size()).len() {
            return Err(group_err(format!(
                "rank {rank} sent {} trajectories for its share of {}",
                part.len(),
                share(plans.len(), rank, group.size()).len()
            )));
        }
        all.extend(part);
    }
    Ok(all)
}

/// Trajectories as bytes between ranks: each flat vector as its length and its values in
/// little-endian order (a copy, where a generic serialiser spent most of the exchange),
/// the episode's statistics as MessagePack. The encoder destructures every struct whole,
/// so a field added to one cannot be forgotten here.
mod codec {
    use super::{RlError, group_err};
    use crate::model::batch::HostBatch;
    use crate::rl::rollout::{RolloutTimes, Taken, Trajectory};

    /// A value with a fixed little-endian encoding.
    trait Raw: Copy {
        const SIZE: usize;
        fn put(self, out: &mut Vec<u8>);
        fn get(b: &[u8]) -> Self;
    }

    macro_rules! raw {
        ($($t:ty),*) => {$(
            impl Raw for $t {
                const SIZE: usize = std::mem::size_of::<$t>();
                fn put(self, out: &mut Vec<u8>) {
                    out.extend_from_slice(&self.to_le_bytes());
                }
                fn get(b: &[u8]) -> Self {
                    <$t>::from_le_bytes(b.try_into().expect("sized by SIZE"))
                }
            }
        )*};
    }
    raw!(u8, u32, u64, i64, f32, f64);

    impl Raw for (u32, u32) {
        const SIZE: usize = 8;
        fn put(self, out: &mut Vec<u8>) {
            self.0.put(out);
            self.1.put(out);
        }
        fn get(b: &[u8]) -> Self {
            (u32::get(&b[..4]), u32::get(&b[4..]))
        }
    }

    impl Raw for Taken {
        const SIZE: usize = 12;
        fn put(self, out: &mut Vec<u8>) {
            let Taken { valid, job, level } = self;
            for x in [valid, job, level] {
                x.put(out);
            }
        }
        fn get(b: &[u8]) -> Self {
            Taken {
                valid: u32::get(&b[..4]),
                job: u32::get(&b[4..8]),
                level: u32::get(&b[8..]),
            }
        }
    }

    fn put<T: Raw>(out: &mut Vec<u8>, v: &[T]) {
        (v.len() as u64).put(out);
        out.reserve(v.len() * T::SIZE);
        for &x in v {
            x.put(out);
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

    struct Reader<'a>(&'a [u8]);

    impl Reader<'_> {
        fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
            if self.0.len() < n {
                return Err(format!("ends early ({} bytes short)", n - self.0.len()));
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn one<T: Raw>(&mut self) -> Result<T, String> {
            Ok(T::get(self.bytes(T::SIZE)?))
        }
        fn indices(&mut self) -> Result<Vec<i64>, String> {
            match self.one::<u8>()? {
                4 => Ok(self.vec::<u32>()?.into_iter().map(i64::from).collect()),
                8 => self.vec(),
                t => Err(format!("unknown index width tag {t}")),
            }
        }
        fn vec<T: Raw>(&mut self) -> Result<Vec<T>, String> {
            let n = usize::try_from(self.one::<u64>()?).map_err(|e| e.to_string())?;
            let len = n.checked_mul(T::SIZE).ok_or("a length overflows")?;
            Ok(self.bytes(len)?.chunks_exact(T::SIZE).map(T::get).collect())
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
        } = b;
        (*graphs as u64).put(out);
        for v in [x, unfinished, job_x] {
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
        ] {
            put_indices(out, v);
        }
        for v in [graph_jobs, graph_nodes, graph_edges, graph_valid, job_pairs] {
            put(out, v);
        }
    }

    fn get_batch(r: &mut Reader) -> Result<HostBatch, String> {
        let graphs = usize::try_from(r.one::<u64>()?).map_err(|e| e.to_string())?;
        let (x, unfinished, job_x) = (r.vec()?, r.vec()?, r.vec()?);
        let (height, job_min_limit, pair_level) = (r.vec()?, r.vec()?, r.vec()?);
        let (node_job, node_graph, edge_child, edge_parent) =
            (r.indices()?, r.indices()?, r.indices()?, r.indices()?);
        let (job_graph, valid_nodes, valid_node_graph, pair_job) =
            (r.indices()?, r.indices()?, r.indices()?, r.indices()?);
        let (graph_jobs, graph_nodes, graph_edges, graph_valid, job_pairs) =
            (r.vec()?, r.vec()?, r.vec()?, r.vec()?, r.vec()?);
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
        let mut r = Reader(b);
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
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the trajectories", r.0.len()));
        }
        Ok(out)
    }
}

/// The gradients and stats of minibatch parts, flat on the host, in the policy's parameter
/// order: what ranks exchange in a gradient step.
#[derive(Debug, Default)]
pub struct GradParts {
    /// Per parameter, in visiting order: its gradient, if the part produced one.
    parts: Vec<(StepStats, Vec<Option<Vec<f32>>>)>,
}

struct Flatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<Option<Vec<f32>>>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(self.grads.get::<D>(param.id).map(|g| {
            g.into_data()
                .try_to_vec::<f32>()
                .expect("f32 gradients (the learner's float type)")
        }));
    }
}

struct Rebuild<'a> {
    sums: std::vec::IntoIter<Option<Vec<f32>>>,
    device: &'a Device,
    out: GradientsParams,
}

impl ModuleVisitor for Rebuild<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(Some(v)) = self.sums.next() {
            let dims = param.val().dims();
            let t = Tensor::<D>::from_data(TensorData::new(v, dims), self.device);
            self.out.register(param.id, t);
        }
    }
}

/// Parameter ids in visiting order (to check that a decoded part fits the policy).
struct Ids(Vec<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id);
    }
}

fn put_f64(out: &mut Vec<u8>, x: f64) {
    out.extend_from_slice(&x.to_le_bytes());
}

/// A little-endian reader that names what it was reading when bytes run out.
struct Reader<'a> {
    bytes: &'a [u8],
    rank: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RlError> {
        if self.bytes.len() < n {
            return Err(group_err(format!(
                "the gradients rank {} sent end early",
                self.rank
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, RlError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f64(&mut self) -> Result<f64, RlError> {
        Ok(f64::from_bits(self.u64()?))
    }
}

impl GradParts {
    /// This rank's parts, as computed.
    pub fn new(policy: &Policy, local: &[(GradientsParams, StepStats)]) -> Self {
        let parts = local
            .iter()
            .map(|(g, st)| {
                let mut f = Flatten {
                    grads: g,
                    out: Vec::new(),
                };
                policy.visit(&mut f);
                (*st, f.out)
            })
            .collect();
        Self { parts }
    }

    /// Bytes: the part count, then per part its six stats and, per parameter, a length
    /// (`u64::MAX` for no gradient) and the f32 values.
    pub fn encode(&self) -> Vec<u8> {
        let floats: usize = self
            .parts
            .iter()
            .flat_map(|(_, p)| p.iter().flatten())
            .map(Vec::len)
            .sum();
        let mut out = Vec::with_capacity(8 + 4 * floats + 64 * self.parts.len());
        out.extend_from_slice(&(self.parts.len() as u64).to_le_bytes());
        for (st, params) in &self.parts {
            for x in [
                st.policy_loss,
                st.value_loss,
                st.entropy,
                st.approx_kl,
                st.clip_fraction,
                st.grad_norm,
            ] {
                put_f64(&mut out, x);
            }
            out.extend_from_slice(&(params.len() as u64).to_le_bytes());
            for p in params {
                match p {
                    None => out.extend_from_slice(&u64::MAX.to_le_bytes()),
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                        for x in v {
                            out.extend_from_slice(&x.to_le_bytes());
                        }
                    }
                }
            }
        }
        out
    }

    /// The parts `rank` sent, checked against the policy's parameter count.
    pub fn decode(bytes: &[u8], rank: usize, params: usize) -> Result<Self, RlError> {
        let mut r = Reader { bytes, rank };
        let n = r.u64()? as usize;
        let mut parts = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let mut s = [0.0; 6];
            for x in &mut s {
                *x = r.f64()?;
            }
            let st = StepStats {
                policy_loss: s[0],
                value_loss: s[1],
                entropy: s[2],
                approx_kl: s[3],
                clip_fraction: s[4],
                grad_norm: s[5],
            };
            let count = r.u64()? as usize;
            if count != params {
                return Err(group_err(format!(
                    "rank {rank} sent gradients of {count} parameters, this policy has {params}"
                )));
            }
            let mut ps = Vec::with_capacity(count);
            for _ in 0..count {
                let len = r.u64()?;
                if len == u64::MAX {
                    ps.push(None);
                    continue;
                }
                let raw = r.take(4 * len as usize)?;
                ps.push(Some(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                        .collect(),
                ));
            }
            parts.push((st, ps));
        }
        if !r.bytes.is_empty() {
            return Err(group_err(format!(
                "rank {rank} sent {} bytes after its gradients",
                r.bytes.len()
            )));
        }
        Ok(Self { parts })
    }

    /// Every rank's parts in part order: rank 0's, then rank 1's, and so on.
    pub fn gather(group: &dyn Group, policy: &Policy, mine: &Self) -> Result<Self, RlError> {
        let mut ids = Ids(Vec::new());
        policy.visit(&mut ids);
        let mut parts = Vec::new();
        for (rank, b) in group.all_gather(&mine.encode())?.iter().enumerate() {
            parts.extend(Self::decode(b, rank, ids.0.len())?.parts);
        }
        Ok(Self { parts })
    }

    /// The sum of all parts, added in part order (f32 on the host: the same roundings as
    /// one process adding its shards' gradient tensors in order), as gradients on `device`,
    /// with the summed stats.
    pub fn sum(
        self,
        policy: &Policy,
        device: &Device,
    ) -> Result<(GradientsParams, StepStats), RlError> {
        let mut parts = self.parts.into_iter();
        let (mut stats, mut acc) = parts
            .next()
            .ok_or_else(|| group_err("no rank computed a gradient"))?;
        for (st, p) in parts {
            stats += st;
            for (a, g) in acc.iter_mut().zip(p) {
                match (a.as_mut(), g) {
                    (Some(a), Some(g)) => {
                        if a.len() != g.len() {
                            return Err(group_err(
                                "ranks sent gradients of different shapes for one parameter",
                            ));
                        }
                        for (x, y) in a.iter_mut().zip(&g) {
                            *x += *y;
                        }
                    }
                    (None, Some(g)) => *a = Some(g),
                    (_, None) => {}
                }
            }
        }
        let mut rebuild = Rebuild {
            sums: acc.into_iter(),
            device,
            out: GradientsParams::new(),
        };
        policy.visit(&mut rebuild);
        Ok((rebuild.out, stats))
    }
}

/// A digest of the policy's weights, for checking that every rank starts from the same.
pub fn weights_digest(policy: &Policy) -> u64 {
    struct Bytes(Vec<u8>);
    impl ModuleVisitor for Bytes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val().into_data();
            self.0.extend_from_slice(v.as_bytes());
        }
    }
    let mut b = Bytes(Vec::new());
    policy.visit(&mut b);
    digest(&b.0)
}

#[cfg(feature = "mpi")]
mod mpi_group {
    use mpi::Threading;
    use mpi::datatype::PartitionMut;
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    use super::{Comm, Group, RlError, group_err};

    /// The MPI world. Only the main thread calls MPI (rayon threads never do).
    pub struct MpiGroup {
        world: SimpleCommunicator,
        comm: std::cell::Cell<Comm>,
        /// Finalises MPI when dropped, which waits for every rank: dropped only after
        /// [`Group::done`], never on a failed rank's way out.
        universe: std::mem::ManuallyDrop<Universe>,
        finalise: std::cell::Cell<bool>,
    }

    impl Drop for MpiGroup {
        fn drop(&mut self) {
            if self.finalise.get() {
                // SAFETY: dropped once, here, and never used after.
                unsafe { std::mem::ManuallyDrop::drop(&mut self.universe) };
            }
        }
    }

    impl MpiGroup {
        pub fn init() -> Result<Self, RlError> {
            let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)
                .ok_or_else(|| group_err("MPI was already initialised"))?;
            let world = universe.world();
            Ok(Self {
                world,
                comm: std::cell::Cell::new(Comm::default()),
                universe: std::mem::ManuallyDrop::new(universe),
                finalise: std::cell::Cell::new(false),
            })
        }
    }

    impl Group for MpiGroup {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn comm(&self) -> Comm {
            self.comm.get()
        }
        fn done(&self) {
            self.finalise.set(true);
        }
        fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, RlError> {
            let start = std::time::Instant::now();
            let n = self.size();
            let mut lens = vec![0u64; n];
            self.world
                .all_gather_into(&(mine.len() as u64), &mut lens[..]);
            let too_big = || group_err("a message of more than 2 GiB between ranks");
            let counts: Vec<i32> = lens
                .iter()
                .map(|&l| i32::try_from(l).map_err(|_| too_big()))
                .collect::<Result<_, _>>()?;
            let mut displs = Vec::with_capacity(n);
            let mut total: i32 = 0;
            for &c in &counts {
                displs.push(total);
                total = total.checked_add(c).ok_or_else(too_big)?;
            }
            let mut buf = vec![0u8; total as usize];
            {
                let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                self.world.all_gather_varcount_into(mine, &mut part);
            }
            let c = self.comm.get();
            self.comm.set(Comm {
                seconds: c.seconds + start.elapsed().as_secs_f64(),
                bytes: c.bytes + buf.len() as u64,
                calls: c.calls + 1,
            });
            Ok(counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| buf[d as usize..(d + c) as usize].to_vec())
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::rollout::Taken;

    #[test]
    fn shares_cover_every_item_once_in_order() {
        for n in 0..40 {
            for size in 1..9 {
                let parts: Vec<_> = (0..size).map(|r| share(n, r, size)).collect();
                let all: Vec<usize> = parts.iter().cloned().flatten().collect();
                assert_eq!(all, (0..n).collect::<Vec<_>>(), "n {n}, size {size}");
                let (lo, hi) = (
                    parts.iter().map(|p| p.len()).min().unwrap(),
                    parts.iter().map(|p| p.len()).max().unwrap(),
                );
                assert!(hi - lo <= 1, "n {n}, size {size}: {parts:?}");
            }
        }
    }

    fn parts() -> GradParts {
        let st = StepStats {
            policy_loss: 0.5,
            value_loss: -1.25,
            entropy: 3.0,
            approx_kl: 1e-3,
            clip_fraction: 0.1,
            grad_norm: 0.0,
        };
        GradParts {
            parts: vec![
                (
                    st,
                    vec![Some(vec![1.0, -2.5]), None, Some(vec![f32::MIN_POSITIVE])],
                ),
                (st, vec![None, None, Some(vec![7.0])]),
            ],
        }
    }

    #[test]
    fn gradient_parts_survive_their_encoding_bit_for_bit() {
        let p = parts();
        let back = GradParts::decode(&p.encode(), 1, 3).unwrap();
        assert_eq!(back.parts.len(), 2);
        for (a, b) in p.parts.iter().zip(&back.parts) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1, b.1);
        }
    }

    #[test]
    fn damaged_gradient_messages_are_errors_naming_the_rank() {
        let bytes = parts().encode();
        let short = GradParts::decode(&bytes[..bytes.len() - 1], 3, 3).unwrap_err();
        assert!(short.to_string().contains("rank 3"), "{short}");
        let other = GradParts::decode(&bytes, 2, 4).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("rank 2 sent gradients of 3 parameters")
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(GradParts::decode(&long, 1, 3).is_err());
    }

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
        t
    }

    #[test]
    fn trajectories_survive_the_exchange_codec() {
        let ts = vec![trajectory(3), trajectory(5)];
        let bytes = codec::encode(&ts).unwrap();
        let back = codec::decode(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(codec::encode(&back).unwrap(), bytes, "not a fixed point");
        let (a, b) = (&ts[1], &back[1]);
        assert_eq!((a.sequence, a.end_ms), (b.sequence, b.end_ms));
        assert_eq!(a.taken, b.taken);
        assert_eq!(a.batch.x, b.batch.x);
        assert_eq!(a.batch.graph_jobs, b.batch.graph_jobs);
        assert_eq!(a.batch.node_job, b.batch.node_job);
        assert_eq!(a.batch.edge_child, b.batch.edge_child);
        assert_eq!(a.times_ms, b.times_ms);
        assert_eq!(a.stats.jct_s, b.stats.jct_s);
        assert!(b.stats.avg_jct_s.is_nan());
        assert_eq!(a.times, b.times);
        assert!(codec::decode(&bytes[..bytes.len() - 3]).is_err());
        let mut long = bytes.clone();
        long.push(1);
        assert!(codec::decode(&long).is_err());
    }

    #[test]
    fn ranks_on_one_machine_share_its_cores() {
        let env = |local: &'static str| {
            move |k: &str| (k == "OMPI_COMM_WORLD_LOCAL_SIZE").then(|| local.to_string())
        };
        assert_eq!(threads_per_rank_from(&env("4"), 16), Some(4));
        assert_eq!(threads_per_rank_from(&env("3"), 2), Some(1));
        assert_eq!(threads_per_rank_from(&env("1"), 16), None);
        assert_eq!(threads_per_rank_from(&env("x"), 16), None);
        assert_eq!(threads_per_rank_from(&|_| None, 16), None);
    }

    #[test]
    fn one_process_agrees_with_itself_and_keeps_its_stop_flag() {
        assert!(agree(&Solo, "x", 1).is_ok());
        assert!(any(&Solo, true).unwrap());
        assert!(!any(&Solo, false).unwrap());
        assert_eq!(Solo.all_gather(b"ab").unwrap(), vec![b"ab".to_vec()]);
        assert_ne!(digest(b"a"), digest(b"a\0"));
    }
}
