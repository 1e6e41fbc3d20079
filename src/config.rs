//! `lockstep.toml`: discovery (walk up from the working directory), parsing with errors that
//! name the key and the file, and merging with command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::framework::{self, Framework};
use crate::lint::context::parse_duration_ms;
use crate::lint::rules::{self, RULES};
use crate::lint::{did_you_mean, LintOptions, Severity};

pub const FILE_NAME: &str = "lockstep.toml";
/// Lowest and highest PostgreSQL major versions lockstep models.
pub const PG_VERSIONS: std::ops::RangeInclusive<u32> = 9..=19;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum VersionValue {
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IntOrText {
    Int(i64),
    Str(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pg_version: Option<VersionValue>,
    assume_in_transaction: Option<bool>,
    select: Option<Vec<String>>,
    ignore: Option<Vec<String>>,
    severity: Option<BTreeMap<String, String>>,
    exclude: Option<Vec<String>>,
    lock_timeout_max: Option<IntOrText>,
    fail_on: Option<String>,
    framework: Option<String>,
    lint_down: Option<bool>,
    max_file_size: Option<IntOrText>,
    baseline: Option<String>,
    timezone: Option<String>,
}

/// A rule's configured level: a severity, or off.
pub type Level = Option<Severity>;

/// Settings from a config file or from flags; `None` fields are unset.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    pub pg_version: Option<u32>,
    pub assume_in_transaction: Option<bool>,
    pub select: Vec<String>,
    pub ignore: Vec<String>,
    pub severity: BTreeMap<String, Level>,
    pub exclude: Vec<String>,
    pub lock_timeout_max_ms: Option<u64>,
    pub fail_on: Option<Severity>,
    /// `Some(None)`: detect per file (`"auto"`); `Some(Some(f))`: every file is `f`.
    pub framework: Option<Option<Framework>>,
    pub lint_down: Option<bool>,
    /// Largest file read, in bytes.
    pub max_file_size: Option<u64>,
    /// The baseline of accepted findings (from the config: relative to its directory).
    pub baseline: Option<PathBuf>,
    /// The session `TimeZone` migrations run with (`timestamp` ↔ `timestamptz` rewrites
    /// only when it is not UTC).
    pub timezone: Option<String>,
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file, if one was found.
    pub path: Option<PathBuf>,
    /// Directory that relative `exclude` globs are matched from.
    pub root: PathBuf,
    pub settings: Settings,
}

/// Finds `lockstep.toml` in `start` or its ancestors.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Loads the config at `explicit`, or the one found from `cwd`, or defaults.
pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Config, ConfigError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => discover(cwd),
    };
    let Some(path) = path else {
        return Ok(Config {
            path: None,
            root: cwd.to_path_buf(),
            settings: Settings::default(),
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    let settings = parse(&text, &path)?;
    let root = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                cwd.to_path_buf()
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| cwd.to_path_buf());
    Ok(Config {
        path: Some(path),
        root,
        settings,
    })
}

/// Parses config text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim().replace('\n', " ").replace("  ", " "),
    })?;
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let mut s = Settings {
        assume_in_transaction: raw.assume_in_transaction,
        lint_down: raw.lint_down,
        ..Settings::default()
    };
    if let Some(f) = raw.framework {
        s.framework = Some(parse_framework(&f).map_err(|m| invalid("framework", m))?);
    }
    if let Some(b) = raw.baseline {
        if b.trim().is_empty() {
            return Err(invalid("baseline", "expected a file name".into()));
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        s.baseline = Some(dir.join(b));
    }
    if let Some(v) = raw.pg_version {
        let text = match v {
            VersionValue::Int(i) => i.to_string(),
            VersionValue::Float(f) => f.to_string(),
            VersionValue::Str(s) => s,
        };
        s.pg_version = Some(parse_pg_version(&text).map_err(|m| invalid("pg_version", m))?);
    }
    for (key, list, out) in [
        ("select", raw.select, &mut s.select),
        ("ignore", raw.ignore, &mut s.ignore),
    ] {
        for name in list.unwrap_or_default() {
            check_rule_name(&name, true).map_err(|m| invalid(key, m))?;
            out.push(name);
        }
    }
    for (rule, level) in raw.severity.unwrap_or_default() {
        let key = format!("severity.{rule}");
        check_rule_name(&rule, false).map_err(|m| invalid(&key, m))?;
        let level = parse_level(&level).map_err(|m| invalid(&key, m))?;
        s.severity.insert(rule, level);
    }
    for (i, g) in raw.exclude.unwrap_or_default().into_iter().enumerate() {
        globset::Glob::new(&g).map_err(|e| invalid(&format!("exclude[{i}]"), e.to_string()))?;
        s.exclude.push(g);
    }
    if let Some(d) = raw.lock_timeout_max {
        let ms = match d {
            IntOrText::Int(i) if i >= 0 => Some(i as u64),
            IntOrText::Int(_) => None,
            IntOrText::Str(s) => parse_duration_ms(&s),
        };
        s.lock_timeout_max_ms = Some(ms.ok_or_else(|| {
            invalid(
                "lock_timeout_max",
                "expected a duration such as \"5s\", \"500ms\" or a number of milliseconds".into(),
            )
        })?);
    }
    if let Some(v) = raw.max_file_size {
        let size = match v {
            IntOrText::Int(i) if i > 0 => Ok(i as u64),
            IntOrText::Int(i) => Err(format!("expected a size such as \"16MiB\", found `{i}`")),
            IntOrText::Str(s) => parse_size(&s),
        };
        s.max_file_size = Some(size.map_err(|m| invalid("max_file_size", m))?);
    }
    if let Some(tz) = raw.timezone {
        s.timezone = Some(parse_timezone(&tz).map_err(|m| invalid("timezone", m))?);
    }
    if let Some(f) = raw.fail_on {
        s.fail_on = Some(Severity::parse(&f).ok_or_else(|| {
            invalid(
                "fail_on",
                format!("expected error, warning or note, found `{f}`"),
            )
        })?);
    }
    Ok(s)
}

