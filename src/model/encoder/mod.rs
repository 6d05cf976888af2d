//! Node encoders: each maps a graph batch to one embedding per stage, `[nodes, dim]`.
//! Messages flow from children to parents (leaves up), as in Decima: a stage's embedding
//! summarises the work that depends on it.

pub mod decima;
pub mod gat;
pub mod gcn;

pub use decima::DecimaEncoder;
pub use gat::GatEncoder;
pub use gcn::GcnEncoder;
