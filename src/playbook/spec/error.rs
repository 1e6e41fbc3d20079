//! TOML errors as one line, with a "did you mean" for a misspelt key.

use crate::lint::did_you_mean;

/// A TOML error as one line, with a "did you mean" for a misspelt key.
pub(super) fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e
        .message()
        .trim()
        .replace("unknown field `", "unknown key `");
    let hint = suggestion(e.message()).map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
    match e
        .span()
        .filter(|s| s.start <= text.len() && text.is_char_boundary(s.start))
    {
        Some(span) => {
            let before = &text[..span.start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let section = before
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
                .and_then(|l| l.split(']').next())
                .map(|l| format!(" in [{}]", l.trim_start_matches('[').trim()))
                .unwrap_or_default();
            format!("line {line}, column {column}{section}: {message}{hint}")
        }
        None => format!("{message}{hint}"),
    }
}

/// For `unknown field `x`, expected one of `a`, `b``: the expected key closest to `x`.
fn suggestion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    did_you_mean(unknown, expected).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_names_its_line_column_and_table() {
        let text = "kind = \"partition\"\n[backfill]\nbatch_sise = 10\n";
        let e = toml::from_str::<toml::Table>("x = [").unwrap_err();
        assert!(
            toml_message(&e, "x = [").starts_with("line 1, column "),
            "{}",
            toml_message(&e, "x = [")
        );
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct B {
            batch_size: Option<u32>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct P {
            kind: String,
            backfill: B,
        }
        let e = toml::from_str::<P>(text).unwrap_err();
        assert_eq!(
            toml_message(&e, text),
            "line 3, column 1 in [backfill]: unknown key `batch_sise`, expected `batch_size` (did you mean `batch_size`?)"
        );
    }

    #[test]
    fn a_misspelt_key_gets_a_suggestion() {
        assert_eq!(
            suggestion("unknown field `colum`, expected one of `column`, `backfill`").as_deref(),
            Some("column")
        );
        assert_eq!(
            suggestion("unknown field `zzzzzz`, expected `column`"),
            None
        );
        assert_eq!(suggestion("invalid type: integer"), None);
    }
}
