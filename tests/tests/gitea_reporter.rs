//! The task reporter (`hybrid_runner::report`) against the fake Gitea over real HTTP, as a
//! runner registered with the fake's registration token: events fed by hand through an
//! `EventSink`, and the server's stored log, steps, outputs and recorded calls checked:
//! every row exactly once and in order (also under random 500s, cut connections, lagging
//! and partial acks), outputs resent until acknowledged, the server's cancel noticed
//! within a heartbeat, the final `no_more` log before the final state, an empty task
//! archived, and a task left by a killed reporter finished by `recover`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use harness::fake_gitea::{
    FakeGitea, FakeGiteaOptions, Fault, Faults, Method, RandomFailures, TaskSpec, TaskView, pb,
};
use hybrid_runner::exec::events::{
    AnnotationEvent, Event, EventSink, JobKey, LogKind, Outcome, StepKey,
};
use hybrid_runner::report::{
    DAEMON_STOPPED_ROW, FinalReport, ReportCounters, ReportSettings, TaskReporter, recover,
};
use hybrid_runner::source::gitea::{ClientOptions, Credentials, RunnerClient};

/// A registered runner's client and the task it fetched.
struct Runner {
    client: RunnerClient,
    credentials: Credentials,
    task_id: i64,
}

fn payload(steps: usize) -> String {
    let mut yaml = String::from("on: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n");
    for i in 0..steps {
        yaml.push_str(&format!("      - run: echo {i}\n"));
    }
    yaml
}

fn client_for(fake: &FakeGitea, credentials: &Credentials) -> RunnerClient {
    harness::install_crypto_provider();
    RunnerClient::new(&fake.url(), ClientOptions::default())
        .unwrap()
        .with_credentials(credentials.clone())
}

/// Registers a runner (declaring `capabilities`), queues a task of `steps` steps and
/// fetches it.
async fn runner_with_task(fake: &FakeGitea, steps: usize, capabilities: &[&str]) -> Runner {
    runner_of_kind(fake, steps, capabilities, false).await
}

async fn runner_of_kind(
    fake: &FakeGitea,
    steps: usize,
    capabilities: &[&str],
    ephemeral: bool,
) -> Runner {
    harness::install_crypto_provider();
    let bare = RunnerClient::new(&fake.url(), ClientOptions::default()).unwrap();
    let registered = bare
        .register(&pb::RegisterRequest {
            name: "reporter-test".into(),
            token: FakeGitea::REGISTRATION_TOKEN.into(),
            version: "test".into(),
            labels: vec!["linux".into()],
            ephemeral,
            ..Default::default()
        })
        .await
        .unwrap()
        .runner
        .unwrap();
    let credentials = Credentials {
        uuid: registered.uuid,
        token: registered.token,
    };
    let client = client_for(fake, &credentials);
    client
        .declare(&pb::DeclareRequest {
            version: "test".into(),
            labels: vec!["linux".into()],
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        })
        .await
        .unwrap();
    let task_id = fake.enqueue_task(TaskSpec::new(&["linux"], &payload(steps)));
    let task = client
        .fetch_task(&pb::FetchTaskRequest { tasks_version: 0 })
        .await
        .unwrap()
        .task
        .unwrap();
    assert_eq!(task.id, task_id);
    Runner {
        client,
        credentials,
        task_id,
    }
}

fn settings(spool: &Path) -> ReportSettings {
    ReportSettings {
        spool_dir: spool.to_path_buf(),
        batch_rows: 100,
        max_latency: Duration::from_millis(200),
        heartbeat: Duration::from_millis(500),
        close_timeout: Duration::from_secs(2),
    }
}

fn job() -> JobKey {
    JobKey {
        id: "build".into(),
        name: "build".into(),
    }
}

fn step(index: usize) -> StepKey {
    StepKey {
        index,
        id: format!("s{index}"),
        name: format!("echo {index}"),
    }
}

fn started(index: usize) -> Event {
    Event::StepStarted {
        job: job(),
        step: step(index),
    }
}

