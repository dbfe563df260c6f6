//! Evaluation of a syntax tree against contexts: short-circuit `&&`/`||` returning
//! operands, case-insensitive property access, index coercion, the filtered arrays
//! that `.*` / `[*]` build, and GitHub's memory bound ([`super::memory`]).

use super::compare::{greater_than, less_than, loose_equals};
use super::convert::{is_primitive, to_display_string, to_number};
use super::functions::{self, FormatError, Function};
use super::memory::{MEMORY_EXCEEDED, Memory, result_bytes};
use super::parser::{CompareOp, Index, Node, NodeKind};
use super::value::{Object, Value};
use super::{ErrorKind, EvalContext, ExprError, JobStatus};

/// A result, and whether it is a filtered array (made by `.*` / `[*]`), to which further
/// `.prop` / `[i]` apply element-wise.
struct Evaluated {
    value: Value,
    filtered: bool,
}

impl Evaluated {
    fn plain(value: Value) -> Self {
        Evaluated {
            value,
            filtered: false,
        }
    }

    fn filtered(items: Vec<Value>) -> Self {
        Evaluated {
            value: Value::array(items),
            filtered: true,
        }
    }
}

pub struct Evaluator<'a> {
    source: &'a str,
    ctx: &'a EvalContext<'a>,
    memory: Memory,
}

type EvalResult = Result<Evaluated, ExprError>;

impl<'a> Evaluator<'a> {
    pub fn new(source: &'a str, ctx: &'a EvalContext<'a>) -> Self {
        Evaluator {
            source,
            ctx,
            memory: Memory::default(),
        }
    }

    pub fn evaluate(&self, node: &Node) -> Result<Value, ExprError> {
        self.eval(node).map(|e| e.value)
    }

    /// A node's result, counted against the memory bound once its operands' results
    /// are released.
    fn eval(&self, node: &Node) -> EvalResult {
        let mark = self.memory.mark();
        let result = self.eval_node(node, Memory::room_after(mark))?;
        self.memory.release_to(mark);
        self.memory
            .hold(result_bytes(&result.value))
            .map_err(|_| self.memory_error())?;
        Ok(result)
    }

    /// `room`: the bytes the node's result may take.
    fn eval_node(&self, node: &Node, room: usize) -> EvalResult {
        match &node.kind {
            NodeKind::Literal(v) => Ok(Evaluated::plain(v.clone())),
            NodeKind::Context(name) => Ok(Evaluated::plain(
                self.ctx.contexts.get(name).cloned().unwrap_or_default(),
            )),
            NodeKind::Not(operand) => {
                let v = self.evaluate(operand)?;
                Ok(Evaluated::plain(Value::Bool(!v.is_truthy())))
            }
            NodeKind::Compare { op, left, right } => {
                let l = self.evaluate(left)?;
                let r = self.evaluate(right)?;
                Ok(Evaluated::plain(Value::Bool(compare(*op, &l, &r))))
            }
            NodeKind::And(items) => self.logical(items, false),
            NodeKind::Or(items) => self.logical(items, true),
            NodeKind::Group(inner) => self.eval(inner),
            NodeKind::Index { object, index } => self.index(object, index),
            NodeKind::Call { function, args } => self
                .call(*function, args, room)
                .map_err(|e| e.at(node.position)),
        }
    }

    /// `&&` (stop at the first falsy operand) or `||` (stop at the first truthy one).
    fn logical(&self, items: &[Node], stop_when_truthy: bool) -> EvalResult {
        let mut last = Evaluated::plain(Value::Null);
        for item in items {
            last = self.eval(item)?;
            if last.value.is_truthy() == stop_when_truthy {
                break;
            }
        }
        Ok(last)
    }

    fn index(&self, object: &Node, index: &Index) -> EvalResult {
        let target = self.eval(object)?;
        let key = match index {
            Index::Star => None,
            Index::Key(k) => Some(IndexKey::new(&self.evaluate(k)?)),
        };
        if target.filtered {
            let items = target.value.as_array().unwrap_or_default();
            let mut out = Vec::new();
            for item in items {
                match &key {
                    None => match item {
                        Value::Array(a) => out.extend(a.iter().cloned()),
                        Value::Object(o) => out.extend(o.values().cloned()),
                        _ => {}
                    },
                    Some(key) => {
                        if let Some(v) = key.lookup(item) {
                            out.push(v.clone());
                        }
                    }
                }
            }
            return Ok(Evaluated::filtered(out));
        }
        match key {
            None => Ok(Evaluated::filtered(match &target.value {
                Value::Array(a) => a.to_vec(),
                Value::Object(o) => o.values().cloned().collect(),
                _ => Vec::new(),
            })),
            Some(key) => Ok(Evaluated::plain(
                key.lookup(&target.value).cloned().unwrap_or_default(),
            )),
        }
    }

