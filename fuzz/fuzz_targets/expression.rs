//! Lexes, parses and evaluates arbitrary text as an expression, as a template and as an
//! `if:` condition. Any panic or hang is a bug; errors are expected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workflows::expression::{self, template, Allowed, EvalContext, JobStatus, Object, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let mut github = Object::new();
    github.insert("ref", Value::from("refs/heads/main"));
    github.insert("event", Value::array(vec![Value::from(1.0), Value::from("x")]));
    let mut contexts = Object::new();
    contexts.insert("github", Value::object(github));
    contexts.insert("env", Value::object(Object::new()));
    let ctx = EvalContext {
        contexts: &contexts,
        status: JobStatus::Success,
        host: None,
    };
    let allowed = Allowed::everything();
    if let Ok(expr) = expression::parse(source, &allowed) {
        let _ = expr.evaluate(&ctx);
    }
    if let Ok(t) = template::parse_template(source, &allowed) {
        let _ = t.evaluate_to_string(&ctx);
        let _ = t.to_format_expression();
    }
    if let Ok(c) = template::parse_condition(source, &allowed) {
        let _ = c.evaluate(&ctx);
    }
});
