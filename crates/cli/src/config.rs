//! `funnelpulse.toml`: the lowest-precedence source of settings.
//!
//! Flags win over `FUNNELPULSE_*` environment variables, which win over the
//! file. The file's keys are exactly the flags' long names (`lake`,
//! `bad-rows`, `topic`, …), at the top level, for whichever command has the
//! flag. A key is applied by setting its flag's environment variable when it
//! is not set yet, so clap validates every value the same way; flags without
//! a variable (one-off actions such as `--reset-stream`, `--force`) are
//! command-line only. An invalid value names where it came from: the flag,
//! the variable, or the file's key and path.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Path of the config file: `FUNNELPULSE_CONFIG`, else `./funnelpulse.toml` if present.
fn config_path() -> Option<PathBuf> {
    match std::env::var_os("FUNNELPULSE_CONFIG") {
        Some(path) => Some(path.into()),
        None => Some(PathBuf::from("funnelpulse.toml")).filter(|p| p.exists()),
    }
}

/// The TOML type a flag's value must have in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A flag without a value (`--dedup-within-watermark`): true or false.
    Switch,
    Number,
    /// Text, paths, durations, dates, choices: a string (a TOML date is taken as text).
    Text,
    /// A repeatable flag (`--kafka-option`): an array of strings, or one string.
    List,
}

impl Kind {
    fn of(arg: &clap::Arg) -> Self {
        const NUMBERS: [fn() -> TypeId; 9] = [
            TypeId::of::<u8>,
            TypeId::of::<u16>,
            TypeId::of::<u32>,
            TypeId::of::<u64>,
            TypeId::of::<usize>,
            TypeId::of::<i32>,
            TypeId::of::<i64>,
            TypeId::of::<f32>,
            TypeId::of::<f64>,
        ];
        match arg.get_action() {
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse => Kind::Switch,
            clap::ArgAction::Append => Kind::List,
            _ if NUMBERS.iter().any(|t| arg.get_value_parser().type_id() == t()) => Kind::Number,
            _ => Kind::Text,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Switch => "true or false",
            Kind::Number => "a number",
            Kind::Text => "a string in quotes",
            Kind::List => "an array of strings",
        }
    }
}

/// What the file may set: each flag's long name → its variable and kind
/// (across subcommands; a flag shared by several has one variable), and the
/// long names of the flags that have no variable.
#[derive(Debug, Default)]
struct Keys {
    settable: BTreeMap<String, (String, Kind)>,
    command_line_only: BTreeSet<String>,
}

impl Keys {
    fn of(command: &clap::Command) -> Self {
        let mut command = command.clone();
        command.build();
        let mut keys = Keys::default();
        keys.collect(&command);
        keys.command_line_only.retain(|long| !keys.settable.contains_key(long));
        keys
    }