fn finished(index: usize, outcome: Outcome) -> Event {
    Event::StepFinished {
        job: job(),
        step: step(index),
        outcome,
        conclusion: outcome,
        duration: Duration::from_millis(3),
        outputs: Vec::new(),
    }
}

fn line(index: Option<usize>, text: &str) -> Event {
    Event::Log {
        job: job(),
        step: index.map(step),
        kind: if index.is_some() {
            LogKind::Stdout
        } else {
            LogKind::Runner
        },
        line: text.into(),
    }
}

/// Polls `check` every 20 ms without blocking the runtime.
async fn until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stored rows without the trailing empty sentinel the final call may add.
fn without_sentinel(view: &TaskView) -> Vec<String> {
    let mut rows = view.log_lines();
    if rows.last().is_some_and(String::is_empty) {
        rows.pop();
    }
    rows
}

/// The fake's recorded calls: the index of the final UpdateLog (`no_more`) and of the
/// first UpdateTask carrying a result.
fn final_call_order(fake: &FakeGitea) -> (usize, usize) {
    let requests = fake.requests();
    let log = requests
        .iter()
        .rposition(|r| {
            r.method == Some(Method::UpdateLog)
                && r.body.as_ref().and_then(|b| b.get("noMore")) == Some(&true.into())
        })
        .expect("a final UpdateLog");
    let task = requests
        .iter()
        .position(|r| {
            r.method == Some(Method::UpdateTask)
                && r.body
                    .as_ref()
                    .and_then(|b| b.pointer("/state/result"))
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| v != "RESULT_UNSPECIFIED")
        })
        .expect("a final UpdateTask");
    (log, task)
}

/// Feeds a job of `steps` steps with `per_step` rows each (plus set-up and complete rows,
/// a group and an annotation in step 1) in `chunks` pauses of `pause`; returns every
/// expected row and each step's rows.
async fn feed_job(
    sink: &EventSink,
    steps: usize,
    per_step: usize,
    pause: Duration,
    mut between: impl FnMut(usize),
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut all = Vec::new();
    let mut by_step: Vec<Vec<String>> = vec![Vec::new(); steps];
    for i in 0..4 {
        let text = format!("set up {i}");
        sink.send(line(None, &text));
        all.push(text);
    }
    for (s, rows_of_step) in by_step.iter_mut().enumerate() {
        sink.send(started(s));
        for r in 0..per_step {
            if s == 1 && r == 10 {
                sink.send(Event::GroupStarted {
                    job: job(),
                    step: step(1),
                    title: "details".into(),
                });
                sink.send(Event::Annotation {
                    job: job(),
                    step: Some(step(1)),
                    annotation: AnnotationEvent {
                        level: "warning",
                        message: "look here".into(),
                        title: None,
                        file: Some("a.sh".into()),
                        line: Some(3),
                        col: None,
                    },
                });
                sink.send(Event::GroupEnded {
                    job: job(),
                    step: step(1),
                });
                for text in [
                    "::group::details",
                    "::warning file=a.sh,line=3::look here",
                    "::endgroup::",
                ] {
                    all.push(text.to_string());
                    rows_of_step.push(text.to_string());
                }
            }
            let text = format!("step {s} row {r}");
            sink.send(line(Some(s), &text));
            all.push(text.clone());
            rows_of_step.push(text);
            if r % 500 == 499 {
                between(all.len());
                tokio::time::sleep(pause).await;
            }
        }
        sink.send(finished(s, Outcome::Success));
    }
    sink.send(line(None, "complete job"));
    all.push("complete job".into());
    (all, by_step)
}

