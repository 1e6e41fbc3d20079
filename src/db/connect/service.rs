//! The connection service file (`pg_service.conf`), libpq's `parseServiceInfo`.

use std::path::{Path, PathBuf};

use super::conninfo::{check_key, Origin, Raw};
use super::{ConnectError, DEFAULT_SYSCONFDIR};

/// file first, the system one only if the user's has no such section (libpq's
/// `parseServiceInfo`).
pub(super) fn apply_service(
    raw: &mut Raw,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<(), ConnectError> {
    let user_file = env("PGSERVICEFILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pg_service.conf")));
    let system_file = PathBuf::from(
        env("PGSYSCONFDIR")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_string()),
    )
    .join("pg_service.conf");
    let mut looked = Vec::new();
    for file in user_file.into_iter().chain([system_file]) {
        looked.push(file.display().to_string());
        if file.exists() && apply_service_file(raw, &file, name)? {
            return Ok(());
        }
    }
    Err(ConnectError::Service(format!(
        "definition of service `{name}` not found (looked in {})",
        looked.join(" and ")
    )))
}

/// Returns whether the file has the section.
fn apply_service_file(raw: &mut Raw, file: &Path, name: &str) -> Result<bool, ConnectError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConnectError::Service(format!("cannot read service file {}: {e}", file.display()))
    })?;
    let mut in_section = false;
    let mut found = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if in_section {
                break;
            }
            in_section = section
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(']'));
            found |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        let origin = Origin::Service {
            file: file.to_path_buf(),
            line: i + 1,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConnectError::Service(format!(
                "syntax error in {origin}: expected `key=value`"
            )));
        };
        let key = key.trim();
        if key == "service" {
            return Err(ConnectError::Service(format!(
                "nested service specifications are not supported ({origin})"
            )));
        }
        let key = check_key(key, &origin)?;
        if !raw.has(key) {
            raw.values.insert(key, (value.trim().to_string(), origin));
        }
    }
    Ok(found)
}
