#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The three build forms lowered to `BuildRequest`.

use std::path::PathBuf;

use actions::image_build::{
    BuildInputError, BuiltinBuild, DockerCommand, OutputsStyle, TagTemplates, Variant, check_image,
    dual_k8s_dockerfile, dual_tags, from_build_push_inputs, from_dual_inputs,
    is_builtin_build_action, parse_docker_cli,
};

fn inputs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn host() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    }
}

// ---- is_builtin_build_action ----

#[test]
fn builtin_names() {
    assert_eq!(
        is_builtin_build_action("docker/build-push-action@v6"),
        Some(BuiltinBuild::BuildPush)
    );
    assert_eq!(
        is_builtin_build_action(
            "Docker/Build-Push-Action@471d1dc4e07e5cdedd4c2171150001c434f0b7a4"
        ),
        Some(BuiltinBuild::BuildPush)
    );
    assert_eq!(
        is_builtin_build_action("hybrid-runner/build@v1"),
        Some(BuiltinBuild::Dual)
    );
    assert_eq!(is_builtin_build_action("docker/build-push-action"), None);
    assert_eq!(
        is_builtin_build_action("docker/setup-buildx-action@v3"),
        None
    );
    assert_eq!(
        is_builtin_build_action("docker/build-push-action/sub@v6"),
        None
    );
}

// ---- docker/build-push-action ----

#[test]
fn build_push_readme_multiline_tags_and_args() {
    let req = from_build_push_inputs(&inputs(&[
        ("context", "./app"),
        ("push", "true"),
        ("tags", "user/app:latest\nuser/app:1.0.0\n"),
        (
            "build-args",
            "arg1=value1\nURL=https://x.example/?a=b&c=d\n",
        ),
        (
            "labels",
            "org.opencontainers.image.title=App, with comma\nmaintainer=me",
        ),
        ("target", "runtime"),
    ]))
    .unwrap();
    assert_eq!(req.context, PathBuf::from("./app"));
    assert_eq!(req.variants.len(), 1);
    assert_eq!(req.variants[0].variant, Variant::Docker);
    assert_eq!(req.variants[0].dockerfile, "./app/Dockerfile");
    assert_eq!(
        req.variants[0].tags,
        vec!["user/app:latest", "user/app:1.0.0"]
    );
    assert_eq!(
        req.build_args,
        vec![
            ("arg1".to_string(), "value1".to_string()),
            ("URL".to_string(), "https://x.example/?a=b&c=d".to_string())
        ]
    );
    assert_eq!(
        req.labels[0],
        (
            "org.opencontainers.image.title".to_string(),
            "App, with comma".to_string()
        )
    );
    assert_eq!(req.labels.len(), 2);
    assert_eq!(req.target.as_deref(), Some("runtime"));
    assert!(req.push);
    assert!(req.cache);
    assert_eq!(req.outputs_for, OutputsStyle::BuildPush);
}

#[test]
fn build_push_csv_tags_quotes_and_defaults() {
    let req = from_build_push_inputs(&inputs(&[
        (
            "tags",
            "ghcr.io/o/app:1, ghcr.io/o/app ,\"ghcr.io/o/app:2\"",
        ),
        ("file", "docker/Dockerfile.prod"),
        ("no-cache", "True"),
        ("platforms", host()),
        ("builder", "builder-123"),
        ("cache-from", "type=registry,ref=ghcr.io/o/app:cache"),
        ("load", "false"),
        ("outputs", ""),
    ]))
    .unwrap();
    assert_eq!(req.context, PathBuf::from("."));
    assert_eq!(req.variants[0].dockerfile, "docker/Dockerfile.prod");
    assert_eq!(
        req.variants[0].tags,
        vec!["ghcr.io/o/app:1", "ghcr.io/o/app:latest", "ghcr.io/o/app:2"]
    );
    assert!(!req.push);
    assert!(!req.cache);
    assert!(req.build_args.is_empty());
}