    fn call(&self, function: Function, args: &[Node], room: usize) -> EvalResult {
        if function == Function::Case {
            return self.case(args);
        }
        let values = args
            .iter()
            .map(|a| self.evaluate(a))
            .collect::<Result<Vec<_>, _>>()?;
        let arg = |i: usize| values.get(i).cloned().unwrap_or_default();
        let status = self.ctx.status;
        let value = match function {
            Function::Contains => Value::Bool(functions::contains(&arg(0), &arg(1))),
            Function::StartsWith => Value::Bool(functions::starts_with(&arg(0), &arg(1))),
            Function::EndsWith => Value::Bool(functions::ends_with(&arg(0), &arg(1))),
            Function::Format => {
                let fmt = to_display_string(&arg(0));
                let rest = values.get(1..).unwrap_or_default();
                Value::String(functions::format(&fmt, rest, room).map_err(|e| match e {
                    FormatError::Memory => self.memory_error(),
                    e => self.error(e.message(&fmt)),
                })?)
            }
            Function::Join => Value::String(
                functions::join(&arg(0), values.get(1), room).map_err(|_| self.memory_error())?,
            ),
            Function::ToJson => {
                Value::String(functions::to_json(&arg(0), room).map_err(|_| self.memory_error())?)
            }
            Function::FromJson => functions::from_json(&arg(0)).map_err(|e| self.error(e))?,
            Function::HashFiles => {
                let patterns: Vec<String> = values.iter().map(to_display_string).collect();
                let host = self.ctx.host.ok_or_else(|| {
                    self.error("hashFiles needs a workspace, and none is available here".into())
                })?;
                Value::String(
                    host.hash_files(&patterns)
                        .map_err(|e| self.error(format!("hashFiles failed: {e}")))?,
                )
            }
            Function::Success if !values.is_empty() => {
                Value::Bool(values.iter().all(|id| self.needs_result_is(id, "success")))
            }
            Function::Failure if !values.is_empty() => {
                Value::Bool(values.iter().any(|id| self.needs_result_is(id, "failure")))
            }
            Function::Success => Value::Bool(status == JobStatus::Success),
            Function::Always => Value::Bool(true),
            Function::Failure => Value::Bool(status == JobStatus::Failure),
            Function::Cancelled => Value::Bool(status == JobStatus::Cancelled),
            Function::Case => Value::Null,
        };
        Ok(Evaluated::plain(value))
    }

    /// Whether `needs.<job>.result` equals `result` (both ignoring case), for the job-id
    /// arguments of `success(...)` and `failure(...)`; a job missing from `needs` matches
    /// nothing.
    fn needs_result_is(&self, job: &Value, result: &str) -> bool {
        self.ctx
            .contexts
            .get("needs")
            .and_then(|needs| needs.get(&to_display_string(job)))
            .and_then(|job| job.get("result"))
            .and_then(Value::as_str)
            .is_some_and(|r| r.eq_ignore_ascii_case(result))
    }

    /// `case(pred, value, ..., default)`: predicates are evaluated in order and must be
    /// booleans; only the chosen value is evaluated.
    fn case(&self, args: &[Node]) -> EvalResult {
        let mut pairs = args.chunks_exact(2);
        for pair in pairs.by_ref() {
            match self.evaluate(&pair[0])? {
                Value::Bool(true) => return self.eval(&pair[1]),
                Value::Bool(false) => {}
                _ => {
                    return Err(
                        self.error("case predicate must evaluate to a boolean value".into())
                    );
                }
            }
        }
        match pairs.remainder().first() {
            Some(default) => self.eval(default),
            None => Ok(Evaluated::plain(Value::Null)),
        }
    }

    /// GitHub's error for an evaluation past the memory bound: it names the whole
    /// expression and no position.
    fn memory_error(&self) -> ExprError {
        ExprError {
            kind: ErrorKind::Evaluation,
            message: format!("{MEMORY_EXCEEDED}: {}", self.source),
            position: None,
            expression: self.source.to_string(),
        }
    }

