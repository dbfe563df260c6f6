//! The apps/v1 API of the fake without a registry: discovery, the API server's validation
//! texts for what a client may get wrong, and when `metadata.generation` moves.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use kube::api::DynamicObject;
use kube::discovery::{ApiCapabilities, ApiResource, oneshot};

use super::helpers::*;
use super::workload_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_apps_kinds_with_their_status() {
    let fake = workload_fake();
    let client = fake.client();
    let group = oneshot::pinned_group(&client, &kube::core::GroupVersion::gv("apps", "v1"))
        .await
        .unwrap();
    let mut kinds: Vec<(ApiResource, ApiCapabilities)> = group.recommended_resources();
    kinds.sort_by(|a, b| a.0.kind.cmp(&b.0.kind));
    let summary: Vec<(String, String, Vec<String>)> = kinds
        .iter()
        .map(|(r, caps)| {
            (
                r.kind.clone(),
                r.plural.clone(),
                caps.subresources
                    .iter()
                    .map(|(s, _)| s.plural.clone())
                    .collect(),
            )
        })
        .collect();
    let status = |k: &str, p: &str| (k.to_string(), p.to_string(), vec!["status".to_string()]);
    assert_eq!(
        summary,
        [
            (
                "ControllerRevision".to_string(),
                "controllerrevisions".to_string(),
                vec![]
            ),
            status("DaemonSet", "daemonsets"),
            status("Deployment", "deployments"),
            status("ReplicaSet", "replicasets"),
            status("StatefulSet", "statefulsets"),
        ]
    );
    assert!(
        kinds
            .iter()
            .all(|(_, caps)| caps.supports_operation("watch"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_workloads_are_refused_with_the_api_servers_texts() {
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-invalid";
    create_namespace(&client, ns).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let create = |d: Value| {
        let deployments = deployments.clone();
        async move {
            let d: Deployment = serde_json::from_value(d).unwrap();
            refusal(
                deployments
                    .create(&PostParams::default(), &d)
                    .await
                    .unwrap_err(),
            )
        }
    };
    let base = json_of(&deployment("web", "127.0.0.1:1/app:1", 600));

    // k8s-openapi's Deployment always has a selector: left out, it is sent empty.
    let mut no_selector = base.clone();
    no_selector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    assert_eq!(
        create(no_selector.clone()).await,
        (
            "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".to_string(),
            "Invalid".to_string(),
            422
        )
    );
    // A manifest without one at all (kubectl apply of YAML, a dynamic client).
    let dynamic = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<Deployment>(&()),
    );
    let object: DynamicObject = serde_json::from_value(no_selector).unwrap();
    let refused = dynamic
        .create(&PostParams::default(), &object)
        .await
        .unwrap_err();
    assert_eq!(
        refusal(refused).0,
        "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`]"
    );
    let mut mismatch = base.clone();
    mismatch["spec"]["selector"]["matchLabels"]["app"] = json!("api");
    assert_eq!(
        create(mismatch).await.0,
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
    );
    let mut no_image = base.clone();
    no_image["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    assert_eq!(
        create(no_image).await.0,
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
    );
    let mut never = base.clone();
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        create(never).await.0,
        "Deployment.apps \"web\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
    );
    let mut no_room = base.clone();
    no_room["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
    assert_eq!(
        create(no_room).await.0,
        "Deployment.apps \"web\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
    );
    let mut deadline = base.clone();
    deadline["spec"]["progressDeadlineSeconds"] = json!(5);
    deadline["spec"]["minReadySeconds"] = json!(5);
    assert_eq!(
        create(deadline).await.0,
        "Deployment.apps \"web\" is invalid: spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds"
    );

    // The selector cannot change (apps/v1).
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(base).unwrap(),
        )
        .await
        .unwrap();
    let err = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"selector": {"matchLabels": {"tier": "web"}},
                "template": {"metadata": {"labels": {"tier": "web"}}}}}),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err).0,
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );

    // A StatefulSet's spec beyond replicas, template, update strategy... is fixed.
    let sets = Api::<StatefulSet>::namespaced(client.clone(), ns);
    let set: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {
        "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": template("db", "127.0.0.1:1/app:1")}}))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();
    let err = sets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"serviceName": "other"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err).0,
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_counts_spec_changes_and_status_stays_the_controllers() {
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-generation";
    create_namespace(&client, ns).await;
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns);
    let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "plain"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "plain"}},
        "template": template("plain", "127.0.0.1:1/app:1")}}))
    .unwrap();
    let created = sets.create(&PostParams::default(), &rs).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // The controller observes it.
    let observed = wait_for(&sets, "plain", Duration::from_secs(10), |r| {
        json_of(&r.status)["observedGeneration"] == 1
    })
    .await;
    let pp = PatchParams::default();
    // Metadata alone: same generation.
    let labelled = sets
        .patch(
            "plain",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    // A status sent to the main resource is ignored; one sent to /status is not a spec.
    let mut with_status = json_of(&labelled);
    with_status["status"] = json!({"replicas": 7});
    let replaced = sets
        .replace(
            "plain",
            &PostParams::default(),
            &serde_json::from_value(with_status).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(json_of(&replaced.status), json_of(&observed.status));
    assert_eq!(replaced.metadata.generation, Some(1));
    let status_write = sets
        .patch_status(
            "plain",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 0, "observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status_write.metadata.generation, Some(1));
    // A spec change: the next generation, observed by the controller.
    let scaled = sets
        .patch(
            "plain",
            &pp,
            &Patch::Merge(json!({"spec": {"minReadySeconds": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    wait_for(&sets, "plain", Duration::from_secs(10), |r| {
        json_of(&r.status)["observedGeneration"] == 2
    })
    .await;

    // A Deployment's annotations count too (they are copied to its ReplicaSets).
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", "127.0.0.1:1/app:1", 600),
        )
        .await
        .unwrap();
    let annotated = deployments
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"annotations": {"team": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(annotated.metadata.generation, Some(2));
    let labelled = deployments
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));
}
