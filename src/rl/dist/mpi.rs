//! The MPI world behind [`super::Group`] (feature `mpi`): rsmpi over the system's Open
//! MPI.

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

/// MPI_Abort on the world communicator: every rank of the job ends now.
pub fn abort(code: i32) -> ! {
    // SAFETY: MPI was initialised by `MpiGroup::init` (the only caller, `abort_all`, runs in
    // a rank of a group of several); MPI_Abort does not return.
    unsafe {
        mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
    }
    // Unreachable by MPI's contract; exit in case an implementation returns.
    std::process::exit(code)
}
