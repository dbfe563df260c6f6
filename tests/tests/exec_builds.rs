#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Image builds inside `hybrid-runner exec`, end to end: the real binary runs workflows in a
//! fresh git repository with `--builder buildah` (vfs storage in a private folder, chroot
//! isolation) against a real `docker-registry` on loopback. The three build forms: the
//! runner's own `hybrid-runner/build`, `docker/build-push-action`, and `docker` in `run:`
//! steps through the shim, and the two together (the shim tags what the action pushed).
//! Skipped with a notice when buildah or docker-registry is missing
//! outside CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use harness::registry::{Registry, require_program};
use serde_json::Value;

/// The `hybrid-runner` binary, built (or found fresh) once per test process. Building the
/// workspace's binaries with the workspace's features keeps `cargo test --workspace` from
/// building the dependencies a second time.
fn runner_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--workspace", "--bins", "--quiet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // The variables `cargo test` sets for this test (package name, manifest folder …)
        // would look like a changed environment to build scripts and rebuild everything.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if (name.starts_with("CARGO_") || name == "OUT_DIR")
                && !matches!(name.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
            {
                cargo.env_remove(name);
            }
        }
        let out = cargo.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "building hybrid-runner failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // This test runs from <target>/debug/deps/; the binary is in <target>/debug/.
        let exe = std::env::current_exe().unwrap();
        let binary = exe
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("hybrid-runner");
        assert!(binary.is_file(), "no binary at {}", binary.display());
        binary
    })
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository with a workflow and build contexts, and a private buildah storage.
struct Project {
    dir: tempfile::TempDir,
    storage: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.name", "tester"]);
        git(dir.path(), &["config", "user.email", "tester@example.com"]);
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "init"]);
        let storage = tempfile::tempdir().unwrap();
        std::fs::write(
            storage.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
                storage.path().display()
            ),
        )
        .unwrap();
        // The runner's (and buildah's) Docker config: empty, not the host's.
        std::fs::create_dir_all(storage.path().join("docker")).unwrap();
        std::fs::write(
            storage.path().join("docker/config.json"),
            "{\"auths\":{}}\n",
        )
        .unwrap();
        Project { dir, storage }
    }

    fn sha(&self) -> String {
        git(self.dir.path(), &["rev-parse", "HEAD"])
    }

    /// `exec --json --builder buildah --insecure-registry HOST ARGS`.
    fn exec(&self, registry: Option<&Registry>, args: &[&str]) -> Run {
        self.exec_as("buildah", registry, args)
    }

    /// `exec --json --builder BUILDER …`, with no Kubernetes configuration around.
    fn exec_as(&self, builder: &str, registry: Option<&Registry>, args: &[&str]) -> Run {
        let mut command = Command::new(runner_binary());
        command
            .arg("exec")
            .arg("--json")
            .args(["--builder", builder])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", self.dir.path().join(".no-cache"))
            .env("STORAGE_DRIVER", "vfs")
            .env("BUILDAH_ISOLATION", "chroot")
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.storage.path().join("storage.conf"),
            )
            .env("DOCKER_CONFIG", self.storage.path().join("docker"));
        if let Some(registry) = registry {
            command.args(["--insecure-registry", &registry.host]);
        }
        for var in [
            "GITHUB_ACTIONS",
            "GITHUB_WORKSPACE",
            "ACTIONS_STEP_DEBUG",
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
        ] {
            command.env_remove(var);
        }
        command.env("HOME", self.storage.path());
        let out = command.output().expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// `id:outcome` of every finished step.
    fn steps(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "step_finished")
            .map(|e| {
                format!(
                    "{}:{}",
                    e["step"]["id"].as_str().unwrap(),
                    e["outcome"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// The outputs of step `id`.
    fn outputs(&self, id: &str) -> Vec<(String, String)> {
        let events = self.events();
        let finished = events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"]["id"] == id)
            .unwrap_or_else(|| panic!("step {id} did not finish:\n{}", self.all()));
        finished["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_string(),
                    pair[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn output(&self, id: &str, name: &str) -> String {
        self.outputs(id)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("step {id} has no output {name}:\n{}", self.all()))
    }

    /// Every log line (any kind) and annotation message.
    fn lines(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| match e["event"].as_str()? {
                "log" => Some(e["line"].as_str()?.to_string()),
                "annotation" => Some(e["annotation"]["message"].as_str()?.to_string()),
                _ => None,
            })
            .collect()
    }

    fn printed(&self, text: &str) -> bool {
        self.lines().iter().any(|l| l.contains(text))
    }
}

/// The registry and buildah, or `None` (after a notice) outside CI when one is missing.
fn tools() -> Option<Registry> {
    if !require_program("buildah", "exec builds use a real local builder") {
        return None;
    }
    Registry::start()
}

const DOCKERFILE: &str = "FROM scratch\nCOPY hello.txt /hello.txt\n";
const K8S_DOCKERFILE: &str = "FROM scratch\nCOPY k8s.txt /k8s.txt\n";

fn workflow(steps: &str) -> String {
    format!("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n{steps}")
}

#[test]
fn dual_build_pushes_five_tags_whose_digests_are_the_step_outputs() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let steps = format!(
        r#"      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/app
      - run: echo "docker=${{{{ steps.img.outputs.docker-digest }}}} k8s=${{{{ steps.img.outputs.k8s-image }}}}"
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(&steps)),
        ("Dockerfile", DOCKERFILE),
        ("Dockerfile.k8s", K8S_DOCKERFILE),
        ("hello.txt", "hello\n"),
        ("k8s.txt", "k8s\n"),
    ]);
    let run = project.exec(Some(&registry), &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let sha = project.sha();
    let mut expected = vec![
        "latest".to_string(),
        "docker-latest".to_string(),
        format!("docker-{sha}"),
        "k8s-latest".to_string(),
        format!("k8s-{sha}"),
    ];
    expected.sort();
    assert_eq!(registry.tags("app"), expected);
    let docker = run.output("img", "docker-digest");
    let k8s = run.output("img", "k8s-digest");
    assert!(docker.starts_with("sha256:"), "{docker}");
    assert_ne!(docker, k8s, "two Dockerfiles, two images");
    for tag in ["latest", "docker-latest", &format!("docker-{sha}")] {
        assert_eq!(
            registry.digest("app", tag).as_deref(),
            Some(docker.as_str())
        );
    }
    for tag in ["k8s-latest", &format!("k8s-{sha}")] {
        assert_eq!(registry.digest("app", tag).as_deref(), Some(k8s.as_str()));
    }
    assert_eq!(
        run.output("img", "docker-image"),
        format!("{host}/app@{docker}")
    );
    assert_eq!(run.output("img", "digest"), docker);
    let tags = run.output("img", "k8s-tags");
    assert_eq!(
        tags,
        format!("{host}/app:k8s-latest,{host}/app:k8s-{sha}"),
        "comma separated, in template order"
    );
    assert!(
        run.printed(&format!("docker={docker} k8s={host}/app@{k8s}")),
        "a later step reads the outputs:\n{}",
        run.all()
    );
    assert!(run.printed("[docker] "), "builder lines carry the variant");
}

#[test]
fn docker_build_push_and_tag_in_a_run_step_reach_the_registry() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let steps = format!(
        r#"      - run: docker build -t {host}/shim:v1 . && docker push {host}/shim:v1
      - run: |
          docker tag {host}/shim:v1 {host}/shim:v2
          docker push {host}/shim:v2
          docker push {host}/shim:v2
          docker tag {host}/shim:v2 {host}/mirror/shim:v2
          docker push {host}/mirror/shim:v2
      - run: nerdctl build --push -t {host}/shim:k8s -f Dockerfile.k8s .
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(&steps)),
        ("Dockerfile", DOCKERFILE),
        ("Dockerfile.k8s", K8S_DOCKERFILE),
        ("hello.txt", "hello\n"),
        ("k8s.txt", "k8s\n"),
    ]);
    let run = project.exec(Some(&registry), &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(registry.tags("shim"), vec!["k8s", "v1", "v2"]);
    let v1 = registry.digest("shim", "v1").unwrap();
    assert_eq!(registry.digest("shim", "v2"), Some(v1.clone()));
    assert_ne!(registry.digest("shim", "k8s"), Some(v1.clone()));
    assert_eq!(
        registry.digest("mirror/shim", "v2"),
        Some(v1.clone()),
        "copied to another repository with the same digest"
    );
    assert!(run.printed(&format!(
        "{host}/mirror/shim:v2: copied from {host}/shim:v2"
    )));
    assert!(
        run.printed(&format!("{host}/shim:v2: already pushed")),
        "the second push of v2 does no work:\n{}",
        run.all()
    );
}