/// Checks the server holds exactly `expected` (and perhaps the sentinel), with the steps'
/// logs, results and a closed log, and that the final log came before the final state.
fn assert_delivered(
    fake: &FakeGitea,
    task_id: i64,
    report: &FinalReport,
    expected: &[String],
    by_step: &[Vec<String>],
) -> TaskView {
    let view = fake.task(task_id).unwrap();
    assert_eq!(view.result(), Some(pb::Result::Success));
    assert!(view.log_closed, "the log is archived");
    let stored = without_sentinel(&view);
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "every row once, in order");
    assert_eq!(report.rows as usize, view.log.len());
    assert_eq!(report.server_result, pb::Result::Success);
    for (s, rows) in by_step.iter().enumerate() {
        assert_eq!(&view.step_log(s as i64), rows, "step {s}'s log");
        let state = &view.steps[&(s as i64)];
        assert_eq!(state.result, pb::Result::Success);
        assert!(state.started_at.is_some() && state.stopped_at.is_some());
    }
    // "Set up job" is everything before step 0; "Complete job" follows the last step.
    assert_eq!(view.steps[&0].log_index, 4);
    let last = &view.steps[&(by_step.len() as i64 - 1)];
    assert_eq!(
        view.log[(last.log_index + last.log_length) as usize].content,
        "complete job"
    );
    let (log, task) = final_call_order(fake);
    assert!(
        log < task,
        "the final UpdateLog precedes the final UpdateTask"
    );
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_across_steps_arrive_once_in_order() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 4, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let counters = ReportCounters::default();
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings(spool.path()),
        events,
        counters.clone(),
    )
    .unwrap();
    reporter.set_step_count(4);
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
    // Batches of 100 rows and more (what piled up during a call), at most 1,000 a call.
    let calls = fake.requests_of(Method::UpdateLog);
    assert!(
        (10..=200).contains(&calls.len()),
        "{} UpdateLog calls",
        calls.len()
    );
    assert!(calls.iter().all(|r| {
        let rows = r.body.as_ref().unwrap().get("rows");
        rows.and_then(|r| r.as_array()).map_or(0, Vec::len) <= hybrid_runner::report::MAX_CALL_ROWS
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
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings(spool.path()),
        events,
        counters.clone(),
    )
    .unwrap();
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
    let (sink, events) = EventSink::channel();
    let counters = ReportCounters::default();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings(spool.path()),
        events,
        counters.clone(),
    )
    .unwrap();
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
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings(spool.path()),
        events,
        ReportCounters::default(),
    )
    .unwrap();
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
    let (sink, events) = EventSink::channel();
    let settings = settings(spool.path());
    let heartbeat = settings.heartbeat;
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings,
        events,
        ReportCounters::default(),
    )
    .unwrap();
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
async fn an_empty_task_is_archived_with_a_sentinel_row() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings(spool.path()),
        events,
        ReportCounters::default(),
    )
    .unwrap();
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
        let (sink, events) = EventSink::channel();
        let reporter = TaskReporter::start(
            runner.client.clone(),
            runner.task_id,
            settings.clone(),
            events,
            ReportCounters::default(),
        )
        .unwrap();
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
    first.shutdown_background();
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
            pb::Result::Skipped
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_removes_a_task_the_server_already_ended() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings.clone(),
        events,
        ReportCounters::default(),
    )
    .unwrap();
    sink.send(line(None, "one row"));
    until(Duration::from_secs(5), || {
        (fake.task(runner.task_id).unwrap().log.len() == 1).then_some(())
    })
    .await
    .unwrap();
    // Dropped without finish: the shipping loop stops and the folder stays.
    drop(reporter);
    drop(sink);
    let folder = spool.path().join(format!("task-{}", runner.task_id));
    until(Duration::from_secs(5), || folder.is_dir().then_some(()))
        .await
        .unwrap();
    // The server ended it meanwhile (no `cancelling` capability: final at once).
    assert!(fake.cancel_task(runner.task_id));
    let recovered = recover(&runner.client, &settings, &ReportCounters::default()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_log_call_holds_up_neither_heartbeats_nor_finish() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_with_task(&fake, 1, &[]).await;
    let spool = tempfile::tempdir().unwrap();
    let settings = settings(spool.path());
    let heartbeat = settings.heartbeat;
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings,
        events,
        ReportCounters::default(),
    )
    .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_runner_deleted_by_its_final_state_counts_as_delivered() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let runner = runner_of_kind(&fake, 1, &[], true).await;
    let spool = tempfile::tempdir().unwrap();
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings(spool.path()),
        events,
        ReportCounters::default(),
    )
    .unwrap();
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
