//! Driving a live Spark: the controller and the agents inside each driver.
//!
//! The top layer, above `eval`: it may import everything below it (docs/architecture.md).

pub mod protocol;
pub mod server;
