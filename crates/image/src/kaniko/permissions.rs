//! The permissions a Kaniko build needs under its configuration (the table itself is
//! `hr_cluster::permissions`).

use hr_cluster::permissions::*;

use super::config::{ContextMode, KanikoConfig, LargeContextMode};

/// The permissions builds need under `config`: what every build does, plus the PVC and
/// loader pod, attach, Secret, quota and LimitRange only when `config` uses them.
pub fn needed_permissions(config: &KanikoConfig) -> Vec<Permission> {
    let (pvc, stdin) = match config.context_mode {
        ContextMode::ConfigMap => (false, false),
        ContextMode::Pvc => (true, false),
        ContextMode::Stdin => (false, true),
        ContextMode::Auto => (
            config.large_context == LargeContextMode::Pvc,
            config.large_context == LargeContextMode::Stdin,
        ),
    };
    let mut needed = vec![
        NAMESPACES,
        JOBS,
        if pvc { PODS_WITH_LOADER } else { PODS_READ },
        POD_LOGS,
        CONFIGMAPS,
        EVENTS,
        LEASES,
    ];
    if pvc {
        needed.push(PVCS);
    }
    if pvc || stdin {
        needed.push(POD_ATTACH);
    }
    if config.registry_secret.is_some() {
        needed.push(SECRETS);
    }
    if config.quota.is_some() {
        needed.push(RESOURCE_QUOTAS);
    }
    if config.limit_range.is_some() {
        needed.push(LIMIT_RANGES);
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_configuration() {
        let plain = KanikoConfig {
            context_mode: ContextMode::ConfigMap,
            ..KanikoConfig::default()
        };
        let needed = needed_permissions(&plain);
        assert!(needed.contains(&PODS_READ));
        assert!(needed.contains(&EVENTS));
        assert!(!needed.contains(&POD_ATTACH));
        assert!(!needed.contains(&SECRETS));
        let stdin = KanikoConfig {
            context_mode: ContextMode::Stdin,
            registry_secret: Some(b"{}".to_vec()),
            ..KanikoConfig::default()
        };
        let needed = needed_permissions(&stdin);
        assert!(needed.contains(&POD_ATTACH) && needed.contains(&SECRETS));
        assert!(!needed.contains(&PVCS));
        // The default (auto, large contexts on a PVC) needs the loader pod.
        let needed = needed_permissions(&KanikoConfig::default());
        assert!(needed.contains(&PODS_WITH_LOADER) && needed.contains(&PVCS));
        for p in needed {
            assert!(
                ALL_PERMISSIONS
                    .iter()
                    .any(|a| a.path() == p.path() && p.verbs.iter().all(|v| a.verbs.contains(v)))
            );
        }
        assert_eq!(POD_LOGS.path(), "pods/log");
        assert_eq!(JOBS.path(), "batch/jobs");
        assert_eq!(POD_ATTACH.rbac_resource(), "pods/attach");
        assert_eq!(POD_EXEC.rbac_resource(), "pods/exec");
        for p in job_pod_permissions() {
            assert!(ALL_PERMISSIONS.contains(&p), "{}", p.path());
        }
        let merged = with_job_pods(needed_permissions(&plain));
        assert!(merged.contains(&POD_EXEC) && merged.contains(&PODS_WITH_LOADER));
        assert!(!merged.contains(&PODS_READ));
        assert_eq!(merged.iter().filter(|p| **p == NAMESPACES).count(), 1);
    }
}
