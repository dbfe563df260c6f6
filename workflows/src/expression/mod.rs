//! The `${{ }}` expression language with GitHub's exact semantics: lexer, parser,
//! evaluator, functions, and string interpolation.
//!
//! API contract (other modules code against this; keep the signatures):
//! - [`parse`] source + the named values (contexts) allowed where it appears → [`Expr`].
//! - [`Expr::evaluate`] with an [`EvalContext`] → [`Value`].
//! - [`template`]: strings with `${{ }}` parts, and `if:` conditions.

pub mod value;

pub use value::{Kind, Object, Value};

use std::fmt;

/// The phase that rejected an expression, as GitHub's suites name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Lexing,
    Parsing,
    Evaluation,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Lexing => "lexing",
            ErrorKind::Parsing => "parsing",
            ErrorKind::Evaluation => "evaluation",
        })
    }
}

/// An expression that could not be lexed, parsed or evaluated.
///
/// `Display` is GitHub's form: `<message>. Located at position <N> within expression: <expr>`
/// (N is the 1-based character column), or `<message>. Located within expression: <expr>`
/// when there is no position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub kind: ErrorKind,
    pub message: String,
    /// 1-based character column within `expression`.
    pub position: Option<usize>,
    pub expression: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(
                f,
                "{}. Located at position {} within expression: {}",
                self.message, p, self.expression
            ),
            None => write!(
                f,
                "{}. Located within expression: {}",
                self.message, self.expression
            ),
        }
    }
}

impl std::error::Error for ExprError {}
