//! Parse and evaluate every case of GitHub's expression suite (1020 expressions).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use workflows::expression::{self, Allowed, EvalContext, JobStatus, Object, Value};

#[path = "conformance_data.rs"]
mod conformance_data;

struct Case {
    source: String,
    names: Vec<String>,
    contexts: Object,
}

fn cases() -> Vec<Case> {
    conformance_data::expression_cases()
        .into_iter()
        .map(|(source, json)| {
            let contexts = match Value::from_json(&json) {
                Value::Object(o) => (*o).clone(),
                _ => Object::new(),
            };
            let names = contexts.keys().map(str::to_string).collect();
            Case {
                source,
                names,
                contexts,
            }
        })
        .collect()
}

fn evaluate_all(cases: &[Case]) -> usize {
    let functions = Allowed::everything().functions;
    let mut ok = 0;
    for case in cases {
        let names: Vec<&str> = case.names.iter().map(String::as_str).collect();
        let allowed = Allowed {
            named_values: &names,
            functions,
            status_function_args: false,
        };
        let ctx = EvalContext {
            contexts: &case.contexts,
            status: JobStatus::Success,
            host: None,
        };
        if expression::parse(&case.source, &allowed).is_ok_and(|expr| expr.evaluate(&ctx).is_ok()) {
            ok += 1;
        }
    }
    ok
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    if cases.is_empty() {
        return;
    }
    eprintln!("expression suite: {} cases", cases.len());
    c.bench_function("expression_suite_parse_and_evaluate", |b| {
        b.iter(|| black_box(evaluate_all(black_box(&cases))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
