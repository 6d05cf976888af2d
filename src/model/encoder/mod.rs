//! Node encoders: each maps a graph batch to one embedding per stage, `[nodes, dim]`.
//! Messages flow from children to parents (leaves up), as in Decima: a stage's embedding
//! summarises the work that depends on it.
//!
//! **A new encoder is written in two places**: here, `model/encoder/X.rs` (Burn: training,
//! batches, GPUs), and its twin `model/host/encoder/X.rs` (plain Rust: the CPU decisions of
//! `mpda eval` and of rollouts). The Burn encoder exports its weights to its twin
//! (`XEncoder::host`), `Policy::host` and `HostEncoder` gain a variant, and `tests/model.rs`
//! checks that the two forward passes agree.

pub mod decima;
pub mod gat;
pub mod gcn;

pub use decima::DecimaEncoder;
pub use gat::GatEncoder;
pub use gcn::GcnEncoder;