#[test]
fn the_shim_tags_and_pushes_what_the_build_action_pushed() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let steps = format!(
        r#"      - id: img
        uses: hybrid-runner/build@v1
        with:
          image: {host}/combo
          variants: docker
      - run: |
          docker push {host}/combo:latest
          docker tag {host}/combo:docker-latest {host}/combo:release
          docker push {host}/combo:release
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(&steps)),
        ("Dockerfile", DOCKERFILE),
        ("hello.txt", "hello\n"),
    ]);
    let run = project.exec(Some(&registry), &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let digest = run.output("img", "docker-digest");
    assert_eq!(registry.digest("combo", "release"), Some(digest));
    assert!(
        run.printed(&format!("{host}/combo:latest: already pushed")),
        "no second push of what the action pushed:\n{}",
        run.all()
    );
    assert!(
        run.printed(&format!("{host}/combo:release: tagged in the registry")),
        "a manifest copy, not a rebuild:\n{}",
        run.all()
    );
}

#[test]
fn docker_run_fails_with_what_to_use_instead() {
    let steps = r#"      - run: docker version
      - run: docker run --rm alpine echo hi
      - if: failure()
        run: echo "after the failure"
"#;
    let project = Project::new(&[(".github/workflows/ci.yml", &workflow(steps))]);
    // No build happens: no builder and no registry are needed.
    let run = project.exec(None, &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.steps(),
        vec!["__run:success", "__run_2:failure", "__run_3:success"],
        "{}",
        run.all()
    );
    assert!(run.printed("docker run is not available on this runner"));
    assert!(run.printed("run the command directly in a `run:` step"));
    assert!(run.printed("Client: docker (hybrid-runner"));
    assert!(run.printed("after the failure"));
}

