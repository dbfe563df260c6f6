//! The pod status the simulated kubelet writes (pkg/kubelet/status/generate.go and
//! kubelet_pods.go `generateAPIPodStatus`): phase, IPs, the five conditions with their
//! transition times, and each container's status; and what a deletion does to it.

use super::*;

impl Sim {
    fn names(
        &self,
        state: &State,
        field: &str,
        keep: impl Fn(&Value, Option<&Container>) -> bool,
    ) -> Vec<String> {
        self.pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                keep(
                    c,
                    state.containers.get(c["name"].as_str().unwrap_or_default()),
                )
            })
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Writes the pod's status from its containers' (`generateAPIPodStatus`).
    ///
    /// The status is made from one snapshot of the containers and written while that
    /// snapshot is still the newest: the pod's state lock is held from the first read to
    /// the store write. The containers of a pod change at once on different threads (two
    /// containers whose image pull ends together); a status made from an older snapshot
    /// and written last would stay (a container shown `ContainerCreating` while it runs,
    /// the pod never Ready, an `OrderedReady` StatefulSet stuck on it). The kubelet's
    /// status manager has the same rule: each status of a pod gets a version under
    /// `podStatusesLock`, and an older version is never written over a newer one
    /// (pkg/kubelet/status/status_manager.go `updateStatusInternal`, `syncPod`).
    pub(super) fn publish(&self) {
        let mut state = lock(&self.state);
        if !state.scheduled {
            return;
        }
        let incomplete = self.names(&state, "initContainers", |c, s| {
            if c["restartPolicy"] == "Always" {
                !s.is_some_and(|s| s.started)
            } else {
                !s.is_some_and(|s| s.state["terminated"]["exitCode"] == 0)
            }
        });
        let mut unready = self.names(&state, "containers", |_, s| !s.is_some_and(|s| s.ready));
        unready.extend(self.names(&state, "initContainers", |c, s| {
            c["restartPolicy"] == "Always" && !s.is_some_and(|s| s.ready)
        }));
        let initialized = state.init_done || incomplete.is_empty();
        let ready = initialized && unready.is_empty();
        let mut transition = |kind: &'static str, status: bool| -> String {
            match state.since.get(kind) {
                Some((s, at)) if *s == status => at.clone(),
                _ => {
                    let at = now();
                    state.since.insert(kind, (status, at.clone()));
                    at
                }
            }
        };
        let condition = |kind: &str,
                         status: bool,
                         at: String,
                         reason: Option<&str>,
                         message: Option<String>| {
            let mut c = json!({"type": kind, "status": if status { "True" } else { "False" },
                "lastProbeTime": null, "lastTransitionTime": at});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            if let Some(m) = message {
                c["message"] = json!(m);
            }
            c
        };
        let sandbox_at = transition("PodReadyToStartContainers", true);
        let init_at = transition("Initialized", initialized);
        let ready_at = transition("Ready", ready);
        let containers_ready_at = transition("ContainersReady", ready);
        let scheduled_at = transition("PodScheduled", true);
        let not_ready = (!ready).then(|| {
            if initialized {
                format!("containers with unready status: [{}]", unready.join(" "))
            } else {
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )
            }
        });
        let not_ready_reason = (!ready).then_some(if initialized {
            "ContainersNotReady"
        } else {
            "ContainersNotInitialized"
        });
        let conditions = json!([
            condition("PodReadyToStartContainers", true, sandbox_at, None, None),
            condition(
                "Initialized",
                initialized,
                init_at,
                (!initialized).then_some("ContainersNotInitialized"),
                (!initialized).then(|| format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )),
            ),
            condition(
                "Ready",
                ready,
                ready_at,
                not_ready_reason,
                not_ready.clone()
            ),
            condition(
                "ContainersReady",
                ready,
                containers_ready_at,
                not_ready_reason,
                not_ready
            ),
            condition("PodScheduled", true, scheduled_at, None, None),
        ]);
        let status_of = |c: &Value| -> Value {
            let name = c["name"].as_str().unwrap_or_default();
            let Some(s) = state.containers.get(name) else {
                return json!({"name": name});
            };
            let mut v = json!({
                "name": name, "image": s.image, "imageID": s.image_id, "ready": s.ready,
                "restartCount": s.restart_count, "started": s.started, "state": s.state,
                "lastState": s.last_state,
            });
            if let Some(id) = &s.container_id {
                v["containerID"] = json!(id);
            }
            v
        };
        let list = |field: &str| -> Vec<Value> {
            self.pod["spec"][field]
                .as_array()
                .into_iter()
                .flatten()
                .map(status_of)
                .collect()
        };
        let inits = list("initContainers");
        let mains = list("containers");
        let phase = state.phase;
        let (ip, started) = (self.ip.clone(), self.started_at.clone());
        // Still under the state lock (see above); the store's lock is never held while a
        // pod's state lock is taken, so the order state → store cannot deadlock.
        set_pod(&self.shared, &self.key, |p| {
            p["spec"]["nodeName"] = json!(super::super::daemonset::NODE);
            let s = &mut p["status"];
            s["phase"] = json!(phase);
            s["hostIP"] = json!("127.0.0.1");
            s["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
            s["podIP"] = json!(ip);
            s["podIPs"] = json!([{"ip": ip}]);
            s["startTime"] = json!(started);
            s["conditions"] = conditions;
            if !inits.is_empty() {
                s["initContainerStatuses"] = json!(inits);
            }
            s["containerStatuses"] = json!(mains);
        });
    }

    /// The pod is deleted: running containers are killed, their logs end.
    pub(super) fn kill(&self) {
        let names: Vec<String> = lock(&self.state).containers.keys().cloned().collect();
        for name in &names {
            self.shared.logs.finish(&self.log_key(name));
        }
        let mut state = lock(&self.state);
        if !state.scheduled {
            return;
        }
        for c in state.containers.values_mut() {
            if let Some(started) = c.state["running"]["startedAt"].as_str() {
                c.state = json!({"terminated": {"exitCode": 137, "reason": "Error",
                    "startedAt": started, "finishedAt": now(),
                    "containerID": c.container_id}});
            }
            c.ready = false;
            c.started = false;
        }
        drop(state);
        self.publish();
    }
}
