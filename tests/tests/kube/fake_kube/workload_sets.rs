//! StatefulSets and DaemonSets on the fake: ordered pods with their revision and claims, a
//! rolling update from the highest ordinal down (and one held by a partition, back to a
//! revision it had), a DaemonSet's pod on the fake node replaced by a template change;
//! ControllerRevisions record each template.

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};

use super::helpers::*;
use super::workload_rig::*;

fn labels(p: &Pod) -> std::collections::BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

fn revisions(list: &[ControllerRevision]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = list
        .iter()
        .map(|r| {
            (
                r.metadata.name.clone().unwrap(),
                json_of(r)["revision"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort_by_key(|r| r.1);
    out
}

fn sts_status(s: &StatefulSet) -> Value {
    json_of(&s.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_starts_in_order_and_rolls_from_the_highest_ordinal_down() {
    let Some((_registry, images)) = registry_images().await else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-sts";
    create_namespace(&client, ns).await;
    let sets = Api::<StatefulSet>::namespaced(client.clone(), ns);
    let history = Api::<ControllerRevision>::namespaced(client.clone(), ns);
    let manifest: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": template("db", &images.app),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .unwrap();
    let created = sets
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let spec = json_of(&created.spec);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);

    // OrderedReady: db-1 only once db-0 is running and ready.
    let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pods = pods_api
            .list(&ListParams::default().labels("app=db"))
            .await
            .unwrap()
            .items;
        let find = |n: &str| pods.iter().find(|p| p.metadata.name.as_deref() == Some(n));
        if find("db-1").is_some() {
            assert!(
                find("db-0").is_some_and(pod_ready),
                "db-1 came before db-0 was ready"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no db-1: {pods:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let set = wait_for(&sets, "db", Duration::from_secs(20), |s| {
        sts_status(s)["readyReplicas"] == 2
    })
    .await;
    let status = sts_status(&set);
    let first_revision = status["currentRevision"].as_str().unwrap().to_string();
    assert_eq!(status["updateRevision"], first_revision.as_str());
    assert_eq!(
        (
            &status["replicas"],
            &status["currentReplicas"],
            &status["updatedReplicas"],
            &status["availableReplicas"]
        ),
        (&json!(2), &json!(2), &json!(2), &json!(2))
    );
    assert!(first_revision.starts_with("db-"), "{first_revision}");
    let pods = pods_api
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items;
    for (i, p) in pods.iter().enumerate() {
        let l = labels(p);
        assert_eq!(l["controller-revision-hash"], first_revision);
        assert_eq!(l["statefulset.kubernetes.io/pod-name"], format!("db-{i}"));
        assert_eq!(l["apps.kubernetes.io/pod-index"], i.to_string());
        let spec = json_of(&p.spec);
        assert_eq!(spec["hostname"], format!("db-{i}"));
        assert_eq!(spec["subdomain"], "db");
        assert_eq!(
            spec["volumes"][0],
            json!({"name": "data", "persistentVolumeClaim": {"claimName": format!("data-db-{i}")}})
        );
    }
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items;
    let mut claim_names: Vec<String> = claims
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    claim_names.sort();
    assert_eq!(claim_names, ["data-db-0", "data-db-1"]);
    assert_eq!(
        revisions(&history.list(&ListParams::default()).await.unwrap().items),
        [(first_revision.clone(), 1)]
    );

    // A new image: db-1 is replaced first, db-0 once db-1 is ready again.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": images.app2}]}}}})),
    )
    .await
    .unwrap();
    let mut order: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let set = loop {
        let s = sets.get("db").await.unwrap();
        let status = sts_status(&s);
        let update = status["updateRevision"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pods = pods_api
            .list(&ListParams::default().labels("app=db"))
            .await
            .unwrap()
            .items;
        for p in &pods {
            let name = p.metadata.name.clone().unwrap();
            if update != first_revision
                && labels(p)["controller-revision-hash"] == update
                && !order.contains(&name)
            {
                order.push(name);
            }
        }
        if status["currentRevision"] == update.as_str()
            && update != first_revision
            && status["readyReplicas"] == 2
        {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the update never finished: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(order, ["db-1", "db-0"]);
    let status = sts_status(&set);
    let second_revision = status["updateRevision"].as_str().unwrap().to_string();
    assert_eq!(
        (&status["updatedReplicas"], &status["currentReplicas"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(
        revisions(&history.list(&ListParams::default()).await.unwrap().items),
        [(first_revision.clone(), 1), (second_revision.clone(), 2)]
    );

    // Back to the first image behind a partition: only db-1 moves, and the first
    // revision is reused with the next number.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {
            "updateStrategy": {"rollingUpdate": {"partition": 1}},
            "template": {"spec": {"containers": [{"name": "app", "image": images.app}]}}}})),
    )
    .await
    .unwrap();
    let set = wait_for(&sets, "db", Duration::from_secs(20), |s| {
        let st = sts_status(s);
        st["updateRevision"] == first_revision.as_str()
            && st["updatedReplicas"] == 1
            && st["readyReplicas"] == 2
    })
    .await;
    assert_eq!(
        sts_status(&set)["currentRevision"],
        second_revision.as_str()
    );
    let pods = pods_api
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items;
    let revision_of = |n: &str| {
        labels(
            pods.iter()
                .find(|p| p.metadata.name.as_deref() == Some(n))
                .unwrap(),
        )["controller-revision-hash"]
            .clone()
    };
    assert_eq!(revision_of("db-0"), second_revision);
    assert_eq!(revision_of("db-1"), first_revision);
    assert_eq!(
        revisions(&history.list(&ListParams::default()).await.unwrap().items),
        [(second_revision.clone(), 2), (first_revision.clone(), 3)]
    );

    // OnDelete: a new template waits until a client deletes the pod.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": null},
            "template": {"spec": {"containers": [{"name": "app", "image": images.app2}]}}}})),
    )
    .await
    .unwrap();
    wait_for(&sets, "db", Duration::from_secs(10), |s| {
        sts_status(s)["updateRevision"] == second_revision.as_str()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pods = pods_api
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items;
    let db1 = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("db-1"))
        .unwrap();
    assert_eq!(labels(db1)["controller-revision-hash"], first_revision);
    pods_api
        .delete("db-1", &DeleteParams::default())
        .await
        .unwrap();
    let set = wait_for(&sets, "db", Duration::from_secs(20), |s| {
        sts_status(s)["updatedReplicas"] == 2 && sts_status(s)["readyReplicas"] == 2
    })
    .await;
    assert_eq!(
        sts_status(&set)["currentRevision"],
        second_revision.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_set_replaces_its_pod_on_the_node_when_the_template_changes() {
    let Some((_registry, images)) = registry_images().await else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-ds";
    create_namespace(&client, ns).await;
    let sets = Api::<DaemonSet>::namespaced(client.clone(), ns);
    let manifest: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", &images.app)}
    }))
    .unwrap();
    let created = sets
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    assert_eq!(
        json_of(&created.spec)["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    assert_eq!(
        created.metadata.annotations.as_ref().unwrap()["deprecated.daemonset.template.generation"],
        "1"
    );
    let ds = wait_for(&sets, "agent", Duration::from_secs(20), |d| {
        json_of(&d.status)["numberAvailable"] == 1
    })
    .await;
    let status = json_of(&ds.status);
    for (field, n) in [
        ("desiredNumberScheduled", 1),
        ("currentNumberScheduled", 1),
        ("updatedNumberScheduled", 1),
        ("numberReady", 1),
        ("numberMisscheduled", 0),
        ("observedGeneration", 1),
    ] {
        assert_eq!(status[field], n, "{field}: {status}");
    }
    assert!(status.get("numberUnavailable").is_none(), "{status}");
    let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
    let first = pods_api
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap()
        .items;
    assert_eq!(first.len(), 1);
    let first_name = first[0].metadata.name.clone().unwrap();
    let first_hash = labels(&first[0])["controller-revision-hash"].clone();
    assert_eq!(labels(&first[0])["pod-template-generation"], "1");
    let spec = json_of(&first[0].spec);
    assert_eq!(spec["nodeName"], "fake-node");
    assert_eq!(
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchFields"][0],
        json!({"key": "metadata.name", "operator": "In", "values": ["fake-node"]})
    );
    assert!(
        spec["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/not-ready"),
        "{spec}"
    );

    let patched = sets
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": images.app2}]}}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(
        patched.metadata.annotations.as_ref().unwrap()["deprecated.daemonset.template.generation"],
        "2"
    );
    let ds = wait_for(&sets, "agent", Duration::from_secs(20), |d| {
        let s = json_of(&d.status);
        s["observedGeneration"] == 2
            && s["updatedNumberScheduled"] == 1
            && s["numberAvailable"] == 1
    })
    .await;
    assert_eq!(json_of(&ds.status)["currentNumberScheduled"], 1);
    let pods = wait_pods(&client, ns, "app=agent", Duration::from_secs(10), |p| {
        p.len() == 1
    })
    .await;
    assert_ne!(pods[0].metadata.name.as_deref(), Some(first_name.as_str()));
    assert_ne!(labels(&pods[0])["controller-revision-hash"], first_hash);
    assert_eq!(labels(&pods[0])["pod-template-generation"], "2");
    assert_eq!(app_status(&pods[0])["image"], images.app2.as_str());
    let history = Api::<ControllerRevision>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let names: Vec<String> = revisions(&history).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            format!("agent-{first_hash}"),
            format!("agent-{}", labels(&pods[0])["controller-revision-hash"])
        ]
    );
}
