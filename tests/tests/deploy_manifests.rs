#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The manifests that run the daemon in a cluster (`hybrid-runner generate-manifests`):
//! schema validation with `kubernetes-validate --strict` over several flag combinations,
//! RBAC that covers every API call of the builder and nothing more, placeholders all
//! filled, the grace period against `shutdown_timeout`, probes on the metrics port, the
//! `.runner` file on the data volume, the restricted security context, the CLI's output
//! and its usage errors, and `register --keep-existing` as the init container runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use harness::fake_gitea::{FakeGitea, FakeGiteaOptions};
use harness::fake_kube::validate_manifests;
use hybrid_runner::build::kaniko::{ALL_PERMISSIONS, needed_permissions};
use hybrid_runner::config;
use hybrid_runner::deploy::{
    CONFIG_KEY, CONFIG_SHA256_ANNOTATION, DAEMON_CONTAINER, DATA_VOLUME, DeployManifests,
    DeploySettings, DeployTemplate, GRACE_MARGIN, REGISTER_CONTAINER, Workload, WorkloadKind,
    deploy_manifests, kaniko_shape,
};
use hybrid_runner::source::gitea::registration::Registration;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

const INSTANCE: &str = "https://gitea.example.com";
const IMAGE: &str = "registry.example.com/hybrid-runner:0.1.0";

/// The flag combinations every property is checked over.
fn variants() -> Vec<(&'static str, DeploySettings)> {
    let base = DeploySettings::new(INSTANCE, IMAGE);
    let mut deployment = base.clone();
    deployment.kind = WorkloadKind::Deployment;
    deployment.replicas = 3;
    deployment.capacity = 4;
    deployment.registry_secret = Some("registry.creds".into());
    deployment.labels = vec!["linux:host".into(), "k8s:kubernetes".into()];
    let mut custom = base.clone();
    custom.namespace = "ci-runners".into();
    custom.name = "gitea-runner".into();
    custom.storage = "5Gi".into();
    custom.storage_class = Some("fast-ssd".into());
    custom.shutdown_timeout = Duration::from_secs(600);
    custom.registration_token_secret = "gitea-token".into();
    custom.registry_secret = Some("regcred".into());
    custom.admission_policy = true;
    vec![
        ("defaults", base),
        ("deployment", deployment),
        ("custom", custom),
    ]
}

fn pod(m: &DeployManifests) -> &PodTemplateSpec {
    match &m.workload {
        Workload::StatefulSet(s) => &s.spec.template,
        Workload::Deployment(d) => &d.spec.template,
    }
}

fn pod_spec(m: &DeployManifests) -> &PodSpec {
    pod(m).spec.as_ref().unwrap()
}

fn daemon(m: &DeployManifests) -> &Container {
    pod_spec(m)
        .containers
        .iter()
        .find(|c| c.name == DAEMON_CONTAINER)
        .unwrap()
}

fn register(m: &DeployManifests) -> &Container {
    pod_spec(m)
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == REGISTER_CONTAINER)
        .unwrap()
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {args:?}"));
    &args[i + 1]
}

/// The path `path` is reached through in `container`: the mount holding it.
fn mount_of<'a>(container: &'a Container, path: &str) -> &'a str {
    container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| path.starts_with(&format!("{}/", m.mount_path)))
        .max_by_key(|m| m.mount_path.len())
        .map(|m| m.name.as_str())
        .unwrap_or_else(|| panic!("no mount of {} holds {path}", container.name))
}

/// The config the pod runs with, loaded from the ConfigMap's text the daemon's way.
fn loaded_config(m: &DeployManifests) -> config::Config {
    let text = &m.config_map.data.as_ref().unwrap()[CONFIG_KEY];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load_with_env(Some(&path), &|_| None).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.config
}

