//! mpda on a live Spark: the top layer, allowed to import every module below it
//! (`docs/architecture.md`).
//!
//! - `cluster` starts, inspects and stops a standalone cluster on this machine (or records
//!   an existing one); `cli` holds the `mpda spark` arguments so that `main.rs` only
//!   dispatches.
//! - `protocol` is what the agent inside each driver and the controller say to each other;
//!   `server` is the controller's authenticated loopback HTTP server for it.
//! - `controller` keeps the live `Observation` and turns a scheduler's decisions into
//!   per-application executor targets; `run` submits a workload and reads the runs back;
//!   `report` renders a study.

pub mod cli;
pub mod cluster;
pub mod controller;
pub mod protocol;
pub mod report;
pub mod run;
pub mod server;
