//! Config loading: defaults → TOML file → `SENDTRACE_*` environment (`__` separates nesting).

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

/// Loads `T` from its defaults, an optional TOML file and the environment.
/// Example: `SENDTRACE_KAFKA__BROKERS=host:9092`.
pub fn load<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>) -> anyhow::Result<T> {
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(f) = file {
        anyhow::ensure!(f.exists(), "config file {} not found", f.display());
        fig = fig.merge(Toml::file(f));
    }
    // SENDTRACE_* variables that are not config keys (used by scripts and the CLI) are skipped.
    fig = fig.merge(Env::prefixed("SENDTRACE_").split("__").ignore(&["config", "tools", "log_json", "home"]));
    Ok(fig.extract()?)
}
