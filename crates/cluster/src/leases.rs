//! Build leases: how a build namespace shows that the runner process which created it is
//! still there. A Kaniko Job left behind by a runner that crashed or lost its host would
//! otherwise run until its deadline and could push `latest` over a newer build.
//!
//! Every build namespace holds one `coordination.k8s.io/v1` Lease, [`BUILD_LEASE_NAME`],
//! whose `holderIdentity` is the creating process ([`process_instance`]) and whose
//! `renewTime` that process advances every [`RENEW_EVERY`] while the build runs. The
//! daemon's periodic [`LeaseReaper`] deletes a build namespace (with its Jobs and pods)
//! once its lease has stopped moving for longer than its duration plus a margin ([`lapse_after`]),
//! whichever runner it belongs to: the runner that is gone cannot do it itself.
//!
//! As client-go's leader election does (`tools/leaderelection/leaderelection.go`,
//! `observedTime`), a lease is judged by when *this* process saw its `renewTime` change,
//! on its own monotonic clock, never by comparing the holder's wall clock with ours: hosts
//! whose clocks disagree cannot reap each other's live builds.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use crate::connect::{ClusterError, retry, status_code};
use crate::names::label_value;
use crate::namespaces::{MANAGED_BY, RUNNER_ID_LABEL, delete_namespace};

/// The name of the Lease in every build namespace.
pub const BUILD_LEASE_NAME: &str = "hybrid-runner-build";
/// How long a lease is valid after each renewal (`leaseDurationSeconds`).
pub const LEASE_DURATION: Duration = Duration::from_secs(60);
/// How often the building process renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);

/// How long a lease must have stood still, as the reaper saw it, before its namespace is
/// deleted: its duration and half that again (room for a slow API server or a renewal
/// that had to be retried); 90 s for [`LEASE_DURATION`].
pub fn lapse_after(duration: Duration) -> Duration {
    duration + duration / 2
}

/// This process's identity as a lease holder: random per process, the same for every
/// build it runs.
pub fn process_instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let seed = format!("{nanos}-{}-{}", std::process::id(), host.trim());
        let digest = Sha256::digest(seed.as_bytes());
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}-{short}", host.trim())
    })
}

fn micro_time(t: SystemTime) -> Option<MicroTime> {
    Timestamp::try_from(t).ok().map(MicroTime)
}

/// The Lease a build of runner `runner_id` creates in its namespace, held by this process
/// and renewed at `now`.
pub fn build_lease(runner_id: &str, now: SystemTime) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(BUILD_LEASE_NAME.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                (RUNNER_ID_LABEL.to_string(), label_value(runner_id)),
            ])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(process_instance().to_string()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: micro_time(now),
            renew_time: micro_time(now),
            ..Default::default()
        }),
    }
}

/// Holds the build lease of `namespace` for as long as the returned future is polled:
/// creates it, then renews it every `renew_every` ([`RENEW_EVERY`] for builds). Never
/// returns. A lease that cannot be
/// created (an older ClusterRole without `coordination.k8s.io/leases`) is logged once and
/// the build goes on without one; the namespace is then reaped by its expiry only.
pub async fn hold_build_lease(
    client: Client,
    namespace: String,
    runner_id: String,
    renew_every: Duration,
) -> Infallible {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let lease = build_lease(&runner_id, SystemTime::now());
    let post = PostParams::default();
    match retry(|| api.create(&post, &lease)).await {
        Ok(_) => {}
        Err(e) if status_code(&e) == Some(409) => {}
        Err(e) => {
            tracing::warn!(
                namespace = %namespace,
                error = %crate::describe(&e),
                "cannot create the build lease; a crash of this runner leaves the build running until the namespace expires (grant create, patch and list on coordination.k8s.io leases: `hybrid-runner generate-manifests` renders them)"
            );
            return std::future::pending().await;
        }
    }
    loop {
        tokio::time::sleep(renew_every).await;
        let Some(now) = micro_time(SystemTime::now()) else {
            continue;
        };
        let patch = serde_json::json!({
            "spec": {"renewTime": now, "holderIdentity": process_instance()}
        });
        let params = PatchParams::default();
        let merge = Patch::Merge(&patch);
        if let Err(e) = retry(|| api.patch(BUILD_LEASE_NAME, &params, &merge)).await {
            tracing::warn!(namespace = %namespace, error = %crate::describe(&e), "cannot renew the build lease");
        }
    }
}

/// What the reaper last saw of one lease.
#[derive(Debug, Clone)]
struct Observed {
    /// `holderIdentity` and `renewTime` as the server stored them.
    record: (Option<String>, Option<String>),
    /// When this process first saw that record.
    since: Instant,
    duration: Duration,
}

/// Judges build leases across reaper runs (see the module's documentation) and deletes
/// the namespaces of lapsed ones.
#[derive(Debug, Default)]
pub struct LeaseReaper {
    observed: HashMap<String, Observed>,
}

/// A build namespace whose runner is gone, and why the reaper thinks so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapsedLease {
    pub namespace: String,
    pub holder: String,
    pub runner_id: String,
    /// How long this process has seen the lease stand still.
    pub still_for: Duration,
}

impl LeaseReaper {
    pub fn new() -> LeaseReaper {
        LeaseReaper::default()
    }

