//! Errors of the model crate: every message names the file, tensor key, config key or shape
//! involved, so a bad checkpoint can be fixed without a debugger.
use std::path::PathBuf;

use lorta_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Adapter files and other lorta-core errors.
    #[error(transparent)]
    Core(#[from] CoreError),

    #[error("{file}: missing tensor `{key}`")]
    MissingTensor { file: String, key: String },

    #[error("{file}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    Shape { file: String, key: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("{file}: unexpected tensor(s) {keys:?}, not part of a {arch} model with this config")]
    UnknownTensors { file: String, arch: String, keys: Vec<String> },

    /// A config.json (or tokenizer/adapter config) value that is missing, malformed or unsupported.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Bad caller input (token ids out of range, empty batch, ...).
    #[error("{0}")]
    Input(String),

    /// The device failed (a synchronisation or allocation the backend reported as failed).
    #[error("device error: {0}")]
    Device(String),
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::Config { path: path.into(), message: message.into() }
    }
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::File { path: path.into(), message: message.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }
    pub fn input(message: impl Into<String>) -> Self {
        ModelError::Input(message.into())
    }
    pub fn device(message: impl Into<String>) -> Self {
        ModelError::Device(message.into())
    }
}
