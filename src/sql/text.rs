//! Token text without an allocation when it is short: the words, numbers and literals of a
//! statement. Most identifiers and numbers fit in 22 bytes, and a keyword is a `'static`
//! string of sqlparser's table; only longer text (a function body) goes to the heap. A file
//! has tens of thousands of tokens: a `String` for each was a large share of lint's time.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Bytes held in place: with the length and the variant's tag, the size of a `String`.
const INLINE: usize = 22;

/// Immutable text, compared and hashed as the `str` it holds.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Text {
    pub const EMPTY: Text = Text(Repr::Static(""));

    /// Text that is already there for the whole run (a keyword).
    pub const fn from_static(s: &'static str) -> Self {
        Text(Repr::Static(s))
    }

    /// A copy of `s` (in place when it is short).
    pub fn new(s: &str) -> Self {
        Self::inline(s, |_| {}).unwrap_or_else(|| Text(Repr::Heap(s.into())))
    }

    /// `s` in ASCII lower case.
    pub fn ascii_lower(s: &str) -> Self {
        Self::inline(s, <[u8]>::make_ascii_lowercase)
            .unwrap_or_else(|| Text::from(s.to_ascii_lowercase()))
    }

    /// `s` in ASCII upper case.
    pub fn ascii_upper(s: &str) -> Self {
        Self::inline(s, <[u8]>::make_ascii_uppercase)
            .unwrap_or_else(|| Text::from(s.to_ascii_uppercase()))
    }

    /// `s` held in place and changed by `f` (an ASCII case change, which keeps it UTF-8),
    /// if it is short enough.
    fn inline(s: &str, f: impl FnOnce(&mut [u8])) -> Option<Self> {
        let len = u8::try_from(s.len())
            .ok()
            .filter(|&l| usize::from(l) <= INLINE)?;
        let mut bytes = [0; INLINE];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        f(&mut bytes[..s.len()]);
        Some(Text(Repr::Inline { len, bytes }))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Heap(s) => s,
            // Built from a `str` (or its ASCII case change): always UTF-8.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
        }
    }

    /// The bytes, without the UTF-8 check of [`Text::as_str`]: for comparisons.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(s) => s.as_bytes(),
            Repr::Heap(s) => s.as_bytes(),
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self::inline(&s, |_| {}).unwrap_or_else(|| Text(Repr::Heap(s.into_boxed_str())))
    }
}

impl From<Cow<'_, str>> for Text {
    fn from(s: Cow<'_, str>) -> Self {
        match s {
            Cow::Borrowed(s) => Text::new(s),
            Cow::Owned(s) => Text::from(s),
        }
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::EMPTY
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_text_read_back_as_written() {
        let long = "a".repeat(INLINE + 1);
        for s in ["", "x", "éé", "twenty_two_bytes_exact", long.as_str()] {
            assert_eq!(Text::new(s).as_str(), s);
            assert_eq!(Text::from(s.to_string()), *s);
            assert_eq!(Text::ascii_upper(s).as_str(), s.to_ascii_uppercase());
            assert_eq!(Text::ascii_lower(&s.to_ascii_uppercase()).as_str(), s);
        }
        assert_eq!(format!("{:?}", Text::new("a\"b")), format!("{:?}", "a\"b"));
        assert_eq!(Text::from_static("SELECT"), Text::new("SELECT"));
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<String>());
    }
}
