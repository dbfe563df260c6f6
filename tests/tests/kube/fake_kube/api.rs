//! The API surface as kube-rs and raw HTTP see it: Status bodies, patches, selectors,
//! watches (default, streaming list, expired), kubeconfig clients, discovery.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_real_status_bodies() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let namespaces = Api::<Namespace>::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "dup"}})).unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let err = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
            assert_eq!(s.message, "namespaces \"dup\" already exists");
        }
        other => panic!("{other:?}"),
    }
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "dup");
    match cms.get("nope").await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
            assert_eq!(s.message, "configmaps \"nope\" not found");
        }
        other => panic!("{other:?}"),
    }
    // Creating in a namespace that does not exist.
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    match Api::<ConfigMap>::namespaced(client.clone(), "absent")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => assert_eq!(
            (s.code, s.message.as_str()),
            (404, "namespaces \"absent\" not found")
        ),
        other => panic!("{other:?}"),
    }
    // The raw body is a Status object.
    let raw: Value = reqwest::get(format!(
        "{}/api/v1/namespaces/dup/configmaps/nope",
        fake.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(raw["kind"], "Status");
    assert_eq!(raw["status"], "Failure");
    assert_eq!(raw["details"]["kind"], "configmaps");
    // Merge patch, list by label, replace conflict.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "a", "labels": {"app": "x"}}, "data": {"k": "v"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k2": "v2"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2);
    let listed = cms
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        cms.list(&ListParams::default().labels("app=y"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        cms.list(&ListParams::default().fields("metadata.name=a"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let mut stale = listed.items[0].clone();
    stale.metadata.resource_version = Some("1".into());
    match cms
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other:?}"),
    }
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == "/api/v1/namespaces/dup/configmaps/a")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_watcher_sees_adds_modifications_and_deletes() {
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let stream = watcher(cms.clone(), watcher::Config::default().labels("app=w"));
    let mut stream = std::pin::pin!(stream);
    let writer = tokio::spawn({
        let cms = cms.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "w", "labels": {"app": "w"}}}))
                    .unwrap(),
            )
            .await
            .unwrap();
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
            )
            .await
            .unwrap();
            cms.patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "1"}})),
            )
            .await
            .unwrap();
            cms.delete("w", &DeleteParams::default()).await.unwrap();
        }
    });
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        let label = match event.unwrap() {
            watcher::Event::Init => "init".to_string(),
            watcher::Event::InitApply(o) => format!("init-apply {}", o.metadata.name.unwrap()),
            watcher::Event::InitDone => "init-done".to_string(),
            watcher::Event::Apply(o) => format!(
                "apply {} {}",
                o.metadata.name.unwrap(),
                o.data.map_or(0, |d| d.len())
            ),
            watcher::Event::Delete(o) => format!("delete {}", o.metadata.name.unwrap()),
        };
        let end = label.starts_with("delete");
        seen.push(label);
        if end {
            break;
        }
    }
    writer.await.unwrap();
    assert_eq!(
        seen,
        vec!["init", "init-done", "apply w 0", "apply w 1", "delete w"]
    );
    let list = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/configmaps") && r.method == "GET")
        .unwrap();
    assert_eq!(list.query_value("limit"), Some("500"));
    let watch = fake
        .requests()
        .into_iter()
        .find(|r| r.query_value("watch").is_some())
        .unwrap();
    assert_eq!(watch.query_value("allowWatchBookmarks"), Some("true"));
    assert!(watch.query_value("resourceVersion").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_from_the_kubeconfig_waits_on_job_and_namespace_conditions() {
    use kube::runtime::wait::{await_condition, conditions};
    let fake = fake_without_builder();
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), format!("{}/", fake.url()));
    let client = kube::Client::try_from(config).unwrap();
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "31"));

    quick_job(&client, "cond", "j", None).await;
    let jobs = Api::<Job>::namespaced(client.clone(), "cond");
    let failed = |obj: Option<&Job>| {
        obj.and_then(|j| j.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
    };
    let job = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(jobs.clone(), "j", failed),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(job.status.unwrap().failed, Some(1));
    assert!(
        fake.requests().iter().any(
            |r| r.query_value("fieldSelector") == Some("metadata.name=j")
                && r.query_value("watch").is_some()
        ),
        "await_condition watches one object by field selector"
    );

    let namespaces = Api::<Namespace>::all(client.clone());
    let uid = namespaces.get("cond").await.unwrap().metadata.uid.unwrap();
    namespaces
        .delete("cond", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(namespaces, "cond", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(fake.objects("Job", Some("cond")).is_empty());
    assert!(fake.objects("Pod", Some("cond")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_watcher_gets_initial_events_and_pod_phases() {
    let fake = fake_without_builder();
    let client = fake.client();
    quick_job(&client, "phases", "j", None).await;
    let pods = Api::<Pod>::namespaced(client.clone(), "phases");
    let stream = watcher(pods, watcher::Config::default().streaming_lists());
    let mut stream = std::pin::pin!(stream);
    let mut phases = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        let pod = match event.unwrap() {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
            _ => continue,
        };
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if phases.last() != Some(&phase) {
            phases.push(phase.clone());
        }
        if phase == "Failed" {
            break;
        }
    }
    assert!(
        phases.ends_with(&["Running".to_string(), "Failed".to_string()]),
        "{phases:?}"
    );
    let watch = fake
        .requests()
        .into_iter()
        .find(|r| r.query_value("sendInitialEvents") == Some("true"))
        .expect("a streaming-list watch");
    assert_eq!(
        watch.query_value("resourceVersionMatch"),
        Some("NotOlderThan")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_makes_the_watcher_list_again() {
    let faults = Faults {
        expired_watches: 1,
        ..Faults::default()
    };
    let fake = FakeKube::start(FakeKubeOptions {
        faults,
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let stream = watcher(cms.clone(), watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let mut seen = Vec::new();
    let mut created = false;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        match event {
            Err(e) => seen.push(format!("error {e}")),
            Ok(watcher::Event::Init) => seen.push("init".into()),
            Ok(watcher::Event::InitDone) => {
                seen.push("init-done".into());
                if seen.iter().any(|s| s.starts_with("error")) && !created {
                    created = true;
                    let cm: ConfigMap =
                        serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap();
                    cms.create(&PostParams::default(), &cm).await.unwrap();
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                seen.push(format!("apply {}", o.metadata.name.unwrap()));
                break;
            }
            Ok(_) => {}
        }
    }
    assert_eq!(seen[..2], ["init", "init-done"]);
    assert!(
        seen[2].contains("410") || seen[2].contains("too old"),
        "{seen:?}"
    );
    assert_eq!(seen[3..], ["init", "init-done", "apply after"]);
    let lists = fake
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.ends_with("/configmaps") && r.query_value("watch").is_none()
        })
        .count();
    assert_eq!(lists, 2, "the watcher listed again after the 410");
}

#[test]
fn a_plain_test_can_start_it_and_speak_raw_http() {
    harness::install_crypto_provider();
    let fake = FakeKube::start(FakeKubeOptions::default());
    let http = reqwest::blocking::Client::new();
    let version: Value = http
        .get(format!("{}/version", fake.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(version["gitVersion"], "v1.31.0");
    let created = http
        .post(format!("{}/api/v1/namespaces/default/configmaps", fake.url()))
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "raw"}, "data": {"a": "b"}}))
        .send()
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let again = http
        .post(format!(
            "{}/api/v1/namespaces/default/configmaps",
            fake.url()
        ))
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "raw"}}))
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let status: Value = again.json().unwrap();
    assert_eq!(status["reason"], "AlreadyExists");
    let stored = fake.object("ConfigMap", "default", "raw").unwrap();
    assert_eq!(stored["data"]["a"], "b");
    assert!(
        stored["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(
        stored["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[1].method, "POST");
    assert_eq!(
        recorded[1].body.as_ref().unwrap()["metadata"]["name"],
        "raw"
    );
    assert_eq!(
        fake.sent_manifests().len(),
        2,
        "both POST bodies were sent, the second refused"
    );
    assert!(
        fake.namespaces()
            .contains(&("default".to_string(), "Active".to_string()))
    );
}
