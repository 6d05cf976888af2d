//! mpda on a live Spark: the top layer, allowed to import every module below it
//! (`docs/architecture.md`). `cluster` starts, inspects and stops a standalone cluster on
//! this machine; `cli` holds the `mpda spark` arguments so that `main.rs` only dispatches.

pub mod cli;
pub mod cluster;
