//! `build --deploy`: "rebuild what changed, deploy it" in one command. Every service that
//! built deploys its k8s image (its docker image when it has no k8s variant) by the tag
//! naming the commit; a service whose image was reused (`--skip-unchanged`) is not
//! restarted, and a service whose build failed is not deployed.

use actions::image_build::Variant;
use hr_image::metrics::BuildResult;

use super::report::ServiceReport;
use super::services::ServicePlan;
use crate::cli::UsageError;
use crate::cli::deploy::plan::{ServiceTargets, check_distinct, entry_targets};

/// What one service brings to the deploy: its entry, and per variant the tags it was built
/// with (taken from the plan before the builds consume it).
#[derive(Debug, Clone)]
pub struct Deployable {
    pub plan_name: String,
    pub entry: super::services::ServiceEntry,
    /// The commit as the tags spell it (cut to `--short-sha`).
    pub sha: String,
    pub variants: Vec<(Variant, Vec<String>)>,
}

impl Deployable {
    pub fn of(plan: &ServicePlan, short_sha: Option<usize>) -> Deployable {
        let sha = &plan.job.sha;
        Deployable {
            plan_name: plan.name.clone(),
            entry: plan.entry.clone(),
            sha: short_sha
                .and_then(|n| sha.get(..n))
                .unwrap_or(sha)
                .to_string(),
            variants: plan
                .job
                .request
                .variants
                .iter()
                .map(|v| (v.variant, v.tags.clone()))
                .collect(),
        }
    }
}

/// The tag that names the commit (`k8s-<sha>`; `sha` as the tags spell it), else the last.
fn commit_tag<'a>(tags: &'a [String], sha: &str) -> Option<&'a String> {
    tags.iter()
        .find(|t| {
            t.rsplit_once(':')
                .is_some_and(|(_, tag)| !sha.is_empty() && tag.contains(sha))
        })
        .or(tags.last())
}

/// The services to deploy after the builds, and a note per service left out.
pub fn targets_after_build(
    deployables: &[Deployable],
    reports: &[ServiceReport],
    default_namespace: &str,
) -> Result<(Vec<ServiceTargets>, Vec<String>), UsageError> {
    let mut services = Vec::new();
    let mut notes = Vec::new();
    for d in deployables {
        let name = &d.plan_name;
        let Some(report) = reports.iter().find(|r| &r.name == name) else {
            continue;
        };
        if report.result != BuildResult::Success {
            notes.push(format!("{name}: not deployed, its build did not succeed"));
            continue;
        }
        let Some((variant, tags)) = d
            .variants
            .iter()
            .find(|(v, _)| *v == Variant::K8s)
            .or_else(|| d.variants.first())
        else {
            continue;
        };
        let reused = report
            .variants
            .iter()
            .any(|v| v.variant == *variant && v.reused);
        if reused {
            notes.push(format!(
                "{name}: not restarted, its {} image was reused (unchanged inputs)",
                variant.as_str()
            ));
            continue;
        }
        let Some(tag) = commit_tag(tags, &d.sha) else {
            continue;
        };
        services.push(ServiceTargets {
            service: name.clone(),
            note: None,
            targets: entry_targets(&d.entry, tag, default_namespace)?,
        });
    }
    check_distinct(&services)?;
    Ok((services, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_tag_is_the_one_holding_the_sha() {
        let tags = vec![
            "reg/api:k8s-latest".to_string(),
            "reg/api:k8s-0123456".to_string(),
            "reg/api:k8s-v1".to_string(),
        ];
        assert_eq!(
            commit_tag(&tags, "0123456").map(String::as_str),
            Some("reg/api:k8s-0123456")
        );
        // `--short-sha 4` with an extra tag: the commit's tag, not the last one.
        let short = vec![
            "reg/api:k8s-latest".to_string(),
            "reg/api:k8s-0123".to_string(),
            "reg/api:k8s-v1".to_string(),
        ];
        assert_eq!(
            commit_tag(&short, "0123").map(String::as_str),
            Some("reg/api:k8s-0123")
        );
        let custom = vec!["reg/api:stable".to_string()];
        assert_eq!(
            commit_tag(&custom, "0123456789").map(String::as_str),
            Some("reg/api:stable")
        );
    }
}
