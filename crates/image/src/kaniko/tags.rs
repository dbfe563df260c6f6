//! The tags of a dual build: variant `docker` gets `latest`, `docker-latest`,
//! `docker-<sha>`; variant `k8s` gets `k8s-latest`, `k8s-<sha>`. Templates are configurable.

use super::Variant;

pub use actions::image_build::TagTemplates;

/// The full image references (`image:tag`) each variant pushes, in the order of `variants`;
/// a tag repeated within a variant is kept once.
pub fn dual_tags(
    image: &str,
    sha: &str,
    variants: &[Variant],
    templates: &TagTemplates,
) -> Vec<(Variant, Vec<String>)> {
    variants
        .iter()
        .map(|&variant| {
            (
                variant,
                actions::image_build::dual_tags(image, sha, variant, templates),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn default_dual_tags() {
        let tags = dual_tags(
            "registry.local:5000/app",
            SHA,
            &Variant::ALL,
            &TagTemplates::default(),
        );
        assert_eq!(
            tags,
            vec![
                (
                    Variant::Docker,
                    vec![
                        "registry.local:5000/app:latest".to_string(),
                        "registry.local:5000/app:docker-latest".to_string(),
                        format!("registry.local:5000/app:docker-{SHA}"),
                    ]
                ),
                (
                    Variant::K8s,
                    vec![
                        "registry.local:5000/app:k8s-latest".to_string(),
                        format!("registry.local:5000/app:k8s-{SHA}"),
                    ]
                ),
            ]
        );
    }

    #[test]
    fn short_sha_custom_templates_and_one_variant() {
        let templates = TagTemplates {
            docker: vec!["{sha}".into(), "{sha}".into(), "stable".into()],
            k8s: vec!["k-{sha}".into()],
            sha_length: Some(7),
        };
        let tags = dual_tags("app", SHA, &[Variant::Docker], &templates);
        assert_eq!(
            tags,
            vec![(
                Variant::Docker,
                vec!["app:0123456".to_string(), "app:stable".to_string()]
            )]
        );
        let tags = dual_tags("app", "abc", &[Variant::K8s], &templates);
        assert_eq!(tags, vec![(Variant::K8s, vec!["app:k-abc".to_string()])]);
    }
}
