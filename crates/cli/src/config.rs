//! `funnelpulse.toml`: the lowest-precedence source of settings.
//!
//! Flags win over `FUNNELPULSE_*` environment variables, which win over the
//! file. The file is applied by setting the environment variables that are
//! not set yet, so clap validates every value the same way and its errors
//! name the setting. Keys are the long flag names (`lake`, `bad-rows`, …).

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use clap::CommandFactory;

/// Path of the config file: `FUNNELPULSE_CONFIG`, else `./funnelpulse.toml` if present.
fn config_path() -> Option<std::path::PathBuf> {
    match std::env::var_os("FUNNELPULSE_CONFIG") {
        Some(path) => Some(path.into()),
        None => Some(std::path::PathBuf::from("funnelpulse.toml")).filter(|p| p.exists()),
    }
}

/// Every environment variable the command line knows, across subcommands.
fn known_env_vars(command: &clap::Command, out: &mut BTreeSet<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env() {
            out.insert(env.to_string_lossy().into_owned());
        }
    }
    for sub in command.get_subcommands() {
        known_env_vars(sub, out);
    }
}

pub fn env_var_for_key(key: &str) -> String {
    format!("FUNNELPULSE_{}", key.to_uppercase().replace('-', "_"))
}

pub fn load_config_file<C: CommandFactory>() -> anyhow::Result<()> {
    let Some(path) = config_path() else { return Ok(()) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading config file {}", path.display()))?;
    let table: toml::Table =
        text.parse().with_context(|| format!("config file {} is not valid TOML", path.display()))?;
    let mut known = BTreeSet::new();
    known_env_vars(&C::command(), &mut known);
    for (key, value) in table {
        let var = env_var_for_key(&key);
        if !known.contains(&var) {
            bail!("config file {}: unknown setting {key:?} (known: {})", path.display(), known_keys(&known));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!("config file {}: setting {key:?} must be a string or number, not {other}", path.display()),
        };
        if std::env::var_os(&var).is_none() {
            // SAFETY: called at start-up before any other thread reads the environment.
            unsafe { std::env::set_var(&var, value) };
        }
    }
    Ok(())
}

fn known_keys(known: &BTreeSet<String>) -> String {
    known
        .iter()
        .map(|v| v.trim_start_matches("FUNNELPULSE_").to_lowercase().replace('_', "-"))
        .collect::<Vec<_>>()
        .join(", ")
}
