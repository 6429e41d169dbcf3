//! Error type shared by the core crate: every message names the file, key or shape involved.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("shape mismatch for `{name}`: expected {expected:?}, found {found:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("{file}: missing tensor `{key}`")]
    MissingKey { file: String, key: String },

    #[error("{file}: unexpected tensor key(s) {keys:?} (not part of this {method} adapter)")]
    UnknownKeys { file: String, method: String, keys: Vec<String> },

    #[error("invalid adapter config: {0}")]
    Config(String),

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    pub fn config(msg: impl Into<String>) -> Self {
        CoreError::Config(msg.into())
    }
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CoreError::File { path: path.into(), message: message.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io { path: path.into(), source }
    }
}
