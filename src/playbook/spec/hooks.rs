//! `[hooks]` of a playbook, validated (the dispatcher that runs them is `playbook::hooks`).

use std::time::Duration;

use super::super::hooks::{EventKind, Hooks, RawHooks};
use super::super::settings::{Parse, SpecError};
use crate::http::Url;

fn event_names() -> String {
    EventKind::HOOKED.map(EventKind::name).join(", ")
}

fn event_kind(p: &Parse<'_>, key: &str, name: &str) -> Result<EventKind, SpecError> {
    EventKind::parse(name).ok_or_else(|| {
        let hint = crate::lint::did_you_mean(name, EventKind::HOOKED.map(EventKind::name))
            .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
        p.bad(
            key,
            format!(
                "unknown event `{name}`{hint}; expected one of {}",
                event_names()
            ),
        )
    })
}

/// Validates `[hooks]`.
pub(crate) fn parse(raw: &RawHooks, p: &Parse<'_>) -> Result<Hooks, SpecError> {
    let d = Hooks::default();
    let nonempty = |key: &str, v: &Option<String>| p.optional(key, v.as_deref());
    let events = match &raw.events {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|e| event_kind(p, "hooks.events", e))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let webhook = match nonempty("hooks.webhook", &raw.webhook)? {
        None => None,
        Some(u) => Some(Url::parse(&u).map_err(|m| p.bad("hooks.webhook", m))?),
    };
    let timeout = match &raw.timeout {
        None => d.timeout,
        Some(s) => match crate::lint::context::parse_duration_ms(s) {
            Some(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                return Err(p.bad(
                    "hooks.timeout",
                    format!("expected a duration above zero such as \"10s\", found `{s}`"),
                ))
            }
        },
    };
    let mut on = Vec::new();
    for (name, command) in &raw.on {
        let key = format!("hooks.on.{name}");
        let kind = event_kind(p, &key, name)?;
        on.push((kind, p.nonempty(&key, command)?));
    }
    Ok(Hooks {
        command: nonempty("hooks.command", &raw.command)?,
        events,
        webhook,
        timeout,
        retries: raw.retries.unwrap_or(d.retries),
        required: raw.required.unwrap_or(d.required),
        on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Hooks, SpecError> {
        let raw: RawHooks = toml::from_str(text).unwrap();
        parse(&raw, &Parse { path: "p.toml" })
    }

    #[test]
    fn hooks_parse_and_bad_values_name_the_key() {
        let h = parse_str(
            "command = \"notify\"\nevents = [\"swapped\", \"failed\"]\nwebhook = \"http://h:9/x\"\ntimeout = \"2s\"\nretries = 1\n[on]\nready_to_swap = \"lockstep swap $LOCKSTEP_RUN_ID\"\n",
        )
        .unwrap();
        assert_eq!(h.timeout, Duration::from_secs(2));
        assert_eq!(h.commands(EventKind::Swapped), vec!["notify"]);
        assert!(h.commands(EventKind::StepStarted).is_empty());
        assert_eq!(
            h.commands(EventKind::ReadyToSwap),
            vec!["lockstep swap $LOCKSTEP_RUN_ID"]
        );
        let e = parse_str("events = [\"swaped\"]").unwrap_err().to_string();
        assert!(
            e.contains("`hooks.events`") && e.contains("did you mean `swapped`"),
            "{e}"
        );
        let e = parse_str("[on]\nfinish = \"x\"").unwrap_err().to_string();
        assert!(e.contains("`hooks.on.finish`"), "{e}");
        let e = parse_str("webhook = \"https://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`hooks.webhook`"), "{e}");
        let e = parse_str("timeout = \"0s\"").unwrap_err().to_string();
        assert!(e.contains("`hooks.timeout`"), "{e}");
        assert!(parse_str("").unwrap().is_empty());
    }
}
