#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ClusterRole of `hybrid-runner generate-manifests` is enough, run for real: the fake
//! API server grants exactly its rules (everything else answers 403), and Kaniko builds
//! in every context mode (ConfigMap, PVC with the loader pod, stdin over attach, with a
//! registry Secret), `check`, `status` and `cleanup` all succeed under it. Without one of
//! its rules, `check` reports the missing permission and a build that needs it fails.

use harness::fake_kube::{DenyRule, FakeKubeOptions};
use harness::kaniko::{DOCKERFILE, active_namespaces, build, rig, run_cli};
use hr_image::kaniko::{ContextMode, KanikoConfig, Variant};
use hybrid_runner::deploy::{DeploySettings, deploy_manifests};
use tokio_util::sync::CancellationToken;

/// The rendered ClusterRole's rules as the fake's allow-list, plus what every
/// authenticated user may do (ask about its own permissions).
fn granted(settings: &DeploySettings) -> Vec<DenyRule> {
    let m = deploy_manifests(settings).unwrap();
    let mut rules = vec![DenyRule::new("create", "selfsubjectaccessreviews")];
    for rule in m.cluster_role.rules.unwrap() {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                rules.push(DenyRule::new(verb, resource));
            }
        }
    }
    rules
}

fn settings() -> DeploySettings {
    let mut settings = DeploySettings::new("https://gitea.example.com", "hybrid-runner:test");
    settings.registry_secret = Some("regcred".into());
    settings
}

#[test]
fn builds_and_commands_succeed_with_only_the_rendered_cluster_role() {
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(granted(&settings()));
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context(
        "rbac",
        &[
            ("Dockerfile", DOCKERFILE),
            ("hello.txt", "least privilege\n"),
        ],
    );
    let docker_config = format!(
        r#"{{"auths":{{"{}":{{"auth":"dTpw"}}}}}}"#,
        rig.registry.host
    );
    for mode in [ContextMode::ConfigMap, ContextMode::Pvc, ContextMode::Stdin] {
        let config = KanikoConfig {
            context_mode: mode,
            registry_secret: Some(docker_config.clone().into_bytes()),
            ..rig.config()
        };
        let image = rig.image(&format!("rbac-{}", mode.as_str()));
        let job = rig.job(&ctx, &image, &[Variant::Docker]);
        let (result, lines) = build(&rig, config, &job, CancellationToken::new());
        let log: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        let (outcome, _) = result.unwrap_or_else(|e| panic!("{}: {e}\n{log:#?}", mode.as_str()));
        assert!(outcome.images[0].digest.starts_with("sha256:"));
        assert!(
            !log.iter().any(|l| l.contains("forbidden")),
            "{}: {log:#?}",
            mode.as_str()
        );
    }
    rig.assert_no_namespace_left();

    let (code, stdout, stderr) = run_cli(&rig, &["check"]);
    assert!(!stdout.contains("FAIL"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ok   permission pods/attach: get, create"),
        "{stdout}"
    );
    assert!(stdout.contains("ok   namespace round trip"), "{stdout}");
    // A ClusterRole without `kubernetes` labels grants no pods/exec: the pod checks are
    // skipped, not failed.
    assert!(
        stdout.contains("skip pod round trip: the runner may not exec into pods"),
        "{stdout}"
    );
    // Only the registry probe (no image given) is skipped; nothing failed.
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for args in [&["status"][..], &["cleanup", "--all"]] {
        let (code, stdout, stderr) = run_cli(&rig, args);
        assert_eq!(code, 0, "{args:?}: {stdout}\n{stderr}");
    }
    assert!(active_namespaces(&rig).is_empty());
}

#[test]
fn without_one_rule_check_names_the_missing_permission() {
    let rules: Vec<DenyRule> = granted(&settings())
        .into_iter()
        .filter(|r| r.resource != "pods/log")
        .collect();
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(rules);
    let Some(rig) = rig(options) else {
        return;
    };
    let (code, stdout, _) = run_cli(&rig, &["check"]);
    assert_eq!(code, 1, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("permission pods/log"))
        .unwrap();
    assert!(line.starts_with("FAIL"), "{stdout}");
    assert!(line.contains("generate-manifests"), "{line}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .all(|l| l.contains("pods/log")),
        "{stdout}"
    );
}

#[test]
fn a_stdin_build_without_the_attach_rule_is_refused() {
    let rules: Vec<DenyRule> = granted(&settings())
        .into_iter()
        .filter(|r| r.resource != "pods/attach")
        .collect();
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(rules);
    let Some(rig) = rig(options) else {
        return;
    };
    let ctx = rig.context(
        "no-attach",
        &[("Dockerfile", DOCKERFILE), ("hello.txt", "x\n")],
    );
    let config = KanikoConfig {
        context_mode: ContextMode::Stdin,
        ..rig.config()
    };
    let job = rig.job(&ctx, &rig.image("no-attach"), &[Variant::Docker]);
    let (result, _) = build(&rig, config, &job, CancellationToken::new());
    let error = match result {
        Ok(_) => panic!("a stdin build without pods/attach succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("pods/attach") && error.contains("403"),
        "{error}"
    );
    rig.assert_no_namespace_left();
}

/// `check --deploy-namespaces` asks, per namespace, for what the Roles of
/// `generate-manifests --deploy-namespaces` grant: all allowed with them, each missing one
/// named with the flag that renders it without them.
#[test]
fn check_asks_each_deploy_namespace_for_the_roles_rules() {
    let mut with_roles = settings();
    with_roles.deploy_namespaces = vec!["shop".into()];
    let m = deploy_manifests(&with_roles).unwrap();
    let mut rules = granted(&with_roles);
    for (role, _) in &m.deploy_roles {
        for rule in role.rules.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    rules.push(DenyRule::new(verb, resource));
                }
            }
        }
    }
    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(rules);
    let Some(rig) = rig(options) else {
        return;
    };
    let (code, stdout, stderr) = run_cli(&rig, &["check", "--deploy-namespaces", "shop"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for line in [
        "ok   permission apps/deployments in shop: get, patch",
        "ok   permission apps/statefulsets in shop: get, patch",
        "ok   permission apps/daemonsets in shop: get, patch",
        "ok   permission pods in shop: list",
        "ok   permission pods/log in shop: get",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }

    let mut options = FakeKubeOptions::default();
    options.faults.allow_only = Some(granted(&settings()));
    let Some(rig) = harness::kaniko::rig(options) else {
        return;
    };
    let (code, stdout, _) = run_cli(&rig, &["check", "--deploy-namespaces", "shop"]);
    assert_eq!(code, 1, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("permission apps/deployments in shop"))
        .unwrap();
    assert!(line.starts_with("FAIL"), "{stdout}");
    assert!(
        line.contains("denied: get") && line.contains("patch"),
        "{line}"
    );
    assert!(
        line.contains("generate-manifests --deploy-namespaces shop"),
        "{line}"
    );
}
