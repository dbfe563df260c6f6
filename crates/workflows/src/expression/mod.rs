//! The `${{ }}` expression language with GitHub's exact semantics: lexer, parser,
//! evaluator, functions, and string interpolation.
//!
//! API contract (other modules code against this; keep the signatures):
//! - [`parse`] source + the named values (contexts) allowed where it appears → [`Expr`].
//! - [`Expr::evaluate`] with an [`EvalContext`] → [`Value`].
//! - [`template`]: strings with `${{ }}` parts, and `if:` conditions.
//! - [`to_display_string`] / [`to_json_pretty`]: how results print.
//!
//! Inside: `lexer` → `parser` (syntax tree with 1-based positions, depth limit 50) →
//! `evaluate` (with `functions`, `compare` for loose equality/ordering, `convert` and
//! `number` for kind conversions: JavaScript `Number(s)` one way, .NET `G15` the other).

mod compare;
mod convert;
mod evaluate;
mod functions;
mod lexer;
pub mod memory;
pub mod number;
mod parser;
pub mod template;
pub mod value;

pub use compare::{greater_than, less_than, loose_equals, to_upper_special};
pub use convert::{to_display_string, to_json_pretty, to_number};
pub use functions::Function;
pub use template::{Condition, Part, Template, parse_condition, parse_template};
pub use value::{Kind, Object, Value};

use std::fmt;

/// The contexts a workflow may reference somewhere (GitHub's twelve named values).
pub const ALL_CONTEXTS: [&str; 12] = [
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix",
    "needs", "inputs",
];

/// Every name a run may evaluate: [`ALL_CONTEXTS`] and Gitea's and Forgejo's names for the
/// `github` context (`gitea`; `forge`, `forgejo`), which the loader lets through only for
/// their dialect.
pub const EVERY_NAME: [&str; 15] = [
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix",
    "needs", "inputs", "gitea", "forge", "forgejo",
];

/// The functions allowed only in some places: the status functions and `hashFiles`.
pub const EXTRA_FUNCTIONS: [&str; 5] = ["success", "always", "failure", "cancelled", "hashFiles"];

/// What a parse may reference.
#[derive(Debug, Clone, Copy)]
pub struct Allowed<'a> {
    /// Context names allowed (matched ignoring case).
    pub named_values: &'a [&'a str],
    /// Functions allowed besides the core ones (`contains`, `startsWith`, `endsWith`,
    /// `format`, `join`, `toJSON`, `fromJSON`, `case`): any of [`EXTRA_FUNCTIONS`].
    pub functions: &'a [&'a str],
    /// Whether `success(...)` and `failure(...)` take job ids (GitHub allows this in a
    /// job-level `if:` only); otherwise every status function takes no argument.
    pub status_function_args: bool,
}

impl Allowed<'static> {
    /// Every context and every function, status functions with job-id arguments included.
    pub fn everything() -> Self {
        Allowed {
            named_values: &EVERY_NAME,
            functions: &EXTRA_FUNCTIONS,
            status_function_args: true,
        }
    }
}

impl Allowed<'_> {
    pub fn allows_named_value(&self, name: &str) -> bool {
        self.named_values
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    pub fn allows_function(&self, name: &str) -> bool {
        self.functions.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// A parsed expression, with its source.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Option<parser::Node>,
}

/// The longest expression GitHub accepts, in characters.
pub const MAX_EXPRESSION_LENGTH: usize = 21_000;

/// Lexes and parses `source` (an expression without `${{ }}`).
pub fn parse(source: &str, allowed: &Allowed) -> Result<Expr, ExprError> {
    if source.chars().count() > MAX_EXPRESSION_LENGTH {
        return Err(ExprError {
            kind: ErrorKind::Parsing,
            message: format!("Exceeded max expression length {MAX_EXPRESSION_LENGTH}"),
            position: None,
            expression: source.to_string(),
        });
    }
    let tokens = lexer::lex(source)?;
    let root = parser::Parser::new(source, tokens, allowed).parse()?;
    Ok(Expr {
        source: source.to_string(),
        root,
    })
}

impl Expr {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The value of the expression; an empty expression is null.
    pub fn evaluate(&self, ctx: &EvalContext) -> Result<Value, ExprError> {
        match &self.root {
            Some(root) => evaluate::Evaluator::new(&self.source, ctx).evaluate(root),
            None => Ok(Value::Null),
        }
    }

    /// Whether `success()`, `always()`, `failure()` or `cancelled()` appears anywhere.
    pub fn uses_status_function(&self) -> bool {
        self.root
            .as_ref()
            .is_some_and(parser::Node::uses_status_function)
    }

    /// The contexts the expression reads, each with the literal keys that follow it:
    /// `fromJSON(needs.gen.outputs.matrix)` gives `[["needs", "gen", "outputs", "matrix"]]`
    /// (names as written; a computed or `*` key ends a path).
    pub fn context_paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        if let Some(root) = &self.root {
            root.context_paths(&mut paths);
        }
        paths
    }

    /// The literal value when the expression is a single literal (`'x'`, `1`, `true`, `null`).
    pub fn literal(&self) -> Option<&Value> {
        match &self.root {
            Some(parser::Node {
                kind: parser::NodeKind::Literal(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }
}

/// How the job stands, for the status functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Success,
    Failure,
    Cancelled,
    /// A job-level `if:` whose `needs` include a skipped job (and none failed):
    /// `success()`, `failure()` and `cancelled()` are all false, only `always()` holds.
    DependencySkipped,
}

/// What evaluation needs from outside: `hashFiles` reads the workspace, which the runner
/// owns (this crate does no IO).
pub trait Host {
    /// GitHub's `hashFiles(patterns...)`: the hex digest of the matching files, or `""`
    /// when none match; `Err` carries the reason it failed.
    fn hash_files(&self, patterns: &[String]) -> Result<String, String>;
}

/// Everything an evaluation reads.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    /// The named values, e.g. `github`, `env`, `matrix` (lookup ignores case).
    pub contexts: &'a Object,
    pub status: JobStatus,
    pub host: Option<&'a dyn Host>,
}

impl fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvalContext")
            .field("contexts", &self.contexts)
            .field("status", &self.status)
            .field("host", &self.host.is_some())
            .finish()
    }
}

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
/// when there is no position; a message that already ends with the expression (GitHub's
/// memory error) is printed as it is.
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
            None if self
                .message
                .strip_suffix(self.expression.as_str())
                .is_some_and(|m| m.ends_with(": ")) =>
            {
                f.write_str(&self.message)
            }
            None => write!(
                f,
                "{}. Located within expression: {}",
                self.message, self.expression
            ),
        }
    }
}

impl std::error::Error for ExprError {}

impl ExprError {
    /// The same error, located at `position` unless it already has a position.
    fn at(mut self, position: usize) -> Self {
        if self.position.is_none()
            && self.kind == ErrorKind::Evaluation
            && !self.message.starts_with(memory::MEMORY_EXCEEDED)
        {
            self.position = Some(position);
        }
        self
    }
}
