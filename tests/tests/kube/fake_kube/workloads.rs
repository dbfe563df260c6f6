//! Deployments on the fake, driven with kube-rs as `hybrid-runner deploy` drives them: a
//! rollout to an image on the real registry completes with kubectl's conditions; a
//! strategic merge patch to an absent image leaves the old pod serving while the new one
//! backs off, until the progress deadline; kubectl's undo (a JSON patch of the previous
//! ReplicaSet's template) reuses the old ReplicaSet with a new revision; an image labelled
//! to crash crash-loops with its log in `previous`; env from a missing Secret blocks the
//! container with the kubelet's text.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Secret;

use super::helpers::*;
use super::workload_rig::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_image_times_out_and_kubectls_undo_brings_back_the_old_replica_set() {
    let Some((registry, images)) = registry_images().await else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-rollout";
    create_namespace(&client, ns).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns);

    // Created with the API server's defaults.
    let created = deployments
        .create(&PostParams::default(), &deployment("web", &images.app, 2))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let spec = json_of(&created.spec);
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );

    // It rolls out as `kubectl rollout status` sees it.
    let d = wait_for(&deployments, "web", Duration::from_secs(20), rolled_out).await;
    assert_eq!(
        kubectl_rollout_status(&d).unwrap().0,
        "deployment \"web\" successfully rolled out"
    );
    let rs_list = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rs_list.len(), 1);
    let first = rs_list[0].clone();
    let first_name = first.metadata.name.clone().unwrap();
    let hash = first.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(first_name, format!("web-{hash}"));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Deployment", "web", Some(true))
    );
    let rs_annotations = first.metadata.annotations.clone().unwrap();
    assert_eq!(rs_annotations["deployment.kubernetes.io/revision"], "1");
    assert_eq!(
        rs_annotations["deployment.kubernetes.io/desired-replicas"],
        "1"
    );
    assert_eq!(rs_annotations["deployment.kubernetes.io/max-replicas"], "2");
    assert_eq!(rs_annotations["team"], "platform");
    assert_eq!(
        json_of(&first.spec)["selector"]["matchLabels"],
        json!({"app": "web", "pod-template-hash": hash})
    );
    let text = |s: &str| s.to_string();
    assert_eq!(
        deployment_condition(&d, "Available"),
        Some((
            text("True"),
            text("MinimumReplicasAvailable"),
            text("Deployment has minimum availability.")
        ))
    );
    let done = format!("ReplicaSet \"{first_name}\" has successfully progressed.");
    assert_eq!(
        deployment_condition(&d, "Progressing"),
        Some((text("True"), text("NewReplicaSetAvailable"), done.clone()))
    );
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );
    let pods = wait_pods(&client, ns, "app=web", Duration::from_secs(5), |p| {
        p.len() == 1
    })
    .await;
    let serving = pods[0].clone();
    let serving_name = serving.metadata.name.clone().unwrap();
    assert!(
        serving_name.starts_with(&format!("{first_name}-")),
        "{serving_name}"
    );
    assert_eq!(serving_name.len(), first_name.len() + 6);
    assert!(pod_ready(&serving));
    assert_eq!(
        app_status(&serving)["imageID"],
        format!("{}/app@{}", registry.host, images.digest)
    );
    let reasons: Vec<String> = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!("involvedObject.name={serving_name}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.reason.unwrap_or_default())
        .collect();
    let mut sorted = reasons.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["Created", "Pulled", "Pulling", "Scheduled", "Started"],
        "{reasons:?}"
    );

    // `kubectl set image`'s strategic merge patch to an image the registry lacks.
    let patched = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": images.missing}]}}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    let container = &json_of(&patched.spec)["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], images.missing.as_str());
    assert_eq!(container["env"], json!([{"name": "MODE", "value": "prod"}]));
    assert_eq!(container["ports"][0]["containerPort"], 8080);

    // The new pod backs off; the old one keeps serving (maxUnavailable rounds to 0).
    let pods = wait_pods(&client, ns, "app=web", Duration::from_secs(20), |pods| {
        pods.iter()
            .any(|p| app_status(p)["state"]["waiting"]["reason"] == "ImagePullBackOff")
    })
    .await;
    assert_eq!(pods.len(), 2, "a surge pod next to the serving one");
    let old = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(serving_name.as_str()));
    assert!(old.is_some_and(pod_ready), "the old pod still serves");
    let new = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() != Some(serving_name.as_str()))
        .unwrap();
    let waiting = app_status(new)["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let full = &images.missing;
    assert_eq!(
        waiting,
        format!(
            "Back-off pulling image \"{full}\": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {full}: not found"
        )
    );

    // After progressDeadlineSeconds, kubectl reads the deadline as exceeded.
    let d = wait_for(&deployments, "web", Duration::from_secs(20), |d| {
        kubectl_rollout_status(d).is_err()
    })
    .await;
    let new_rs = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|rs| rs.metadata.name.as_deref() != Some(first_name.as_str()))
        .unwrap();
    let new_rs_name = new_rs.metadata.name.clone().unwrap();
    let timed_out = format!("ReplicaSet \"{new_rs_name}\" has timed out progressing.");
    assert_eq!(
        deployment_condition(&d, "Progressing"),
        Some((text("False"), text("ProgressDeadlineExceeded"), timed_out))
    );
    assert_eq!(deployment_condition(&d, "Available").unwrap().0, "True");
    assert_eq!(
        kubectl_rollout_status(&d).unwrap_err(),
        "deployment \"web\" exceeded its progress deadline"
    );
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );

    // A JSON patch whose `test` fails is refused as the API server refuses it.
    let refused = json_patch::<Deployment>(
        &client,
        ns,
        "web",
        json!([{"op": "test", "path": "/spec/template/spec/containers/0/image", "value": images.app}]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refusal(refused),
        (
            "the server rejected our request due to an error in our request".to_string(),
            "Invalid".to_string(),
            422
        )
    );

    // kubectl's undo (rollback.go): revision 1's template without its hash label, and the
    // ReplicaSet's annotations but the Deployment's own.
    let first = sets.get(&first_name).await.unwrap();
    let mut back = json_of(&first.spec)["template"].clone();
    back["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    let mut annotations = json!({"deployment.kubernetes.io/revision": "2"});
    for (k, v) in first.metadata.annotations.clone().unwrap() {
        if !k.starts_with("deployment.kubernetes.io/") {
            annotations[k] = json!(v);
        }
    }
    let undone = json_patch::<Deployment>(
        &client,
        ns,
        "web",
        json!([
            {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": images.missing},
            {"op": "replace", "path": "/spec/template", "value": back},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]),
    )
    .await
    .unwrap();
    assert_eq!(undone.metadata.generation, Some(3));
    let d = wait_for(&deployments, "web", Duration::from_secs(20), |d| {
        rolled_out(d)
            && d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"] == "3"
    })
    .await;
    assert_eq!(
        deployment_condition(&d, "Progressing"),
        Some((text("True"), text("NewReplicaSetAvailable"), done))
    );
    let rs_list = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        rs_list.len(),
        2,
        "no third ReplicaSet: the first one is reused"
    );
    let first = rs_list
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(first_name.as_str()))
        .unwrap();
    let a = first.metadata.annotations.clone().unwrap();
    assert_eq!(a["deployment.kubernetes.io/revision"], "3");
    assert_eq!(a["deployment.kubernetes.io/revision-history"], "1");
    let broken = rs_list
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(new_rs_name.as_str()))
        .unwrap();
    assert_eq!(json_of(&broken.spec)["replicas"], 0);
    let pods = wait_pods(&client, ns, "app=web", Duration::from_secs(10), |p| {
        p.len() == 1
    })
    .await;
    assert_eq!(
        pods[0].metadata.name.as_deref(),
        Some(serving_name.as_str()),
        "the pod that served all along is the one left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_image_crash_loops_with_its_log_in_the_previous_instance() {
    let Some((_registry, images)) = registry_images().await else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-crash";
    create_namespace(&client, ns).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    deployments
        .create(
            &PostParams::default(),
            &deployment("api", &images.crash, 600),
        )
        .await
        .unwrap();
    let pods = wait_pods(&client, ns, "app=api", Duration::from_secs(20), |pods| {
        pods.iter().any(|p| {
            let c = app_status(p);
            c["state"]["waiting"]["reason"] == "CrashLoopBackOff" && c["restartCount"] == 1
        })
    })
    .await;
    let pod = &pods[0];
    let name = pod.metadata.name.clone().unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    let c = app_status(pod);
    assert_eq!(
        c["state"]["waiting"]["message"],
        format!("back-off 1s restarting failed container=app pod={name}_{ns}({uid})")
    );
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(c["ready"], false);
    assert_eq!(json_of(&pod.status)["phase"], "Running");

    // `kubectl logs --previous --tail`: the last lines of the instance that crashed.
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let previous = |tail: Option<i64>| LogParams {
        container: Some("app".into()),
        previous: true,
        tail_lines: tail,
        ..LogParams::default()
    };
    let tail = api.logs(&name, &previous(Some(2))).await.unwrap();
    assert_eq!(
        tail,
        "loading /etc/app.conf\nfatal: open /etc/app.conf: no such file or directory\n"
    );
    let whole = api.logs(&name, &previous(None)).await.unwrap();
    assert_eq!(whole, format!("{CRASH_LOG}\n"));

    // It keeps crashing, each time after a longer back-off.
    let pods = wait_pods(&client, ns, "app=api", Duration::from_secs(20), |pods| {
        pods.iter()
            .any(|p| app_status(p)["restartCount"].as_i64() >= Some(2))
    })
    .await;
    assert_eq!(
        pods.len(),
        1,
        "a crash loop restarts the container, not the pod"
    );
    // Between its short runs the pod is not ready, so the Deployment is not available.
    let d = wait_for(&deployments, "api", Duration::from_secs(10), |d| {
        deployment_condition(d, "Available").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        deployment_condition(&d, "Available").unwrap().1,
        "MinimumReplicasUnavailable"
    );
    assert_eq!(
        kubectl_rollout_status(&d).unwrap().0,
        "Waiting for deployment \"api\" rollout to finish: 0 of 1 updated replicas are available..."
    );
    let backoffs: Vec<String> = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("reason=BackOff"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(
        backoffs.contains(&format!(
            "Back-off restarting failed container app in pod {name}_{ns}({uid})"
        )),
        "{backoffs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_from_a_missing_secret_blocks_the_container_until_the_key_exists() {
    let Some((_registry, images)) = registry_images().await else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-config";
    create_namespace(&client, ns).await;
    let mut d = json_of(&deployment("db", &images.app, 600));
    d["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]);
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(d).unwrap())
        .await
        .unwrap();
    let waiting = |message: &'static str| {
        move |pods: &[Pod]| {
            pods.iter().any(|p| {
                let w = &app_status(p)["state"]["waiting"];
                w["reason"] == "CreateContainerConfigError" && w["message"] == message
            })
        }
    };
    wait_pods(
        &client,
        ns,
        "app=db",
        Duration::from_secs(20),
        waiting("secret \"db\" not found"),
    )
    .await;
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    // `data` is base64: "app", "s3cret".
    let secret = |data: Value| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": "db"}, "data": data})).unwrap()
    };
    secrets
        .create(&PostParams::default(), &secret(json!({"user": "YXBw"})))
        .await
        .unwrap();
    wait_pods(
        &client,
        ns,
        "app=db",
        Duration::from_secs(20),
        waiting("couldn't find key password in Secret hr-config/db"),
    )
    .await;
    secrets
        .replace(
            "db",
            &PostParams::default(),
            &secret(json!({"password": "czNjcmV0"})),
        )
        .await
        .unwrap();
    let pods = wait_pods(&client, ns, "app=db", Duration::from_secs(20), |pods| {
        pods.iter().any(pod_ready)
    })
    .await;
    assert!(app_status(&pods[0])["state"]["running"].is_object());
}
