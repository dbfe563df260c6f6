//! `services:` of a Gitea task as native sidecars of the job pod, on the fake kubelet's
//! container manager with images from a real loopback registry (static busybox built with
//! buildah): reached by name and on `localhost:PORT` (and a `HOST:PORT` mapping on
//! `localhost:HOST`, through the forwarder sidecar), a health check that passes only after
//! a few seconds holds the first step back, a service that never gets healthy fails the job
//! naming it with its last log lines, and a cancel mid-step leaves nothing behind.

use std::time::{Duration, Instant};

use harness::fake_kube::{FakeKubeOptions, validate_manifests};
use harness::images::{busybox_image, echo_image, http_image};
use harness::registry::Registry;
use hr_engine::events::{Event, Outcome};

use super::common::*;

/// The registry and the three images: (busybox, echo on 7001 after 3 s, http on 8080).
async fn images() -> Option<(Registry, (String, String, String))> {
    registry_with(None, |registry| {
        Some((
            busybox_image(registry)?,
            echo_image(registry, 7001, 3)?,
            http_image(registry, 8080, 0)?,
        ))
    })
    .await
}

fn quick_rig() -> Rig {
    Rig::new(FakeKubeOptions {
        crash_loop_back_off: Duration::from_secs(1),
        ..FakeKubeOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_reached_by_name_and_on_localhost_after_their_health_checks() {
    let Some((_registry, (busybox, echo, http))) = images().await else {
        return;
    };
    let rig = quick_rig();
    let mut settings = rig.settings();
    // The forwarder of `18080:8080` runs busybox's `nc`, as the default busybox image.
    settings.pods.forwarder_image = busybox.clone();
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    container:
      image: {busybox}
      env:
        IN_CONTAINER: yes-it-is
    services:
      echo:
        image: {echo}
        ports: ['7001']
        env:
          SERVICE_SECRET: ${{{{ secrets.MY_SECRET }}}}
        options: --health-cmd "nc -w 1 localhost 7001 </dev/null" --health-interval 1s --health-retries 10
      web:
        image: {http}
        ports: ['18080:8080']
    steps:
      - run: |
          echo "container says $IN_CONTAINER"
          echo "echo by name: $(echo ping-by-name | nc -w 2 echo 7001)"
          echo "echo on localhost: $(echo ping-local | nc -w 2 localhost 7001)"
          echo "web by name: $(wget -qO- http://web:8080/)"
          echo "web on localhost: $(wget -qO- http://localhost:8080/)"
          echo "web on its mapped port: $(wget -qO- http://localhost:18080/)"
          echo "ports ${{{{ job.services.echo.ports['7001'] }}}} ${{{{ job.services.web.ports['8080'] }}}}"
          echo "service id ${{{{ job.services.echo.id }}}}"
"###
    );
    let started = Instant::now();
    let (run, events) = execute(task(401, &payload), &settings).await;
    let took = started.elapsed();
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Success, "{all:#?}");
    for wanted in [
        "container says yes-it-is",
        "echo by name: ping-by-name",
        "echo on localhost: ping-local",
        "web by name: ok",
        "web on localhost: ok",
        "web on its mapped port: ok",
        "ports 7001 18080",
        "service id svc-echo",
    ] {
        assert!(
            all.iter().any(|l| l.starts_with(wanted)),
            "{wanted}\n{all:#?}"
        );
    }
    assert!(
        all.iter()
            .any(|l| l.starts_with("Service echo (") && l.ends_with("is running and healthy")),
        "{all:#?}"
    );
    // The echo service listens only after 3 s: the first step waited for its check.
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let manifests = rig.fake.sent_manifests();
    let pod = manifests.iter().find(|m| m["kind"] == "Pod").unwrap();
    assert!(!serde_json::to_string(pod).unwrap().contains(SECRET));
    assert_eq!(pod["spec"]["initContainers"][0]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["initContainers"][2]["name"], "fwd-18080");
    assert!(all.iter().all(|l| !l.contains(SECRET)));
    validate_manifests(&manifests);
    rig.assert_no_secret_in_urls();
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_gets_healthy_fails_the_job_naming_it_with_its_log() {
    let Some((_registry, (busybox, echo, _))) = images().await else {
        return;
    };
    let rig = quick_rig();
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    container: {busybox}
    services:
      db:
        image: {echo}
        options: --health-cmd "exit 1" --health-interval 1s --health-retries 2
    steps:
      - run: echo never-runs
"###
    );
    let (run, events) = execute(task(402, &payload), &rig.settings()).await;
    let all = lines(&events);
    assert_eq!(run.result, Outcome::Failure, "{all:#?}");
    let error = all
        .iter()
        .position(|l| l.contains("service db of the job pod"))
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(all[error].contains("did not become healthy"), "{all:#?}");
    // The service's own words, from before the kubelet restarted it.
    assert!(
        all[error..].iter().any(|l| l.contains("listening on 7001")),
        "{all:#?}"
    );
    assert!(!all.iter().any(|l| l == "never-runs"));
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_services_cancelled_mid_step_leaves_no_namespace() {
    let Some((_registry, (busybox, _, http))) = images().await else {
        return;
    };
    let rig = quick_rig();
    let payload = format!(
        r###"name: CI
"on": push
jobs:
  build:
    runs-on: linux
    container: {busybox}
    services:
      web:
        image: {http}
    steps:
      - run: echo step-started; sleep 300
      - if: always()
        run: echo always-ran
"###
    );
    let (run, events) = execute_watching(task(403, &payload), &rig.settings(), |event, cancel| {
        if matches!(event, Event::Log { line, .. } if line == "step-started") {
            cancel.cancel();
        }
    })
    .await;
    assert_eq!(run.result, Outcome::Cancelled, "{:#?}", lines(&events));
    assert!(has(&events, "always-ran"), "{:#?}", lines(&events));
    rig.assert_namespaces_deleted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_job_image_is_pulled_with_its_credentials_and_refused_without() {
    let Some((_registry, image)) = registry_with(Some(("ci-bot", SECRET)), busybox_image).await
    else {
        return;
    };
    let rig = quick_rig();
    let job = |credentials: &str| {
        format!(
            "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    container:\n      image: {image}\n{credentials}    steps:\n      - run: echo private-image-ran\n"
        )
    };
    // Without them the pull fails at once (not after the start timeout), naming the image.
    // (First: a node that has pulled the image may run it for anyone, as a real one with
    // `IfNotPresent` does.)
    let started = Instant::now();
    let (run, events) = execute(task(405, &job("")), &rig.settings()).await;
    assert_eq!(run.result, Outcome::Failure);
    let all = lines(&events);
    assert!(
        all.iter()
            .any(|l| l.contains("container steps: ErrImagePull") && l.contains(&image)),
        "{all:#?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(!has(&events, "private-image-ran"));
    rig.assert_namespaces_deleted().await;

    let with = job(
        "      credentials:\n        username: ci-bot\n        password: ${{ secrets.MY_SECRET }}\n",
    );
    let (run, events) = execute(task(404, &with), &rig.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(has(&events, "private-image-ran"));
    let manifests = rig.fake.sent_manifests();
    let pull = manifests
        .iter()
        .find(|m| m["kind"] == "Secret" && m["type"] == "kubernetes.io/dockerconfigjson")
        .expect("an image pull Secret");
    assert_eq!(pull["metadata"]["name"], "job-registry");
    rig.assert_namespaces_deleted().await;
}

/// A figure, not a check: `cargo test -p hybrid-runner-tests --test engine -- --ignored
/// --nocapture services_start_figures` prints, against the fake kubelet, the time from
/// the job's start to its first step for a job pod alone and for one with two services
/// whose health checks pass at once (the same image, 5 rounds each, interleaved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn services_start_figures() {
    let Some((registry, (busybox, _, http))) = images().await else {
        return;
    };
    // A second service on another port: the pod's containers share one network.
    let Some(http2) = tokio::task::block_in_place(|| http_image(&registry, 8081, 0)) else {
        return;
    };
    let rig = quick_rig();
    let alone = format!(
        "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    container: {busybox}\n    steps:\n      - run: echo first\n"
    );
    let health = |port: u16| {
        format!("--health-cmd \\\"wget -qO- http://localhost:{port}/\\\" --health-interval 1s")
    };
    let with_services = format!(
        "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    container: {busybox}\n    services:\n      a:\n        image: {http}\n        options: \"{}\"\n      b:\n        image: {http2}\n        options: \"{}\"\n    steps:\n      - run: echo first\n",
        health(8080),
        health(8081)
    );
    let mut figures: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..5 {
        for (i, payload) in [&alone, &with_services].into_iter().enumerate() {
            let (mut started, mut first) = (None, None);
            let settings = rig.settings();
            let id = 500 + round * 2 + i as i64;
            let (run, _) = execute_watching(task(id, payload), &settings, |event, _| match event {
                Event::JobStarted { .. } => started = Some(Instant::now()),
                Event::StepStarted { .. } if first.is_none() => first = Some(Instant::now()),
                _ => {}
            })
            .await;
            assert_eq!(run.result, Outcome::Success, "round {round}, job {i}");
            figures[i].push(first.unwrap() - started.unwrap());
        }
    }
    for (name, mut values) in ["pod alone", "pod + 2 services"].into_iter().zip(figures) {
        values.sort();
        eprintln!(
            "{name}: job start -> first step, median {:?} (min {:?}, max {:?}, 5 rounds)",
            values[2], values[0], values[4]
        );
    }
}