#[test]
fn build_push_refusals_name_input_and_remedy() {
    let cases: &[(&str, &str, &str)] = &[
        ("platforms", "linux/amd64,linux/arm64", "own platform"),
        ("load", "true", "push: true"),
        ("outputs", "type=local,dest=out", "push: true"),
        ("secrets", "GIT_AUTH_TOKEN=abc", "build-args"),
        ("ssh", "default", "run:"),
        ("cache-from", "type=gha", "type=registry"),
        (
            "cache-to",
            "type=local,dest=/tmp/cache",
            "remove `cache-to`",
        ),
        ("frobnicate", "1", "remove it"),
    ];
    for (name, value, remedy) in cases {
        let err = from_build_push_inputs(&inputs(&[("tags", "a/b:1"), (name, value)])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{name}`")), "{msg}");
        assert!(msg.contains(remedy), "{name}: {msg}");
    }
}

#[test]
fn build_push_bad_values() {
    let err = from_build_push_inputs(&inputs(&[("push", "yes")])).unwrap_err();
    assert!(matches!(err, BuildInputError::InvalidValue { ref input, .. } if input == "push"));
    assert!(err.to_string().contains("`true` or `false`"));
    let err = from_build_push_inputs(&inputs(&[("build-args", "NOVALUE")])).unwrap_err();
    assert!(err.to_string().contains("NAME=value"), "{err}");
}

// ---- hybrid-runner/build ----

#[test]
fn dual_with_k8s_dockerfile_builds_both() {
    let req = from_dual_inputs(
        &inputs(&[
            ("image", "registry.example.com/team/app"),
            ("build-args", "A=1=2"),
        ]),
        SHA,
        true,
        &TagTemplates::default(),
    )
    .unwrap();
    assert_eq!(req.outputs_for, OutputsStyle::Dual);
    assert!(req.push && req.cache);
    assert_eq!(req.build_args, vec![("A".to_string(), "1=2".to_string())]);
    let [docker, k8s] = req.variants.as_slice() else {
        panic!("{:?}", req.variants)
    };
    assert_eq!(docker.variant, Variant::Docker);
    assert_eq!(docker.dockerfile, "Dockerfile");
    assert_eq!(
        docker.tags,
        vec![
            "registry.example.com/team/app:latest".to_string(),
            "registry.example.com/team/app:docker-latest".to_string(),
            format!("registry.example.com/team/app:docker-{SHA}"),
        ]
    );
    assert_eq!(k8s.variant, Variant::K8s);
    assert_eq!(k8s.dockerfile, "Dockerfile.k8s");
    assert_eq!(
        k8s.tags,
        vec![
            "registry.example.com/team/app:k8s-latest".to_string(),
            format!("registry.example.com/team/app:k8s-{SHA}")
        ]
    );
}

#[test]
fn dual_without_k8s_dockerfile_builds_docker_only() {
    let i = inputs(&[
        ("image", "r.example/app"),
        ("context", "svc"),
        ("dockerfile", "Dockerfile.dev"),
    ]);
    assert_eq!(dual_k8s_dockerfile(&i), "svc/Dockerfile.k8s");
    let req = from_dual_inputs(&i, SHA, false, &TagTemplates::default()).unwrap();
    assert_eq!(req.context, PathBuf::from("svc"));
    assert_eq!(req.variants.len(), 1);
    assert_eq!(req.variants[0].dockerfile, "svc/Dockerfile.dev");

    let err = from_dual_inputs(
        &inputs(&[("image", "r.example/app"), ("variants", "k8s")]),
        SHA,
        false,
        &TagTemplates::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("Dockerfile.k8s") && msg.contains("variants: docker"),
        "{msg}"
    );
}

#[test]
fn dual_skip_unchanged_is_off_by_default_and_takes_booleans() {
    let t = TagTemplates::default();
    let req = from_dual_inputs(&inputs(&[("image", "r.example/app")]), SHA, true, &t).unwrap();
    assert!(!req.skip_unchanged);
    for (value, expected) in [("true", true), ("True", true), ("false", false)] {
        let i = inputs(&[("image", "r.example/app"), ("skip-unchanged", value)]);
        let req = from_dual_inputs(&i, SHA, true, &t).unwrap();
        assert_eq!(req.skip_unchanged, expected, "{value}");
    }
    let err = from_dual_inputs(
        &inputs(&[("image", "r.example/app"), ("skip-unchanged", "maybe")]),
        SHA,
        true,
        &t,
    )
    .unwrap_err();
    assert!(err.to_string().contains("skip-unchanged"), "{err}");
    // The other build forms have no such input and never skip.
    let push = from_build_push_inputs(&inputs(&[("tags", "r.example/app:v1")])).unwrap();
    assert!(!push.skip_unchanged);
}

#[test]
fn dual_variant_subset_explicit_file_short_sha_extra_tags() {
    let templates = TagTemplates {
        sha_length: Some(7),
        ..TagTemplates::default()
    };
    let req = from_dual_inputs(
        &inputs(&[
            ("image", "r.example/app"),
            ("variants", "k8s"),
            ("k8s-dockerfile", "deploy/Dockerfile.kube"),
            ("tags", "v1.2, {sha}-rc"),
            ("push", "false"),
            ("cache", "false"),
        ]),
        SHA,
        false,
        &templates,
    )
    .unwrap();
    assert!(!req.push && !req.cache);
    let [k8s] = req.variants.as_slice() else {
        panic!()
    };
    assert_eq!(k8s.variant, Variant::K8s);
    assert_eq!(k8s.dockerfile, "deploy/Dockerfile.kube");
    assert_eq!(
        k8s.tags,
        vec![
            "r.example/app:k8s-latest",
            "r.example/app:k8s-0123456",
            "r.example/app:k8s-v1.2",
            "r.example/app:k8s-0123456-rc"
        ]
    );
}

#[test]
fn custom_templates() {
    let templates = TagTemplates {
        docker: vec!["stable".into(), "sha-{sha}".into()],
        k8s: vec!["kube-{sha}".into()],
        sha_length: Some(12),
    };
    assert_eq!(
        dual_tags("r/app", SHA, Variant::Docker, &templates),
        vec!["r/app:stable", "r/app:sha-0123456789ab"]
    );
    assert_eq!(
        dual_tags("r/app", SHA, Variant::K8s, &templates),
        vec!["r/app:kube-0123456789ab"]
    );
    let bad = TagTemplates {
        docker: vec!["-{sha}".into()],
        ..TagTemplates::default()
    };
    assert!(from_dual_inputs(&inputs(&[("image", "r/app")]), SHA, false, &bad).is_err());
}

#[test]
fn dual_errors() {
    let t = TagTemplates::default();
    let err = from_dual_inputs(&inputs(&[]), SHA, true, &t).unwrap_err();
    assert!(matches!(err, BuildInputError::Missing { ref input, .. } if input == "image"));
    for image in ["r/app:1", "r/App", "r/app@sha256:00"] {
        let err = from_dual_inputs(&inputs(&[("image", image)]), SHA, true, &t).unwrap_err();
        assert!(err.to_string().contains("without a tag"), "{err}");
    }
    assert!(from_dual_inputs(&inputs(&[("image", "localhost:5000/app")]), SHA, true, &t).is_ok());
    assert!(
        from_dual_inputs(
            &inputs(&[("image", "r/app"), ("variants", "arm")]),
            SHA,
            true,
            &t
        )
        .is_err()
    );
    assert!(
        from_dual_inputs(
            &inputs(&[("image", "r/app"), ("tags", "r/app:v1")]),
            SHA,
            true,
            &t
        )
        .is_err()
    );
    assert!(
        from_dual_inputs(
            &inputs(&[("image", "r/app"), ("platforms", "x")]),
            SHA,
            true,
            &t
        )
        .is_err()
    );
    assert!(from_dual_inputs(&inputs(&[("image", "r/app")]), "", true, &t).is_err());
}

// ---- docker CLI shim ----

fn build_of(line: &str) -> actions::image_build::BuildRequest {
    match parse_docker_cli(&argv(line)).unwrap() {
        DockerCommand::Build(req) => req,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn cli_build_full() {
    let req =
        build_of("build -t a:1 -t a:2 -f Dockerfile.k8s --build-arg X=1 --label l=v --target t .");
    assert_eq!(req.context, PathBuf::from("."));
    assert_eq!(req.variants[0].variant, Variant::K8s);
    assert_eq!(req.variants[0].dockerfile, "Dockerfile.k8s");
    assert_eq!(req.variants[0].tags, vec!["a:1", "a:2"]);
    assert_eq!(req.build_args, vec![("X".to_string(), "1".to_string())]);
    assert_eq!(req.labels, vec![("l".to_string(), "v".to_string())]);
    assert_eq!(req.target.as_deref(), Some("t"));
    assert!(!req.push);
    assert_eq!(req.outputs_for, OutputsStyle::Shim);
}

#[test]
fn cli_buildx_push_and_inline_forms() {
    let req = build_of("buildx build --push -t x .");
    assert!(req.push);
    assert_eq!(req.variants[0].tags, vec!["x:latest"]);
    assert_eq!(req.variants[0].variant, Variant::Docker);

    let req =
        build_of("--debug build --tag=r/y:2 --file=sub/Dockerfile --no-cache --progress plain sub");
    assert_eq!(req.variants[0].tags, vec!["r/y:2"]);
    assert_eq!(req.variants[0].dockerfile, "sub/Dockerfile");
    assert!(!req.cache);

    // nerdctl passes the same argv after its own name.
    let req = build_of("build -t r/z:1 ctx");
    assert_eq!(req.variants[0].dockerfile, "ctx/Dockerfile");
}

#[test]
fn cli_push_tag_login_version() {
    assert_eq!(
        parse_docker_cli(&argv("push r/a:1")).unwrap(),
        DockerCommand::Push {
            image: "r/a:1".into()
        }
    );
    assert_eq!(
        parse_docker_cli(&argv("image push r/a")).unwrap(),
        DockerCommand::Push {
            image: "r/a:latest".into()
        }
    );
    assert_eq!(
        parse_docker_cli(&argv("tag a:1 reg.example:5000/a")).unwrap(),
        DockerCommand::Tag {
            source: "a:1".into(),
            target: "reg.example:5000/a:latest".into()
        }
    );
    assert_eq!(
        parse_docker_cli(&argv("login -u me --password-stdin ghcr.io")).unwrap(),
        DockerCommand::Login {
            registry: "ghcr.io".into()
        }
    );
    assert_eq!(
        parse_docker_cli(&argv("login")).unwrap(),
        DockerCommand::Login {
            registry: "docker.io".into()
        }
    );
    assert_eq!(
        parse_docker_cli(&argv("--version")).unwrap(),
        DockerCommand::Version
    );
    assert!(
        parse_docker_cli(&argv("push -a r/a"))
            .unwrap_err()
            .to_string()
            .contains("docker push name:tag")
    );
    assert!(parse_docker_cli(&argv("tag a")).is_err());
}

#[test]
fn cli_unsupported_says_what_instead() {
    for (line, hint) in [
        ("run --rm alpine echo hi", "run:` step"),
        ("compose up -d", "services:"),
        ("pull alpine", "digest"),
        ("buildx create --use", "docker build"),
        ("ps", "docker/build-push-action"),
    ] {
        let DockerCommand::Unsupported { message } = parse_docker_cli(&argv(line)).unwrap() else {
            panic!("{line} should be unsupported")
        };
        let sub = line.split(' ').next().unwrap();
        assert!(
            message.contains(&format!("docker {sub}")) && message.contains(hint),
            "{line}: {message}"
        );
    }
}

#[test]
fn cli_build_errors() {
    for (line, remedy) in [
        ("build -t a:1", "docker build -t name:tag ."),
        ("build -t a:1 . other", "exactly one context"),
        ("build -", "stdin"),
        ("build -f - .", "-f path/Dockerfile"),
        ("build --build-arg TOKEN .", "TOKEN=\"$TOKEN\""),
        ("build --secret id=x .", "--build-arg"),
        ("build -o out .", "--push"),
        (
            "build --platform linux/s390x,linux/ppc64le .",
            "drop `--platform`",
        ),
        ("build --frob .", "-t, -f"),
        ("build -t", "needs a value"),
        ("", "docker build"),
    ] {
        let err = parse_docker_cli(&argv(line)).unwrap_err();
        assert!(matches!(err, BuildInputError::DockerCli { .. }));
        assert!(err.to_string().contains(remedy), "{line}: {err}");
    }
}

#[test]
fn build_push_default_context_forms() {
    let ctx = |v: &str| from_build_push_inputs(&inputs(&[("context", v)])).map(|r| r.context);
    assert_eq!(ctx("{{defaultContext}}").unwrap(), PathBuf::from("."));
    assert_eq!(
        ctx("{{defaultContext}}:docker").unwrap(),
        PathBuf::from("docker")
    );
    let req = from_build_push_inputs(&inputs(&[("context", "{{defaultContext}}:docker")])).unwrap();
    assert_eq!(req.variants[0].dockerfile, "docker/Dockerfile");
    let err = ctx("https://github.com/o/r.git#main").unwrap_err();
    assert!(
        err.to_string().contains("check the repository out"),
        "{err}"
    );
}

#[test]
fn dual_tag_template_inputs_replace_the_runners_templates_per_variant() {
    let req = from_dual_inputs(
        &inputs(&[
            ("image", "r.example/app"),
            ("k8s-tag-templates", "kube-{sha}\nkube-stable"),
        ]),
        SHA,
        true,
        &TagTemplates::default(),
    )
    .unwrap();
    let [docker, k8s] = req.variants.as_slice() else {
        panic!("{:?}", req.variants)
    };
    assert_eq!(
        docker.tags.len(),
        3,
        "the docker variant keeps the defaults"
    );
    assert_eq!(
        k8s.tags,
        vec![
            format!("r.example/app:kube-{SHA}"),
            "r.example/app:kube-stable".to_string()
        ]
    );
    let err = from_dual_inputs(
        &inputs(&[
            ("image", "r.example/app"),
            ("docker-tag-templates", "no/slash"),
        ]),
        SHA,
        false,
        &TagTemplates::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tag template"), "{err}");
}

#[test]
fn image_names_follow_the_docker_reference_grammar() {
    for good in [
        "app",
        "r.example/app",
        "localhost/hello",
        "localhost:5000/app",
        "127.0.0.1:5000/team/app",
        "registry.example.com/my_org/app__v2",
        "r.example/a-b--c/d.e",
    ] {
        assert!(check_image(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "r/app;rm -rf /",
        "r/a\nb",
        "r/App",
        "r/app:1",
        "r/app@sha256:00",
        "r.example/-app",
        "r.example/app-",
        "r.example//app",
        "r.example:port/app",
        "r.example/a b",
        "r.example/a$(id)",
    ] {
        assert!(check_image(bad).is_err(), "{bad:?}");
    }
}