#[test]
fn every_flag_combination_passes_kubernetes_validate_strict() {
    let mut all = Vec::new();
    for (what, settings) in variants() {
        let m = deploy_manifests(&settings).unwrap();
        let list = m.to_json_list().unwrap();
        let items = list["items"].as_array().unwrap().clone();
        let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
        let workload = match settings.kind {
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::Deployment => "Deployment",
        };
        let mut expected = vec![
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Service",
        ];
        if settings.admission_policy {
            expected.extend([
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            ]);
        }
        expected.push(workload);
        assert_eq!(kinds, expected, "{what}");
        // Namespaced objects are in the runner's namespace.
        for item in &items[1..] {
            let ns = item["metadata"]["namespace"].as_str();
            match item["kind"].as_str().unwrap() {
                "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding" => assert_eq!(ns, None, "{what}"),
                kind => assert_eq!(ns, Some(settings.namespace.as_str()), "{what}: {kind}"),
            }
        }
        all.extend(items);
    }
    if !validate_manifests(&all) {
        eprintln!("notice: schema validation skipped");
    }
}

#[test]
fn cluster_role_grants_exactly_what_the_builder_needs() {
    for (what, settings) in variants() {
        let m = deploy_manifests(&settings).unwrap();
        let needed = needed_permissions(&kaniko_shape(&m.config.kubernetes));
        let rules = m.cluster_role.rules.clone().unwrap();
        // (group, resource, verb) triples granted and needed.
        let mut granted = BTreeSet::new();
        for rule in &rules {
            assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for verb in &rule.verbs {
                        assert_ne!(verb, "*", "{what}: no wildcard verbs");
                        assert_ne!(resource, "*", "{what}: no wildcard resources");
                        assert!(
                            !["update", "patch", "escalate", "bind", "impersonate"]
                                .contains(&verb.as_str()),
                            "{what}: {verb} on {resource} is never needed"
                        );
                        granted.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }
        let mut wanted = BTreeSet::new();
        for p in &needed {
            for verb in p.verbs {
                wanted.insert((p.group.to_string(), p.rbac_resource(), verb.to_string()));
            }
        }
        assert_eq!(granted, wanted, "{what}: the ClusterRole is the needed set");
        // Secrets are never readable; they are granted only with registry credentials.
        let secret_verbs: Vec<&str> = granted
            .iter()
            .filter(|(_, r, _)| r == "secrets")
            .map(|(_, _, v)| v.as_str())
            .collect();
        if settings.registry_secret.is_some() {
            assert_eq!(secret_verbs, ["create"], "{what}");
        } else {
            assert!(secret_verbs.is_empty(), "{what}");
        }
        // The binding grants this role to this ServiceAccount only.
        let b = &m.cluster_role_binding;
        assert_eq!(b.role_ref.kind, "ClusterRole");
        assert_eq!(
            Some(&b.role_ref.name),
            m.cluster_role.metadata.name.as_ref()
        );
        let subjects = b.subjects.as_ref().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, settings.name);
        assert_eq!(
            subjects[0].namespace.as_deref(),
            Some(settings.namespace.as_str())
        );
        assert_eq!(
            pod_spec(&m).service_account_name.as_deref(),
            Some(settings.name.as_str())
        );
        assert_eq!(pod_spec(&m).automount_service_account_token, Some(true));
    }
}

/// The Kubernetes kind of `Api<Kind>` as RBAC names its resource.
fn resource_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Namespace" => "namespaces",
        "Job" => "jobs",
        "Pod" => "pods",
        "ConfigMap" => "configmaps",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "Secret" => "secrets",
        "ResourceQuota" => "resourcequotas",
        "LimitRange" => "limitranges",
        // Every authenticated user may ask about itself.
        "SelfSubjectAccessReview" => return None,
        // apply.rs's generic create of the manifest objects (checked below).
        "K" => return None,
        other => panic!("Api<{other}> in the builder: add it to the permission table"),
    })
}

