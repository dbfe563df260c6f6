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
                "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found.",
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

    /// The folded string when every `${{ }}` part is a literal (`${{ 'it''s' }}` → `it's`),
    /// as GitHub's workflow reader folds them; `None` when some part needs evaluation.
    pub fn literal_value(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Expression(e) => out.push_str(&to_display_string(e.literal()?)),
            }
        }
        Some(out)
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
            status_function_args: false,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::expression::Object;

    fn contexts() -> Object {
        let mut env = Object::new();
        env.insert("A", Value::string("false"));
        env.insert("N", Value::from(1.5));
        let mut c = Object::new();
        c.insert("env", Value::object(env));
        c
    }

    fn ctx(contexts: &Object, status: JobStatus) -> EvalContext<'_> {
        EvalContext {
            contexts,
            status,
            host: None,
        }
    }

    #[test]
    fn splits_and_skips_braces_inside_strings() {
        let t =
            parse_template(" ${{ (false || '}}') }} to ${{2}} ", &Allowed::everything()).unwrap();
        assert_eq!(t.parts.len(), 5);
        let c = contexts();
        let s = t.evaluate_to_string(&ctx(&c, JobStatus::Success)).unwrap();
        assert_eq!(s, " }} to 2 ");
    }

    #[test]
    fn single_expression_keeps_its_kind() {
        let c = contexts();
        let t = parse_template("${{ env.N }}", &Allowed::everything()).unwrap();
        assert!(
            matches!(t.evaluate(&ctx(&c, JobStatus::Success)).unwrap(), Value::Number(n) if n == 1.5)
        );
        let t = parse_template("x${{ env.N }}", &Allowed::everything()).unwrap();
        assert!(
            matches!(t.evaluate(&ctx(&c, JobStatus::Success)).unwrap(), Value::String(s) if s == "x1.5")
        );
        assert!(
            parse_template("plain $text", &Allowed::everything())
                .unwrap()
                .is_literal()
        );
    }

    #[test]
    fn unclosed_and_empty_expressions_are_errors() {
        let e = parse_template("ab ${{ github.sha", &Allowed::everything()).unwrap_err();
        assert_eq!((e.kind, e.position), (ErrorKind::Parsing, Some(4)));
        assert!(e.message.contains("not closed"));
        let e = parse_template("${{  }}", &Allowed::everything()).unwrap_err();
        assert!(e.message.contains("An expression was expected"));
        let e = parse_template("${{ nope }}", &Allowed::everything()).unwrap_err();
        assert_eq!(e.message, "Unrecognized named-value: 'nope'");
    }

    #[test]
    fn literal_expressions_fold() {
        let all = Allowed::everything();
        let t = parse_template("${{ 'it''s' }} ${{ '${{ x }}' }}", &all).unwrap();
        assert_eq!(t.literal_value().as_deref(), Some("it's ${{ x }}"));
        let t = parse_template("${{ github.sha }}", &all).unwrap();
        assert_eq!(t.literal_value(), None);
    }

    #[test]
    fn format_normal_form() {
        let all = Allowed::everything();
        let t = parse_template("echo ${{ github.sha }}", &all).unwrap();
        assert_eq!(
            t.to_format_expression().unwrap(),
            "format('echo {0}', github.sha)"
        );
        let t = parse_template(
            "it's {x} ${{ a.b }}${{ 1 }}",
            &Allowed {
                named_values: &["a"],
                functions: &[],
                status_function_args: false,
            },
        )
        .unwrap();
        assert_eq!(
            t.to_format_expression().unwrap(),
            "format('it''s {{x}} {0}{1}', a.b, 1)"
        );
        let t = parse_template("${{ github.sha }}", &all).unwrap();
        assert_eq!(t.to_format_expression().unwrap(), "github.sha");
        assert_eq!(
            parse_template("plain", &all)
                .unwrap()
                .to_format_expression(),
            None
        );
    }

    #[test]
    fn conditions_imply_success() {
        let all = Allowed::everything();
        let c = contexts();
        let cond = parse_condition("github.ref == 'x'", &all).unwrap();
        assert_eq!(cond.expression_text(), "success() && (github.ref == 'x')");
        let cond = parse_condition("${{ always() }}", &all).unwrap();
        assert_eq!(cond.expression_text(), "always()");
        assert!(cond.evaluate(&ctx(&c, JobStatus::Failure)).unwrap());
        let cond = parse_condition("true", &all).unwrap();
        assert!(cond.evaluate(&ctx(&c, JobStatus::Success)).unwrap());
        assert!(!cond.evaluate(&ctx(&c, JobStatus::Failure)).unwrap());
        let cond = parse_condition("failure()", &all).unwrap();
        assert!(cond.evaluate(&ctx(&c, JobStatus::Failure)).unwrap());
        let cond = parse_condition("", &all).unwrap();
        assert_eq!(cond.expression_text(), "success()");
        assert!(!cond.evaluate(&ctx(&c, JobStatus::Cancelled)).unwrap());
    }

    #[test]
    fn mixed_conditions_test_the_interpolated_string() {
        let all = Allowed::everything();
        let c = contexts();
        let cond = parse_condition("${{ env.A }} && ${{ env.A }}", &all).unwrap();
        assert_eq!(
            cond.expression_text(),
            "success() && (format('{0} && {1}', env.A, env.A))"
        );
        assert!(cond.evaluate(&ctx(&c, JobStatus::Success)).unwrap());
        let cond = parse_condition("${{ !env.A }}", &all).unwrap();
        assert!(!cond.evaluate(&ctx(&c, JobStatus::Success)).unwrap());
    }

    #[test]
    fn status_functions_need_permission() {
        let none = Allowed {
            named_values: &[],
            functions: &[],
            status_function_args: false,
        };
        let e = parse_condition("failure()", &none).unwrap_err();
        assert_eq!(e.message, "Unrecognized function: 'failure'");
    }
}