    fn error(&self, message: String) -> ExprError {
        ExprError {
            kind: ErrorKind::Evaluation,
            message,
            position: None,
            expression: self.source.to_string(),
        }
    }
}

fn compare(op: CompareOp, l: &Value, r: &Value) -> bool {
    match op {
        CompareOp::Equal => loose_equals(l, r),
        CompareOp::NotEqual => !loose_equals(l, r),
        CompareOp::Less => less_than(l, r),
        CompareOp::LessOrEqual => loose_equals(l, r) || less_than(l, r),
        CompareOp::Greater => greater_than(l, r),
        CompareOp::GreaterOrEqual => loose_equals(l, r) || greater_than(l, r),
    }
}

/// An index value as both lookups see it: objects by its string form (primitives only),
/// arrays by its floored non-negative finite number.
struct IndexKey {
    key: Option<String>,
    position: Option<usize>,
}

impl IndexKey {
    fn new(v: &Value) -> Self {
        let key = is_primitive(v).then(|| to_display_string(v));
        let n = to_number(v);
        let position = (n.is_finite() && n >= 0.0).then(|| n.floor() as usize);
        IndexKey { key, position }
    }

    fn lookup<'v>(&self, target: &'v Value) -> Option<&'v Value> {
        match target {
            Value::Array(items) => self.position.and_then(|i| items.get(i)),
            Value::Object(o) => self.key.as_deref().and_then(|k| Object::get(o, k)),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::expression::{
        Allowed, EvalContext, ExprError, Host, JobStatus, Object, Value, parse,
    };

    struct FixedHost;

    impl Host for FixedHost {
        fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
            Ok(patterns.join("+"))
        }
    }

    fn eval_with(src: &str, host: Option<&dyn Host>) -> Result<Value, ExprError> {
        let foo = Value::from_json(&serde_json::json!([{"a": [1, 2]}, {"a": [3]}, {"b": 4}]));
        let mut contexts = Object::new();
        contexts.insert("foo", foo);
        let ctx = EvalContext {
            contexts: &contexts,
            status: JobStatus::Failure,
            host,
        };
        let allowed = Allowed {
            named_values: &["foo"],
            functions: &crate::expression::EXTRA_FUNCTIONS,
            status_function_args: true,
        };
        parse(src, &allowed)?.evaluate(&ctx)
    }

    fn eval(src: &str) -> Value {
        eval_with(src, None).unwrap()
    }

    fn json(src: &str) -> String {
        eval(src).to_json().to_string()
    }

    #[test]
    fn wildcards_filter_and_flatten() {
        assert_eq!(json("foo.*.a"), "[[1,2],[3]]");
        assert_eq!(json("foo.*.a.*"), "[1,2,3]");
        assert_eq!(json("foo.*.a[1]"), "[2]");
        // A filtered array stays filtered through parentheses, as in GitHub's runner.
        assert_eq!(json("(foo.*.a)[0]"), "[1,3]");
        assert_eq!(json("foo[0].a[' 0x01 ']"), "2");
        assert_eq!(json("foo.*.missing"), "[]");
    }

    #[test]
    fn logical_operators_return_operands() {
        assert_eq!(json("1 && 'x' && 2"), "2");
        assert_eq!(json("null && true"), "null");
        assert_eq!(json("'' || 0 || 'abc'"), "\"abc\"");
        assert_eq!(json("!foo"), "false");
    }

    #[test]
    fn containers_equal_only_themselves() {
        assert_eq!(json("foo == foo"), "true");
        assert_eq!(json("fromJSON('[]') == fromJSON('[]')"), "false");
    }

    #[test]
    fn status_functions_read_the_job_status() {
        assert_eq!(json("failure()"), "true");
        assert_eq!(json("success() || cancelled()"), "false");
        assert!(
            parse(
                "always() && x",
                &Allowed {
                    named_values: &["x"],
                    functions: &["always"],
                    status_function_args: false,
                }
            )
            .unwrap()
            .uses_status_function()
        );
        assert!(
            !parse("format('{0}', 1)", &Allowed::everything())
                .unwrap()
                .uses_status_function()
        );
    }

    #[test]
    fn status_functions_with_job_ids_read_needs_results() {
        let needs = Value::from_json(&serde_json::json!({
            "Build": {"result": "success"},
            "test": {"result": "SUCCESS"},
            "lint": {"result": "failure"},
            "docs": {"result": "skipped"}
        }));
        let mut contexts = Object::new();
        contexts.insert("needs", needs);
        let ctx = EvalContext {
            contexts: &contexts,
            status: JobStatus::Failure,
            host: None,
        };
        let allowed = Allowed {
            named_values: &["needs"],
            functions: &crate::expression::EXTRA_FUNCTIONS,
            status_function_args: true,
        };
        let eval = |src: &str| {
            parse(src, &allowed)
                .unwrap()
                .evaluate(&ctx)
                .unwrap()
                .is_truthy()
        };
        assert!(eval("success('build', 'TEST')"));
        assert!(!eval("success('build', 'lint')"));
        assert!(!eval("success('missing')"));
        assert!(eval("failure('docs', 'lint')"));
        assert!(!eval("failure('build', 'docs')"));
        // Without arguments they still read the job status.
        assert!(!eval("success()"));
        assert!(eval("failure()"));
        let step_level = Allowed {
            status_function_args: false,
            ..allowed
        };
        let e = parse("failure('lint')", &step_level).unwrap_err();
        assert_eq!(e.message, "Too many parameters supplied: 'failure'");
    }

    #[test]
    fn hash_files_goes_through_the_host() {
        let e = eval_with("hashFiles('**/x')", None).unwrap_err();
        assert!(e.message.contains("hashFiles needs a workspace"), "{e}");
        let v = eval_with("hashFiles('a', 'b')", Some(&FixedHost)).unwrap();
        assert_eq!(v.as_str(), Some("a+b"));
    }

    #[test]
    fn evaluation_errors_carry_the_call_position() {
        let e = eval_with("1 && format('{0')", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The following format string is invalid: {0. Located at position 6 within expression: 1 && format('{0')"
        );
    }

    /// `format('{0}{0}{0}{0}', ...)` nested `depth` times around `'x'`: 4^depth characters.
    fn quadrupled(depth: usize) -> String {
        let mut e = "'x'".to_string();
        for _ in 0..depth {
            e = format!("format('{{0}}{{0}}{{0}}{{0}}', {e})");
        }
        e
    }

    #[test]
    fn results_past_one_mebibyte_fail_the_expression_with_githubs_message() {
        // 4^9 = 262,144 characters count 524,314 bytes: within the bound.
        let fits = eval(&quadrupled(9));
        assert_eq!(fits.as_str().map(str::len), Some(262_144));
        // 4^10 would count 2 MiB; 4^40 would never finish allocating.
        for depth in [10, 40] {
            let source = quadrupled(depth);
            let e = eval_with(&source, None).unwrap_err();
            assert_eq!(e.kind, crate::expression::ErrorKind::Evaluation);
            assert_eq!(
                e.to_string(),
                format!(
                    "The maximum allowed memory size was exceeded while evaluating the following expression: {source}"
                )
            );
        }
        // Two halves that fit alone do not fit together.
        let half = "format('{0}{0}{0}{0}{0}{0}{0}{0}', format('{0}{0}{0}{0}{0}{0}{0}{0}', format('{0}{0}{0}{0}{0}{0}{0}{0}', format('{0}{0}{0}{0}{0}{0}{0}{0}', format('{0}{0}{0}{0}{0}{0}{0}{0}', format('{0}{0}{0}{0}{0}{0}{0}{0}', 'x'))))))";
        assert_eq!(eval(half).as_str().map(str::len), Some(8usize.pow(6)));
        let both = format!("startsWith({half}, {half})");
        assert!(eval_with(&both, None).is_err());
        // join of a large array with itself as the separator.
        let join = format!(
            "join(fromJSON(format('[{{0}}1]', join(fromJSON('[{}1]'), '1,'))), {})",
            "1,".repeat(3000),
            quadrupled(8)
        );
        let e = eval_with(&join, None).unwrap_err();
        assert!(
            e.message.starts_with("The maximum allowed memory size"),
            "{e}"
        );
        // toJSON stops too.
        let e = eval_with(
            &format!(
                "toJSON(fromJSON(format('[\"{{0}}\",\"{{0}}\"]', {})))",
                quadrupled(9)
            ),
            None,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("The maximum allowed memory size"),
            "{e}"
        );
    }

    #[test]
    fn empty_expression_is_null() {
        assert!(matches!(eval(""), Value::Null));
        assert!(matches!(eval("   "), Value::Null));
    }
}
