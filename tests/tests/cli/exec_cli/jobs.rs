//! Jobs: `needs`, job `if:`, matrix fail-fast and max-parallel, `--matrix`, platforms.

use super::*;

#[test]
fn needs_outputs_results_and_job_conditions() {
    let repo = Repo::with(
        "on: push
jobs:
  produce:
    runs-on: ubuntu-latest
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: echo 'v=42' >> \"$GITHUB_OUTPUT\"
  broken:
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
  consume:
    needs: produce
    runs-on: ubuntu-latest
    steps:
      - run: echo \"v=${{ needs.produce.outputs.v }} result=${{ needs.produce.result }}\"
  after-default:
    needs: [produce, broken]
    runs-on: ubuntu-latest
    steps:
      - run: echo never
  after-always:
    needs: [produce, broken]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"broken=${{ needs.broken.result }} produce=${{ needs.produce.result }} v=${{ needs.produce.outputs.v }}\"
  on-failure:
    needs: broken
    if: failure()
    runs-on: ubuntu-latest
    steps:
      - run: echo failure-seen
  chain-always:
    needs: after-default
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo \"upstream=${{ needs.after-default.result }}\"
  chain-default:
    needs: after-default
    runs-on: ubuntu-latest
    steps:
      - run: echo never
",
    );
    let run = repo.json(&[]);
    run.assert_code(1);
    assert_eq!(
        run.jobs(),
        lines(&[
            "after-always=success",
            "after-default=skipped",
            "broken=failure",
            "chain-always=success",
            "chain-default=skipped",
            "consume=success",
            "on-failure=success",
            "produce=success",
        ])
    );
    assert_eq!(run.output("consume"), lines(&["v=42 result=success"]));
    assert_eq!(
        run.output("after-always"),
        lines(&["broken=failure produce=success v=42"])
    );
    assert_eq!(run.output("on-failure"), lines(&["failure-seen"]));
    assert_eq!(run.output("chain-always"), lines(&["upstream=skipped"]));
    let finished = run
        .events_of("job_finished")
        .into_iter()
        .find(|e| e["job"]["id"] == "produce")
        .unwrap();
    assert_eq!(finished["outputs"], serde_json::json!([["v", "42"]]));
}

const FAIL_FAST: &str = "on: push
jobs:
  m:
    runs-on: ubuntu-latest
    strategy:
      FAIL_FAST
      max-parallel: 2
      matrix:
        leg: [fast, slow, late]
    steps:
      - run: |
          if [ \"${{ matrix.leg }}\" = fast ]; then sleep 0.5; exit 1; fi
          echo ${{ matrix.leg }}-started
          for i in $(seq TENTHS); do sleep 0.1; done
          echo ${{ matrix.leg }}-finished
";

#[test]
fn matrix_fail_fast_cancels_running_and_queued_legs() {
    let repo = Repo::with(
        &FAIL_FAST
            .replace("FAIL_FAST", "fail-fast: true")
            .replace("TENTHS", "200"),
    );
    let started = Instant::now();
    let run = repo.json(&["--concurrency", "4"]);
    let took = started.elapsed();
    run.assert_code(1);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(
        run.jobs(),
        lines(&[
            "m (fast)=failure",
            "m (late)=cancelled",
            "m (slow)=cancelled"
        ])
    );
    assert_eq!(run.output("m"), lines(&["slow-started"]));
}

#[test]
fn matrix_without_fail_fast_lets_legs_finish() {
    let repo = Repo::with(
        &FAIL_FAST
            .replace("FAIL_FAST", "fail-fast: false")
            .replace("TENTHS", "5"),
    );
    let run = repo.json(&["--concurrency", "4"]);
    run.assert_code(1);
    assert_eq!(
        run.jobs(),
        lines(&["m (fast)=failure", "m (late)=success", "m (slow)=success"])
    );
    let mut out = run.output("m");
    out.sort();
    assert_eq!(
        out,
        lines(&[
            "late-finished",
            "late-started",
            "slow-finished",
            "slow-started"
        ])
    );
}

#[test]
fn matrix_max_parallel_runs_legs_one_at_a_time_and_matrix_filter_picks_legs() {
    let repo = Repo::with(
        "on: push
jobs:
  m:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 1
      matrix:
        n: [1, 2, 3]
    steps:
      - run: |
          echo \"start ${{ matrix.n }} $(date +%s%N)\"
          sleep 0.3
          echo \"end ${{ matrix.n }} $(date +%s%N)\"
",
    );
    let run = repo.json(&["--concurrency", "4"]);
    run.assert_code(0);
    let mut spans: Vec<(u128, u128)> = Vec::new();
    let out = run.output("m");
    assert_eq!(out.len(), 6, "{out:?}");
    for pair in out.chunks(2) {
        let start: Vec<&str> = pair[0].split(' ').collect();
        let end: Vec<&str> = pair[1].split(' ').collect();
        assert_eq!(
            (start[0], end[0]),
            ("start", "end"),
            "legs interleaved: {out:?}"
        );
        assert_eq!(start[1], end[1], "legs interleaved: {out:?}");
        spans.push((start[2].parse().unwrap(), end[2].parse().unwrap()));
    }
    let order: Vec<&str> = out.iter().map(|l| &l[..l.rfind(' ').unwrap()]).collect();
    assert_eq!(
        order,
        ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"],
        "legs start in matrix order"
    );
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "legs overlapped: {out:?}");
    }
    // --matrix keeps only the matching legs.
    let run = repo.json(&["--matrix", "n:2"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["m (2)=success"]));
}