    fn collect(&mut self, command: &clap::Command) {
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            match arg.get_env() {
                Some(env) => {
                    let env = env.to_string_lossy().into_owned();
                    self.settable.entry(long.to_string()).or_insert((env, Kind::of(arg)));
                }
                None if !matches!(long, "help" | "version") => {
                    self.command_line_only.insert(long.to_string());
                }
                None => {}
            }
        }
        for sub in command.get_subcommands() {
            self.collect(sub);
        }
    }

    /// The variable a key sets, or why the key is refused.
    fn env_of(&self, key: &str, path: &Path) -> anyhow::Result<(&str, Kind)> {
        if let Some((env, kind)) = self.settable.get(key) {
            return Ok((env.as_str(), *kind));
        }
        let file = path.display();
        if self.command_line_only.contains(key) {
            bail!("config file {file}: {key:?} is a command-line flag only: give --{key} on the command line");
        }
        match self.nearest(key) {
            Some(near) => bail!(
                "config file {file}: unknown setting {key:?}: did you mean {near:?}? (the keys are the flags' long names)"
            ),
            None => bail!(
                "config file {file}: unknown setting {key:?} (the keys are the flags' long names, as in `funnelpulse \
                 run --help`: {})",
                self.settable.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The valid key a mistyped one most likely meant: the flag whose
    /// variable the key spells (`kafka-topic` → `topic`, from
    /// FUNNELPULSE_KAFKA_TOPIC), else the closest spelling.
    fn nearest(&self, key: &str) -> Option<&str> {
        let as_env = env_var_for_key(key);
        if let Some((long, _)) = self.settable.iter().find(|(_, (env, _))| *env == as_env) {
            return Some(long.as_str());
        }
        self.settable
            .keys()
            .map(|long| (edit_distance(key, long), long))
            .filter(|(d, long)| *d <= 2usize.max(long.len() / 3))
            .min()
            .map(|(_, long)| long.as_str())
    }
}

pub fn env_var_for_key(key: &str) -> String {
    format!("FUNNELPULSE_{}", key.to_uppercase().replace('-', "_"))
}

/// Levenshtein distance (keys are short ASCII words).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A key's value as its variable's text, or a one-line refusal of its type.
fn value_text(key: &str, value: &toml::Value, kind: Kind, path: &Path) -> anyhow::Result<String> {
    use toml::Value as V;
    let text = match (kind, value) {
        (Kind::Switch, V::Boolean(b)) => Some(b.to_string()),
        (Kind::Number, V::Integer(i)) => Some(i.to_string()),
        (Kind::Number, V::Float(f)) => Some(f.to_string()),
        (Kind::Text | Kind::List, V::String(s)) => Some(s.clone()),
        (Kind::Text, V::Datetime(d)) => Some(d.to_string()),
        // The variable of a repeatable flag separates its values with commas.
        (Kind::List, V::Array(items)) => {
            items.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().map(|v| v.join(","))
        }
        _ => None,
    };
    text.ok_or_else(|| {
        let found = match value {
            V::String(s) => format!("the string {s:?}"),
            V::Integer(i) => format!("the number {i}"),
            V::Float(f) => format!("the number {f}"),
            V::Boolean(b) => format!("{b}"),
            V::Datetime(d) => format!("the date {d}"),
            V::Array(_) => "an array".to_string(),
            V::Table(_) => "a table".to_string(),
        };
        anyhow::anyhow!(
            "config file {}: setting {key:?} (--{key}) must be {}, not {found}",
            path.display(),
            kind.describe()
        )
    })
}

/// The variables the file sets (variable, value, key), given which are set
/// already: keys checked, types checked, the environment left untouched.
fn file_settings(
    text: &str,
    path: &Path,
    command: &clap::Command,
    is_set: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
        anyhow::anyhow!("config file {} is not valid TOML{at}: {}", path.display(), e.message())
    })?;
    let keys = Keys::of(command);
    let mut out: Vec<(String, String, String)> = Vec::new();
    for (key, value) in &table {
        if value.is_table() {
            bail!(
                "config file {}: [{key}] sections are not read: write the keys at the top level (the flags' long names)",
                path.display()
            );
        }
        let (env, kind) = keys.env_of(key, path)?;
        let text = value_text(key, value, kind, path)?;
        if let Some((_, _, other)) = out.iter().find(|(e, _, _)| e == env) {
            bail!("config file {}: {other:?} and {key:?} are the same setting ({env}): keep one", path.display());
        }
        if !is_set(env) {
            out.push((env.to_string(), text, key.clone()));
        }
    }
    Ok(out)
}

/// Where the settings came from, to name the source of an invalid value.
#[derive(Debug, Default)]
pub struct Sources {
    file: Option<PathBuf>,
    /// Variables set from the file → their key.
    from_file: BTreeMap<String, String>,
    keys: Keys,
    args: Vec<OsString>,
}

impl Sources {
    /// Where the value of `--long` came from, when not from the command line.
    fn origin(&self, long: &str) -> Option<String> {
        let flag = format!("--{long}");
        let on_command_line = self
            .args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy())
            .take_while(|a| a != "--")
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if on_command_line {
            return None;
        }
        let (env, _) = self.keys.settable.get(long)?;
        match (self.from_file.get(env), &self.file) {
            (Some(key), Some(file)) => Some(format!("key {key:?} in {}", file.display())),
            _ => std::env::var_os(env).is_some().then(|| env.clone()),
        }
    }

    /// A clap error as one line naming the flag and, for a value that did
    /// not come from the command line, its variable or the file's key.
    pub fn explain(&self, error: &clap::Error) -> Option<String> {
        if !matches!(error.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
            return None;
        }
        let text = |kind| match error.get(kind) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let arg = text(ContextKind::InvalidArg)?;
        let long = arg.strip_prefix("--")?.split([' ', '=']).next()?.to_string();
        let value = text(ContextKind::InvalidValue).unwrap_or_default();
        let reason = match (std::error::Error::source(error), error.get(ContextKind::ValidValue)) {
            (Some(cause), _) => cause.to_string(),
            (None, Some(ContextValue::Strings(valid))) => format!("possible values: {}", valid.join(", ")),
            (None, _) => "not a valid value".to_string(),
        };
        let origin = self.origin(&long).map(|o| format!(" (from {o})")).unwrap_or_default();
        Some(format!("invalid value {value:?} for --{long}{origin}: {reason}"))
    }
}

