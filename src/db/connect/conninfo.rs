//! What the user wrote: libpq URLs and keyword/value strings, the parameter names lockstep
//! knows, and where each raw value came from.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use super::ConnectError;

/// The parameters understood, with their environment variables.
pub(super) const PARAMETERS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("dbname", Some("PGDATABASE")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("options", Some("PGOPTIONS")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("service", Some("PGSERVICE")),
];

/// libpq parameters that lockstep does not implement: naming one is an error rather than
/// silently connecting differently from what was asked.
const UNSUPPORTED: &[&str] = &[
    "client_encoding",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "max_protocol_version",
    "min_protocol_version",
    "replication",
    "require_auth",
    "requirepeer",
    "requiressl",
    "servicefile",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslkeylogfile",
    "sslpassword",
    "sslsni",
    "tcp_user_timeout",
];

/// Why connecting (or working out how to connect) failed. Every message is one line and
/// none contains the password.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Url,
    ConnString,
    Service { file: PathBuf, line: usize },
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Url => f.write_str("the URL"),
            Origin::ConnString => f.write_str("the connection string"),
            Origin::Service { file, line } => {
                write!(f, "service file {}, line {line}", file.display())
            }
            Origin::Env(var) => f.write_str(var),
        }
    }
}

/// Parameter values before defaults, each with where it came from.
#[derive(Default)]
pub(super) struct Raw {
    pub(super) values: HashMap<&'static str, (String, Origin)>,
}

impl Raw {
    pub(super) fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The value if given and not empty.
    pub(super) fn get(&self, key: &str) -> Option<(&str, &Origin)> {
        self.values
            .get(key)
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, o)| (v.as_str(), o))
    }
}

pub(super) fn invalid(key: &str, origin: &Origin, reason: impl Into<String>) -> ConnectError {
    ConnectError::InvalidValue {
        key: key.to_string(),
        origin: origin.to_string(),
        reason: reason.into(),
    }
}

/// The canonical name of a parameter, or the error for an unknown or unsupported one.
pub(super) fn check_key(key: &str, origin: &Origin) -> Result<&'static str, ConnectError> {
    if let Some((name, _)) = PARAMETERS.iter().find(|(name, _)| *name == key) {
        return Ok(name);
    }
    if UNSUPPORTED.contains(&key) {
        return Err(ConnectError::UnsupportedParameter {
            key: key.to_string(),
            origin: origin.to_string(),
        });
    }
    Err(ConnectError::UnknownParameter {
        key: key.to_string(),
        origin: origin.to_string(),
    })
}

/// The unix socket directory used when no host is given: `/var/run/postgresql` if it
/// Decodes `%XX` escapes (`+` stays a plus, as in libpq).
pub(super) fn percent_decode(s: &str, what: &str) -> Result<String, ConnectError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(0) => {
                    return Err(ConnectError::Syntax(format!(
                        "the URL's {what} contains %00, which is not allowed"
                    )))
                }
                Some(b) => out.push(b),
                None => {
                    return Err(ConnectError::Syntax(format!(
                        "the URL's {what} has an invalid percent-encoding (`%` must be followed by two hex digits)"
                    )))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ConnectError::Syntax(format!("the URL's {what} is not UTF-8 once decoded")))
}