/// A time zone name as PostgreSQL's `TimeZone` setting takes it (`UTC`, `Europe/Berlin`).
pub fn parse_timezone(text: &str) -> Result<String, String> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-:.".contains(c));
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!(
            "expected a time zone name such as \"UTC\" or \"Europe/Berlin\", found `{t}`"
        ))
    }
}

/// `15`, `15.4`, `9.6` → major version.
pub fn parse_pg_version(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let major = t.split('.').next().unwrap_or("");
    let v: u32 = major.parse().map_err(|_| {
        format!("expected a PostgreSQL version such as 15 or \"15.4\", found `{t}`")
    })?;
    if !PG_VERSIONS.contains(&v) {
        return Err(format!(
            "PostgreSQL {v} is not supported (supported: {} to {})",
            PG_VERSIONS.start(),
            PG_VERSIONS.end()
        ));
    }
    Ok(v)
}

/// A size in bytes: `1000000`, `500KB`, `16MiB`, `1GB` (KB, MB, GB are powers of 1000;
/// KiB, MiB, GiB powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 && factor > 0 => n
            .checked_mul(factor)
            .ok_or_else(|| format!("size `{t}` is too large")),
        _ => Err(format!(
            "expected a size such as 16MiB, 500KB or a number of bytes, found `{t}`"
        )),
    }
}

/// `auto` (detect per file) or a framework name.
pub fn parse_framework(s: &str) -> Result<Option<Framework>, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    Framework::parse(s).map(Some).ok_or_else(|| {
        let names: Vec<&str> = framework::ALL.iter().map(|f| f.name()).collect();
        let hint = did_you_mean(s, names.iter().copied())
            .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
        format!(
            "unknown framework `{s}`{hint}; expected auto, {}",
            names.join(", ")
        )
    })
}

/// `error` / `warning` / `note` / `off`.
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s {
        "off" => Ok(None),
        other => Severity::parse(other)
            .map(Some)
            .ok_or_else(|| format!("expected error, warning, note or off, found `{other}`")),
    }
}

/// Errors (with a suggestion) unless `name` is a rule (or `all`, where allowed).
pub fn check_rule_name(name: &str, allow_all: bool) -> Result<(), String> {
    if rules::find(name).is_some() || (allow_all && name == "all") {
        return Ok(());
    }
    let hint = did_you_mean(name, RULES.iter().map(|r| r.name))
        .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
    Err(format!("unknown rule `{name}`{hint}"))
}

impl Settings {
    /// Overlays `flags` on `self` (flags win; lists are added).
    pub fn merged_with(mut self, flags: Settings) -> Settings {
        if flags.pg_version.is_some() {
            self.pg_version = flags.pg_version;
        }
        if flags.assume_in_transaction.is_some() {
            self.assume_in_transaction = flags.assume_in_transaction;
        }
        self.select.extend(flags.select.iter().cloned());
        self.ignore.extend(flags.ignore.iter().cloned());
        // A rule selected on the command line overrides an ignore in the file.
        self.ignore.retain(|r| !flags.select.contains(r));
        self.select.retain(|r| !flags.ignore.contains(r));
        self.severity.extend(flags.severity);
        self.exclude.extend(flags.exclude);
        if flags.lock_timeout_max_ms.is_some() {
            self.lock_timeout_max_ms = flags.lock_timeout_max_ms;
        }
        if flags.fail_on.is_some() {
            self.fail_on = flags.fail_on;
        }
        if flags.framework.is_some() {
            self.framework = flags.framework;
        }
        if flags.lint_down.is_some() {
            self.lint_down = flags.lint_down;
        }
        if flags.max_file_size.is_some() {
            self.max_file_size = flags.max_file_size;
        }
        if flags.baseline.is_some() {
            self.baseline = flags.baseline;
        }
        if flags.timezone.is_some() {
            self.timezone = flags.timezone;
        }
        self
    }

    /// The lint options these settings give.
    pub fn lint_options(&self) -> LintOptions {
        let all = self.select.iter().any(|s| s == "all");
        let severities = RULES
            .iter()
            .map(|r| {
                if self.ignore.iter().any(|i| i == r.name || i == "all") {
                    return None;
                }
                if let Some(level) = self.severity.get(r.name) {
                    return *level;
                }
                let selected = all || self.select.iter().any(|s| s == r.name);
                r.default_severity.or(selected.then_some(Severity::Warning))
            })
            .collect();
        LintOptions {
            pg_version: self.pg_version.unwrap_or(15),
            assume_in_transaction: self.assume_in_transaction.unwrap_or(false),
            severities,
            lock_timeout_max_ms: self.lock_timeout_max_ms,
            framework: self.framework.flatten(),
            lint_down: self.lint_down.unwrap_or(true),
            tx_note: None,
            max_file_size: self
                .max_file_size
                .unwrap_or(crate::lint::DEFAULT_MAX_FILE_SIZE),
            up_created: None,
            timezone: self.timezone.clone(),
            lock_reports: true,
        }
    }
}
