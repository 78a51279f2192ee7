//! Errors met while opening a bundle directory, each naming the bundle, the file (and
//! line/column for JSON) and what to do about it. Errors met later, while serving a
//! query, are `SourceError`s of the port that was asked.

use compass_engine::SourceError;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

const RECREATE: &str = "fix the file, or create a fresh bundle with `compass simulate`";

/// Why a bundle could not be opened.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The directory itself is missing or is not a directory.
    #[error(
        "bundle {}: {what} (check the path, or create a bundle with `compass simulate`)",
        dir.display()
    )]
    NoBundle { dir: PathBuf, what: String },
    /// A required file is absent.
    #[error("bundle {}: {file} is missing ({hint})", dir.display())]
    MissingFile {
        dir: PathBuf,
        file: &'static str,
        hint: &'static str,
    },
    /// A JSON file does not parse or does not have the expected fields.
    #[error("bundle {}: {file} line {line} column {column}: {detail} ({RECREATE})", dir.display())]
    BadJson {
        dir: PathBuf,
        file: &'static str,
        line: usize,
        column: usize,
        detail: String,
    },
    /// A file parses but says something this version cannot use.
    #[error("bundle {}: {file}: {detail}", dir.display())]
    BadContent {
        dir: PathBuf,
        file: &'static str,
        detail: String,
    },
    /// The operating system refused to read a file.
    #[error("bundle {}: cannot read {file}: {cause}", dir.display())]
    Io {
        dir: PathBuf,
        file: &'static str,
        cause: io::Error,
    },
}

/// A coarse class of [`BundleError`], for exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleErrorKind {
    NotFound,
    BadInput,
    Io,
}

impl BundleError {
    pub fn kind(&self) -> BundleErrorKind {
        match self {
            BundleError::NoBundle { .. } | BundleError::MissingFile { .. } => {
                BundleErrorKind::NotFound
            }
            BundleError::BadJson { .. } | BundleError::BadContent { .. } => {
                BundleErrorKind::BadInput
            }
            BundleError::Io { .. } => BundleErrorKind::Io,
        }
    }

    pub(crate) fn json(dir: &Path, file: &'static str, error: &serde_json::Error) -> Self {
        BundleError::BadJson {
            dir: dir.to_path_buf(),
            file,
            line: error.line(),
            column: error.column(),
            detail: json_message(error),
        }
    }
}

/// A serde_json message without its " at line L column C" suffix (callers print the
/// position in their own terms).
pub(crate) fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_string(),
        None => text,
    }
}

/// A `SourceError` for a file that exists but cannot be read.
pub(crate) fn read_error(source_name: &str, path: &Path, error: &io::Error) -> SourceError {
    let detail = format!("cannot read {}: {error}", path.display());
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::IsADirectory => SourceError::NotFound {
            source_name: source_name.to_string(),
            detail,
        },
        _ => SourceError::BadData {
            source_name: source_name.to_string(),
            detail,
        },
    }
}