#[test]
fn the_permission_table_covers_every_api_call_of_the_builder_source() {
    let dir = harness::workspace_root().join("runner/src/build/kaniko");
    let mut source = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            source.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let table: BTreeMap<String, BTreeSet<&str>> = ALL_PERMISSIONS
        .iter()
        .map(|p| (p.rbac_resource(), p.verbs.iter().copied().collect()))
        .collect();
    let has = |resource: &str, verb: &str| table.get(resource).is_some_and(|v| v.contains(verb));

    // Every typed API the builder opens is in the table.
    let mut kinds = BTreeSet::new();
    for part in source.split("Api<").skip(1) {
        let kind: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        kinds.insert(kind);
    }
    assert!(
        kinds.contains("Namespace") && kinds.contains("Pod"),
        "{kinds:?}"
    );
    for kind in &kinds {
        if let Some(resource) = resource_of(kind) {
            assert!(table.contains_key(resource), "Api<{kind}>: {resource}");
        }
    }
    // Every object of a build's manifests is created.
    for kind in [
        "Namespace",
        "LimitRange",
        "ResourceQuota",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Pod",
        "Job",
    ] {
        assert!(has(resource_of(kind).unwrap(), "create"), "create {kind}");
    }
    // The calls the source makes, with the verbs they are authorized as.
    for (call, resource, verbs) in [
        (".attach(", "pods/attach", &["get", "create"][..]),
        (".log_stream(", "pods/log", &["get"]),
        (".logs(", "pods/log", &["get"]),
        ("watcher::Config", "jobs", &["list", "watch"]),
        ("watcher::Config", "pods", &["list", "watch"]),
        ("get_opt(", "namespaces", &["get"]),
        ("get_opt(", "pods", &["get"]),
        (".list(", "namespaces", &["list"]),
        (".delete(", "namespaces", &["delete"]),
        (".delete(", "jobs", &["delete"]),
        (".delete(", "pods", &["delete"]),
    ] {
        assert!(source.contains(call), "the builder no longer calls {call}");
        for verb in verbs {
            assert!(has(resource, verb), "{call}: {verb} {resource}");
        }
    }
}

