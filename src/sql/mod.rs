//! SQL text handling: splitting, tokenizing, parsing and recognizing statements.

pub mod alter;
pub mod dml;
pub mod ir;
pub mod lexer;
pub mod parse;
pub mod placeholders;
pub mod plpgsql;
pub mod recognize;
pub mod split;
pub mod text;
pub mod tokens;

pub use split::{split, LineIndex, Split, Unterminated};