/// Applies the config file (if any) to the environment and returns where
/// each setting came from.
pub fn load_config_file(command: &clap::Command) -> anyhow::Result<Sources> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let keys = Keys::of(command);
    let Some(path) = config_path() else { return Ok(Sources { keys, args, ..Default::default() }) };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading config file {} (FUNNELPULSE_CONFIG or ./funnelpulse.toml)", path.display())
    })?;
    let mut from_file = BTreeMap::new();
    for (env, value, key) in file_settings(&text, &path, command, |env| std::env::var_os(env).is_some())? {
        // SAFETY: called at start-up before any other thread reads the environment.
        unsafe { std::env::set_var(&env, value) };
        from_file.insert(env, key);
    }
    Ok(Sources { file: Some(path), from_file, keys, args })
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, Command, value_parser};

    use super::*;

    fn command() -> Command {
        Command::new("t")
            .subcommand(
                Command::new("run")
                    .arg(Arg::new("lake").long("lake").env("FUNNELPULSE_LAKE"))
                    .arg(Arg::new("rows").long("rows").env("FUNNELPULSE_ROWS").value_parser(value_parser!(u64)))
                    .arg(Arg::new("dedup").long("dedup").env("FUNNELPULSE_DEDUP").action(ArgAction::SetTrue))
                    .arg(Arg::new("reset").long("reset-stream").action(ArgAction::SetTrue)),
            )
            .subcommand(
                Command::new("kafka").arg(Arg::new("topic").long("topic").env("FUNNELPULSE_KAFKA_TOPIC")).arg(
                    Arg::new("opt").long("kafka-option").env("FUNNELPULSE_KAFKA_OPTIONS").action(ArgAction::Append),
                ),
            )
    }

    fn settings(text: &str) -> anyhow::Result<Vec<(String, String, String)>> {
        file_settings(text, Path::new("/etc/fp.toml"), &command(), |env| env == "FUNNELPULSE_ROWS")
    }

    fn refusal(text: &str) -> String {
        let error = settings(text).unwrap_err().to_string();
        assert!(!error.contains('\n'), "one line: {error}");
        error
    }

    #[test]
    fn keys_are_the_long_flag_names_whatever_their_variable() {
        let set = settings("lake = 'l'\ntopic = 't'\nkafka-option = ['a=1', 'b=2']\ndedup = true\n").unwrap();
        let pairs: Vec<(&str, &str)> = set.iter().map(|(e, v, _)| (e.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("FUNNELPULSE_DEDUP", "true"),
                ("FUNNELPULSE_KAFKA_OPTIONS", "a=1,b=2"),
                ("FUNNELPULSE_LAKE", "l"),
                ("FUNNELPULSE_KAFKA_TOPIC", "t")
            ]
        );
        // A variable set already wins over the file.
        assert!(settings("rows = 5\n").unwrap().is_empty());
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused() {
        let error = refusal("lake = 5\n");
        assert!(error.contains("/etc/fp.toml") && error.contains("\"lake\"") && error.contains("string"), "{error}");
        assert!(refusal("dedup = 'yes'\n").contains("true or false"));
        assert!(refusal("kafka-option = [1]\n").contains("array of strings"));
        // Checked even where a variable overrides it: the file is wrong either way.
        assert!(refusal("rows = '5'\n").contains("must be a number, not the string \"5\""));
    }

    #[test]
    fn unknown_keys_are_refused_with_the_nearest_valid_one() {
        assert!(refusal("kafka-topic = 'x'\n").contains("did you mean \"topic\""));
        assert!(refusal("laek = 'x'\n").contains("did you mean \"lake\""));
        let error = refusal("colour = 'red'\n");
        assert!(error.contains("unknown setting \"colour\"") && !error.contains("did you mean"), "{error}");
        assert!(refusal("reset-stream = true\n").contains("command-line flag only"));
        assert!(refusal("[run]\nlake = 'x'\n").contains("top level"));
        assert!(refusal("lake = \n").contains("not valid TOML at line 1"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("lake", "lake"), 0);
        assert_eq!(edit_distance("laek", "lake"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("bad-row", "bad-rows"), 1);
    }

    #[test]
    fn an_invalid_value_names_its_source() {
        let mut command = command();
        command.build();
        let sources = Sources {
            file: Some(PathBuf::from("/etc/fp.toml")),
            from_file: [("FUNNELPULSE_ROWS".to_string(), "rows".to_string())].into(),
            keys: Keys::of(&command),
            args: vec!["t".into(), "run".into(), "--lake=x".into()],
        };
        let error = command.clone().try_get_matches_from(["t", "run", "--rows", "many"]).unwrap_err();
        let line = sources.explain(&error).unwrap();
        assert!(line.starts_with("invalid value \"many\" for --rows (from key \"rows\" in /etc/fp.toml): "), "{line}");
        assert_eq!(sources.origin("lake"), None, "given on the command line");
    }
}
