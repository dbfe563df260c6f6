//! A job's effective `cache-mode:` (GitHub, GA 2026-09-10): the job's own, else the
//! workflow's, else GitHub's default (`read` for low-trust events such as
//! `pull_request_target`, otherwise unrestricted); a called workflow's jobs never get more
//! than their caller allowed. The mode goes into the job's cache token, which this runner's
//! cache server enforces, and, when declared, into `ACTIONS_CACHE_MODE`, as actions/runner
//! exports the `actions_cache_mode` variable (`NodeScriptActionHandler`,
//! `ContainerActionHandler`).

use workflows::model::{CacheMode, Job, Workflow};

/// Events whose runs GitHub gives read-only cache access unless a mode is declared.
const LOW_TRUST_EVENTS: &[&str] = &["pull_request_target"];

/// What a job may do with the cache, once its mode and its callers' are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheAccess {
    pub restore: bool,
    pub save: bool,
    /// A mode was declared somewhere (the job, its workflow or a caller).
    pub declared: bool,
}

impl CacheAccess {
    /// No limit: what a run without any `cache-mode:` on a trusted event has.
    pub const UNLIMITED: CacheAccess = CacheAccess {
        restore: true,
        save: true,
        declared: false,
    };

    fn of(mode: CacheMode, declared: bool) -> CacheAccess {
        CacheAccess {
            restore: mode.may_restore(),
            save: mode.may_save(),
            declared,
        }
    }

    /// The mode these rights amount to.
    pub fn mode(self) -> CacheMode {
        match (self.restore, self.save) {
            (true, true) => CacheMode::Write,
            (true, false) => CacheMode::Read,
            (false, true) => CacheMode::WriteOnly,
            (false, false) => CacheMode::None,
        }
    }

    /// The mode to put in the job's token and `ACTIONS_CACHE_MODE`: `None` when nothing
    /// limits the job.
    pub fn token_mode(self) -> Option<&'static str> {
        (self != CacheAccess::UNLIMITED).then(|| self.mode().as_str())
    }

    /// At most what `cap` (a caller's access) allows.
    pub fn within(self, cap: CacheAccess) -> CacheAccess {
        CacheAccess {
            restore: self.restore && cap.restore,
            save: self.save && cap.save,
            declared: self.declared || cap.declared,
        }
    }
}

/// The access of `job` of `workflow` on `event`, capped by the caller's `cap`, and the
/// warning GitHub annotates a run with when a declared mode lets a low-trust event save.
pub fn job_access(
    workflow: &Workflow,
    job: &Job,
    event: &str,
    cap: CacheAccess,
) -> (CacheAccess, Option<String>) {
    let declared = job.cache_mode.as_ref().or(workflow.cache_mode.as_ref());
    let low_trust = LOW_TRUST_EVENTS.contains(&event);
    let own = match declared {
        Some(mode) => CacheAccess::of(mode.value, true),
        None if low_trust => CacheAccess::of(CacheMode::Read, false),
        None => CacheAccess::UNLIMITED,
    };
    let warning = declared
        .filter(|m| low_trust && m.value.may_save())
        .map(|m| {
            format!(
                "Warning: cache-mode '{}' lets this {event} run save caches, which runs of trusted events then restore: a pull request's code can poison them",
                m.value.as_str()
            )
        });
    (own.within(cap), warning)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn access(text: &str, event: &str, cap: CacheAccess) -> (CacheAccess, Option<String>) {
        let w = workflows::model::load(text, "w.yml").unwrap();
        job_access(&w, &w.jobs[0], event, cap)
    }

    const JOB: &str = "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n";

    #[test]
    fn the_job_overrides_the_workflow_and_callers_cap_it() {
        let (a, _) = access(&format!("on: push\n{JOB}"), "push", CacheAccess::UNLIMITED);
        assert_eq!(a.token_mode(), None);
        let text = format!("on: push\ncache-mode: read\n{JOB}");
        assert_eq!(
            access(&text, "push", CacheAccess::UNLIMITED).0.token_mode(),
            Some("read")
        );
        let text = "on: push\ncache-mode: read\njobs:\n  a:\n    cache-mode: write-only\n    runs-on: x\n    steps:\n      - run: echo\n";
        let (a, _) = access(text, "push", CacheAccess::UNLIMITED);
        assert_eq!(a.mode(), CacheMode::WriteOnly);
        // A caller allowing only restores leaves a write-only callee nothing.
        let read = CacheAccess::of(CacheMode::Read, true);
        assert_eq!(access(text, "push", read).0.mode(), CacheMode::None);
    }

    #[test]
    fn low_trust_events_default_to_read_and_a_declared_write_is_warned_about() {
        let (a, warning) = access(
            &format!("on: push\n{JOB}"),
            "pull_request_target",
            CacheAccess::UNLIMITED,
        );
        assert_eq!(a.token_mode(), Some("read"));
        assert!(!a.declared && warning.is_none());
        let text = format!("on: push\ncache-mode: write\n{JOB}");
        let (a, warning) = access(&text, "pull_request_target", CacheAccess::UNLIMITED);
        assert_eq!(a.mode(), CacheMode::Write);
        assert!(warning.unwrap().contains("can poison them"));
    }
}
