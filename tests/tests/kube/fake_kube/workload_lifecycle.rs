//! A Deployment's life around its rollouts: scaling, the `Recreate` strategy, deletion
//! with each propagation policy, a namespace going with its workloads, and a cluster
//! that is quiet once everything has settled.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::helpers::*;
use super::workload_rig::*;

async fn list_version(client: &kube::Client, ns: &str) -> u64 {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_scales_recreates_and_goes_with_its_replica_sets() {
    let Some((_registry, images)) = registry_images().await else {
        return;
    };
    let fake = workload_fake();
    let client = fake.client();
    let ns = "hr-lifecycle";
    create_namespace(&client, ns).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns);
    let mut d = json_of(&deployment("web", &images.app, 600));
    d["spec"]["replicas"] = json!(3);
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    deployments
        .create(&PostParams::default(), &serde_json::from_value(d).unwrap())
        .await
        .unwrap();
    let d = wait_for(&deployments, "web", Duration::from_secs(20), rolled_out).await;
    assert!(json_of(&d.spec)["strategy"].get("rollingUpdate").is_none());
    let first = wait_pods(&client, ns, "app=web", Duration::from_secs(5), |p| {
        p.len() == 3
    })
    .await;

    // Settled: nothing changes any more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = list_version(&client, ns).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        list_version(&client, ns).await,
        before,
        "the controllers keep writing"
    );

    // Scaled down: the ReplicaSet follows, two pods go.
    let pp = PatchParams::default();
    deployments
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    let d = wait_for(&deployments, "web", Duration::from_secs(20), |d| {
        rolled_out(d) && json_of(&d.status)["replicas"] == 1
    })
    .await;
    let rs = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rs.len(), 1);
    let a = rs[0].metadata.annotations.clone().unwrap();
    assert_eq!(a["deployment.kubernetes.io/desired-replicas"], "1");
    assert_eq!(json_of(&rs[0].spec)["replicas"], 1);
    assert_eq!(
        rs[0].metadata.generation,
        Some(2),
        "created at 3, scaled to 1"
    );
    let left = wait_pods(&client, ns, "app=web", Duration::from_secs(5), |p| {
        p.len() == 1
    })
    .await;
    assert!(
        first
            .iter()
            .any(|p| p.metadata.name == left[0].metadata.name)
    );
    let deleted = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields("reason=SuccessfulDelete"))
        .await
        .unwrap()
        .items;
    assert_eq!(deleted.len(), 2);
    assert_eq!(
        deployment_condition(&d, "Progressing").unwrap().1,
        "NewReplicaSetAvailable"
    );

    // Recreate: the old pod is gone before the new ReplicaSet has one.
    deployments
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": images.app2}]}}}})),
        )
        .await
        .unwrap();
    let pods_api = Api::<Pod>::namespaced(client.clone(), ns);
    let old_name = left[0].metadata.name.clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pods = pods_api
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let old_there = pods
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(old_name.as_str()));
        let new_there = pods
            .iter()
            .any(|p| p.metadata.name.as_deref() != Some(old_name.as_str()));
        assert!(
            !(old_there && new_there),
            "Recreate ran old and new pods together"
        );
        if new_there && pods.iter().all(pod_ready) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new pod: {pods:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_for(&deployments, "web", Duration::from_secs(20), |d| {
        rolled_out(d)
            && d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"] == "2"
    })
    .await;

    // Orphan keeps the ReplicaSets and pods, without their owner.
    deployments
        .delete("web", &DeleteParams::orphan())
        .await
        .unwrap();
    let rs = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r.metadata.owner_references.is_none()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        wait_pods(&client, ns, "app=web", Duration::from_secs(5), |p| p.len()
            == 1)
        .await
        .len(),
        1
    );

    // A new Deployment adopts them; deleting it (Background) takes everything along.
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", &images.app2, 600),
        )
        .await
        .unwrap();
    wait_for(
        &sets,
        &rs[0].metadata.name.clone().unwrap(),
        Duration::from_secs(10),
        |r| r.metadata.owner_references.is_some(),
    )
    .await;
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_pods(&client, ns, "app=web", Duration::from_secs(10), |p| {
        p.is_empty()
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "ReplicaSets left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A namespace goes with its workloads.
    let mut again = json_of(&deployment("api", &images.app, 600));
    again["spec"]["replicas"] = json!(2);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(again).unwrap(),
        )
        .await
        .unwrap();
    wait_for(&deployments, "api", Duration::from_secs(20), rolled_out).await;
    Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
    fake.assert_no_namespace_left();
    assert!(fake.objects("Pod", Some(ns)).is_empty());
    assert!(fake.objects("ReplicaSet", Some(ns)).is_empty());
}
