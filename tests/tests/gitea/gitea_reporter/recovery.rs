//! `recover`: a task left by a killed reporter, and one the server already ended.

use super::common::*;

fn log_call_end(body: &serde_json::Value) -> i64 {
    let index = body
        .get("index")
        .and_then(|i| i.as_str())
        .map_or(0, |i| i.parse::<i64>().unwrap());
    let rows = body
        .get("rows")
        .and_then(|r| r.as_array())
        .map_or(0, Vec::len);
    index + rows as i64
}

#[test]
fn a_task_left_by_a_killed_reporter_is_finished_by_recover() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (runner, sink, expected) = first.block_on(async {
        let runner = runner_with_task(&fake, 3, &[]).await;
        let (sink, reporter) = start_reporter(&runner, settings.clone());
        reporter.set_step_count(3);
        let mut expected = Vec::new();
        let mut send = |step: Option<usize>, text: String| {
            sink.send(line(step, &text));
            expected.push(text);
        };
        send(None, "set up".into());
        sink.send(started(0));
        for r in 0..150 {
            send(Some(0), format!("acked {r}"));
        }
        until(Duration::from_secs(10), || {
            (fake.task(runner.task_id).unwrap().log.len() == 151).then_some(())
        })
        .await
        .expect("the first rows stored");
        // The next call is stored but its answer is lost; then the server fails every
        // UpdateLog while the job goes on.
        fake.fail_next(Method::UpdateLog, 1, Fault::DropAfterHandling);
        fake.fail_next(Method::UpdateLog, 1_000_000, Fault::HttpStatus(500));
        for r in 0..50 {
            send(Some(0), format!("stored, answer lost {r}"));
        }
        until(Duration::from_secs(10), || {
            (fake.task(runner.task_id).unwrap().log.len() == 201).then_some(())
        })
        .await
        .expect("the cut call's rows stored");
        sink.send(finished(0, Outcome::Success));
        sink.send(started(1));
        for r in 0..100 {
            send(Some(1), format!("never acked {r}"));
        }
        // Until every row was tried (and refused), and the steps reached the server.
        until(Duration::from_secs(10), || {
            fake.requests_of(Method::UpdateLog)
                .iter()
                .any(|r| r.body.as_ref().is_some_and(|b| log_call_end(b) == 301))
                .then_some(())
        })
        .await
        .expect("the last rows were sent");
        let updates = fake.task(runner.task_id).unwrap().updates;
        until(Duration::from_secs(5), || {
            (fake.task(runner.task_id).unwrap().updates >= updates + 2).then_some(())
        })
        .await
        .expect("heartbeats go on while UpdateLog fails");
        std::mem::forget(reporter);
        (runner, sink, expected)
    });
    // The daemon dies: its runtime and every task on it are gone without a final report.
    first.shutdown_timeout(Duration::from_secs(5));
    drop(sink);
    let folder = spool.path().join(format!("task-{}", runner.task_id));
    assert!(folder.is_dir(), "the spool folder survives");
    let before = fake.task(runner.task_id).unwrap();
    assert!(!before.is_done() && !before.log_closed);
    assert_eq!(before.log.len(), 201);

    fake.update_faults(|f| *f = Faults::default());
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counters = ReportCounters::default();
    let client = client_for(&fake, &runner.credentials);
    let recovered = second.block_on(recover(&client, &settings, &counters));
    assert_eq!(recovered.len(), 1);
    let task = &recovered[0];
    assert_eq!(task.task_id, runner.task_id);
    assert!(task.folder_removed);
    let report = task.report.as_ref().unwrap();
    assert_eq!(report.server_result, pb::Result::Failure);
    assert!(!folder.exists());

    let view = fake.task(runner.task_id).unwrap();
    assert_eq!(view.result(), Some(pb::Result::Failure));
    assert!(view.log_closed);
    let mut all = expected.clone();
    all.push(DAEMON_STOPPED_ROW.to_string());
    assert_eq!(view.log_lines(), all, "every row exactly once, in order");
    assert!(
        view.log_rows_resent >= 50,
        "the spool resent from its ack; the server de-duplicated"
    );
    let results: Vec<pb::Result> = (0..3).map(|s| view.steps[&s].result).collect();
    assert_eq!(
        results,
        [
            pb::Result::Success,
            pb::Result::Cancelled,
            // Never started, in a failed job: Cancelled, as act_runner's Close says.
            pb::Result::Cancelled
        ]
    );
    assert_eq!(view.step_log(0).len(), 200);
    assert_eq!(view.step_log(1).len(), 100);
    assert_eq!(view.step_log(1)[99], "never acked 99");

    // Nothing is left for the next start.
    assert!(
        second
            .block_on(recover(&client, &settings, &counters))
            .is_empty()
    );
}

