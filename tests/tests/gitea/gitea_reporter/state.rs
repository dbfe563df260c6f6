//! The task state: outputs resent until acknowledged, the server's cancel, and the final
//! state of an ephemeral runner.

use super::common::*;

fn outputs_of(body: &serde_json::Value) -> Vec<String> {
    body.get("outputs")
        .and_then(|o| o.as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_resent_until_acknowledged_and_oversized_ones_dropped() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let (sink, reporter) = start_reporter(&runner, settings(spool.path()));
    sink.send(started(0));
    sink.send(finished(0, Outcome::Success));
    // Let the step boundary's UpdateTask go, then cut the next answers.
    until(Duration::from_secs(5), || {
        fake.task(runner.task_id).filter(|t| {
            t.steps
                .get(&0)
                .is_some_and(|s| s.result == pb::Result::Success)
        })
    })
    .await
    .unwrap();
    fake.fail_next(Method::UpdateTask, 3, Fault::DropAfterHandling);
    sink.send(Event::JobFinished {
        job: job(),
        result: Outcome::Success,
        duration: Duration::from_millis(5),
        outputs: vec![("a".into(), "1".into())],
    });
    until(Duration::from_secs(10), || {
        fake.requests_of(Method::UpdateTask)
            .iter()
            .any(|r| r.status == 200 && outputs_of(r.body.as_ref().unwrap()).contains(&"a".into()))
            .then_some(())
    })
    .await
    .expect("output a acknowledged");
    drop(sink);
    let long_key = "k".repeat(300);
    let report = reporter
        .finish(
            Outcome::Success,
            vec![
                ("a".into(), "2".into()),
                ("b".into(), "3".into()),
                (long_key.clone(), "x".into()),
                ("big".into(), "v".repeat((1 << 20) + 1)),
            ],
        )
        .await
        .unwrap();
    assert!(report.unacknowledged_outputs.is_empty());
    let view = fake.task(runner.task_id).unwrap();
    assert_eq!(
        view.outputs,
        [("a".to_string(), "1".to_string()), ("b".into(), "3".into())].into()
    );
    // Sent while unacknowledged (the cut answers), never again after the ack.
    let calls = fake.requests_of(Method::UpdateTask);
    let carrying: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, r)| outputs_of(r.body.as_ref().unwrap()).contains(&"a".to_string()))
        .map(|(i, _)| i)
        .collect();
    assert!(carrying.len() >= 2, "output a was resent: {carrying:?}");
    let acked = calls
        .iter()
        .position(|r| r.status == 200 && outputs_of(r.body.as_ref().unwrap()).contains(&"a".into()))
        .unwrap();
    assert_eq!(
        *carrying.last().unwrap(),
        acked,
        "nothing carries a after its ack"
    );
    assert!(
        view.ignored_outputs
            .iter()
            .all(|(k, v)| k == "a" && v == "1")
    );
    let final_call = calls.last().unwrap().body.as_ref().unwrap();
    assert_eq!(outputs_of(final_call), ["b"]);
    let lines = view.log_lines();
    for key in ["\"big\"", &format!("{:?}", &long_key[..64])] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("was dropped") && l.contains(key)),
            "a row says {key} was dropped: {lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cancel_fires_within_a_heartbeat_and_stops_heartbeats() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 2, &["cancelling"]).await;
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let heartbeat = settings.heartbeat;
    let (sink, reporter) = start_reporter(&runner, settings);
    sink.send(started(0));
    sink.send(line(Some(0), "working"));
    // Silence: heartbeats alone keep the task alive.
    tokio::time::sleep(heartbeat * 5).await;
    let view = fake.task(runner.task_id).unwrap();
    assert!(view.heartbeats >= 4, "{} heartbeats", view.heartbeats);
    assert!(
        view.longest_silence < heartbeat + Duration::from_millis(400),
        "longest silence {:?}",
        view.longest_silence
    );

    let token = reporter.server_cancel();
    assert!(!token.is_cancelled());
    let cancelled_at = Instant::now();
    assert!(fake.cancel_task(runner.task_id));
    tokio::time::timeout(heartbeat + Duration::from_millis(400), token.cancelled())
        .await
        .expect("server_cancel fires within one heartbeat");
    let noticed = cancelled_at.elapsed();
    // No heartbeat while the job cleans up; logs still flow.
    let updates = fake.task(runner.task_id).unwrap().updates;
    sink.send(line(Some(0), "cleaning up"));
    sink.send(finished(0, Outcome::Cancelled));
    tokio::time::sleep(heartbeat * 3).await;
    let view = fake.task(runner.task_id).unwrap();
    assert_eq!(
        view.updates, updates,
        "no UpdateTask after the server's cancel"
    );
    assert!(view.log_lines().contains(&"cleaning up".to_string()));
    drop(sink);
    let report = reporter.finish(Outcome::Failure, Vec::new()).await.unwrap();
    assert_eq!(report.result, pb::Result::Cancelled);
    assert_eq!(report.server_result, pb::Result::Cancelled);
    let view = fake.task(runner.task_id).unwrap();
    assert_eq!(view.result(), Some(pb::Result::Cancelled));
    assert_eq!(view.reported_result, Some(pb::Result::Cancelled));
    assert!(view.log_closed);
    let lines = without_sentinel(&view);
    assert_eq!(
        lines,
        ["working", "cleaning up", "Cancelled by the server"],
        "noticed after {noticed:?}"
    );
    assert_eq!(view.steps[&0].result, pb::Result::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_runner_deleted_by_its_final_state_counts_as_delivered() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_of_kind(&fake, 1, &[], true).await;
    let spool = tempfile::tempdir().unwrap();
    let (sink, reporter) = start_reporter(&runner, settings(spool.path()));
    sink.send(line(None, "only row"));
    drop(sink);
    // Heartbeats pass; the final state is applied (the runner deleted) but its answer cut.
    until(Duration::from_secs(5), || {
        (fake.task(runner.task_id).unwrap().updates >= 1).then_some(())
    })
    .await
    .unwrap();
    fake.update_faults(|f| {
        f.random = Some(RandomFailures {
            percent: 100,
            fault: Fault::DropAfterHandling,
            methods: vec![Method::UpdateTask],
        })
    });
    let finishing = tokio::spawn(reporter.finish(Outcome::Success, Vec::new()));
    until(Duration::from_secs(10), || {
        fake.task(runner.task_id).unwrap().is_done().then_some(())
    })
    .await
    .expect("the final state landed");
    fake.update_faults(|f| f.random = None);
    let report = finishing.await.unwrap().unwrap();
    assert_eq!(report.server_result, pb::Result::Success);
    let view = fake.task(runner.task_id).unwrap();
    assert_eq!(view.result(), Some(pb::Result::Success));
    assert!(view.log_closed);
    assert!(fake.runner(&runner.credentials.uuid).unwrap().deleted);
    assert!(
        !spool
            .path()
            .join(format!("task-{}", runner.task_id))
            .exists()
    );
}
