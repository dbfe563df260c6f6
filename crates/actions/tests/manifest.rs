#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `action.yml` loading: every action in act's test data, and broken ones.

use std::path::{Path, PathBuf};

use actions::{ActionError, Runs, load_manifest, parse_manifest};

/// act's runner test data, or `None` (with a notice) when it is not on this machine.
fn testdata() -> Option<PathBuf> {
    let base = match std::env::var_os("HYBRID_RUNNER_CONFORMANCE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let dir = base.join("act/testdata/pkg/runner/testdata");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "conformance data not found at {} (set HYBRID_RUNNER_CONFORMANCE)",
        dir.display()
    );
    eprintln!("notice: {} not found; skipping", dir.display());
    None
}

/// Every directory under `dir` holding an action.yml / action.yaml.
fn action_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            action_dirs(&path, out);
        } else if matches!(
            path.file_name().and_then(|n| n.to_str()),
            Some("action.yml" | "action.yaml")
        ) {
            out.push(dir.to_path_buf());
        }
    }
}

#[test]
fn every_act_test_action_loads() {
    let Some(testdata) = testdata() else { return };
    let mut dirs = Vec::new();
    action_dirs(&testdata, &mut dirs);
    assert!(dirs.len() >= 30, "only {} actions found", dirs.len());
    let (mut composite, mut node, mut docker) = (0, 0, 0);
    for dir in &dirs {
        let manifest = load_manifest(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(manifest.file.starts_with(&dir.display().to_string()));
        match manifest.runs {
            Runs::Composite { steps } => {
                composite += 1;
                assert!(steps.iter().all(|s| s.run.is_some() != s.uses.is_some()));
            }
            Runs::Node { using, main, .. } => {
                node += 1;
                assert!(using.starts_with("node") && !main.is_empty());
            }
            Runs::Docker { image, .. } => {
                docker += 1;
                assert!(!image.is_empty());
            }
        }
    }
    println!(
        "act test actions: {} loaded ({composite} composite, {node} node, {docker} docker)",
        dirs.len()
    );
    assert!(composite > 0 && node > 0 && docker > 0);
}

#[test]
fn composite_action_details() {
    let Some(testdata) = testdata() else { return };
    let m = load_manifest(&testdata.join("uses-composite/composite_action")).unwrap();
    assert_eq!(m.name.as_deref(), Some("Test Composite Action"));
    let optional = m
        .inputs
        .iter()
        .find(|i| i.name == "test_input_optional")
        .unwrap();
    assert_eq!(
        optional.default.as_deref(),
        Some("test_input_optional_value")
    );
    assert!(!optional.required);
    let required = m
        .inputs
        .iter()
        .find(|i| i.name == "test_input_required")
        .unwrap();
    assert!(required.required && required.default.is_none());
    let output = m.outputs.iter().find(|o| o.name == "test_output").unwrap();
    assert_eq!(
        output.value.as_deref(),
        Some("${{ steps.output.outputs.test_output }}")
    );
    let Runs::Composite { steps } = &m.runs else {
        panic!("{:?}", m.runs)
    };
    let with_id = steps
        .iter()
        .find(|s| s.id.as_deref() == Some("output"))
        .unwrap();
    assert_eq!(with_id.shell.as_deref(), Some("bash"));
    assert!(with_id.run.as_deref().unwrap().contains("set-output"));
}

#[test]
fn node_and_docker_details() {
    let Some(testdata) = testdata() else { return };
    let m = load_manifest(
        &testdata.join("uses-composite-with-pre-and-post-steps/action-with-pre-and-post"),
    )
    .unwrap();
    let Runs::Node {
        using,
        main,
        pre,
        post,
        ..
    } = &m.runs
    else {
        panic!("{:?}", m.runs)
    };
    assert_eq!((using.as_str(), main.as_str()), ("node16", "main.js"));
    assert_eq!(
        (pre.as_deref(), post.as_deref()),
        (Some("pre.js"), Some("post.js"))
    );

    let m = load_manifest(&testdata.join("actions/docker-url")).unwrap();
    let Runs::Docker {
        image,
        entrypoint,
        args,
        env,
        ..
    } = &m.runs
    else {
        panic!("{:?}", m.runs)
    };
    assert_eq!(image, "docker://node:16-buster-slim");
    assert_eq!(entrypoint.as_deref(), Some("/bin/sh -c"));
    assert_eq!(args, &["env".to_string()]);
    assert_eq!(env, &[("TEST".to_string(), "enabled".to_string())]);
}

#[test]
fn docker_actions_keep_their_pre_and_post_conditions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("action.yml"),
        "runs:\n  using: docker\n  image: Dockerfile\n  pre-entrypoint: pre.sh\n  pre-if: runner.os == 'Linux'\n  post-entrypoint: post.sh\n  post-if: failure()\n",
    )
    .unwrap();
    let m = load_manifest(dir.path()).unwrap();
    let Runs::Docker {
        pre_entrypoint,
        pre_if,
        post_entrypoint,
        post_if,
        ..
    } = &m.runs
    else {
        panic!("{:?}", m.runs)
    };
    assert_eq!(
        (pre_entrypoint.as_deref(), pre_if.as_deref()),
        (Some("pre.sh"), Some("runner.os == 'Linux'"))
    );
    assert_eq!(
        (post_entrypoint.as_deref(), post_if.as_deref()),
        (Some("post.sh"), Some("failure()"))
    );
}

