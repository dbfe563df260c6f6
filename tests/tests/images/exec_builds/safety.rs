//! What must never go wrong: secrets in build output, and builds left running after Ctrl-C.

use super::*;

#[test]
fn secrets_passed_as_build_args_never_reach_the_output() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let secret = "sup3r-s3cret-build-arg";
    // The Dockerfile copies a file named after the argument, so the builder's error message
    // carries the secret's value: the runner must hide it.
    let steps = format!(
        r#"      - id: action
        uses: docker/build-push-action@v6
        with:
          push: true
          tags: {host}/secret:v1
          file: Dockerfile.secret
          build-args: |
            TOKEN=${{{{ secrets.TOKEN }}}}
      - id: shim
        if: always()
        env:
          TOKEN: ${{{{ secrets.TOKEN }}}}
        run: docker build --build-arg TOKEN="$TOKEN" -t {host}/secret:v2 -f Dockerfile.secret .
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(&steps)),
        (
            "Dockerfile.secret",
            "FROM scratch\nARG TOKEN\nCOPY ${TOKEN} /token\n",
        ),
    ]);
    let run = project.exec(
        Some(&registry),
        &["--offline", "-s", &format!("TOKEN={secret}")],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.steps(),
        vec!["action:failure", "shim:failure"],
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains(secret), "{}", run.all());
    assert!(!run.stderr.contains(secret), "{}", run.all());
    // buildah's own error names the missing file (`stat: "/<value>"`): the runner masks
    // it (the builder hides only the values in the command lines it prints).
    let masked_errors = run
        .logged_lines()
        .into_iter()
        .filter(|l| l.contains("stat: \"/***\""))
        .count();
    assert!(
        masked_errors >= 2,
        "the value was shown, masked, for both steps:\n{}",
        run.all()
    );
}

/// A loopback HTTP server that accepts connections and never answers: a Dockerfile
/// `ADD http://…` from it keeps the build running until it is cancelled.
fn stalling_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    address
}

/// Processes whose command line mentions `text` (the project folder: the builder's).
fn processes_mentioning(text: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", text])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

impl Project {
    /// `exec --json` sent SIGINT once a log line contains `marker`; the run, and how long it
    /// took to end after the signal.
    fn interrupt_at(&self, marker: &str) -> (ExecRun, std::time::Duration) {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        use std::time::{Duration, Instant};

        let mut command = harness::cli::command();
        command
            .args(["exec", "--json", "--builder", "buildah"])
            .current_dir(self.dir.path())
            .envs(self.storage.env())
            .env("DOCKER_CONFIG", self.storage.path().join("docker"))
            .env_remove("GITHUB_ACTIONS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen.iter().any(|l: &String| l.contains(marker)) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("never saw `{marker}`: {seen:#?}");
                }
            }
        }
        let interrupted = Instant::now();
        let killed = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if interrupted.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("exec did not stop within 20 s of SIGINT: {seen:#?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = interrupted.elapsed();
        // The reader thread ends with the pipe.
        std::thread::sleep(Duration::from_millis(100));
        seen.extend(rx.try_iter());
        let mut stderr = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        let mut stdout = seen.join("\n");
        stdout.push('\n');
        (
            ExecRun {
                code: status.code(),
                stdout,
                stderr,
            },
            took,
        )
    }
}

#[test]
fn ctrl_c_cancels_builds_of_actions_and_of_the_shim_and_leaves_no_builder_running() {
    if !require_program("buildah", "exec builds use a real local builder") {
        return;
    }
    let stall = stalling_server();
    let dockerfile = format!("FROM scratch\nADD http://{stall}/never /never\n");
    let forms = [
        (
            "action",
            "      - id: build\n        uses: hybrid-runner/build@v1\n        with:\n          image: 127.0.0.1:9/stall\n",
        ),
        (
            "shim",
            "      - id: build\n        run: docker build -t 127.0.0.1:9/stall:v1 .\n",
        ),
    ];
    for (form, step) in forms {
        let steps = format!(
            "{step}      - id: after\n        if: always()\n        run: echo \"always ran\"\n"
        );
        let project = Project::new(&[
            (".github/workflows/ci.yml", &workflow(&steps)),
            ("Dockerfile", &dockerfile),
        ]);
        let (run, took) = project.interrupt_at(": ADD http://");
        assert_eq!(run.code, Some(130), "{form}: {}", run.all());
        assert_eq!(
            run.steps(),
            vec!["build:cancelled", "after:success"],
            "{form}: {}",
            run.all()
        );
        assert!(run.logged("always ran"), "{form}");
        let left = processes_mentioning(&project.dir.path().display().to_string());
        assert!(
            left.is_empty(),
            "{form}: the builder still runs after exec ended: {left:#?}"
        );
        assert!(
            took < std::time::Duration::from_secs(10),
            "{form}: stopping took {took:?}"
        );
    }
}

#[test]
fn a_step_timeout_stops_the_build_and_the_job_goes_on() {
    if !require_program("buildah", "exec builds use a real local builder") {
        return;
    }
    let stall = stalling_server();
    // 0.03 minutes: 1.8 s, enough for the build to reach the stalling ADD.
    let steps = r#"      - id: action
        timeout-minutes: 0.03
        uses: hybrid-runner/build@v1
        with:
          image: 127.0.0.1:9/stall
      - id: shim
        if: always()
        timeout-minutes: 0.03
        run: docker build -t 127.0.0.1:9/stall:v1 .
      - id: after
        if: always()
        run: echo "after the timeouts"
"#;
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(steps)),
        (
            "Dockerfile",
            &format!("FROM scratch\nADD http://{stall}/never /never\n"),
        ),
    ]);
    let started = std::time::Instant::now();
    let run = project.exec(None, &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.steps(),
        vec!["action:failure", "shim:failure", "after:success"],
        "{}",
        run.all()
    );
    assert!(
        run.logged("the build did not finish within"),
        "{}",
        run.all()
    );
    assert!(run.logged("has timed out after"), "{}", run.all());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let left = processes_mentioning(&project.dir.path().display().to_string());
    assert!(left.is_empty(), "the builder still runs: {left:#?}");
}
