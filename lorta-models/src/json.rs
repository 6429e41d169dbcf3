//! Typed access to `config.json`-style JSON with errors naming the file and key.
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ModelError, Result};

/// A parsed JSON object plus the file it came from.
#[derive(Clone, Debug)]
pub struct JsonFile {
    pub path: PathBuf,
    pub value: Value,
}

impl JsonFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::config(path, format!("invalid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ModelError::config(path, "expected a JSON object at top level"));
        }
        Ok(JsonFile { path: path.to_path_buf(), value })
    }

    pub fn err(&self, message: impl Into<String>) -> ModelError {
        ModelError::config(&self.path, message)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.err(format!("missing integer field `{key}`")))
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|x| Some(x as usize))
                .ok_or_else(|| self.err(format!("field `{key}` must be a non-negative integer, found {v}"))),
        }
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| self.err(format!("field `{key}` must be a number, found {v}"))),
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| self.err(format!("field `{key}` must be a boolean, found {v}"))),
        }
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| self.err(format!("field `{key}` must be a string, found {v}"))),
        }
    }

    /// An integer or a list of integers (e.g. `eos_token_id`).
    pub fn ids(&self, key: &str) -> Result<Vec<u32>> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|x| vec![x as u32])
                .ok_or_else(|| self.err(format!("field `{key}` must be a token id, found {n}"))),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().map(|v| v as u32).ok_or_else(|| self.err(format!("field `{key}` must hold token ids, found {x}"))))
                .collect(),
            Some(v) => Err(self.err(format!("field `{key}` must be a token id or a list of them, found {v}"))),
        }
    }

    /// `architectures[0]`, if any.
    pub fn architecture(&self) -> Option<String> {
        self.get("architectures").and_then(|a| a.get(0)).and_then(Value::as_str).map(String::from)
    }
}