#[test]
fn action_yaml_is_found_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("action.yaml"),
        "runs:\n  using: Node20\n  main: index.js\n",
    )
    .unwrap();
    let m = load_manifest(dir.path()).unwrap();
    assert!(m.file.ends_with("action.yaml"));
    assert!(matches!(&m.runs, Runs::Node { using, .. } if using == "node20"));
}

#[test]
fn missing_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_manifest(dir.path()).unwrap_err();
    assert!(
        matches!(err, ActionError::ManifestNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("no action.yml or action.yaml"));
}

/// The diagnostics of a broken manifest, as `line:col: message` lines.
fn problems(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("action.yml"), text).unwrap();
    match load_manifest(dir.path()) {
        Err(ActionError::Manifest(diagnostics)) => {
            assert!(!diagnostics.is_empty());
            diagnostics
                .iter()
                .map(|d| {
                    assert!(d.file.ends_with("action.yml"));
                    let l = d.location.expect("a location");
                    format!("{}:{}: {}", l.line, l.column, d.message)
                })
                .collect()
        }
        other => panic!("{text:?} loaded as {other:?}"),
    }
}

#[test]
fn broken_manifests_point_at_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("name: x\n", "1:1: missing `runs:`"),
        ("", "1:1: the action metadata file is empty"),
        (
            "name: x\nruns:\n  main: a.js\n",
            "3:3: `runs` needs `using:`",
        ),
        (
            "runs:\n  using: node10\n  main: a.js\n",
            "2:10: unknown `using: node10`",
        ),
        (
            "runs:\n  using: node20\n",
            "2:3: a `node20` action needs `runs.main:`",
        ),
        (
            "runs:\n  using: docker\n",
            "2:3: a docker action needs `runs.image:`",
        ),
        (
            "runs:\n  using: composite\n",
            "2:3: a composite action needs `runs.steps:`",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - run: echo hi\n",
            "4:7: a `run` step in a composite action needs `shell:`",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - name: nothing\n",
            "4:7: a step needs `run:`",
        ),
        (
            "runs:\n  using: composite\n  steps:\n    - uses: a/b@v1\n      timeout-minutes: 3\n",
            "5:7: `timeout-minutes` is not allowed",
        ),
        (
            "runs:\n  using: composite\n  steps: echo\n",
            "3:10: `runs.steps` must be a list",
        ),
        (
            "runs:\n  using: docker\n  image: Dockerfile\n  args: x\n",
            "4:9: `runs.args` must be a list",
        ),
        (
            "inputs:\n  a:\n    required: maybe\nruns:\n  using: node20\n  main: a.js\n",
            "3:15: `required` must be `true` or `false`",
        ),
        (
            "- just\n- a list\n",
            "1:1: the action metadata file must be a mapping",
        ),
        (
            "runs:\n  using: node20\n  main: a.js\nruns: {}\n",
            "4:1: `runs` is already defined",
        ),
        (
            "inputs:\n  a: {}\n  a: {}\nruns:\n  using: node20\n  main: a.js\n",
            "3:3: `a` is already defined in `inputs`",
        ),
    ];
    for (text, expected) in cases {
        let found = problems(text);
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{text:?}: expected {expected:?}, got {found:?}"
        );
    }
}

#[test]
fn all_problems_are_reported_with_file_line_col() {
    let text = "runs:\n  using: composite\n  steps:\n    - run: a\n    - run: b\n      shell: bash\n    - run: c\n";
    let found = problems(text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("4:7:") && found[1].starts_with("7:7:"),
        "{found:?}"
    );
    let err = parse_manifest(text, "dir/action.yml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("dir/action.yml:4:7: "), "{err}");
}

#[test]
fn yaml_syntax_errors_are_manifest_errors() {
    let err = parse_manifest("runs: [\n", "a/action.yml").unwrap_err();
    assert!(
        matches!(&err, ActionError::Manifest(d) if d.0[0].file == "a/action.yml"),
        "{err:?}"
    );
}
