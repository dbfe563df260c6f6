//! The simulated Job controller: one pod per attempt from the pod template (name
//! `<job>-<5 chars>`, the `job-name`/`controller-uid` labels, an owner reference),
//! `backoffLimit`, `activeDeadlineSeconds`, `ttlSecondsAfterFinished`, the status counts and
//! the conditions of Kubernetes 1.31+ (`SuccessCriteriaMet` then `Complete`; `FailureTarget`
//! then `Failed`), and Job deletion with `Orphan`, `Background` or `Foreground` propagation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::api::{ApiError, now};
use super::kubelet::{PodEnd, condition, delete_pod, rt, set_pod, spawn_pod};
use super::routes::namespaces;
use super::store::Key;
use super::{Shared, admission, events};

pub(crate) fn start_job(shared: &Arc<Shared>, key: Key) {
    let shared = Arc::clone(shared);
    tokio::spawn(async move { run_job(shared, key).await });
}

async fn run_job(shared: Arc<Shared>, key: Key) {
    let Some(job) = shared.read(|s| s.get(&key).cloned()) else {
        return;
    };
    let step = shared.options.kubelet_step;
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let backoff_limit = job["spec"]["backoffLimit"].as_u64().unwrap_or(6);
    shared.write(|s| {
        s.modify(&key, |j| {
            j["status"]["startTime"] = json!(now());
        })
    });
    let mut failed = 0u64;
    loop {
        // Pod creation retries while admission refuses it (a full quota), until the
        // deadline.
        let mut last_error = String::new();
        let pod_key = loop {
            match create_job_pod(&shared, &key) {
                Ok(k) => break k,
                Err(None) => return,
                Err(Some(e)) => {
                    let msg = format!("Error creating: {}", e.message);
                    if msg != last_error {
                        job_event(&shared, &key, true, "FailedCreate", &msg);
                        last_error = msg;
                    }
                    if deadline.is_some_and(|at| tokio::time::Instant::now() >= at) {
                        finish_failed(
                            &shared,
                            &key,
                            failed,
                            "DeadlineExceeded",
                            "Job was active longer than specified deadline",
                        );
                        return;
                    }
                    tokio::time::sleep(step * 4).await;
                }
            }
        };
        if let Some(job) = shared.read(|s| s.get(&key).cloned()) {
            let msg = format!("Created pod: {}", pod_key.name);
            events::record(
                &shared,
                &job,
                "job-controller",
                false,
                "SuccessfulCreate",
                &msg,
            );
        }
        set_job_counts(&shared, &key, 1, failed, 0);
        let handle = spawn_pod(&shared, pod_key.clone());
        tokio::pin!(handle);
        let end = match deadline {
            Some(at) => tokio::select! {
                end = &mut handle => end.unwrap_or(PodEnd::Failed),
                _ = tokio::time::sleep_until(at) => {
                    delete_pod(&shared, &pod_key);
                    let _ = handle.await;
                    failed += 1;
                    finish_failed(&shared, &key, failed, "DeadlineExceeded", "Job was active longer than specified deadline");
                    return;
                }
            },
            None => handle.await.unwrap_or(PodEnd::Failed),
        };
        if end == PodEnd::Succeeded {
            finish_succeeded(&shared, &key, failed);
            return;
        }
        failed += 1;
        if failed > backoff_limit {
            finish_failed(
                &shared,
                &key,
                failed,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            return;
        }
        set_job_counts(&shared, &key, 0, failed, 0);
        tokio::time::sleep(step).await;
    }
}

fn set_job_counts(shared: &Shared, key: &Key, active: u64, failed: u64, succeeded: u64) {
    shared.write(|s| {
        s.modify(key, |j| {
            let st = &mut j["status"];
            for (field, n) in [
                ("active", active),
                ("failed", failed),
                ("succeeded", succeeded),
            ] {
                if n > 0 {
                    st[field] = json!(n);
                } else if let Some(m) = st.as_object_mut() {
                    m.remove(field);
                }
            }
            st["ready"] = json!(0);
            st["terminating"] = json!(0);
            st["uncountedTerminatedPods"] = json!({});
        })
    });
}

fn push_condition(job: &mut Value, c: Value) {
    if !job["status"]["conditions"].is_array() {
        job["status"]["conditions"] = json!([]);
    }
    if let Some(list) = job["status"]["conditions"].as_array_mut() {
        list.push(c);
    }
}

fn job_event(shared: &Shared, key: &Key, warning: bool, reason: &str, message: &str) {
    if let Some(job) = shared.read(|s| s.get(key).cloned()) {
        events::record(shared, &job, "job-controller", warning, reason, message);
    }
}

fn finish_succeeded(shared: &Shared, key: &Key, failed: u64) {
    set_job_counts(shared, key, 0, failed, 1);
    let reason = Some("CompletionsReached");
    let message = Some("Reached expected number of succeeded pods");
    shared.write(|s| {
        s.modify(key, |j| {
            push_condition(j, condition("SuccessCriteriaMet", true, reason, message))
        })
    });
    shared.write(|s| {
        s.modify(key, |j| {
            j["status"]["completionTime"] = json!(now());
            push_condition(j, condition("Complete", true, reason, message));
        })
    });
    job_event(shared, key, false, "Completed", "Job completed");
    schedule_ttl(shared, key);
}

fn finish_failed(shared: &Shared, key: &Key, failed: u64, reason: &str, message: &str) {
    set_job_counts(shared, key, 0, failed, 0);
    shared.write(|s| {
        s.modify(key, |j| {
            push_condition(
                j,
                condition("FailureTarget", true, Some(reason), Some(message)),
            )
        })
    });
    shared.write(|s| {
        s.modify(key, |j| {
            push_condition(j, condition("Failed", true, Some(reason), Some(message)))
        })
    });
    job_event(shared, key, true, reason, message);
    schedule_ttl(shared, key);
}

/// `ttlSecondsAfterFinished`: the TTL controller deletes the finished Job (background).
fn schedule_ttl(shared: &Shared, key: &Key) {
    let ttl = shared.read(|s| {
        s.get(key)
            .and_then(|j| j["spec"]["ttlSecondsAfterFinished"].as_u64())
    });
    let (Some(ttl), Some(shared)) = (ttl, shared_arc(shared)) else {
        return;
    };
    let key = key.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(ttl)).await;
        delete_job(&shared, &key, "Background");
    });
}

