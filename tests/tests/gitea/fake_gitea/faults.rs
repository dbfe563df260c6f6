//! Fault injection: Connect errors, HTTP errors, dropped connections (before and after the
//! call took effect), delays, lagging and partial log acks, random failures.

use std::time::{Duration, Instant};

use harness::fake_gitea::{
    FakeGitea, FakeGiteaOptions, Fault, Faults, Method, RandomFailures, TaskSpec, TaskStatus,
};

use super::connect::{Rpc, fake_and_runner, payload};

#[test]
fn next_calls_answer_connect_and_http_errors_then_recover() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    fake.fail_next(
        Method::FetchTask,
        2,
        Fault::connect("unavailable", "maintenance"),
    );
    fake.fail_next(Method::FetchTask, 1, Fault::HttpStatus(502));
    for _ in 0..2 {
        let err = rpc.fetch(0).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str(), err.message.as_str()),
            (503, "unavailable", "maintenance")
        );
    }
    let bare = rpc
        .post(Method::FetchTask, "application/proto", vec![])
        .unwrap();
    assert_eq!(bare.status(), 502);
    assert!(bare.text().unwrap().contains("injected"));
    assert!(rpc.fetch(0).is_ok(), "faults used up");
    assert!(fake.faults().next.is_empty());
    // An Unauthenticated refusal, shaped as the server's style says (Gitea's by default).
    fake.fail_next(Method::FetchTask, 1, Fault::Unauthenticated);
    let err = rpc.fetch(0).unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (500, "unknown"));
    assert!(err.message.contains("code = Unauthenticated"), "{err:?}");
    // Other methods were not hit.
    fake.fail_next(Method::UpdateLog, 1, Fault::HttpStatus(500));
    assert!(rpc.fetch(0).is_ok());
    let statuses: Vec<u16> = fake
        .requests_of(Method::FetchTask)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503, 503, 502, 200, 500, 200]);
}

/// Whether the answer never fully arrived (the connection closes before the headers or
/// mid-body, whichever hyper manages to send first).
fn cut(sent: reqwest::Result<reqwest::blocking::Response>) -> bool {
    match sent {
        Err(_) => true,
        Ok(response) => response.bytes().is_err(),
    }
}

#[test]
fn dropped_connections_before_and_after_the_call_took_effect() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let id = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    fake.fail_next(Method::FetchTask, 1, Fault::DropBeforeHandling);
    assert!(
        cut(rpc.post(Method::FetchTask, "application/proto", vec![])),
        "the answer is cut"
    );
    assert_eq!(
        fake.task(id).unwrap().status,
        TaskStatus::Waiting,
        "not assigned"
    );

    fake.fail_next(Method::FetchTask, 1, Fault::DropAfterHandling);
    assert!(
        cut(rpc.post(Method::FetchTask, "application/proto", vec![])),
        "the answer is cut"
    );
    let lost = fake.task(id).unwrap();
    assert_eq!(
        lost.status,
        TaskStatus::Running,
        "assigned although the runner never heard of it"
    );
    assert_eq!(lost.runner_uuid, rpc.uuid);
    assert!(
        rpc.fetch(0).unwrap().task.is_none(),
        "and not handed out again"
    );

    // Log rows stored, ack lost: the resend is de-duplicated by the overlap rule.
    fake.fail_next(Method::UpdateLog, 1, Fault::DropAfterHandling);
    assert!(cut(rpc.post(
        Method::UpdateLog,
        "application/proto",
        prost::Message::encode_to_vec(&harness::fake_gitea::pb::UpdateLogRequest {
            task_id: id,
            index: 0,
            rows: vec![harness::fake_gitea::pb::LogRow {
                time: None,
                content: "one".into(),
            }],
            no_more: false,
        }),
    )));
    assert_eq!(rpc.log(id, 0, &["one", "two"], false).unwrap(), 2);
    let view = fake.task(id).unwrap();
    assert_eq!(view.log_lines(), vec!["one", "two"]);
    assert_eq!(view.log_rows_resent, 1);
}

#[test]
fn delayed_answers_and_lagging_or_partial_log_acks() {
    let (fake, rpc) = fake_and_runner(&["linux"]);
    let id = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(1)));
    rpc.fetch(0).unwrap().task.unwrap();
    fake.fail_next(
        Method::UpdateTask,
        1,
        Fault::Delay(Duration::from_millis(400)),
    );
    let started = Instant::now();
    rpc.update(
        id,
        harness::fake_gitea::pb::Result::Unspecified,
        vec![],
        &[],
    )
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));

    // Lag: stored, but acknowledged two rows short; the resend overlaps.
    fake.fail_next(Method::UpdateLog, 1, Fault::LogAckLag(2));
    assert_eq!(rpc.log(id, 0, &["a", "b", "c"], false).unwrap(), 1);
    assert_eq!(rpc.log(id, 1, &["b", "c", "d"], false).unwrap(), 4);
    // Partial: only two rows taken.
    fake.fail_next(Method::UpdateLog, 1, Fault::LogAcceptAtMost(2));
    assert_eq!(rpc.log(id, 4, &["e", "f", "g"], true).unwrap(), 6);
    assert!(
        !fake.task(id).unwrap().log_closed,
        "no_more with rows left over does not close"
    );
    assert_eq!(rpc.log(id, 6, &["g"], true).unwrap(), 7);
    let view = fake.task(id).unwrap();
    assert_eq!(view.log_lines(), vec!["a", "b", "c", "d", "e", "f", "g"]);
    assert!(view.log_closed);
    assert_eq!(view.log_rows_resent, 2);
}

#[test]
fn a_share_of_calls_fails_at_random() {
    let options = FakeGiteaOptions {
        seed: Some(42),
        faults: Faults {
            random: Some(RandomFailures {
                percent: 20,
                fault: Fault::HttpStatus(500),
                methods: vec![],
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let fake = FakeGitea::start(options);
    let mut rpc = Rpc::new(&fake);
    rpc.register("r", &["linux"], false); // Register is exempt by default.
    let failed = (0..200).filter(|_| rpc.fetch(0).is_err()).count();
    assert!(
        (20..=60).contains(&failed),
        "about 20% of 200 failed: {failed}"
    );
    let recorded = fake
        .requests_of(Method::FetchTask)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    assert_eq!(recorded, failed);
    fake.update_faults(|f| f.random = None);
    assert!((0..20).all(|_| rpc.fetch(0).is_ok()));
}
