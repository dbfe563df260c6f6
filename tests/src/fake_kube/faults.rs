//! The faults a test can inject into the fake cluster, at start or while it runs: image pull
//! failures, unschedulable pods, forced build failures, slow namespace deletion, API errors
//! on matching requests, RBAC denials, stdin corrupted on the way through attach, and
//! execs that stall.

use std::time::Duration;

/// What goes wrong in the fake cluster. Set it in [`super::FakeKubeOptions::faults`] or
/// change it later with [`super::FakeKube::update_faults`]; the kubelet reads it at every
/// step, so clearing a fault lets a waiting pod go on.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Pods stay `Pending`, their containers waiting with `ErrImagePull`, then
    /// `ImagePullBackOff`, alternating until the fault is cleared.
    pub image_pull_failure: bool,
    /// Pods stay `Pending` with the condition `PodScheduled=False`, reason `Unschedulable`.
    pub unschedulable: bool,
    /// Every build fails (exit code 1) with this text in its log, without running buildah.
    pub build_failure: Option<String>,
    /// How long a deleted namespace stays `Terminating` before it and its contents go.
    /// `None` means the default of [`super::FakeKubeOptions::namespace_deletion_delay`].
    pub namespace_deletion_delay: Option<Duration>,
    /// The next matching requests answer 500 with an `InternalError` Status.
    pub api_errors: Vec<ApiFault>,
    /// The next this many watches that resume from a `resourceVersion` get an ERROR event
    /// with a 410 `Expired` Status ("too old resource version") and end, as after etcd
    /// compaction; clients must re-list.
    pub expired_watches: usize,
    /// RBAC denials: matching requests answer 403 and SelfSubjectAccessReviews say
    /// `allowed: false`.
    pub deny: Vec<DenyRule>,
    /// RBAC as a real cluster grants it: when set, only requests matching one of these
    /// rules (same `verb` / `resource` patterns as [`DenyRule`]) are allowed; every other
    /// one is denied like a `deny` match. `None`: everything not denied is allowed.
    pub allow_only: Option<Vec<DenyRule>>,
    /// The next this many attach sessions that write stdin get one byte of it flipped on
    /// the way to the container, as a broken proxy or link would.
    pub corrupt_uploads: usize,
    /// Pods that reach `Running` are evicted at once by the kubelet's node-pressure
    /// eviction, with this message (`The node was low on resource: memory. ...`): phase
    /// `Failed`, reason `Evicted`, a `DisruptionTarget` condition (`TerminationByKubelet`),
    /// their containers killed (137) and a Warning `Evicted` event, as
    /// pkg/kubelet/eviction/eviction_manager.go does it.
    pub evict: Option<String>,
    /// Execs whose command line (its words joined by spaces) contains one of these texts
    /// are upgraded and then stall: the command never runs, nothing comes back and the
    /// session never ends, as with a hung kubelet, node or proxy. The client must give up
    /// on its own.
    pub stall_execs: Vec<String>,
}

/// The next `remaining` requests whose method equals `method` (any when empty) and whose
/// path contains `path_contains` answer 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFault {
    pub method: String,
    pub path_contains: String,
    pub remaining: usize,
}

/// Denies `verb` (e.g. `create`, `get`, `list`, `watch`, `delete`, `patch`, `update`; `*`
/// for all) on `resource` (a plural such as `jobs`, or `pods/log`; `*` for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    pub verb: String,
    pub resource: String,
}

impl DenyRule {
    pub fn new(verb: &str, resource: &str) -> Self {
        DenyRule {
            verb: verb.to_string(),
            resource: resource.to_string(),
        }
    }

    pub(crate) fn matches(&self, verb: &str, resource: &str) -> bool {
        (self.verb == "*" || self.verb == verb)
            && (self.resource == "*" || self.resource == resource)
    }
}

impl Faults {
    /// Consumes one matching API fault, if any, and says whether this request must fail.
    pub(crate) fn take_api_error(&mut self, method: &str, path: &str) -> bool {
        let hit = self.api_errors.iter_mut().find(|f| {
            f.remaining > 0
                && (f.method.is_empty() || f.method.eq_ignore_ascii_case(method))
                && path.contains(&f.path_contains)
        });
        match hit {
            Some(fault) => {
                fault.remaining -= 1;
                self.api_errors.retain(|f| f.remaining > 0);
                true
            }
            None => false,
        }
    }

    pub(crate) fn denied(&self, verb: &str, resource: &str) -> bool {
        self.deny.iter().any(|r| r.matches(verb, resource))
            || self
                .allow_only
                .as_ref()
                .is_some_and(|allow| !allow.iter().any(|r| r.matches(verb, resource)))
    }
}
