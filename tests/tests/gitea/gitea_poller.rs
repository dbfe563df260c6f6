//! The daemon's poll loop (`hr_gitea::daemon::poll`) and its start-up
//! (`daemon::run`) against the fake Gitea over real HTTP, with a fake task handler that
//! only sleeps or waits and then sends a final UpdateTask: capacity (never more than N
//! tasks at once, no FetchTask while every slot is taken), the `tasks_version` cache and
//! its reset, backoff on empty answers, Unauthenticated, draining shutdown, `--once`,
//! Declare and the metrics endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use harness::fake_gitea::{FakeGitea, FakeGiteaOptions, Method, TaskSpec, pb};
use hr_gitea::config::Config;
use hr_gitea::daemon::{
    self, DaemonExit, DaemonFlags, DaemonMetrics, PollEnd, PollSettings, ReportFigures, Shutdown,
    TaskControl,
};
use hr_gitea::registration::{Registration, WARNING};
use hr_gitea::{ClientOptions, RunnerClient};

const PAYLOAD: &str = "name: ci\non: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";

/// A runner registered with the fake, and a client speaking as it.
async fn registered(fake: &FakeGitea, ephemeral: bool) -> (Registration, RunnerClient) {
    let options = ClientOptions {
        fetch_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    let client = RunnerClient::new(&fake.url(), options).unwrap();
    let answer = client
        .register(&pb::RegisterRequest {
            name: "poller".into(),
            token: FakeGitea::REGISTRATION_TOKEN.into(),
            version: "test".into(),
            labels: vec!["ubuntu-latest".into()],
            ephemeral,
            ..Default::default()
        })
        .await
        .unwrap();
    let runner = answer.runner.unwrap();
    let registration = Registration {
        warning: WARNING.into(),
        id: runner.id,
        uuid: runner.uuid,
        name: runner.name,
        token: runner.token,
        address: fake.url(),
        labels: vec!["ubuntu-latest:host".into()],
        ephemeral,
        other: Default::default(),
    };
    let client = client.with_credentials(registration.credentials());
    (registration, client)
}

/// What a fake task did, and when.
type Event = (i64, &'static str, Instant);

fn settings(capacity: usize) -> PollSettings {
    PollSettings {
        capacity,
        fetch_interval: Duration::from_millis(50),
        fetch_interval_max: Duration::from_millis(100),
        version_refresh: Duration::from_secs(60),
        shutdown_timeout: Duration::ZERO,
        once: false,
    }
}

fn metrics() -> Arc<DaemonMetrics> {
    Arc::new(DaemonMetrics::new(4, Duration::from_secs(30)))
}

/// Reports the task's final result to the fake, as the real reporter ends a task.
async fn report_final(client: &RunnerClient, id: i64, result: pb::Result) {
    let _ = client
        .update_task(&pb::UpdateTaskRequest {
            state: Some(pb::TaskState {
                id,
                result: result as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
}

async fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// The `tasksVersion` each FetchTask call sent (proto3 JSON leaves 0 out).
fn sent_versions(fake: &FakeGitea) -> Vec<i64> {
    fake.requests_of(Method::FetchTask)
        .iter()
        .map(|r| {
            let body = r.body.as_ref().unwrap();
            match &body["tasksVersion"] {
                serde_json::Value::String(s) => s.parse().unwrap(),
                serde_json::Value::Number(n) => n.as_i64().unwrap(),
                _ => 0,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_never_exceeded_and_no_fetch_happens_while_full() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let (registration, client) = registered(&fake, false).await;
    let ids: Vec<i64> = (0..5)
        .map(|_| fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD)))
        .collect();
    let now_running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let spans: Arc<Mutex<Vec<(SystemTime, SystemTime)>>> = Arc::default();
    let shutdown = Shutdown::default();
    let metrics = metrics();
    let handler = {
        let (client, now_running, peak, spans) = (
            client.clone(),
            Arc::clone(&now_running),
            Arc::clone(&peak),
            Arc::clone(&spans),
        );
        move |task: pb::Task, _control: TaskControl| {
            let (client, now_running, peak, spans) = (
                client.clone(),
                Arc::clone(&now_running),
                Arc::clone(&peak),
                Arc::clone(&spans),
            );
            async move {
                let start = SystemTime::now();
                let n = now_running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                report_final(&client, task.id, pb::Result::Success).await;
                now_running.fetch_sub(1, Ordering::SeqCst);
                spans.lock().unwrap().push((start, SystemTime::now()));
                pb::Result::Success
            }
        }
    };
    let poller = {
        let (client, shutdown, metrics) = (client.clone(), shutdown.clone(), Arc::clone(&metrics));
        tokio::spawn(async move {
            let mut polling = settings(2);
            // Slow polls: the second slot must fill at once, not a fetch_interval later.
            polling.fetch_interval = Duration::from_millis(800);
            polling.fetch_interval_max = Duration::from_millis(800);
            daemon::poll(&client, &polling, &shutdown, &metrics, handler).await
        })
    };
    let all_done = wait_until(Duration::from_secs(20), || {
        ids.iter()
            .all(|id| fake.task(*id).is_some_and(|t| t.is_done()))
    })
    .await;
    assert!(all_done, "{:?}", fake.tasks());
    shutdown.stop.cancel();
    let end = tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, PollEnd::Stopped), "{end:?}");

    assert_eq!(peak.load(Ordering::SeqCst), 2, "two slots, both used");
    let mut starts: Vec<SystemTime> = spans.lock().unwrap().iter().map(|(s, _)| *s).collect();
    starts.sort();
    let second_after = starts[1].duration_since(starts[0]).unwrap();
    assert!(
        second_after < Duration::from_millis(400),
        "the second slot filled {second_after:?} after the first"
    );
    let runner = fake.runner(&registration.uuid).unwrap();
    assert_eq!(runner.tasks.len(), 5);
    assert!(runner.peak_running <= 2, "{}", runner.peak_running);
    // Every FetchTask arrived while at most one task ran: never with both slots taken.
    let spans = spans.lock().unwrap().clone();
    for fetch in fake.requests_of(Method::FetchTask) {
        let t = fetch.received_at;
        let running = spans.iter().filter(|(s, e)| *s <= t && t < *e).count();
        assert!(
            running < 2,
            "a FetchTask at {t:?} while {running} tasks ran"
        );
    }
    assert_eq!(metrics.tasks_total().get("success"), Some(&5));
    assert_eq!(metrics.tasks_running(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_version_is_cached_reset_after_a_task_and_refreshed() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let (_registration, client) = registered(&fake, false).await;
    let shutdown = Shutdown::default();
    let mut polling = settings(1);
    polling.fetch_interval_max = polling.fetch_interval;
    polling.version_refresh = Duration::from_millis(400);
    let handler = {
        let client = client.clone();
        move |task: pb::Task, _control: TaskControl| {
            let client = client.clone();
            async move {
                report_final(&client, task.id, pb::Result::Success).await;
                pb::Result::Success
            }
        }
    };
    let poller = {
        let (client, shutdown) = (client.clone(), shutdown.clone());
        tokio::spawn(async move {
            daemon::poll(&client, &polling, &shutdown, &metrics(), handler).await
        })
    };
    assert!(wait_until(Duration::from_secs(10), || sent_versions(&fake).len() >= 4).await);
    let before = sent_versions(&fake);
    assert_eq!(before[0], 0, "the first poll forces a look-up");
    assert!(
        before[1..].contains(&1),
        "then the server's version is sent back: {before:?}"
    );

    let id = fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD));
    assert!(
        wait_until(Duration::from_secs(10), || fake
            .task(id)
            .is_some_and(|t| t.is_done()))
        .await
    );
    let seen = sent_versions(&fake).len();
    assert!(
        wait_until(Duration::from_secs(10), || sent_versions(&fake).len()
            >= seen + 2)
        .await
    );
    // Wait for the refresh period to pass twice with an unchanged server version.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    shutdown.stop.cancel();
    poller.await.unwrap();

    let versions = sent_versions(&fake);
    let fetches = fake.requests_of(Method::FetchTask);
    let got = fake.task(id).unwrap().assigned_at.unwrap();
    let after_task = fetches
        .iter()
        .position(|r| r.received_at > got)
        .expect("a poll after the task");
    assert_eq!(
        versions[after_task], 0,
        "reset to 0 after a task: {versions:?}"
    );
    assert!(
        versions[after_task + 1..].contains(&2),
        "then cached again: {versions:?}"
    );
    // With the version unchanged, 0 is still sent at least every refresh period.
    let zero_times: Vec<SystemTime> = fetches
        .iter()
        .zip(&versions)
        .skip(after_task + 1)
        .filter(|(_, v)| **v == 0)
        .map(|(r, _)| r.received_at)
        .collect();
    assert!(!zero_times.is_empty(), "{versions:?}");
    let last = fetches.last().unwrap().received_at;
    let last_zero = *zero_times.last().unwrap();
    assert!(
        last.duration_since(last_zero).unwrap() < Duration::from_millis(900),
        "a forced look-up within the refresh period: {versions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_answers_back_off_up_to_the_maximum() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let (_registration, client) = registered(&fake, false).await;
    let shutdown = Shutdown::default();
    let mut polling = settings(1);
    polling.fetch_interval = Duration::from_millis(50);
    polling.fetch_interval_max = Duration::from_millis(400);
    let handler = |_task: pb::Task, _control: TaskControl| async { pb::Result::Success };
    let poller = {
        let (client, shutdown) = (client.clone(), shutdown.clone());
        tokio::spawn(async move {
            daemon::poll(&client, &polling, &shutdown, &metrics(), handler).await
        })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    shutdown.stop.cancel();
    poller.await.unwrap();
    let times: Vec<SystemTime> = fake
        .requests_of(Method::FetchTask)
        .iter()
        .map(|r| r.received_at)
        .collect();
    let gaps: Vec<Duration> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap())
        .collect();
    // 50, 100, 200, 400, 400 ... ms (±20 %): about 8 polls in 2.5 s, not 50.
    assert!(times.len() >= 5 && times.len() <= 12, "{gaps:?}");
    assert!(gaps[0] < Duration::from_millis(150), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(75), "{gaps:?}");
    // Capped: never below the cap's -20 %, and (the median, robust to one slow answer on a
    // busy machine) not at the next doubling (800 ms -20 % = 640 ms).
    let mut late: Vec<Duration> = gaps[3..].to_vec();
    assert!(
        late.iter().all(|g| *g >= Duration::from_millis(300)),
        "{gaps:?}"
    );
    late.sort();
    assert!(
        late[late.len() / 2] <= Duration::from_millis(560),
        "{gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_stops_polling_after_running_tasks_finish() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let (registration, client) = registered(&fake, false).await;
    fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD));
    let release = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (release, started) = (Arc::clone(&release), Arc::clone(&started));
        move |_task: pb::Task, _control: TaskControl| {
            let (release, started) = (Arc::clone(&release), Arc::clone(&started));
            async move {
                started.notify_one();
                release.notified().await;
                pb::Result::Failure
            }
        }
    };
    let shutdown = Shutdown::default();
    let poller = {
        let (client, shutdown) = (client.clone(), shutdown.clone());
        tokio::spawn(async move {
            daemon::poll(&client, &settings(2), &shutdown, &metrics(), handler).await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .unwrap();
    fake.delete_runner(&registration.uuid);
    let refused = || {
        fake.requests_of(Method::FetchTask)
            .iter()
            .any(|r| r.error_code.is_some())
    };
    assert!(wait_until(Duration::from_secs(10), refused).await);
    let polls = fake.requests_of(Method::FetchTask).len();
    // The loop waits for the running task.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!poller.is_finished());
    assert_eq!(
        fake.requests_of(Method::FetchTask).len(),
        polls,
        "no poll after the refusal"
    );
    release.notify_one();
    let end = tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .unwrap()
        .unwrap();
    match end {
        PollEnd::Unauthenticated(e) => assert!(e.is_unauthenticated()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_the_grace_then_cancels_and_still_waits_for_the_report() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let (_registration, client) = registered(&fake, false).await;
    let quick = fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD));
    let slow = fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD));
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let handler = {
        let (client, events) = (client.clone(), Arc::clone(&events));
        move |task: pb::Task, control: TaskControl| {
            let (client, events) = (client.clone(), Arc::clone(&events));
            async move {
                let work = if task.id == 1 { 200 } else { 30_000 };
                let result = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(work)) => pb::Result::Success,
                    _ = control.cancel.cancelled() => {
                        events.lock().unwrap().push((task.id, "cancelled", Instant::now()));
                        // The final report takes a while; the loop must wait for it.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        pb::Result::Cancelled
                    }
                };
                report_final(&client, task.id, result).await;
                events
                    .lock()
                    .unwrap()
                    .push((task.id, "reported", Instant::now()));
                result
            }
        }
    };
    let mut polling = settings(2);
    polling.shutdown_timeout = Duration::from_millis(600);
    let shutdown = Shutdown::default();
    let metrics = metrics();
    let poller = {
        let (client, shutdown, metrics) = (client.clone(), shutdown.clone(), Arc::clone(&metrics));
        tokio::spawn(
            async move { daemon::poll(&client, &polling, &shutdown, &metrics, handler).await },
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || fake
            .task(slow)
            .is_some_and(|t| t.runner_uuid.is_some()))
        .await
    );
    let stopped_at = Instant::now();
    shutdown.stop.cancel();
    let end = tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .unwrap()
        .unwrap();
    let ended_at = Instant::now();
    assert!(matches!(end, PollEnd::Stopped), "{end:?}");
    let events = events.lock().unwrap().clone();
    let at = |id, what| {
        events
            .iter()
            .find(|(i, w, _)| *i == id && *w == what)
            .map(|(_, _, t)| *t)
    };
    // The quick task finished within the grace, uncancelled.
    assert!(at(quick, "cancelled").is_none(), "{events:?}");
    assert!(at(quick, "reported").is_some());
    // The slow one was cancelled after the grace, and its report was awaited.
    let cancelled = at(slow, "cancelled").expect("cancelled");
    let reported = at(slow, "reported").expect("reported");
    assert!(
        cancelled.duration_since(stopped_at) >= Duration::from_millis(550),
        "{events:?}"
    );
    assert!(ended_at >= reported);
    assert_eq!(
        fake.task(slow).unwrap().result(),
        Some(pb::Result::Cancelled)
    );
    assert_eq!(
        fake.task(quick).unwrap().result(),
        Some(pb::Result::Success)
    );
    assert_eq!(metrics.tasks_total().get("cancelled"), Some(&1));
    // No FetchTask after the stop.
    let last_fetch = fake
        .requests_of(Method::FetchTask)
        .last()
        .unwrap()
        .received_at;
    let stop_wall = SystemTime::now() - ended_at.duration_since(stopped_at);
    assert!(last_fetch <= stop_wall + Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_takes_exactly_one_task() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let (registration, client) = registered(&fake, false).await;
    for _ in 0..3 {
        fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD));
    }
    let handled = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (client, handled) = (client.clone(), Arc::clone(&handled));
        move |task: pb::Task, _control: TaskControl| {
            let (client, handled) = (client.clone(), Arc::clone(&handled));
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                report_final(&client, task.id, pb::Result::Success).await;
                pb::Result::Success
            }
        }
    };
    let mut polling = settings(3);
    polling.once = true;
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        daemon::poll(&client, &polling, &Shutdown::default(), &metrics(), handler),
    )
    .await
    .unwrap();
    assert!(matches!(end, PollEnd::Once), "{end:?}");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    assert_eq!(fake.runner(&registration.uuid).unwrap().tasks, [1]);
    assert_eq!(fake.requests_of(Method::FetchTask).len(), 1);
    assert_eq!(fake.task(1).unwrap().result(), Some(pb::Result::Success));
    assert!(fake.task(2).unwrap().runner_uuid.is_none());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn http_get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    (
        status,
        answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    )
}