/// The `Arc` of the shared state, for tasks started from code that holds a reference.
fn shared_arc(shared: &Shared) -> Option<Arc<Shared>> {
    shared.me.upgrade()
}

/// Creates the next pod of a Job from its template: `Err(None)` when the Job is gone or
/// its namespace is terminating, `Err(Some(e))` when admission refused the pod.
fn create_job_pod(shared: &Shared, job_key: &Key) -> Result<Key, Option<ApiError>> {
    shared.write(|s| {
        let job = s.get(job_key).ok_or(None)?.clone();
        // The job controller creates no pod for a Job that is being deleted: syncJob calls
        // manageJob only while `job.DeletionTimestamp == nil` (kubernetes
        // pkg/controller/job/job_controller.go), so a foreground deletion cannot race with
        // a replacement pod.
        if !job["metadata"]["deletionTimestamp"].is_null() {
            return Err(None);
        }
        let ns = s
            .get(&Key::new(namespaces(), "", &job_key.namespace))
            .ok_or(None)?;
        if ns["status"]["phase"] == "Terminating" {
            return Err(None);
        }
        let template = &job["spec"]["template"];
        let mut meta = template["metadata"].clone();
        if !meta.is_object() {
            meta = json!({});
        }
        meta["generateName"] = json!(format!("{}-", job_key.name));
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"]["batch.kubernetes.io/job-tracking"] = json!("");
        meta["ownerReferences"] = json!([{
            "apiVersion": "batch/v1", "kind": "Job", "name": job_key.name,
            "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
        }]);
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"].clone()});
        super::verbs::set_defaults(rt("pods"), &mut pod, "");
        pod["metadata"]["name"] = json!(format!("{}-{}", job_key.name, s.random_suffix()));
        admission::limit_ranges(s, &job_key.namespace, &mut pod).map_err(Some)?;
        admission::pod_security(s, &job_key.namespace, &pod).map_err(Some)?;
        admission::quota(s, &job_key.namespace, &pod).map_err(Some)?;
        let created = s.create(rt("pods"), &job_key.namespace, pod).map_err(Some)?;
        Ok(Key::new(
            rt("pods"),
            &job_key.namespace,
            created["metadata"]["name"].as_str().unwrap_or_default(),
        ))
    })
}

fn owned_pods(shared: &Shared, namespace: &str, uid: &Value) -> Vec<Key> {
    shared.read(|s| {
        s.list("pods", Some(namespace))
            .iter()
            .filter(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == *uid))
            })
            .map(|p| {
                Key::new(
                    rt("pods"),
                    namespace,
                    p["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// Deletes a Job with `policy` (`Orphan`, `Background` or `Foreground`).
pub(crate) fn delete_job(shared: &Shared, key: &Key, policy: &str) -> (u16, Value) {
    let Some(job) = shared.read(|s| s.get(key).cloned()) else {
        return (404, ApiError::not_found(rt("jobs"), &key.name).status());
    };
    let uid = job["metadata"]["uid"].clone();
    let pods = owned_pods(shared, &key.namespace, &uid);
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": key.name, "group": "batch", "kind": "jobs", "uid": uid}});
    match policy {
        "Foreground" => {
            let marked = shared.write(|s| {
                s.modify(key, |j| {
                    j["metadata"]["deletionTimestamp"] = json!(now());
                    j["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    j["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
                })
            });
            for p in &pods {
                delete_pod(shared, p);
            }
            if let Some(shared) = shared_arc(shared) {
                let key = key.clone();
                tokio::spawn(async move {
                    while pods.iter().any(|p| shared.read(|s| s.get(p).is_some())) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    shared.write(|s| s.remove(&key));
                });
            }
            (200, marked.unwrap_or(job))
        }
        "Background" => {
            shared.write(|s| s.remove(key));
            for p in &pods {
                delete_pod(shared, p);
            }
            (200, status)
        }
        _ => {
            for p in &pods {
                set_pod(shared, p, |pod| {
                    if let Some(m) = pod["metadata"].as_object_mut() {
                        m.remove("ownerReferences");
                    }
                });
            }
            shared.write(|s| s.remove(key));
            (200, status)
        }
    }
}