#[test]
fn build_inputs_are_checked_before_any_builder_and_nothing_is_fetched() {
    // `--builder kaniko` with no cluster configuration: a run that needs no builder (or
    // stops at the inputs) must not notice. `--offline` with an empty action cache: the
    // build actions are the runner's own, never fetched.
    let steps = r#"      - run: echo "no build here"
      - id: multi
        uses: docker/build-push-action@v6
        with:
          platforms: linux/amd64,linux/arm64
      - id: dual
        if: always()
        uses: hybrid-runner/build@v1
        with:
          image: Registry.Example.com/App
"#;
    let project = Project::new(&[(".github/workflows/ci.yml", &workflow(steps))]);
    let run = project.exec_as("kaniko", None, &["--offline"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.steps(),
        vec!["__run:success", "multi:failure", "dual:failure"],
        "{}",
        run.all()
    );
    assert!(
        run.printed(
            "docker/build-push-action: input `platforms` is not supported: this runner builds for its own platform only"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.printed("hybrid-runner/build: input `image` has an invalid value"),
        "{}",
        run.all()
    );
    assert!(
        !run.printed("kaniko"),
        "no builder was made:\n{}",
        run.all()
    );
    assert!(
        !run.printed("offline"),
        "nothing was fetched:\n{}",
        run.all()
    );

    let without_builds = Project::new(&[(
        ".github/workflows/ci.yml",
        &workflow("      - run: echo fine\n"),
    )]);
    let run = without_builds.exec_as("kaniko", None, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn no_docker_shim_leaves_the_host_path_alone() {
    let steps = "      - run: echo \"shim=${HYBRID_RUNNER_DOCKER_SOCKET:-none}\"\n";
    let project = Project::new(&[(".github/workflows/ci.yml", &workflow(steps))]);
    let with_shim = project.exec(None, &[]);
    assert!(!with_shim.printed("shim=none"), "{}", with_shim.all());
    let without = project.exec(None, &["--no-docker-shim"]);
    assert!(without.printed("shim=none"), "{}", without.all());
}

#[test]
fn build_push_action_pushes_its_tags_and_reports_digest_and_metadata() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let steps = format!(
        r#"      - id: bp
        uses: docker/build-push-action@v6
        with:
          context: .
          push: true
          tags: |
            {host}/bp:v1
            {host}/bp:latest
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(&steps)),
        ("Dockerfile", DOCKERFILE),
        ("hello.txt", "hello\n"),
    ]);
    let run = project.exec(Some(&registry), &["--offline"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(registry.tags("bp"), vec!["latest", "v1"]);
    let digest = run.output("bp", "digest");
    assert_eq!(registry.digest("bp", "v1"), Some(digest.clone()));
    assert_eq!(registry.digest("bp", "latest"), Some(digest.clone()));
    let imageid = run.output("bp", "imageid");
    assert!(
        imageid.starts_with("sha256:") && imageid != digest,
        "{imageid}"
    );
    let metadata: Value = serde_json::from_str(&run.output("bp", "metadata")).unwrap();
    assert_eq!(metadata["containerimage.digest"], digest.as_str());
    assert_eq!(metadata["containerimage.config.digest"], imageid.as_str());
}

#[test]
fn a_failed_build_fails_the_step_and_failure_steps_still_run() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let steps = format!(
        r#"      - id: broken
        uses: hybrid-runner/build@v1
        with:
          image: {host}/broken
          variants: docker
      - id: never
        run: echo "not reached"
      - id: after
        if: failure()
        run: echo "cleanup after ${{{{ steps.broken.outcome }}}}"
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow(&steps)),
        (
            "Dockerfile",
            "FROM scratch\nCOPY missing.txt /missing.txt\n",
        ),
    ]);
    let run = project.exec(Some(&registry), &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.steps(),
        vec!["broken:failure", "never:skipped", "after:success"],
        "{}",
        run.all()
    );
    assert!(run.printed("cleanup after failure"));
    assert!(registry.tags("broken").is_empty());
}

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
    assert!(
        run.printed("***"),
        "the value was shown, masked:\n{}",
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
    fn interrupt_at(&self, marker: &str) -> (Run, std::time::Duration) {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        use std::time::{Duration, Instant};

        let mut command = Command::new(runner_binary());
        command
            .args(["exec", "--json", "--builder", "buildah"])
            .current_dir(self.dir.path())
            .env("STORAGE_DRIVER", "vfs")
            .env("BUILDAH_ISOLATION", "chroot")
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.storage.path().join("storage.conf"),
            )
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
            Run {
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
        assert!(run.printed("always ran"), "{form}");
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