#[test]
fn other_platforms_are_skipped_unless_mapped_to_the_host() {
    let repo = Repo::with(
        "on: push
jobs:
  win:
    runs-on: windows-latest
    steps:
      - run: echo on-windows-label
  linux:
    runs-on: ubuntu-latest
    steps:
      - run: echo on-linux
",
    );
    let run = repo.json(&[]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["linux=success", "win=skipped"]));
    let skipped = run.events_of("job_skipped");
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("windows-latest") && reason.contains("-P"),
        "{reason}"
    );
    let human = repo.exec(&[]);
    human.assert_code(0);
    assert!(
        human.stdout.contains("skipped: runs-on [windows-latest]"),
        "{}",
        human.all()
    );
    let run = repo.json(&["-P", "windows-latest=host"]);
    run.assert_code(0);
    assert_eq!(run.jobs(), lines(&["linux=success", "win=success"]));
    assert_eq!(run.output("win"), lines(&["on-windows-label"]));
}

#[test]
fn container_and_service_jobs_are_refused_naming_the_job() {
    let repo = Repo::with(
        "on: push
jobs:
  in-container:
    runs-on: ubuntu-latest
    container: node:20
    steps:
      - run: echo should-not-run
  with-services:
    runs-on: ubuntu-latest
    services:
      db:
        image: postgres:16
    steps:
      - run: echo should-not-run
  plain:
    runs-on: ubuntu-latest
    steps:
      - run: echo plain-ran
",
    );
    let run = repo.exec(&[]);
    run.assert_code(1);
    assert!(
        run.stdout.contains(
            "job 'in-container' runs in `container: node:20`, which needs a Kubernetes cluster for its pod; run `hybrid-runner exec` with --kubeconfig FILE (or --container-backend kubernetes)"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("job 'with-services' starts the service container 'db'"),
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains("should-not-run"), "{}", run.all());
    assert!(run.stdout.contains("plain-ran"), "{}", run.all());
}

#[test]
fn container_jobs_run_in_a_pod_with_a_cluster_and_are_refused_without() {
    if !harness::fake_kube::sandbox_available() {
        return;
    }
    let fake = harness::fake_kube::FakeKube::start(harness::fake_kube::FakeKubeOptions::default());
    let repo = Repo::with(
        "on: push
jobs:
  in-container:
    runs-on: ubuntu-latest
    container:
      image: alpine:3
      env:
        FROM_CONTAINER: ${{ secrets.TOKEN }}
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo \"read $(cat notes.txt) in $(pwd)\"
          echo \"container=${{ job.container.id }}\"
          echo \"marker\" > made-in-pod.txt
",
    );
    repo.write("notes.txt", "from-the-repo");
    let kubeconfig = fake.write_kubeconfig(repo.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let run = repo.exec(&["--kubeconfig", kubeconfig, "-s", "TOKEN=tok-9f8e7d"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("read from-the-repo in /__w/"),
        "{}",
        run.all()
    );
    let pod = fake
        .sent_manifests()
        .into_iter()
        .find(|m| m["kind"] == "Pod")
        .expect("a job pod");
    let namespace = pod["metadata"]["namespace"].as_str().unwrap().to_string();
    assert!(
        run.stdout.contains(&format!("container={namespace}/job")),
        "{}",
        run.all()
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "alpine:3");
    assert!(!serde_json::to_string(&pod).unwrap().contains("tok-9f8e7d"));
    // The pod worked on a copy: the repository is as it was.
    assert!(!repo.path().join("made-in-pod.txt").exists());
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path == format!("/api/v1/namespaces/{namespace}")),
        "the job namespace was not deleted"
    );
    // The same job with `--container-backend none` is refused, naming the flags.
    let run = repo.exec(&["--kubeconfig", kubeconfig, "--container-backend", "none"]);
    run.assert_code(1);
    assert!(
        run.stdout.contains("--container-backend kubernetes"),
        "{}",
        run.all()
    );
}

/// `exec` end to end with real images from a loopback registry: a service reached on its
/// mapped port through the forwarder sidecar, and a Docker step of a job on this host in
/// a step pod that works on a copy of the repository and writes back into it.
#[test]
fn exec_runs_services_with_mapped_ports_and_docker_steps_of_host_jobs_in_pods() {
    if !harness::fake_kube::sandbox_available() {
        return;
    }
    let Some(registry) = harness::registry::Registry::start() else {
        return;
    };
    let (Some(busybox), Some(http)) = (
        harness::images::busybox_image(&registry),
        harness::images::http_image(&registry, 8080, 0),
    ) else {
        return;
    };
    let fake = harness::fake_kube::FakeKube::start(harness::fake_kube::FakeKubeOptions::default());
    let repo = Repo::with(&format!(
        r#"on: push
jobs:
  with-service:
    runs-on: ubuntu-latest
    container: {busybox}
    services:
      web:
        image: {http}
        ports: ['18080:8080']
    steps:
      - run: echo "web says $(wget -qO- http://localhost:18080/) on ${{{{ job.services.web.ports['8080'] }}}}"
  docker-step:
    runs-on: ubuntu-latest
    steps:
      - uses: docker://{busybox}
        with:
          entrypoint: sh
          args: -c 'echo "the docker step reads $(cat notes.txt)"; echo from-docker > made-by-docker.txt'
      - run: echo "the host reads $(cat made-by-docker.txt)"
"#
    ));
    repo.write("notes.txt", "from-the-repo");
    let kubeconfig = fake.write_kubeconfig(repo.path());
    let run = repo.exec(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--forwarder-image",
        &busybox,
        "--job-image",
        &busybox,
    ]);
    run.assert_code(0);
    for wanted in [
        "web says ok on 18080",
        "the docker step reads from-the-repo",
        "the host reads from-docker",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.all());
    }
    assert_eq!(
        std::fs::read_to_string(repo.path().join("made-by-docker.txt")).unwrap(),
        "from-docker\n"
    );
    let created: Vec<String> = fake
        .sent_manifests()
        .into_iter()
        .filter(|m| m["kind"] == "Namespace")
        .filter_map(|m| m["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(created.len(), 2, "a job pod and a step pod: {created:?}");
    for namespace in created {
        assert!(
            fake.requests().iter().any(
                |r| r.method == "DELETE" && r.path == format!("/api/v1/namespaces/{namespace}")
            ),
            "{namespace} was not deleted"
        );
    }
    harness::fake_kube::validate_manifests(&fake.sent_manifests());
}
