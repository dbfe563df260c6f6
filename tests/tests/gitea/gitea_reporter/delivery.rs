//! Every row exactly once and in order: plain, through 500s and cut connections, lagging
//! and partial acks, a hung call, and an empty task (sentinel row).

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_across_steps_arrive_once_in_order() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 4, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let counters = ReportCounters::default();
    let (sink, reporter) =
        start_counted_reporter(&runner, settings(spool.path()), counters.clone());
    reporter.set_step_count(4);
    let began = Instant::now();
    let (expected, by_step) = feed_job(&sink, 4, 2_498, Duration::from_millis(20), |_| {}).await;
    assert_eq!(expected.len(), 10_000);
    drop(sink);
    let report = reporter.finish(Outcome::Success, Vec::new()).await.unwrap();
    let view = assert_delivered(&fake, runner.task_id, &report, &expected, &by_step);
    assert_eq!(view.log_rows_resent, 0);
    assert_eq!(view.log_gaps_refused, 0);
    assert_eq!(
        (report.rows_sent, report.rows_resent),
        (report.rows as u64, 0)
    );
    assert_eq!(counters.rows_sent(), report.rows as u64);
    assert_eq!(counters.report_errors(), 0);
    let latency = counters.latency();
    assert_eq!(latency.count, report.rows as u64);
    assert!(latency.quantile(0.5).unwrap() <= Duration::from_secs(2));
    eprintln!(
        "10,000 rows: {} UpdateLog calls, {} UpdateTask calls, latency p50 <= {:?}, p95 <= {:?}, fed and finished in {:?}",
        fake.requests_of(Method::UpdateLog).len(),
        fake.requests_of(Method::UpdateTask).len(),
        latency.quantile(0.5).unwrap(),
        latency.quantile(0.95).unwrap(),
        began.elapsed(),
    );
    // Batches of 100 rows and more (what piled up during a call), at most 1,000 a call.
    let calls = fake.requests_of(Method::UpdateLog);
    assert!(
        (10..=200).contains(&calls.len()),
        "{} UpdateLog calls",
        calls.len()
    );
    assert!(calls.iter().all(|r| {
        let rows = r.body.as_ref().unwrap().get("rows");
        rows.and_then(|r| r.as_array()).map_or(0, Vec::len) <= hr_gitea::report::MAX_CALL_ROWS
    }));
    assert!(
        !spool
            .path()
            .join(format!("task-{}", runner.task_id))
            .exists(),
        "the spool folder is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_arrive_once_in_order_through_500s_and_cut_connections() {
    let fake = FakeGitea::start(FakeGiteaOptions {
        seed: Some(7),
        ..Default::default()
    });
    let runner = runner_with_task(&fake, 4, &[]).await;
    fake.update_faults(|f| {
        f.random = Some(RandomFailures {
            percent: 20,
            fault: Fault::HttpStatus(500),
            methods: vec![Method::UpdateLog, Method::UpdateTask],
        })
    });
    let spool = tempfile::tempdir().unwrap();
    let counters = ReportCounters::default();
    let (sink, reporter) =
        start_counted_reporter(&runner, settings(spool.path()), counters.clone());
    let twenty_percent = fake.faults().random;
    let mut round = 0;
    let (expected, by_step) = feed_job(&sink, 4, 2_498, Duration::from_millis(250), |_| {
        round += 1;
        match round {
            // About two seconds in which every connection is cut.
            6 => fake.update_faults(|f| {
                f.random = Some(RandomFailures {
                    percent: 100,
                    fault: Fault::DropBeforeHandling,
                    methods: vec![Method::UpdateLog, Method::UpdateTask],
                })
            }),
            14 => fake.update_faults(|f| f.random = twenty_percent.clone()),
            _ if fake.faults().next.is_empty() => {
                fake.fail_next(Method::UpdateLog, 1, Fault::DropAfterHandling);
                fake.fail_next(Method::UpdateTask, 1, Fault::DropAfterHandling);
            }
            _ => {}
        }
    })
    .await;
    // The final calls meet cut connections too.
    fake.fail_next(Method::UpdateLog, 1, Fault::DropAfterHandling);
    fake.fail_next(Method::UpdateTask, 1, Fault::DropBeforeHandling);
    drop(sink);
    let report = reporter.finish(Outcome::Success, Vec::new()).await;
    if report.is_err() {
        for r in fake.requests().iter().rev().take(30).rev() {
            let b = r.body.clone().unwrap_or_default();
            eprintln!(
                "{:?} {} idx={:?} rows={} noMore={:?} {:?}",
                r.method,
                r.status,
                b.get("index"),
                b.get("rows").and_then(|x| x.as_array()).map_or(0, Vec::len),
                b.get("noMore"),
                r.error_code
            );
        }
        let v = fake.task(runner.task_id).unwrap();
        eprintln!("stored {} closed {}", v.log.len(), v.log_closed);
    }
    let report = report.unwrap();
    let view = assert_delivered(&fake, runner.task_id, &report, &expected, &by_step);
    let failed = fake.requests().iter().filter(|r| r.status != 200).count();
    assert!(failed > 20, "faults were met ({failed} failed calls)");
    assert!(counters.report_errors() as usize >= failed / 2);
    eprintln!(
        "10,000 rows through faults: {failed} failed calls, {} report errors, {} rows resent, {} rows de-duplicated by the server",
        counters.report_errors(),
        report.rows_resent,
        view.log_rows_resent
    );
    assert!(view.log_rows_resent > 0, "cut answers made rows go twice");
    assert!(report.rows_resent > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_partial_acks_are_resent_from_the_ack() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 2, &[]).await;
    fake.fail_next(Method::UpdateLog, 6, Fault::LogAckLag(40));
    fake.fail_next(Method::UpdateLog, 6, Fault::LogAcceptAtMost(30));
    let spool = tempfile::tempdir().unwrap();
    let counters = ReportCounters::default();
    let (sink, reporter) =
        start_counted_reporter(&runner, settings(spool.path()), counters.clone());
    let (expected, by_step) = feed_job(&sink, 2, 1_500, Duration::from_millis(100), |_| {}).await;
    drop(sink);
    let report = reporter.finish(Outcome::Success, Vec::new()).await.unwrap();
    let view = assert_delivered(&fake, runner.task_id, &report, &expected, &by_step);
    assert!(
        fake.faults().next.is_empty(),
        "every lag and partial ack was met"
    );
    assert!(view.log_rows_resent > 0);
    assert!(report.rows_resent > 0);
    assert_eq!(view.log_gaps_refused, 0, "never sent past the ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_task_is_archived_with_a_sentinel_row() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let (sink, reporter) = start_reporter(&runner, settings(spool.path()));
    reporter.set_step_count(1);
    drop(sink);
    let report = reporter.finish(Outcome::Success, Vec::new()).await.unwrap();
    let view = fake.task(runner.task_id).unwrap();
    assert!(view.log_closed, "archived even with nothing to say");
    assert_eq!(view.log_lines(), [""]);
    assert_eq!(report.rows, 1);
    assert_eq!(view.result(), Some(pb::Result::Success));
    assert_eq!(
        view.steps[&0].result,
        pb::Result::Skipped,
        "a step that never ran"
    );
    let (log, task) = final_call_order(&fake);
    assert!(log < task);
}

/// The body's `rows` count and `index` of a recorded UpdateLog.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_log_call_holds_up_neither_heartbeats_nor_finish() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let heartbeat = settings.heartbeat;
    let (sink, reporter) = start_reporter(&runner, settings);
    // The call takes effect at once but its answer never comes in time.
    fake.fail_next(Method::UpdateLog, 1, Fault::Delay(Duration::from_secs(20)));
    let rows: Vec<String> = (0..50).map(|i| format!("row {i}")).collect();
    for row in &rows {
        sink.send(line(None, row));
    }
    until(Duration::from_secs(5), || {
        (fake.task(runner.task_id).unwrap().log.len() == 50).then_some(())
    })
    .await
    .expect("the rows are stored");
    let updates = fake.task(runner.task_id).unwrap().updates;
    tokio::time::sleep(heartbeat * 3).await;
    assert!(
        fake.task(runner.task_id).unwrap().updates >= updates + 2,
        "heartbeats go on while a log call hangs"
    );
    drop(sink);
    let started = Instant::now();
    let report = reporter.finish(Outcome::Success, Vec::new()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let view = fake.task(runner.task_id).unwrap();
    // The server may hold every row already, so a sentinel makes sure `no_more` is seen.
    let mut expected = rows.clone();
    expected.push(String::new());
    assert_eq!(view.log_lines(), expected);
    assert!(view.log_closed);
    assert_eq!(view.result(), Some(pb::Result::Success));
    assert_eq!(report.rows, 51);
}
