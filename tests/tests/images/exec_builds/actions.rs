//! The built-in build actions: `hybrid-runner/build` and `docker/build-push-action`.

use super::*;

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
    let expected = harness::registry::five_dual_tags(&sha);
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
        run.logged(&format!("docker={docker} k8s={host}/app@{k8s}")),
        "a later step reads the outputs:\n{}",
        run.all()
    );
    assert!(run.logged("[docker] "), "builder lines carry the variant");
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
    assert!(run.logged("cleanup after failure"));
    assert!(registry.tags("broken").is_empty());
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
        run.logged(
            "docker/build-push-action: input `platforms` is not supported: this runner builds for its own platform only"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.logged("hybrid-runner/build: input `image` has an invalid value"),
        "{}",
        run.all()
    );
    assert!(!run.logged("kaniko"), "no builder was made:\n{}", run.all());
    assert!(
        !run.logged("offline"),
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
