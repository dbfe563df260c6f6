#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `generate-manifests --deploy-namespaces`: a Role and RoleBinding per namespace the
//! runner deploys to, granting its ServiceAccount exactly what a deploy calls (checked
//! against `hr_rollout`'s source), valid for `kubernetes-validate --strict`, the flag in
//! the command's help and its bad values refused naming it.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use crate::deploy_common::{IMAGE, INSTANCE};
use harness::fake_kube::validate_manifests;
use hr_cluster::permissions::DEPLOY_PERMISSIONS;
use hybrid_runner::deploy::{DeploySettings, deploy_manifests};

fn cli(args: &[&str]) -> Output {
    harness::cli::command().args(args).output().unwrap()
}

fn settings(namespaces: &[&str]) -> DeploySettings {
    let mut settings = DeploySettings::new(INSTANCE, IMAGE);
    settings.namespace = "ci-runners".into();
    settings.name = "gitea-runner".into();
    settings.deploy_namespaces = namespaces.iter().map(|n| n.to_string()).collect();
    settings
}

/// (group, resource, verb) of the rules of a Role or ClusterRole, as JSON.
fn triples(role: &serde_json::Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        group.as_str().unwrap().to_string(),
                        resource.as_str().unwrap().to_string(),
                        verb.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// What a deploy does in a namespace, written out: nothing listed or watched but pods, no
/// ReplicaSets, ControllerRevisions or Secrets, no create, update or delete.
const DEPLOY_RULES: [(&str, &str, &str); 8] = [
    ("apps", "deployments", "get"),
    ("apps", "deployments", "patch"),
    ("apps", "statefulsets", "get"),
    ("apps", "statefulsets", "patch"),
    ("apps", "daemonsets", "get"),
    ("apps", "daemonsets", "patch"),
    ("", "pods", "list"),
    ("", "pods/log", "get"),
];

#[test]
fn each_deploy_namespace_gets_a_role_with_exactly_the_deploy_rules() {
    let without = deploy_manifests(&settings(&[])).unwrap();
    assert!(without.deploy_roles.is_empty());
    let m = deploy_manifests(&settings(&["shop", "infra"])).unwrap();
    // The ClusterRole does not change with the flag.
    assert_eq!(m.cluster_role, without.cluster_role);
    let list = m.to_json_list().unwrap();
    let items = list["items"].as_array().unwrap();
    let kinds: Vec<(&str, Option<&str>)> = items
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap(),
                i["metadata"]["namespace"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("Namespace", None),
            ("ServiceAccount", Some("ci-runners")),
            ("ClusterRole", None),
            ("ClusterRoleBinding", None),
            ("Role", Some("shop")),
            ("RoleBinding", Some("shop")),
            ("Role", Some("infra")),
            ("RoleBinding", Some("infra")),
            ("ConfigMap", Some("ci-runners")),
            ("Service", Some("ci-runners")),
            ("StatefulSet", Some("ci-runners")),
        ]
    );
    let wanted: BTreeSet<(String, String, String)> = DEPLOY_RULES
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    for (role, binding) in [(&items[4], &items[5]), (&items[6], &items[7])] {
        assert_eq!(role["metadata"]["name"], "ci-runners-gitea-runner-deploy");
        assert_eq!(triples(role), wanted, "{role:#}");
        assert_eq!(binding["metadata"]["name"], role["metadata"]["name"]);
        assert_eq!(
            binding["roleRef"],
            serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": "ci-runners-gitea-runner-deploy"})
        );
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "gitea-runner",
                                "namespace": "ci-runners"}])
        );
    }
    // The table the Role is built from is the same set.
    let table: BTreeSet<(String, String, String)> = DEPLOY_PERMISSIONS
        .iter()
        .flat_map(|p| {
            p.verbs
                .iter()
                .map(|v| (p.group.to_string(), p.rbac_resource(), v.to_string()))
        })
        .collect();
    assert_eq!(table, wanted);
    if !validate_manifests(items) {
        eprintln!("notice: schema validation skipped");
    }
}

#[test]
fn the_deploy_rules_cover_every_api_call_a_deploy_makes() {
    // What `hr_rollout` does to deploy: read the workload, patch it, watch the rollout,
    // look at the new pods, undo (`image_uses.rs` is `check --images`, run by a person).
    let root = harness::workspace_root().join("crates/rollout/src");
    let mut source = String::new();
    for file in [
        "workload.rs",
        "preflight.rs",
        "rollout.rs",
        "status.rs",
        "pods.rs",
    ] {
        source.push_str(&std::fs::read_to_string(root.join(file)).unwrap());
    }
    for (call, what) in [
        ("api.get(&target.name)", "get on the workload"),
        ("api.patch(&target.name", "patch of the image"),
        (
            "api.patch(&workload.target.name",
            "patch of the undo, by JSON patch",
        ),
        ("Api<Pod>", "the pods API"),
        ("api.list(&params)", "list of the rollout's pods"),
        ("api.logs(&pod", "get on pods/log"),
    ] {
        assert!(
            source.contains(call),
            "hr_rollout no longer calls {call} ({what}): update DEPLOY_PERMISSIONS"
        );
    }
    for call in [
        ".watch(",
        "watcher",
        ".replace(",
        ".create(",
        ".delete(",
        "get_opt(",
        "ReplicaSet",
        "ControllerRevision",
        "Secret",
        "Api::all",
    ] {
        assert!(
            !source.contains(call),
            "hr_rollout now calls {call}: grant it in DEPLOY_PERMISSIONS and the deploy Role"
        );
    }
    // Every typed API it opens is the pods' (the workloads are `DynamicObject`s of the
    // three kinds, whose plurals the table grants).
    for part in source.split("Api<").skip(1) {
        assert!(
            part.starts_with("Pod>") || part.starts_with("DynamicObject>"),
            "Api<{}",
            &part[..part.len().min(20)]
        );
    }
    for plural in ["deployments", "statefulsets", "daemonsets"] {
        assert!(source.contains(&format!("=> \"{plural}\"")), "{plural}");
        assert!(
            DEPLOY_PERMISSIONS
                .iter()
                .any(|p| p.group == "apps" && p.resource == plural),
            "{plural}"
        );
    }
}

#[test]
fn the_flag_is_documented_validated_and_rendered_for_kubectl() {
    let help = cli(&["generate-manifests", "--help"]);
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("--deploy-namespaces <NS1,NS2>"), "{help}");
    assert!(help.contains("hybrid-runner/deploy@v1"), "{help}");
    assert!(help.contains("pods/log"), "{help}");

    let base = [
        "generate-manifests",
        "--instance",
        INSTANCE,
        "--image",
        IMAGE,
    ];
    let out = cli(&[&base[..], &["--deploy-namespaces", "shop, web"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(yaml.matches("\nkind: Role\n").count(), 2, "{yaml}");
    assert_eq!(yaml.matches("\nkind: RoleBinding\n").count(), 2, "{yaml}");
    assert!(yaml.contains("  namespace: web\n"), "{yaml}");
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
        assert_eq!(
            report.matches("passed for resource").count(),
            11,
            "{report}"
        );
    }

    for (value, needle) in [
        (
            "Shop",
            "--deploy-namespaces: \"Shop\" is not a namespace name",
        ),
        (
            "shop,web,shop",
            "--deploy-namespaces: \"shop\" is named twice",
        ),
        ("a_b", "--deploy-namespaces: \"a_b\""),
    ] {
        let out = cli(&[&base[..], &["--deploy-namespaces", value]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(stderr.contains(needle), "{value}: {stderr}");
        assert!(out.stdout.is_empty(), "{value}: nothing half-printed");
    }
}
