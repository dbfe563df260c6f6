//! Load and plan every workflow of GitHub's reader suite (195 files; the ones that
//! should be rejected are rejected, which is part of the work measured).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

#[path = "conformance_data.rs"]
mod conformance_data;

fn load_and_plan_all(cases: &[(String, String)]) -> usize {
    let mut jobs = 0;
    for (name, text) in cases {
        let plan = workflows::model::load(text, name)
            .ok()
            .and_then(|w| workflows::plan::plan(std::slice::from_ref(&w), None).ok());
        jobs += plan.map_or(0, |p| p.job_count());
    }
    jobs
}

fn bench(c: &mut Criterion) {
    let cases = conformance_data::reader_workflows();
    if cases.is_empty() {
        return;
    }
    eprintln!("reader suite: {} workflows", cases.len());
    c.bench_function("reader_suite_load_and_plan", |b| {
        b.iter(|| black_box(load_and_plan_all(black_box(&cases))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