    /// Records `leases` as seen at `now` and returns those that have stood still for
    /// longer than [`lapse_after`] their duration. Leases held by this process are
    /// never lapsed; leases no longer listed are forgotten.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) -> Vec<LapsedLease> {
        let mut seen = HashMap::new();
        let mut lapsed = Vec::new();
        for lease in leases {
            let (Some(namespace), Some(spec)) = (lease.namespace(), lease.spec.as_ref()) else {
                continue;
            };
            if lease.name_any() != BUILD_LEASE_NAME
                || lease.metadata.deletion_timestamp.is_some()
                || spec.holder_identity.as_deref() == Some(process_instance())
            {
                continue;
            }
            let record = (
                spec.holder_identity.clone(),
                spec.renew_time.as_ref().map(|t| t.0.to_string()),
            );
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(LEASE_DURATION, Duration::from_secs);
            let entry = match self.observed.remove(&namespace) {
                Some(old) if old.record == record => Observed { duration, ..old },
                _ => Observed {
                    record,
                    since: now,
                    duration,
                },
            };
            let still_for = now.saturating_duration_since(entry.since);
            if still_for > lapse_after(entry.duration) {
                lapsed.push(LapsedLease {
                    namespace: namespace.clone(),
                    holder: entry.record.0.clone().unwrap_or_default(),
                    runner_id: lease
                        .labels()
                        .get(RUNNER_ID_LABEL)
                        .cloned()
                        .unwrap_or_default(),
                    still_for,
                });
            }
            seen.insert(namespace, entry);
        }
        self.observed = seen;
        lapsed
    }

    /// Lists every build lease, and deletes the namespaces whose lease has lapsed; returns
    /// them. The first deletion error is returned after every namespace was tried.
    pub async fn reap(&mut self, client: &Client) -> Result<Vec<LapsedLease>, ClusterError> {
        let api: Api<Lease> = Api::all(client.clone());
        let params = ListParams::default()
            .labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1))
            .fields(&format!("metadata.name={BUILD_LEASE_NAME}"));
        let list = retry(|| api.list(&params))
            .await
            .map_err(|cause| ClusterError::Api {
                action: "cannot list the build leases".to_string(),
                cause,
            })?;
        let lapsed = self.observe(&list.items, Instant::now());
        let mut deleted = Vec::new();
        let mut first_error = None;
        for gone in lapsed {
            match delete_namespace(client, &gone.namespace).await {
                Ok(_) => {
                    self.observed.remove(&gone.namespace);
                    deleted.push(gone);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_in(ns: &str, holder: &str, renewed_secs: i64) -> Lease {
        let mut lease = build_lease("runner-a", SystemTime::UNIX_EPOCH);
        lease.metadata.namespace = Some(ns.to_string());
        let spec = lease.spec.as_mut().unwrap();
        spec.holder_identity = Some(holder.to_string());
        spec.renew_time = Some(MicroTime(Timestamp::from_second(renewed_secs).unwrap()));
        lease
    }

    #[test]
    fn a_lease_lapses_only_after_standing_still_past_its_duration_by_our_clock() {
        let mut reaper = LeaseReaper::new();
        let t0 = Instant::now();
        let gone = [lease_in("hr-a", "other-process", 100)];
        assert!(reaper.observe(&gone, t0).is_empty());
        let limit = lapse_after(LEASE_DURATION);
        assert_eq!(limit, Duration::from_secs(90));
        assert!(reaper.observe(&gone, t0 + limit).is_empty());
        let lapsed = reaper.observe(&gone, t0 + limit + Duration::from_secs(1));
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].namespace, "hr-a");
        assert_eq!(lapsed[0].holder, "other-process");
        assert_eq!(lapsed[0].runner_id, "runner-a");
    }

    #[test]
    fn a_renewed_lease_starts_its_clock_again_whatever_its_wall_clock_says() {
        let mut reaper = LeaseReaper::new();
        let t0 = Instant::now();
        let step = LEASE_DURATION;
        // The holder's clock is hours behind ours: the renewals still count.
        for (i, renewed) in [10, 30, 50, 70].into_iter().enumerate() {
            let at = t0 + step * i as u32;
            assert!(
                reaper
                    .observe(&[lease_in("hr-b", "live", renewed)], at)
                    .is_empty()
            );
        }
        // A new holder (the namespace was recreated by another build) resets it too.
        let at = t0 + step * 4;
        assert!(
            reaper
                .observe(&[lease_in("hr-b", "next", 70)], at)
                .is_empty()
        );
    }

    #[test]
    fn this_process_never_reaps_its_own_builds_and_forgets_vanished_leases() {
        let mut reaper = LeaseReaper::new();
        let t0 = Instant::now();
        let own = [lease_in("hr-own", process_instance(), 1)];
        assert!(reaper.observe(&own, t0).is_empty());
        assert!(
            reaper
                .observe(&own, t0 + Duration::from_secs(3600))
                .is_empty()
        );
        assert!(reaper.observe(&[lease_in("hr-c", "x", 1)], t0).is_empty());
        // hr-c is gone from the list, then back with the same record: a fresh clock.
        reaper.observe(&[], t0 + Duration::from_secs(10));
        assert!(
            reaper
                .observe(&[lease_in("hr-c", "x", 1)], t0 + Duration::from_secs(3600))
                .is_empty()
        );
    }

    #[test]
    fn the_lease_carries_the_runner_and_this_process() {
        let lease = build_lease("runner 7", SystemTime::now());
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some(process_instance()));
        assert_eq!(spec.lease_duration_seconds, Some(60));
        assert!(spec.renew_time.is_some());
        let labels = lease.metadata.labels.unwrap();
        assert_eq!(labels[MANAGED_BY.0], MANAGED_BY.1);
        assert_eq!(labels[RUNNER_ID_LABEL], label_value("runner 7"));
    }
}