/// A reporter of `runner`'s task that has shipped one row, "one row", and its sink.
async fn one_row_shipped(
    fake: &FakeGitea,
    runner: &Runner,
    settings: &ReportSettings,
) -> (EventSink, TaskReporter) {
    let (sink, reporter) = start_reporter(runner, settings.clone());
    sink.send(line(None, "one row"));
    until(Duration::from_secs(5), || {
        (fake.task(runner.task_id).unwrap().log.len() == 1).then_some(())
    })
    .await
    .unwrap();
    (sink, reporter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_removes_a_task_the_server_already_ended() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let (sink, reporter) = one_row_shipped(&fake, &runner, &settings).await;
    // A live reporter's folder is locked: recover leaves it alone.
    let counters = ReportCounters::default();
    assert!(
        recover(&runner.client, &settings, &counters)
            .await
            .is_empty()
    );
    assert!(!fake.task(runner.task_id).unwrap().log_closed);
    // Dropped without finish: the shipping loop stops and the folder stays.
    drop(reporter);
    drop(sink);
    let folder = spool.path().join(format!("task-{}", runner.task_id));
    assert!(folder.is_dir());
    // The server ended it meanwhile (no `cancelling` capability: final at once).
    assert!(fake.cancel_task(runner.task_id));
    // The loop lets the folder go as soon as it sees the reporter gone.
    let recovered = recover_when_free(&runner.client, &settings, &counters).await;
    assert_eq!(recovered.len(), 1);
    assert!(recovered[0].folder_removed);
    let report = recovered[0].report.as_ref().unwrap();
    assert_eq!(report.server_result, pb::Result::Cancelled);
    assert!(!folder.exists());
    let view = fake.task(runner.task_id).unwrap();
    assert_eq!(view.result(), Some(pb::Result::Cancelled));
    assert_eq!(view.log_lines()[0], "one row");
    assert_eq!(
        view.log_lines().iter().filter(|l| *l == "one row").count(),
        1
    );
}

/// A task whose run was deleted in Gitea: every call about it fails with Gitea's `resource
/// does not exist`. Recovery takes that as final at once (a few attempts, not the minutes of
/// retries a transient error gets) and drops the folder, so the next start does not try
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_drops_the_folder_of_a_task_the_server_deleted() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let (sink, reporter) = one_row_shipped(&fake, &runner, &settings).await;
    drop(reporter);
    drop(sink);
    let folder = spool.path().join(format!("task-{}", runner.task_id));
    assert!(fake.delete_task(runner.task_id));
    let counters = ReportCounters::default();
    let started = Instant::now();
    let recovered = recover_when_free(&runner.client, &settings, &counters).await;
    let took = started.elapsed();
    assert_eq!(recovered.len(), 1);
    let error = recovered[0].report.as_ref().unwrap_err().to_string();
    assert!(recovered[0].folder_removed, "{error}");
    assert!(!folder.exists());
    assert!(
        took < settings.close_timeout * 5,
        "recovery gave up after {took:?}, as if the error were transient"
    );
}

/// `runner.report_retry` (forgejo-runner's keys) sets how many attempts a final call gets
/// whatever its errors: a refused final log is tried exactly that often, at the delays set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_log_gets_the_configured_number_of_attempts() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let mut settings = settings(spool.path());
    settings.final_attempts = 5;
    settings.final_first_delay = Duration::from_millis(10);
    settings.final_max_delay = Some(Duration::from_millis(20));
    let (sink, reporter) = start_reporter(&runner, settings.clone());
    drop(sink);
    // The run is deleted before the job's end: every final call is refused for good.
    assert!(fake.delete_task(runner.task_id));
    fake.clear_requests();
    let started = Instant::now();
    let error = reporter
        .finish(Outcome::Success, Vec::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("after 5 attempts"), "{error}");
    let logs = fake.requests_of(Method::UpdateLog).len();
    assert_eq!(logs, 5, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
