//! Adapter files: safetensors tensor maps and adapter folders.
mod folder;
mod tensors;

pub use folder::{config_from_json, config_to_json, load_adapter, read_adapter_config, save_adapter, AdapterFile, CONFIG_FILE, WEIGHTS_FILE};
pub use tensors::{read_safetensors, write_atomic, write_safetensors, TensorMap};
