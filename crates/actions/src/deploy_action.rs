//! The runner's own deploy action, `hybrid-runner/deploy@v1`: it sets an image on
//! Kubernetes workloads by digest and watches the rollout. The engine serves it
//! (`hr_engine::deploy_step`, where its inputs are read); it is recognised here so that
//! every place that fetches, resolves or copies actions leaves it alone, as it does the
//! built-in builds ([`crate::image_build::is_builtin_build_action`]).

/// `owner/name` of the action, as written in `uses:` (without the ref).
pub const DEPLOY_ACTION: &str = "hybrid-runner/deploy";

/// Whether `uses` names `hybrid-runner/deploy@<any ref>`.
///
/// Owner and name compare case-insensitively (as GitHub does); a sub-path
/// (`hybrid-runner/deploy/sub@v1`) or a missing `@ref` is not the action.
pub fn is_builtin_deploy_action(uses: &str) -> bool {
    crate::image_build::name_at_a_ref(uses)
        .is_some_and(|name| name.eq_ignore_ascii_case(DEPLOY_ACTION))
}

/// Whether the runner serves `uses` itself and never fetches it: the built-in builds
/// (`docker/build-push-action`, `hybrid-runner/build`) and `hybrid-runner/deploy`.
pub fn is_served_by_runner(uses: &str) -> bool {
    crate::image_build::is_builtin_build_action(uses).is_some() || is_builtin_deploy_action(uses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_action_is_recognised_at_any_ref_and_only_at_its_root() {
        assert!(is_builtin_deploy_action("hybrid-runner/deploy@v1"));
        assert!(is_builtin_deploy_action(" Hybrid-Runner/Deploy@main "));
        assert!(!is_builtin_deploy_action("hybrid-runner/deploy"));
        assert!(!is_builtin_deploy_action("hybrid-runner/deploy@"));
        assert!(!is_builtin_deploy_action("hybrid-runner/deploy/sub@v1"));
        assert!(!is_builtin_deploy_action("hybrid-runner/build@v1"));
        assert!(is_served_by_runner("hybrid-runner/build@v1"));
        assert!(is_served_by_runner("docker/build-push-action@v6"));
        assert!(is_served_by_runner("hybrid-runner/deploy@v1"));
        assert!(!is_served_by_runner("actions/checkout@v4"));
    }
}
