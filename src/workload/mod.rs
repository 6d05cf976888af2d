//! Workloads: job traces, their loaders, and arrival processes.

pub mod arrivals;
pub mod decima;
pub mod eventlog;
pub mod info;
pub mod numpy_rng;
pub mod trace;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

pub use arrivals::{Episode, JobArrival, JobSequence};
pub use trace::{JobTrace, StageTrace, WaveSamples};

/// Every error names the file and, where it can, the field, so that a user can fix a bad
/// trace without reading our code.
#[derive(Debug, Error)]
pub enum TraceError {
    #[error(transparent)]
    File(#[from] crate::io::FileError),
    #[error("{}: malformed JSON: {error}", file.display())]
    Json {
        file: PathBuf,
        error: serde_json::Error,
    },
    /// A missing, mistyped or invalid field.
    #[error("{}: {field}: {msg}", file.display())]
    Invalid {
        file: PathBuf,
        field: String,
        msg: String,
    },
    #[error("{}: {msg}", dir.display())]
    Library { dir: PathBuf, msg: String },
}

impl TraceError {
    pub(crate) fn invalid(file: &Path, field: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.to_path_buf(),
            field: field.into(),
            msg: msg.into(),
        }
    }
}

/// Reads a file, transparently decompressing `.gz`.
pub fn read_file(path: &Path) -> Result<Vec<u8>, TraceError> {
    let raw = crate::io::read_bytes(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(crate::io::FileError::on(path, "decompress"))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses JSON into `T`, reporting syntax errors with line and column and structural
/// errors (missing or mistyped fields) with the path of the offending field.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    file: &Path,
    bytes: &[u8],
) -> Result<T, TraceError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| TraceError::Json {
            file: file.to_path_buf(),
            error,
        })?;
    from_value(file, value)
}

/// Converts an already parsed JSON value, naming the path of any offending field.
pub fn from_value<T: serde::de::DeserializeOwned>(
    file: &Path,
    value: serde_json::Value,
) -> Result<T, TraceError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        TraceError::Invalid {
            file: file.to_path_buf(),
            field: if path == "." {
                "(top level)".into()
            } else {
                path
            },
            msg: e.into_inner().to_string(),
        }
    })
}

/// Loads one trace file in either supported format. The format is recognised by its
/// top-level `format` field (ours) or `schema_version` field (Decima's conversion).
pub fn load_trace_file(path: &Path) -> Result<JobTrace, TraceError> {
    let bytes = read_file(path)?;
    let value: serde_json::Value = parse_json(path, &bytes)?;
    let field = TraceError::Invalid {
        file: path.to_path_buf(),
        field: "(top level)".into(),
        msg: "not a trace: expected an object with a `format` field (mpda-trace/1) or a `schema_version` field (Decima's JSON conversion)".into(),
    };
    let Some(obj) = value.as_object() else {
        return Err(field);
    };
    if obj.contains_key("format") {
        let f: trace::TraceFile = from_value(path, value)?;
        f.into_job(path)
    } else if obj.contains_key("schema_version") {
        let d: decima::DecimaJob = from_value(path, value)?;
        d.into_job(path)
    } else {
        Err(field)
    }
}

/// All the traces of a directory, parsed once and shared.
///
/// Layout: `DIR/<size>/<query>.json[.gz]`. Every JSON file one level down is a trace;
/// files directly in `DIR` (READMEs, manifests, reference episodes) are not read. Both
/// Decima's conversion and the project's `tpch/` follow this layout.
#[derive(Debug, Clone, Default)]
pub struct TraceLibrary {
    pub dir: PathBuf,
    jobs: Vec<Arc<JobTrace>>,
    by_name: HashMap<String, usize>,
    by_size_query: HashMap<(String, String), usize>,
}

impl TraceLibrary {
    pub fn load_dir(dir: &Path) -> Result<Self, TraceError> {
        let lib_err = |msg: String| TraceError::Library {
            dir: dir.to_path_buf(),
            msg,
        };
        let read_dir = |d: &Path| -> Result<Vec<PathBuf>, TraceError> {
            let mut v = std::fs::read_dir(d)
                .map_err(crate::io::FileError::on(d, "list"))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(crate::io::FileError::on(d, "list"))?;
            v.sort();
            Ok(v)
        };
        let mut files = Vec::new();
        for sub in read_dir(dir)? {
            if sub.is_dir() {
                files.extend(read_dir(&sub)?.into_iter().filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.ends_with(".json") || name.ends_with(".json.gz")
                }));
            }
        }
        if files.is_empty() {
            return Err(lib_err(
                "no traces found: expected files DIR/<size>/<query>.json or .json.gz".into(),
            ));
        }
        let jobs = rayon_map(&files, |f| load_trace_file(f))?;
        let mut lib = Self {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        for (job, file) in jobs.into_iter().zip(&files) {
            lib.insert(job)
                .map_err(|msg| lib_err(format!("{}: {msg}", file.display())))?;
        }
        Ok(lib)
    }

    /// Adds a job; names and (size, query) pairs must be unique.
    pub fn insert(&mut self, job: JobTrace) -> Result<(), String> {
        if self.by_name.contains_key(&job.name) {
            return Err(format!("duplicate job name \"{}\"", job.name));
        }
        let key = (job.size.clone(), job.query.clone());
        if self.by_size_query.contains_key(&key) {
            return Err(format!(
                "duplicate job for size \"{}\" query \"{}\"",
                key.0, key.1
            ));
        }
        let idx = self.jobs.len();
        self.by_name.insert(job.name.clone(), idx);
        self.by_size_query.insert(key, idx);
        self.jobs.push(Arc::new(job));
        Ok(())
    }

    pub fn jobs(&self) -> &[Arc<JobTrace>] {
        &self.jobs
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<JobTrace>> {
        self.by_name.get(name).map(|&i| &self.jobs[i])
    }

    pub fn by_size_query(&self, size: &str, query: &str) -> Option<&Arc<JobTrace>> {
        self.by_size_query
            .get(&(size.to_string(), query.to_string()))
            .map(|&i| &self.jobs[i])
    }

    /// Sizes present, in a natural order (numeric part first: 2g < 10g, sf1 < sf10).
    pub fn sizes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.jobs.iter().map(|j| j.size.clone()).collect();
        v.sort_by_key(|a| natural_key(a));
        v.dedup();
        v
    }

    /// Queries present, in a natural order (2 < 10).
    pub fn queries(&self) -> Vec<String> {
        let mut v: Vec<String> = self.jobs.iter().map(|j| j.query.clone()).collect();
        v.sort_by_key(|a| natural_key(a));
        v.dedup();
        v
    }
}

/// Sort key that orders embedded numbers numerically.
fn natural_key(s: &str) -> (u64, String) {
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits.parse().unwrap_or(u64::MAX), s.to_string())
}

/// Parallel map that keeps input order and returns the first error in input order, so
/// that the error a user sees does not depend on thread timing.
fn rayon_map<T: Sync, U: Send, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U, E> + Sync + Send,
) -> Result<Vec<U>, E> {
    use rayon::prelude::*;
    let results: Vec<Result<U, E>> = items.par_iter().map(f).collect();
    results.into_iter().collect()
}
