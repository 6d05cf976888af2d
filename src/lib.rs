//! mpda: a lab for scheduling Apache Spark jobs, with a Decima-faithful cluster simulator,
//! heuristic schedulers and (in later modules) learned ones.
//!
//! Data flows one way: `workload` (traces, arrivals) → `sim` ⇄ `sched` → `eval`.

pub mod config;
pub mod eval;
pub mod io;
pub mod model;
pub mod plot;
pub mod registry;
pub mod rl;
pub mod sched;
pub mod seed;
pub mod sim;
pub mod validate;
pub mod workload;
