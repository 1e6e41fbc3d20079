//! TOML errors as one line, with a "did you mean" for a misspelt key.

use crate::lint::did_you_mean;

/// A TOML error as one line, with a "did you mean" for a misspelt key.
pub(super) fn toml_message(e: &toml::de::Error) -> String {
    let message = e.to_string().trim().replace('\n', " ").replace("  ", " ");
    match suggestion(e.message()) {
        Some(s) => format!("{message} (did you mean `{s}`?)"),
        None => message,
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
