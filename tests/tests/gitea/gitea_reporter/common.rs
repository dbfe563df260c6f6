//! What every reporter test shares: a registered runner with a fetched task, settings,
//! hand-made engine events, polling, and the checks of a delivered log.

pub use std::path::Path;
pub use std::time::{Duration, Instant};

pub use harness::fake_gitea::{
    FakeGitea, FakeGiteaOptions, Fault, Faults, Method, RandomFailures, TaskSpec, TaskView, pb,
};
pub use hr_engine::events::{AnnotationEvent, Event, EventSink, JobKey, LogKind, Outcome, StepKey};
pub use hr_gitea::report::{
    DAEMON_STOPPED_ROW, FinalReport, RecoveredTask, ReportCounters, ReportSettings, TaskReporter,
    recover,
};
pub use hr_gitea::{ClientOptions, Credentials, RunnerClient};

/// A registered runner's client and the task it fetched.
pub struct Runner {
    pub client: RunnerClient,
    pub credentials: Credentials,
    pub task_id: i64,
}

/// A reporter for `runner`'s task shipping with `settings` and fresh counters, and the
/// sink its events go into.
pub fn start_reporter(runner: &Runner, settings: ReportSettings) -> (EventSink, TaskReporter) {
    start_counted_reporter(runner, settings, ReportCounters::default())
}

/// [`start_reporter`] counting into `counters`.
pub fn start_counted_reporter(
    runner: &Runner,
    settings: ReportSettings,
    counters: ReportCounters,
) -> (EventSink, TaskReporter) {
    let (sink, events) = EventSink::channel();
    let reporter = TaskReporter::start(
        runner.client.clone(),
        runner.task_id,
        settings,
        events,
        counters,
    )
    .unwrap();
    (sink, reporter)
}

/// `recover` again every 20 ms until it finishes a folder (a dropped reporter lets its
/// folder go a moment later), at most 100 times; what the last call did.
pub async fn recover_when_free(
    client: &RunnerClient,
    settings: &ReportSettings,
    counters: &ReportCounters,
) -> Vec<RecoveredTask> {
    let mut recovered = Vec::new();
    for _ in 0..100 {
        recovered = recover(client, settings, counters).await;
        if !recovered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    recovered
}

pub fn payload(steps: usize) -> String {
    let mut yaml = String::from("on: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n");
    for i in 0..steps {
        yaml.push_str(&format!("      - run: echo {i}\n"));
    }
    yaml
}

pub fn client_for(fake: &FakeGitea, credentials: &Credentials) -> RunnerClient {
    harness::install_crypto_provider();
    RunnerClient::new(&fake.url(), ClientOptions::default())
        .unwrap()
        .with_credentials(credentials.clone())
}

/// Registers a runner (declaring `capabilities`), queues a task of `steps` steps and
/// fetches it.
pub async fn runner_with_task(fake: &FakeGitea, steps: usize, capabilities: &[&str]) -> Runner {
    runner_of_kind(fake, steps, capabilities, false).await
}

pub async fn runner_of_kind(
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
        .fetch_task(
            &pb::FetchTaskRequest { tasks_version: 0 },
            &hr_gitea::new_request_key(),
        )
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

pub fn settings(spool: &Path) -> ReportSettings {
    ReportSettings {
        spool_dir: spool.to_path_buf(),
        batch_rows: 100,
        max_latency: Duration::from_millis(200),
        heartbeat: Duration::from_millis(500),
        close_timeout: Duration::from_secs(2),
        ..ReportSettings::new(spool.to_path_buf())
    }
}

pub fn job() -> JobKey {
    JobKey {
        id: "build".into(),
        name: "build".into(),
    }
}

pub fn step(index: usize) -> StepKey {
    StepKey {
        index,
        id: format!("s{index}"),
        name: format!("echo {index}"),
        main: Some(index),
        nested: false,
    }
}

pub fn started(index: usize) -> Event {
    Event::StepStarted {
        job: job(),
        step: step(index),
    }
}

pub fn finished(index: usize, outcome: Outcome) -> Event {
    Event::StepFinished {
        job: job(),
        step: step(index),
        outcome,
        conclusion: outcome,
        duration: Duration::from_millis(3),
        outputs: Vec::new(),
    }
}

pub fn line(index: Option<usize>, text: &str) -> Event {
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
pub async fn until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
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
pub fn without_sentinel(view: &TaskView) -> Vec<String> {
    let mut rows = view.log_lines();
    if rows.last().is_some_and(String::is_empty) {
        rows.pop();
    }
    rows
}

/// The fake's recorded calls: the index of the final UpdateLog (`no_more`) and of the
/// first UpdateTask carrying a result.
pub fn final_call_order(fake: &FakeGitea) -> (usize, usize) {
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
pub async fn feed_job(
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
                        from_runner: false,
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
pub fn assert_delivered(
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