/// The part of a URL after `postgres://`, as (keyword, value) pairs in order; later pairs
/// override earlier ones.
pub(super) fn parse_url(rest: &str) -> Result<Vec<(String, String)>, ConnectError> {
    let mut out = Vec::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    // The last `@` ends the user info, so an unencoded `@` in a password still works.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(info) = userinfo {
        let (user, password) = match info.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (info, None),
        };
        if !user.is_empty() {
            out.push(("user".into(), percent_decode(user, "user name")?));
        }
        if let Some(p) = password {
            out.push(("password".into(), percent_decode(p, "password")?));
        }
    }
    let port = if let Some(bracketed) = hostport.strip_prefix('[') {
        let Some((addr, after)) = bracketed.split_once(']') else {
            return Err(ConnectError::Syntax(
                "the URL's IPv6 host has no closing `]`".into(),
            ));
        };
        if addr.is_empty() {
            return Err(ConnectError::Syntax(
                "the URL's IPv6 host is empty (`[]`)".into(),
            ));
        }
        out.push(("host".into(), addr.to_string()));
        if after.is_empty() {
            None
        } else if let Some(p) = after.strip_prefix(':') {
            Some(p)
        } else if after.starts_with(',') {
            return Err(ConnectError::Syntax(
                "the URL names several hosts; lockstep connects to one host only".into(),
            ));
        } else {
            return Err(ConnectError::Syntax(
                "unexpected text after the URL's IPv6 host (expected `:port`, `/dbname` or `?`)"
                    .into(),
            ));
        }
    } else {
        if hostport.contains(',') {
            return Err(ConnectError::Syntax(
                "the URL names several hosts; lockstep connects to one host only".into(),
            ));
        }
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if !host.is_empty() {
            out.push(("host".into(), percent_decode(host, "host")?));
        }
        port
    };
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        out.push(("port".into(), percent_decode(p, "port")?));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.push(("dbname".into(), percent_decode(db, "database name")?));
    }
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(ConnectError::Syntax(
                "a URL query parameter has no `=` (expected `?key=value&key=value`)".into(),
            ));
        };
        let key = percent_decode(key, "query parameter name")?;
        let value = percent_decode(value, "query parameter value")?;
        if key == "ssl" {
            // JDBC's spelling, which libpq accepts too.
            if value != "true" {
                return Err(invalid(
                    "ssl",
                    &Origin::Url,
                    "only `ssl=true` (meaning sslmode=require) is accepted",
                ));
            }
            out.push(("sslmode".into(), "require".into()));
        } else {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// A `key=value key='quoted \' value'` string (libpq's `conninfo_parse`).
pub(super) fn parse_keywords(s: &str) -> Result<Vec<(String, String)>, ConnectError> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_ws(&mut chars);
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            // Name the key only if it is a known one: a stray word might be a password.
            let what = if PARAMETERS.iter().any(|(k, _)| *k == key) {
                format!("`{key}`")
            } else {
                format!("the word at character {}", start + 1)
            };
            return Err(ConnectError::Syntax(format!(
                "missing `=` after {what} (expected `key=value` pairs)"
            )));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(ConnectError::Syntax(format!(
                            "unterminated quoted value for `{key}`"
                        )))
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => {
                            return Err(ConnectError::Syntax(format!(
                                "unterminated quoted value for `{key}`"
                            )))
                        }
                    },
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Fills parameters not given explicitly from the service's section: the user's service
#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Vec<(String, String)> {
        parse_keywords(s).expect("parses")
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keyword_quoting_follows_libpq() {
        assert_eq!(
            kw(r"host=db  port = 5433 password='a b\'c' dbname=x\ y user=''"),
            pairs(&[
                ("host", "db"),
                ("port", "5433"),
                ("password", "a b'c"),
                ("dbname", "x y"),
                ("user", ""),
            ])
        );
        assert!(matches!(
            parse_keywords("password='abc"),
            Err(ConnectError::Syntax(m)) if m.contains("unterminated") && !m.contains("abc")
        ));
        let err = parse_keywords("host=x hunter2").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn url_parts_are_decoded() {
        assert_eq!(
            parse_url("u%40x:p%3Aw@[::1]:5433/my%20db?sslmode=require&application_name=a%26b")
                .unwrap(),
            pairs(&[
                ("user", "u@x"),
                ("password", "p:w"),
                ("host", "::1"),
                ("port", "5433"),
                ("dbname", "my db"),
                ("sslmode", "require"),
                ("application_name", "a&b"),
            ])
        );
        assert_eq!(
            parse_url("%2Ftmp%2Fsock/db").unwrap(),
            pairs(&[("host", "/tmp/sock"), ("dbname", "db")])
        );
        assert_eq!(
            parse_url("u:p@ss@h/db").unwrap(),
            pairs(&[
                ("user", "u"),
                ("password", "p@ss"),
                ("host", "h"),
                ("dbname", "db")
            ])
        );
        assert!(parse_url("h/db?x=%zz").is_err());
        assert!(parse_url("a,b/db").is_err());
    }
}
