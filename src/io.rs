//! Files: one error type for every file the project reads or writes, and writes that an
//! interruption never leaves half done.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A file could not be read or written: names the file and what the system said.
#[derive(Debug, Error)]
#[error("{}: cannot {op}: {error}", file.display())]
pub struct FileError {
    pub file: PathBuf,
    /// "read", "write", "list", ...
    pub op: &'static str,
    /// Not a `source`: the message already says it, and error chains would say it twice.
    pub error: std::io::Error,
}

impl FileError {
    /// For `map_err`: an I/O error on `file` while doing `op`.
    pub fn on(file: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> FileError {
        let file = file.to_path_buf();
        move |error| FileError { file, op, error }
    }

    /// Whether the file does not exist (callers that treat "absent" as "empty").
    pub fn is_not_found(&self) -> bool {
        self.error.kind() == std::io::ErrorKind::NotFound
    }
}

/// Reads a whole text file.
pub fn read_text(file: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(file).map_err(FileError::on(file, "read"))
}

/// Reads a whole file.
pub fn read_bytes(file: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(file).map_err(FileError::on(file, "read"))
}

/// [`write_atomic`], with the error naming the file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic(path, bytes).map_err(FileError::on(path, "write"))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over
/// `path`: readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
