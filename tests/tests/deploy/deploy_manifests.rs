#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The manifests that run the daemon in a cluster (`hybrid-runner generate-manifests`):
//! schema validation with `kubernetes-validate --strict` over several flag combinations,
//! RBAC that covers every API call of the builder and nothing more, placeholders all
//! filled, the grace period against `shutdown_timeout`, probes on the metrics port, the
//! `.runner` file on the data volume, the restricted security context, and the optional
//! admission policy (its CEL evaluated with cel-python).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use crate::deploy_common::{
    IMAGE, INSTANCE, daemon, flag, mount_of, pod, pod_spec, register, variants,
};
use harness::fake_kube::validate_manifests;
use hr_cluster::permissions::{ALL_PERMISSIONS, with_job_pods};
use hr_gitea::config;
use hr_image::kaniko::needed_permissions;
use hybrid_runner::deploy::{
    CONFIG_KEY, CONFIG_SHA256_ANNOTATION, DATA_VOLUME, DeployManifests, DeploySettings,
    DeployTemplate, GRACE_MARGIN, Workload, WorkloadKind, deploy_manifests, kaniko_shape,
    runs_job_pods,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

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
        let mut needed = needed_permissions(&kaniko_shape(&m.config.kubernetes));
        if runs_job_pods(&settings.labels) {
            needed = with_job_pods(needed);
        }
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
                        // The build lease is the one object the runner changes (its
                        // renewal is a patch), and a job pod takes Docker steps as
                        // ephemeral containers (a patch of that subresource only);
                        // nothing else is ever updated or patched.
                        let allowed_patch = verb == "patch"
                            && (resource == "leases" || resource == "pods/ephemeralcontainers");
                        assert!(
                            allowed_patch
                                || !["update", "patch", "escalate", "bind", "impersonate"]
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
        // Secrets are never readable; they are granted only with registry credentials or
        // job pods (their env and image pull Secrets).
        let secret_verbs: Vec<&str> = granted
            .iter()
            .filter(|(_, r, _)| r == "secrets")
            .map(|(_, _, v)| v.as_str())
            .collect();
        if settings.registry_secret.is_some() || runs_job_pods(&settings.labels) {
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
        "Event" => "events",
        "Lease" => "leases",
        // Every authenticated user may ask about itself.
        "SelfSubjectAccessReview" => return None,
        // apply.rs's generic create of the manifest objects (checked below).
        "K" => return None,
        other => panic!("Api<{other}> in the builder: add it to the permission table"),
    })
}

#[test]
fn the_permission_table_covers_every_api_call_of_the_builder_source() {
    // The builder and the job pods of `kubernetes` labels (`backend::pod`).
    let mut source = String::new();
    for dir in [
        "crates/image/src/kaniko",
        "crates/cluster/src",
        "crates/engine/src/pod",
    ] {
        let dir = harness::workspace_root().join(dir);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(&path).unwrap());
            }
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
        (".exec(", "pods/exec", &["get", "create"]),
        (".get(POD_NAME)", "pods", &["get"]),
        (".create(&post, pod)", "pods", &["create"]),
        (
            ".create(&post, &manifests.namespace)",
            "namespaces",
            &["create"],
        ),
        ("secrets.create(&post", "secrets", &["create"]),
        (
            ".patch_ephemeral_containers(",
            "pods/ephemeralcontainers",
            &["patch"],
        ),
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
        ("api.create(&post, &lease)", "leases", &["create"]),
        ("api.patch(BUILD_LEASE_NAME", "leases", &["patch"]),
        ("Api<Lease> = Api::all", "leases", &["list"]),
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
        let service_ports = m.service.spec.as_ref().unwrap().ports.clone().unwrap();
        let service_port = |name: &str| {
            service_ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{what}: no service port {name}"))
                .clone()
        };
        assert_eq!(
            port_of(service_port("metrics").target_port.as_ref().unwrap()),
            i32::from(config.metrics.addr.port())
        );
        // The cache server's port: the pod's `cache` port, the one its env configures.
        assert_eq!(
            port_of(service_port("cache").target_port.as_ref().unwrap()),
            8088,
            "{what}"
        );
        let env = d.env.clone().unwrap();
        let var = |name: &str| env.iter().find(|e| e.name == name).cloned();
        assert_eq!(
            var("HYBRID_RUNNER_CACHE_PORT").unwrap().value.as_deref(),
            Some("8088")
        );
        assert_eq!(
            var("HYBRID_RUNNER_CACHE_HOST")
                .unwrap()
                .value_from
                .unwrap()
                .field_ref
                .unwrap()
                .field_path,
            "status.podIP"
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
            // Subresources (pods/exec, pods/attach) are CONNECT requests, constrained too.
            for resource in rule.resources.iter().flatten() {
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
    assert_eq!(report.matches("ok: ").count(), 25, "{report}");
}
