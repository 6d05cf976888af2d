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
//! - the ranks evaluate the held-out episodes in shares (the same mean as one process);
//!   rank 0 alone writes checkpoints, metrics and curves.
//!
//! So `mpirun -n N` with `grad_shards = g` gives bit for bit the weights of one process with
//! `grad_shards = g × N`. The only collective is an all-gather of bytes, in rank order.

mod codec;
mod grads;
#[cfg(feature = "mpi")]
mod mpi;
mod wire;

pub use grads::GradParts;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::RlError;
use super::rollout::{EpisodePlan, Trajectory};
use crate::model::Policy;

/// The processes that train together. Every rank calls the collectives in the same order.
pub trait Group {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Every rank's bytes, in rank order, on every rank. Blocks until all ranks call it.
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, RlError>;
    /// Rank 0 reports and writes the run's files.
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
        Some(_) => Ok(Box::new(mpi::MpiGroup::init()?)),
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
    mpi::abort(code);
    #[cfg(not(feature = "mpi"))]
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

/// Splits `n` items of work over the ranks: this rank runs `work` on its contiguous share
/// ([`share`]), the ranks all-gather the results (`encode`, `decode`), and every rank gets
/// all `n`, in item order. `what` names them in errors.
pub fn gather_shares<T>(
    group: &dyn Group,
    n: usize,
    what: &str,
    work: impl FnOnce(std::ops::Range<usize>) -> Result<Vec<T>, RlError>,
    encode: impl Fn(&[T]) -> Result<Vec<u8>, RlError>,
    decode: impl Fn(&[u8]) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, RlError> {
    if group.size() == 1 {
        return work(0..n);
    }
    let bytes = encode(&work(share(n, group.rank(), group.size()))?)?;
    let mut all = Vec::with_capacity(n);
    for (rank, b) in group.all_gather(&bytes)?.iter().enumerate() {
        let part = decode(b).map_err(|e| group_err(format!("the {what} rank {rank} sent: {e}")))?;
        let expected = share(n, rank, group.size()).len();
        if part.len() != expected {
            return Err(group_err(format!(
                "rank {rank} sent {} {what} for its share of {expected}",
                part.len()
            )));
        }
        all.extend(part);
    }
    Ok(all)
}

/// Rolls out this rank's share of `plans` with `roll`, then gives every rank all the
/// trajectories, in plan order.
pub fn share_rollouts(
    group: &dyn Group,
    plans: &[EpisodePlan],
    roll: impl FnOnce(&[EpisodePlan]) -> Result<Vec<Trajectory>, RlError>,
) -> Result<Vec<Trajectory>, RlError> {
    gather_shares(
        group,
        plans.len(),
        "trajectories",
        |mine| roll(&plans[mine]),
        codec::encode,
        codec::decode,
    )
}

/// Values of this rank's share, `n` in all, gathered as for [`gather_shares`].
pub fn gather_values(
    group: &dyn Group,
    n: usize,
    what: &str,
    work: impl FnOnce(std::ops::Range<usize>) -> Result<Vec<f64>, RlError>,
) -> Result<Vec<f64>, RlError> {
    gather_shares(
        group,
        n,
        what,
        work,
        |v| {
            let mut out = Vec::with_capacity(8 + 8 * v.len());
            wire::put(&mut out, v);
            Ok(out)
        },
        |b| {
            let mut r = wire::Reader::new(b);
            let v = r.vec()?;
            match r.rest() {
                0 => Ok(v),
                extra => Err(format!("{extra} bytes after the values")),
            }
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;

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
