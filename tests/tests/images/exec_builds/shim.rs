//! `docker` / `nerdctl` in `run:` steps through the shim.

use super::*;

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
    assert!(run.logged(&format!(
        "{host}/mirror/shim:v2: copied from {host}/shim:v2"
    )));
    assert!(
        run.logged(&format!("{host}/shim:v2: already pushed")),
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
        run.logged(&format!("{host}/combo:latest: already pushed")),
        "no second push of what the action pushed:\n{}",
        run.all()
    );
    assert!(
        run.logged(&format!("{host}/combo:release: tagged in the registry")),
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
    assert!(run.logged("docker run is not available on this runner"));
    assert!(run.logged("run the command directly in a `run:` step"));
    assert!(run.logged("Client: docker (hybrid-runner"));
    assert!(run.logged("after the failure"));
}

#[test]
fn no_docker_shim_leaves_the_host_path_alone() {
    let steps = "      - run: echo \"shim=${HYBRID_RUNNER_DOCKER_SOCKET:-none}\"\n";
    let project = Project::new(&[(".github/workflows/ci.yml", &workflow(steps))]);
    let with_shim = project.exec(None, &[]);
    assert!(!with_shim.logged("shim=none"), "{}", with_shim.all());
    let without = project.exec(None, &["--no-docker-shim"]);
    assert!(without.logged("shim=none"), "{}", without.all());
}

#[test]
fn a_later_job_tags_an_image_found_in_the_registry_and_a_stranger_is_refused() {
    let Some(registry) = tools() else { return };
    let host = &registry.host;
    let workflow = format!(
        r#"on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: docker build --push -t {host}/early:v1 .
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - id: retag
        run: docker tag {host}/early:v1 {host}/early:v2 && docker push {host}/early:v2
      - id: stranger
        run: docker tag {host}/none:v1 {host}/none:v2
"#
    );
    let project = Project::new(&[
        (".github/workflows/ci.yml", &workflow),
        ("Dockerfile", DOCKERFILE),
        ("hello.txt", "hello\n"),
    ]);
    let run = project.exec(Some(&registry), &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.steps(),
        vec!["__run:success", "retag:success", "stranger:failure"],
        "{}",
        run.all()
    );
    assert_eq!(registry.tags("early"), vec!["v1", "v2"]);
    assert_eq!(
        registry.digest("early", "v2"),
        registry.digest("early", "v1")
    );
    assert!(
        run.logged(&format!(
            "No such image: {host}/none:v1 (it was not built in this job and its registry does not have it"
        )),
        "{}",
        run.all()
    );
}
