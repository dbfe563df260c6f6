//! Many runners' calls at once: every row stored exactly once and in order, and what the
//! fake costs per call (printed, for the daemon's load test budget).

use std::time::Instant;

use harness::fake_gitea::{Method, TaskSpec, pb};

use super::connect::{fake_and_runner, payload};

#[test]
fn twenty_concurrent_tasks_log_100000_rows_without_loss() {
    const TASKS: usize = 20;
    const CALLS: usize = 50;
    const ROWS: usize = 100;
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let ids: Vec<i64> = (0..TASKS)
        .map(|_| fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1))))
        .collect();
    for _ in 0..TASKS {
        rpc.fetch(0).unwrap().task.unwrap();
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        for &id in &ids {
            let rpc = rpc.clone();
            scope.spawn(move || {
                for call in 0..CALLS {
                    let base = call * ROWS;
                    let rows: Vec<String> = (base..base + ROWS)
                        .map(|i| format!("task {id} row {i}"))
                        .collect();
                    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
                    let ack = rpc.log(id, base as i64, &rows, call == CALLS - 1).unwrap();
                    assert_eq!(ack, (base + ROWS) as i64);
                }
                rpc.update(id, pb::Result::Success, vec![], &[]).unwrap();
            });
        }
    });
    let elapsed = started.elapsed();
    let calls = TASKS * (CALLS + 1);
    println!(
        "fake-gitea: {} rows in {calls} calls from {TASKS} threads in {elapsed:?} ({:?} per call)",
        TASKS * CALLS * ROWS,
        elapsed / calls as u32
    );
    assert_eq!(
        fake.runner(rpc.uuid.as_deref().unwrap())
            .unwrap()
            .peak_running,
        TASKS
    );
    for id in ids {
        let task = fake.task(id).unwrap();
        assert!(task.log_closed && task.is_done());
        assert_eq!(task.log.len(), CALLS * ROWS);
        for (i, line) in task.log.iter().enumerate() {
            assert_eq!(line.content, format!("task {id} row {i}"));
        }
    }
    assert_eq!(fake.requests_of(Method::UpdateLog).len(), TASKS * CALLS);
}
