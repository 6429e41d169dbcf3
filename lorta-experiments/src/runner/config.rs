//! Grid config files: versioned TOML with named presets, `${VAR}` expansion in paths, and
//! folder-name slugs. Each family defines its own config struct; these are the shared pieces.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;

/// Parses `text` (the content of `file`) as `T` after checking its top-level `version` against
/// `expected`; errors name the file (and the key, via the TOML parser).
pub fn parse_versioned<T: DeserializeOwned>(text: &str, file: &Path, expected: u32) -> Result<T> {
    let raw: toml::Value = toml::from_str(text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    match raw.get("version").and_then(|v| v.as_integer()) {
        Some(v) if v == expected as i64 => {}
        Some(v) => bail!("{}: version {v} is not supported (expected {expected})", file.display()),
        None => bail!("{}: missing `version = {expected}`", file.display()),
    }
    toml::from_str(text).map_err(|e| anyhow!("{}: {e}", file.display()))
}

/// Reads and parses a versioned TOML config file.
pub fn read_versioned<T: DeserializeOwned>(file: &Path, expected: u32) -> Result<T> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading config {}", file.display()))?;
    parse_versioned(&text, file, expected)
}

/// The preset `name` of `presets`, or an error listing the defined ones.
pub fn pick_preset<'a, P>(presets: &'a BTreeMap<String, P>, name: &str, what: &str) -> Result<&'a P> {
    presets.get(name).ok_or_else(|| {
        anyhow!("--preset `{name}` is not defined; this {what} has: {}", presets.keys().cloned().collect::<Vec<_>>().join(", "))
    })
}

/// Replaces `${VAR}` by the variable's value; errors name the variable and what it was for.
pub fn expand_env(s: &str, what: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find('}').ok_or_else(|| anyhow!("{what}: unclosed `${{` in `{s}`"))?;
        let var = &after[..j];
        let val = std::env::var(var).map_err(|_| anyhow!("{what} `{s}` needs the environment variable {var}, which is not set"))?;
        out.push_str(&val);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Turns a row name into a folder name (`LoRTA r4` → `lorta-r4`).
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        version: u32,
        presets: BTreeMap<String, u32>,
    }

    #[test]
    fn versioned_presets_env_slug() {
        let f = Path::new("demo.toml");
        let d: Demo = parse_versioned("version = 3\n[presets]\nquick = 1\n", f, 3).unwrap();
        assert_eq!(*pick_preset(&d.presets, "quick", "sweep").unwrap(), 1);
        let e = pick_preset(&d.presets, "paper", "sweep").unwrap_err().to_string();
        assert!(e.contains("paper") && e.contains("quick"), "{e}");
        let e = parse_versioned::<Demo>("version = 2\n[presets]\n", f, 3).unwrap_err().to_string();
        assert!(e.contains("demo.toml") && e.contains("version 2"), "{e}");
        let e = parse_versioned::<Demo>("[presets]\n", f, 3).unwrap_err().to_string();
        assert!(e.contains("missing `version = 3`"), "{e}");
        let e = parse_versioned::<Demo>("version = 3\nbogus = 1\n[presets]\n", f, 3).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        std::env::set_var("LORTA_TEST_EXPAND", "/x/y");
        assert_eq!(expand_env("${LORTA_TEST_EXPAND}/glue", "model").unwrap(), "/x/y/glue");
        assert_eq!(expand_env("plain", "model").unwrap(), "plain");
        let e = expand_env("${LORTA_TEST_UNSET_VAR_123}", "preset.model").unwrap_err().to_string();
        assert!(e.contains("LORTA_TEST_UNSET_VAR_123") && e.contains("preset.model"), "{e}");
        assert_eq!(slug("LoRTA+LoRA r20"), "lorta-lora-r20");
    }
}