#[test]
fn placeholders_are_filled_and_custom_templates_are_checked() {
    for (what, settings) in variants() {
        let m = deploy_manifests(&settings).unwrap();
        let yaml = m.to_yaml().unwrap();
        // The YAML reads back as exactly the objects (block scalars included).
        let documents: Vec<serde_json::Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert_eq!(
            serde_json::Value::Array(documents),
            m.to_json_list().unwrap()["items"],
            "{what}"
        );
        assert!(
            yaml.contains("  config.yaml: |\n"),
            "{what}: readable config"
        );
        assert!(!yaml.contains("{{"), "{what}: {yaml}");
        let documents = if settings.admission_policy { 9 } else { 7 };
        assert_eq!(yaml.matches("\n---\n").count() + 1, documents, "{what}");
        assert!(yaml.contains(IMAGE), "{what}");
    }
    // Every built-in template uses a placeholder for its name (nothing hard-coded).
    for t in DeployTemplate::ALL {
        if t != DeployTemplate::Pod {
            assert!(t.builtin().contains("{{"), "{}", t.file_name());
        }
    }
    // A user's copy is used, an unknown placeholder is refused with its template's name,
    // and a pod without the register container is refused.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = DeploySettings::new(INSTANCE, IMAGE);
    settings.template_dir = Some(dir.path().to_path_buf());
    let service_account = DeployTemplate::ServiceAccount
        .builtin()
        .replace("  labels:\n", "  labels:\n    team: ci\n");
    std::fs::write(dir.path().join("service-account.yaml"), service_account).unwrap();
    let m = deploy_manifests(&settings).unwrap();
    assert_eq!(
        m.service_account.metadata.labels.as_ref().unwrap()["team"],
        "ci"
    );
    std::fs::write(
        dir.path().join("service.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{nope}}\n",
    )
    .unwrap();
    let err = deploy_manifests(&settings).unwrap_err().to_string();
    assert!(
        err.contains("service.yaml") && err.contains("{{nope}}"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("service.yaml")).unwrap();
    let pod = DeployTemplate::Pod
        .builtin()
        .replace("- name: register", "- name: enroll");
    std::fs::write(dir.path().join("pod.yaml"), pod).unwrap();
    let err = deploy_manifests(&settings).unwrap_err().to_string();
    assert!(
        err.contains("pod.yaml") && err.contains("register"),
        "{err}"
    );
}

#[test]
fn grace_period_covers_shutdown_timeout_and_probes_use_the_metrics_port() {
    for (what, settings) in variants() {
        let m = deploy_manifests(&settings).unwrap();
        let config = loaded_config(&m);
        assert_eq!(
            config, m.config,
            "{what}: the ConfigMap loads as the typed config"
        );
        assert_eq!(config.runner.shutdown_timeout, settings.shutdown_timeout);
        assert_eq!(config.runner.capacity, settings.capacity);
        let grace = pod_spec(&m).termination_grace_period_seconds.unwrap();
        assert!(
            grace as u64 >= config.runner.shutdown_timeout.as_secs() + 60,
            "{what}: grace {grace}s leaves too little past shutdown_timeout"
        );
        assert_eq!(
            grace as u64,
            (config.runner.shutdown_timeout + GRACE_MARGIN).as_secs()
        );

        assert!(config.metrics.enabled, "{what}");
        assert!(
            config.metrics.addr.ip().is_unspecified(),
            "{what}: the kubelet probes the pod IP, so metrics must not listen on loopback"
        );
        let d = daemon(&m);
        let ports = d.ports.as_ref().unwrap();
        let port_of = |p: &IntOrString| -> i32 {
            match p {
                IntOrString::Int(n) => *n,
                IntOrString::String(name) => {
                    ports
                        .iter()
                        .find(|cp| cp.name.as_deref() == Some(name))
                        .unwrap_or_else(|| panic!("{what}: no port named {name}"))
                        .container_port
                }
            }
        };
        for (probe, path) in [
            (d.liveness_probe.as_ref(), "/healthz"),
            (d.readiness_probe.as_ref(), "/readyz"),
        ] {
            let get = probe.unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.path.as_deref(), Some(path), "{what}");
            assert_eq!(
                port_of(&get.port),
                i32::from(config.metrics.addr.port()),
                "{what}: {path}"
            );
        }
        let service_port = &m.service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(
            port_of(service_port.target_port.as_ref().unwrap()),
            i32::from(config.metrics.addr.port())
        );
        // The config's digest is on the pod, so a changed config rolls it.
        let annotations = pod(&m).metadata.as_ref().unwrap().annotations.clone();
        assert_eq!(
            annotations.unwrap()[CONFIG_SHA256_ANNOTATION].len(),
            64,
            "{what}"
        );
    }
    let short = {
        let mut s = DeploySettings::new(INSTANCE, IMAGE);
        s.shutdown_timeout = Duration::from_secs(60);
        deploy_manifests(&s).unwrap()
    };
    let long = deploy_manifests(&DeploySettings::new(INSTANCE, IMAGE)).unwrap();
    assert_ne!(
        pod(&short).metadata.as_ref().unwrap().annotations,
        pod(&long).metadata.as_ref().unwrap().annotations
    );
}

#[test]
fn the_registration_and_spool_live_on_the_data_volume() {
    for (what, settings) in variants() {
        let m = deploy_manifests(&settings).unwrap();
        let config = m.config.clone();
        let runner_file = config.runner.file.to_str().unwrap().to_string();
        let (d, r) = (daemon(&m), register(&m));
        assert_eq!(mount_of(d, &runner_file), DATA_VOLUME, "{what}");
        assert_eq!(mount_of(r, &runner_file), DATA_VOLUME, "{what}");
        let workdir = config.host.workdir_parent.clone().unwrap();
        let workdir_volume = mount_of(d, workdir.to_str().unwrap());
        assert_ne!(
            workdir_volume, DATA_VOLUME,
            "{what}: task folders are scratch"
        );

        let volumes = pod_spec(&m).volumes.as_ref().unwrap();
        match &m.workload {
            Workload::StatefulSet(s) => {
                let claims = s.spec.volume_claim_templates.as_ref().unwrap();
                let claim = claims
                    .iter()
                    .find(|c| c.metadata.name.as_deref() == Some(DATA_VOLUME))
                    .unwrap();
                let spec = claim.spec.as_ref().unwrap();
                let storage =
                    &spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"];
                assert_eq!(storage.0, settings.storage, "{what}");
                assert_eq!(spec.storage_class_name, settings.storage_class, "{what}");
                assert!(volumes.iter().all(|v| v.name != DATA_VOLUME), "{what}");
                assert_eq!(s.spec.replicas, Some(settings.replicas));
                assert_eq!(s.spec.service_name.as_ref(), Some(&settings.name));
            }
            Workload::Deployment(dep) => {
                let data = volumes.iter().find(|v| v.name == DATA_VOLUME).unwrap();
                assert!(data.empty_dir.is_some(), "{what}");
                assert_eq!(dep.spec.replicas, Some(settings.replicas));
            }
        }

        // Both containers read the mounted config; the init container registers from
        // the token Secret's mount, named after the pod.
        let r_args = r.args.clone().unwrap();
        let d_args = d.args.clone().unwrap();
        assert_eq!(d_args[0], "daemon");
        assert_eq!(r_args[0], "register");
        for args in [&r_args, &d_args] {
            let file = flag(args, "--config");
            let mount = mount_of(if args[0] == "daemon" { d } else { r }, file);
            let volume = volumes.iter().find(|v| v.name == mount).unwrap();
            assert_eq!(
                volume.config_map.as_ref().unwrap().name,
                m.config_map.metadata.name.clone().unwrap()
            );
        }
        assert!(r_args.contains(&"--keep-existing".to_string()));
        assert!(r_args.contains(&"--no-interactive".to_string()));
        assert_eq!(flag(&r_args, "--instance"), INSTANCE);
        assert_eq!(flag(&r_args, "--labels"), settings.labels.join(","));
        assert_eq!(flag(&r_args, "--name"), "$(POD_NAME)");
        let env = r.env.as_ref().unwrap();
        let pod_name = env.iter().find(|e| e.name == "POD_NAME").unwrap();
        assert_eq!(
            pod_name
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.name"
        );
        let token_file = flag(&r_args, "--token-file");
        let token_volume = volumes
            .iter()
            .find(|v| v.name == mount_of(r, token_file))
            .unwrap();
        let secret = token_volume.secret.as_ref().unwrap();
        assert_eq!(
            secret.secret_name.as_deref(),
            Some(settings.registration_token_secret.as_str())
        );
        assert!(token_file.ends_with("/token"));

        // Registry credentials: mounted where the config points, from the given Secret.
        match (
            &settings.registry_secret,
            &config.kubernetes.registry_secret_file,
        ) {
            (Some(name), Some(file)) => {
                let file = file.to_str().unwrap();
                let volume = volumes
                    .iter()
                    .find(|v| v.name == mount_of(d, file))
                    .unwrap();
                let secret = volume.secret.as_ref().unwrap();
                assert_eq!(secret.secret_name.as_ref(), Some(name));
                let item = &secret.items.as_ref().unwrap()[0];
                assert_eq!(item.key, ".dockerconfigjson");
                assert!(file.ends_with(&format!("/{}", item.path)));
            }
            (None, None) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn the_pod_meets_the_restricted_profile_and_no_object_looks_like_a_build() {
    for (what, settings) in variants() {
        let m = deploy_manifests(&settings).unwrap();
        let labels = m.namespace.metadata.labels.clone().unwrap();
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
        let list = m.to_json_list().unwrap();
        for item in list["items"].as_array().unwrap() {
            assert_ne!(
                item["metadata"]["labels"]["app.kubernetes.io/managed-by"].as_str(),
                Some("hybrid-runner"),
                "{what}: `hybrid-runner cleanup` would take {} for a build's",
                item["metadata"]["name"]
            );
        }
        let spec = pod_spec(&m);
        let pod_ctx = spec.security_context.as_ref().unwrap();
        assert_eq!(pod_ctx.run_as_non_root, Some(true));
        assert!(pod_ctx.run_as_user.unwrap() > 0);
        assert_eq!(
            pod_ctx.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let ctx = c.security_context.as_ref().unwrap();
            assert_eq!(ctx.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(
                ctx.capabilities.as_ref().unwrap().drop,
                Some(vec!["ALL".to_string()])
            );
            assert_ne!(ctx.privileged, Some(true));
            assert!(c.resources.as_ref().unwrap().limits.is_some(), "{}", c.name);
            assert_eq!(c.image.as_deref(), Some(IMAGE));
        }
        assert!(spec.host_network.is_none() && spec.host_pid.is_none());
    }
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hybrid-runner-cli"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_prints_manifests_for_kubectl_and_refuses_bad_flags() {
    let base = [
        "generate-manifests",
        "--instance",
        INSTANCE,
        "--image",
        IMAGE,
    ];
    let out = cli(&[
        &base[..],
        &[
            "--kind",
            "deployment",
            "--replicas",
            "2",
            "--labels",
            "a:host, b:kubernetes",
        ],
    ]
    .concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.starts_with("---\n"));
    assert!(yaml.contains("kind: Deployment") && !yaml.contains("kind: StatefulSet"));
    assert!(yaml.contains("- a:host,b:kubernetes"), "{yaml}");
    // The YAML as kubectl would read it.
    if harness::fake_kube::kubernetes_validate().is_some() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deploy.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let check = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{report}");
        assert_eq!(report.matches("passed for resource").count(), 7, "{report}");
    }

    let out = cli(&[&base[..], &["--json", "--capacity", "3"]].concat());
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    assert_eq!(items[6]["kind"], "StatefulSet");
    assert!(
        items[4]["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .contains("capacity: 3")
    );

    for (extra, needle) in [
        (&["--capacity", "0"][..], "--capacity: must be 1 or more"),
        (&["--replicas", "0"], "--replicas: must be 1 or more"),
        (
            &["--namespace", "CI_Runners"],
            "--namespace: \"CI_Runners\"",
        ),
        (&["--name", &"r".repeat(53)], "--name:"),
        (
            &["--instance", "gitea.example.com"],
            "--instance: \"gitea.example.com\"",
        ),
        (
            &["--labels", "a:docker://"],
            "--labels: label \"a:docker://\" names no image",
        ),
        (&["--labels", ","], "--labels: give at least one label"),
        (&["--shutdown-timeout", "forever"], "--shutdown-timeout:"),
        (&["--storage", "1GB"], "--storage: \"1GB\""),
        (&["--registry-secret", "Reg_Cred"], "--registry-secret:"),
        (
            &["--template-dir", "/nonexistent/templates"],
            "--template-dir:",
        ),
        (&["--kind", "daemonset"], "invalid value 'daemonset'"),
    ] {
        let args: Vec<&str> = if extra[0] == "--instance" {
            [&["generate-manifests", "--image", IMAGE][..], extra].concat()
        } else {
            [&base[..], extra].concat()
        };
        let out = cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{extra:?}: nothing half-printed");
    }
    let out = cli(&["generate-manifests", "--instance", INSTANCE]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--image"));
}

fn register_cli(dir: &Path, instance: &str, token: &str, extra: &[&str]) -> Output {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("runner:\n  file: {}\n", dir.join(".runner").display()),
    )
    .unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hybrid-runner-cli"))
        .arg("register")
        .args(["--config", config.to_str().unwrap(), "--no-interactive"])
        .args(["--instance", instance])
        .args(["--token-file", token_file.to_str().unwrap()])
        .args(["--name", "hybrid-runner-0", "--labels", "linux:host"])
        .args(extra)
        .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn register_keep_existing_registers_once_and_then_keeps_the_file() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let keep = ["--keep-existing"];
    // First start: no file, so it registers.
    let out = register_cli(
        dir.path(),
        &fake.url(),
        FakeGitea::REGISTRATION_TOKEN,
        &keep,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = Registration::load(&dir.path().join(".runner")).unwrap();
    assert_eq!(first.name, "hybrid-runner-0");
    let calls = fake.requests().len();

    // A restart: the file is kept, the server is not called, even with a stale token.
    let out = register_cli(dir.path(), &fake.url(), "expired-token", &keep);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("kept the registration of hybrid-runner-0"),
        "{stderr}"
    );
    assert_eq!(fake.requests().len(), calls);
    assert_eq!(
        Registration::load(&dir.path().join(".runner")).unwrap(),
        first
    );

    // Without the flag the same call registers again, and the stale token is refused.
    let out = register_cli(dir.path(), &fake.url(), "expired-token", &[]);
    assert!(!out.status.success());
    assert!(fake.requests().len() > calls);

    // A damaged file is not kept silently.
    std::fs::write(dir.path().join(".runner"), "{ not json").unwrap();
    let out = register_cli(
        dir.path(),
        &fake.url(),
        FakeGitea::REGISTRATION_TOKEN,
        &keep,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("delete it to register again"), "{stderr}");
}

/// `python3` with cel-python importable, installed with pip when missing; `None` (with a
/// notice) when that fails outside CI.
fn python_with_cel() -> Option<&'static str> {
    let found = || {
        Command::new("python3")
            .args(["-c", "import celpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found() {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "cel-python"])
            .output();
    }
    if found() {
        return Some("python3");
    }
    assert!(
        !harness::under_ci(),
        "cel-python is missing and `python3 -m pip install cel-python` failed"
    );
    eprintln!("notice: cel-python unavailable; the admission policy's CEL is not evaluated");
    None
}

#[test]
fn the_admission_policy_confines_the_runner_to_build_namespaces() {
    let mut settings = DeploySettings::new(INSTANCE, IMAGE);
    assert!(
        deploy_manifests(&settings)
            .unwrap()
            .admission_policy
            .is_none(),
        "opt-in only"
    );
    settings.admission_policy = true;
    settings.namespace = "ci".into();
    settings.name = "gitea-runner".into();
    let m = deploy_manifests(&settings).unwrap();
    let (policy, binding) = m.admission_policy.clone().unwrap();
    let spec = policy.spec.as_ref().unwrap();
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
    let conditions = spec.match_conditions.as_ref().unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(
        conditions[0].expression,
        "request.userInfo.username == 'system:serviceaccount:ci:gitea-runner'"
    );
    // The user it confines is the one the ClusterRole is bound to.
    let subject = &m.cluster_role_binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        hybrid_runner::deploy::service_account_user(&settings),
        format!(
            "system:serviceaccount:{}:{}",
            subject.namespace.as_deref().unwrap(),
            subject.name
        )
    );
    // Every resource the runner may create or delete is under the policy.
    let constrained: BTreeSet<String> = spec
        .match_constraints
        .as_ref()
        .unwrap()
        .resource_rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    for rule in m.cluster_role.rules.as_ref().unwrap() {
        if rule.verbs.iter().any(|v| v == "create" || v == "delete") {
            for resource in rule.resources.iter().flatten() {
                if resource.contains('/') {
                    continue; // attach: a CONNECT, not an object write
                }
                assert!(constrained.contains(resource), "{resource} unconstrained");
            }
        }
    }
    assert_eq!(
        binding.spec.policy_name,
        policy.metadata.name.clone().unwrap()
    );
    assert_eq!(binding.spec.validation_actions, ["Deny"]);

    // The CEL, evaluated as the API server would, over allowed and refused requests.
    let Some(python) = python_with_cel() else {
        return;
    };
    let script = harness::workspace_root().join("tests/scripts/admission_policy_cel.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args(["ci", "gitea-runner"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let list = m.to_json_list().unwrap().to_string();
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(list.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert_eq!(report.matches("ok: ").count(), 15, "{report}");
}

#[test]
fn the_init_container_registers_with_exactly_its_rendered_arguments() {
    let fake = FakeGitea::start(FakeGiteaOptions::default());
    let mut settings = DeploySettings::new(&fake.url(), IMAGE);
    settings.labels = vec!["linux:host".into(), "k8s:kubernetes".into()];
    let m = deploy_manifests(&settings).unwrap();
    let args = register(&m).args.clone().unwrap();

    // The pod's paths, moved into a temporary folder; everything else as rendered.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let moved = |path: &str| format!("{root}{path}");
    let config_file = flag(&args, "--config").to_string();
    let token_file = flag(&args, "--token-file").to_string();
    let runner_file = m.config.runner.file.to_str().unwrap().to_string();
    let text =
        m.config_map.data.as_ref().unwrap()[CONFIG_KEY].replace(&runner_file, &moved(&runner_file));
    for (path, content) in [
        (&config_file, text.as_str()),
        (&token_file, FakeGitea::REGISTRATION_TOKEN),
    ] {
        let path = moved(path);
        std::fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    std::fs::create_dir_all(Path::new(&moved(&runner_file)).parent().unwrap()).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            a if a == config_file || a == token_file => moved(a),
            // What the kubelet makes of `$(POD_NAME)` from the fieldRef.
            "$(POD_NAME)" => format!("{}-0", settings.name),
            a => a.to_string(),
        })
        .collect();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_hybrid-runner-cli"))
            .args(&args)
            .env_remove("GITEA_RUNNER_REGISTRATION_TOKEN")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registration = Registration::load(Path::new(&moved(&runner_file))).unwrap();
    assert_eq!(registration.name, "hybrid-runner-0");
    assert_eq!(registration.labels, ["linux:host", "k8s:kubernetes"]);
    let runner = fake.runner(&registration.uuid).unwrap();
    assert_eq!(runner.labels, ["linux", "k8s"]);
    // The pod's next start keeps it.
    let calls = fake.requests().len();
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.requests().len(), calls);
}