fn daemon_config(dir: &Path, port: u16) -> Config {
    let mut config = Config::default();
    config.runner.file = dir.join(".runner");
    config.runner.fetch_interval = Duration::from_millis(50);
    config.runner.fetch_interval_max = Duration::from_millis(100);
    config.metrics.enabled = true;
    config.metrics.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.kubernetes.kubeconfig = Some(dir.join("no-kubeconfig"));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_declares_serves_metrics_and_an_ephemeral_runner_takes_one_task() {
    let fake = FakeGitea::start(FakeGiteaOptions {
        declare_capabilities: Some("job-summary".into()),
        ..FakeGiteaOptions::default()
    });
    let (registration, client) = registered(&fake, true).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = daemon_config(dir.path(), port);
    registration.save(&config.runner.file).unwrap();
    let flags = DaemonFlags {
        once: false,
        labels: vec!["ubuntu-latest:host".into(), "extra:host".into()],
    };
    let capabilities: Arc<Mutex<Vec<String>>> = Arc::default();
    let release = Arc::new(tokio::sync::Notify::new());
    let make_work = {
        let (capabilities, release, client) = (
            Arc::clone(&capabilities),
            Arc::clone(&release),
            client.clone(),
        );
        move |ready: Arc<daemon::Ready>| {
            *capabilities.lock().unwrap() = ready.server_capabilities.clone();
            async move {
                move |task: pb::Task, _control: TaskControl| {
                    let (release, client) = (Arc::clone(&release), client.clone());
                    async move {
                        release.notified().await;
                        report_final(&client, task.id, pb::Result::Success).await;
                        pb::Result::Success
                    }
                }
            }
        }
    };
    let id = fake.enqueue_task(TaskSpec::new(&["ubuntu-latest"], PAYLOAD));
    let shutdown = Shutdown::default();
    let running = {
        let shutdown = shutdown.clone();
        let report = || ReportFigures {
            rows_sent: 3,
            ..ReportFigures::default()
        };
        tokio::spawn(
            async move { daemon::run(&config, &flags, &shutdown, report, make_work).await },
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || fake
            .task(id)
            .is_some_and(|t| t.runner_uuid.is_some()))
        .await
    );
    // A second daemon on the same runner file is refused while this one runs.
    let second = daemon::startup::load_identity(&dir.path().join(".runner"), &[]).unwrap_err();
    assert!(
        second.to_string().contains("another runner process"),
        "{second}"
    );

    let runner = fake.runner(&registration.uuid).unwrap();
    assert_eq!(runner.capabilities, ["cancelling"]);
    assert_eq!(runner.labels, ["ubuntu-latest", "extra"]);
    assert_eq!(runner.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(*capabilities.lock().unwrap(), ["job-summary"]);
    assert_eq!(
        Registration::load(&dir.path().join(".runner"))
            .unwrap()
            .labels,
        ["ubuntu-latest:host", "extra:host"]
    );
    assert_eq!(http_get(port, "/healthz").await.0, 200);
    assert_eq!(http_get(port, "/readyz").await.0, 200);
    let (status, text) = http_get(port, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("\nhybrid_runner_tasks_running 1\n"), "{text}");
    assert!(
        text.contains("\nhybrid_runner_log_rows_sent_total 3\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE hybrid_runner_build_duration_seconds histogram"));

    release.notify_one();
    let exit = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(exit, DaemonExit::Once), "{exit:?}");
    assert_eq!(
        fake.requests_of(Method::FetchTask).len(),
        1,
        "ephemeral: one task"
    );
    assert_eq!(fake.task(id).unwrap().result(), Some(pb::Result::Success));
}
