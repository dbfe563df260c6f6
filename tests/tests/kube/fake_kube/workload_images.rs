//! How the simulated kubelet finds a workload's images: references by digest (with or
//! without a tag, the digest wins), a digest the registry lacks, and a private registry
//! that answers only with the pod's pull Secret.

use harness::images::busybox;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;

use super::helpers::*;
use super::workload_rig::*;

fn two_containers(name: &str, first: &str, second: &str) -> Deployment {
    let mut d = json_of(&deployment(name, first, 600));
    d["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": second}));
    serde_json::from_value(d).unwrap()
}

fn container_status(p: &Pod, name: &str) -> Value {
    json_of(&p.status)["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_win_over_tags_and_private_images_need_their_pull_secret() {
    let Some((registry, images)) = registry_images().await else {
        return;
    };
    let Some(private) = tokio::task::spawn_blocking(|| {
        let private = Registry::start_with_auth("ci", "s3cret")?;
        busybox()?.push(&private, "internal/app", "1");
        Some(private)
    })
    .await
    .unwrap() else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-images";
    create_namespace(&client, ns).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let host = &registry.host;
    let digest = &images.digest;

    // `repo:tag@digest` and `repo@digest` both run the digest's image.
    let pinned = two_containers(
        "pinned",
        &format!("{host}/app:9@{digest}"),
        &format!("{host}/app@{digest}"),
    );
    deployments
        .create(&PostParams::default(), &pinned)
        .await
        .unwrap();
    let pods = wait_pods(&client, ns, "app=pinned", Duration::from_secs(20), |p| {
        p.iter().any(pod_ready)
    })
    .await;
    for c in ["app", "side"] {
        assert_eq!(
            container_status(&pods[0], c)["imageID"],
            format!("{host}/app@{digest}"),
            "{c}"
        );
    }

    // A digest the registry does not have, named as containerd names it (tag dropped).
    let gone = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    deployments
        .create(
            &PostParams::default(),
            &deployment("gone", &format!("{host}/app:1@{gone}"), 600),
        )
        .await
        .unwrap();
    let pods = wait_pods(&client, ns, "app=gone", Duration::from_secs(20), |p| {
        p.iter()
            .any(|p| app_status(p)["state"]["waiting"]["reason"] == "ErrImagePull")
    })
    .await;
    let full = format!("{host}/app@{gone}");
    assert_eq!(
        app_status(&pods[0])["state"]["waiting"]["message"],
        format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {full}: not found"
        )
    );

    // A private registry: refused until the pull Secret exists.
    let image = format!("{}/internal/app:1", private.host);
    let mut d = json_of(&deployment("private", &image, 600));
    d["spec"]["template"]["spec"]["imagePullSecrets"] = json!([{"name": "regcred"}]);
    deployments
        .create(&PostParams::default(), &serde_json::from_value(d).unwrap())
        .await
        .unwrap();
    let pods = wait_pods(&client, ns, "app=private", Duration::from_secs(20), |p| {
        p.iter()
            .any(|p| app_status(p)["state"]["waiting"]["reason"] == "ErrImagePull")
    })
    .await;
    let refused = app_status(&pods[0])["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        refused.starts_with(&format!("rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": unexpected status from HEAD request to")),
        "{refused}"
    );
    assert!(refused.ends_with(": 401 Unauthorized"), "{refused}");
    let warned = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("reason=FailedToRetrieveImagePullSecret"))
        .await
        .unwrap()
        .items;
    assert_eq!(
        warned[0].message.as_deref(),
        Some(
            "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed."
        )
    );
    let auth = base64_of("ci:s3cret");
    let config = json!({"auths": {private.host.clone(): {"auth": auth}}}).to_string();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64_of(&config)}}))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pods = wait_pods(&client, ns, "app=private", Duration::from_secs(20), |p| {
        p.iter().any(pod_ready)
    })
    .await;
    assert!(
        app_status(&pods[0])["imageID"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/internal/app@sha256:", private.host))
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
