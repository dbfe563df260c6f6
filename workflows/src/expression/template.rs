//! Strings with `${{ }}` parts (`run: echo ${{ github.sha }}`) and `if:` conditions, as
//! GitHub reads them: splitting, interpolation, the `format()` normal form, and the
//! implicit `success() &&` of conditions.

use super::convert::to_display_string;
use super::value::Value;
use super::{Allowed, ErrorKind, EvalContext, Expr, ExprError, JobStatus, parse};

/// One piece of a template string.
#[derive(Debug, Clone)]
pub enum Part {
    Literal(String),
    Expression(Expr),
}

/// A string split into literal text and `${{ }}` expressions.
#[derive(Debug, Clone)]
pub struct Template {
    pub parts: Vec<Part>,
}

const OPEN: &str = "${{";

/// Splits `s` on `${{ ... }}` (a `}}` inside a quoted string literal does not close it)
/// and parses each expression with `allowed`.
pub fn parse_template(s: &str, allowed: &Allowed) -> Result<Template, ExprError> {
    let chars: Vec<char> = s.chars().collect();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        if !starts_with_at(&chars, i, OPEN) {
            literal.push(chars[i]);
            i += 1;
            continue;
        }
        let body_start = i + OPEN.len();
        let close = find_close(&chars, body_start).ok_or_else(|| {
            template_error(
                "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found",
                i,
                s,
            )
        })?;
        let body: String = chars[body_start..close].iter().collect();
        let body = body.trim();
        if body.is_empty() {
            return Err(template_error("An expression was expected", i, s));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        parts.push(Part::Expression(parse(body, allowed)?));
        i = close + 2;
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(Template { parts })
}

fn starts_with_at(chars: &[char], at: usize, pattern: &str) -> bool {
    pattern
        .chars()
        .enumerate()
        .all(|(i, p)| chars.get(at + i) == Some(&p))
}

/// The index of the `}}` that closes an expression starting at `from`, skipping quoted
/// string literals.
fn find_close(chars: &[char], from: usize) -> Option<usize> {
    let mut in_string = false;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\'' => in_string = !in_string,
            '}' if !in_string && chars.get(i + 1) == Some(&'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn template_error(message: &str, index: usize, s: &str) -> ExprError {
    ExprError {
        kind: ErrorKind::Parsing,
        message: message.to_string(),
        position: Some(index + 1),
        expression: s.to_string(),
    }
}

impl Template {
    /// Whether there is no `${{ }}` part.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Every part as a string, concatenated.
    pub fn evaluate_to_string(&self, ctx: &EvalContext) -> Result<String, ExprError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Expression(e) => out.push_str(&to_display_string(&e.evaluate(ctx)?)),
            }
        }
        Ok(out)
    }

    /// A string that is exactly one `${{ x }}` keeps `x`'s kind; anything else is the
    /// interpolated string.
    pub fn evaluate(&self, ctx: &EvalContext) -> Result<Value, ExprError> {
        match self.parts.as_slice() {
            [Part::Expression(e)] => e.evaluate(ctx),
            _ => self.evaluate_to_string(ctx).map(Value::String),
        }
    }

    /// GitHub's normal form: `echo ${{ github.sha }}` → `format('echo {0}', github.sha)`,
    /// a single `${{ x }}` → `x`, a literal-only string → `None`.
    pub fn to_format_expression(&self) -> Option<String> {
        if self.is_literal() {
            return None;
        }
        if let [Part::Expression(e)] = self.parts.as_slice() {
            return Some(e.source().to_string());
        }
        let mut fmt = String::new();
        let mut args = Vec::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => {
                    for c in s.chars() {
                        match c {
                            '\'' => fmt.push_str("''"),
                            '{' => fmt.push_str("{{"),
                            '}' => fmt.push_str("}}"),
                            c => fmt.push(c),
                        }
                    }
                }
                Part::Expression(e) => {
                    fmt.push_str(&format!("{{{}}}", args.len()));
                    args.push(e.source().to_string());
                }
            }
        }
        Some(format!("format('{fmt}', {})", args.join(", ")))
    }
}

/// An `if:` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Expr,
    /// No status function appears, so GitHub's implicit `success() &&` applies.
    implicit_success: bool,
}

/// Reads an `if:` value as GitHub does: `${{ }}` is optional; a string that is not one
/// single `${{ }}` is interpolated and the resulting string tested; `success() && (...)`
/// is implied when no status function is used; an empty condition is `success()`.
pub fn parse_condition(s: &str, allowed: &Allowed) -> Result<Condition, ExprError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        let success_only = Allowed {
            named_values: &[],
            functions: &["success"],
        };
        return Ok(Condition {
            expr: parse("success()", &success_only)?,
            implicit_success: false,
        });
    }
    let expr = if trimmed.contains(OPEN) {
        let template = parse_template(trimmed, allowed)?;
        match template.parts.as_slice() {
            [Part::Expression(e)] => e.clone(),
            _ => {
                let text = template.to_format_expression().unwrap_or_default();
                parse(&text, allowed)?
            }
        }
    } else {
        parse(trimmed, allowed)?
    };
    let implicit_success = !expr.uses_status_function();
    Ok(Condition {
        expr,
        implicit_success,
    })
}

impl Condition {
    /// Whether the step or job runs.
    pub fn evaluate(&self, ctx: &EvalContext) -> Result<bool, ExprError> {
        if self.implicit_success && ctx.status != JobStatus::Success {
            return Ok(false);
        }
        Ok(self.expr.evaluate(ctx)?.is_truthy())
    }

    /// The normalised expression, e.g. `success() && (github.ref == 'x')`.
    pub fn expression_text(&self) -> String {
        if self.implicit_success {
            format!("success() && ({})", self.expr.source())
        } else {
            self.expr.source().to_string()
        }
    }

    /// The expression as written (without the implicit `success() &&`).
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}
