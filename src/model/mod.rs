//! Learned policies in Burn: the graph batch, segment ops, encoders (GAT, Decima, GCN),
//! summaries, the two action heads and the critic, and saving/loading; and `host/`, the
//! same forward pass in plain Rust for fast decisions on the CPU, file for file.
//!
//! Burn 0.22 has no backend type parameter: the `Device` picks the backend at run time.
//! `flex` (pure-Rust CPU) is the default; the `wgpu` and `cuda` cargo features add GPUs.

pub mod batch;
pub mod decode;
pub mod encoder;
pub mod host;
pub mod layers;
pub mod partition;
pub mod policy;
pub mod scheduler;
pub mod segment;

use std::str::FromStr;

pub use burn::tensor::Device;
pub use decode::{Choice, Decision, HostOutput, LevelRows, PartChoice, decode, decode_part, infer};
pub use policy::{ModelError, Policy, PolicyConfig, PolicyOutput, load, save};

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Burn's `flex` CPU backend.
    #[default]
    Cpu,
    Wgpu,
    Cuda,
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!(
                "unknown device \"{other}\" (expected cpu, wgpu or cuda)"
            )),
        }
    }
}

impl Backend {
    /// The device for this backend, or an error saying which cargo feature is missing.
    pub fn device(self) -> Result<Device, ModelError> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(ModelError::Device(format!(
                "{other:?} is not in this build: rebuild with `cargo build --release --features {}`",
                format!("{other:?}").to_lowercase()
            ))),
        }
    }
}
