//! Locating Hugging Face model folders: a path, or a model name resolved from the local
//! Hugging Face cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`),
//! laid out as `models--<org>--<name>/snapshots/<revision>/`. Nothing is downloaded.
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};
use crate::json::JsonFile;

pub const CONFIG_FILE: &str = "config.json";
pub const SAFETENSORS_FILE: &str = "model.safetensors";
pub const SAFETENSORS_INDEX_FILE: &str = "model.safetensors.index.json";

/// A checkpoint folder in Hugging Face layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDir {
    pub path: PathBuf,
}

impl ModelDir {
    /// Wraps a folder, checking it has a `config.json`.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if !path.is_dir() {
            return Err(ModelError::file(&path, "model folder does not exist (expected a folder with config.json and model.safetensors)"));
        }
        if !path.join(CONFIG_FILE).is_file() {
            return Err(ModelError::file(&path, "no config.json in model folder"));
        }
        Ok(ModelDir { path })
    }

    /// Resolves a folder or a cached hub name (see [`resolve_model_dir`]).
    pub fn resolve(name_or_path: &str) -> Result<Self> {
        ModelDir::new(resolve_model_dir(name_or_path)?)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn config(&self) -> Result<JsonFile> {
        JsonFile::read(&self.config_path())
    }

    /// The safetensors files holding the weights: `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        let single = self.path.join(SAFETENSORS_FILE);
        if single.is_file() {
            return Ok(vec![single]);
        }
        let index = self.path.join(SAFETENSORS_INDEX_FILE);
        if index.is_file() {
            let j = JsonFile::read(&index)?;
            let map = j
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| j.err("missing object `weight_map`"))?;
            let mut files: Vec<String> = Vec::new();
            for (k, v) in map {
                let f = v.as_str().ok_or_else(|| j.err(format!("weight_map[`{k}`] must be a file name")))?;
                if !files.iter().any(|x| x == f) {
                    files.push(f.to_string());
                }
            }
            files.sort();
            return Ok(files.into_iter().map(|f| self.path.join(f)).collect());
        }
        let hint = if self.path.join("pytorch_model.bin").exists() {
            " (only pytorch_model.bin found: convert it to safetensors, e.g. with transformers' save_pretrained(safe_serialization=True))"
        } else {
            ""
        };
        Err(ModelError::file(&self.path, format!("no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE} in model folder{hint}")))
    }

    pub fn tokenizer_json(&self) -> Option<PathBuf> {
        Some(self.path.join("tokenizer.json")).filter(|p| p.is_file())
    }
    pub fn vocab_txt(&self) -> Option<PathBuf> {
        Some(self.path.join("vocab.txt")).filter(|p| p.is_file())
    }
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer_json().is_some() || self.vocab_txt().is_some()
    }
}

/// The hub cache folder, honouring `HF_HUB_CACHE` and `HF_HOME`.
pub fn hub_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("huggingface").join("hub"))
}

/// A folder path (returned as is when it exists), or `org/name` looked up in the local hub
/// cache: the snapshot named by `refs/main`, else the most recently modified snapshot that
/// holds a `config.json`.
pub fn resolve_model_dir(name_or_path: &str) -> Result<PathBuf> {
    let p = Path::new(name_or_path);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    let how = format!(
        "pass a local folder with `--model DIR` (config.json + model.safetensors [+ tokenizer.json]), or put the model in the Hugging Face cache (e.g. `huggingface-cli download {name_or_path}`; set HF_HOME or HF_HUB_CACHE if the cache lives elsewhere)"
    );
    let looks_like_name = !name_or_path.is_empty()
        && !name_or_path.starts_with('.')
        && !name_or_path.starts_with('/')
        && name_or_path.split('/').count() <= 2;
    if !looks_like_name {
        return Err(ModelError::file(p, format!("model folder does not exist; {how}")));
    }
    let Some(cache) = hub_cache_dir() else {
        return Err(ModelError::input(format!("`{name_or_path}` is not a folder and no Hugging Face cache location is known (HOME, HF_HOME and HF_HUB_CACHE unset); {how}")));
    };
    let repo = cache.join(format!("models--{}", name_or_path.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if !snapshots.is_dir() {
        return Err(ModelError::file(
            &snapshots,
            format!("`{name_or_path}` is neither a folder nor in the Hugging Face cache (looked for this snapshots folder); {how}"),
        ));
    }
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let dir = snapshots.join(rev.trim());
        if dir.join(CONFIG_FILE).is_file() {
            return Ok(dir);
        }
    }
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    let entries = std::fs::read_dir(&snapshots).map_err(|e| ModelError::io(&snapshots, e))?;
    for e in entries.flatten() {
        let dir = e.path();
        if !dir.join(CONFIG_FILE).is_file() {
            continue;
        }
        let t = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
            best = Some((t, dir));
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| {
        ModelError::file(&snapshots, format!("no snapshot of `{name_or_path}` with a config.json in the Hugging Face cache; {how}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_cache_snapshot_and_reports_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = tmp.path().join("models--org--tiny").join("snapshots").join("abc");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        // Env vars are process-global: only this test touches HF_HUB_CACHE.
        std::env::set_var("HF_HUB_CACHE", tmp.path());
        assert_eq!(resolve_model_dir("org/tiny").unwrap(), snap);
        let err = resolve_model_dir("org/absent").unwrap_err().to_string();
        assert!(err.contains("models--org--absent") && err.contains("--model DIR"), "{err}");
        std::env::remove_var("HF_HUB_CACHE");
        let err = resolve_model_dir("./no/such/dir").unwrap_err().to_string();
        assert!(err.contains("--model DIR"), "{err}");
    }
}
