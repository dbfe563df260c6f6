//! The runner's own dual-tag build action, `hybrid-runner/build@v1`.
//!
//! Inputs: `image` (required, `registry/name` without a tag), `context` (default `.`),
//! `dockerfile` (default `Dockerfile`), `k8s-dockerfile` (default `Dockerfile.k8s` when it
//! exists), both relative to `context`; `variants` (`docker`, `k8s`, `docker,k8s` or `both`;
//! default: `k8s` too when a k8s Dockerfile is available), `tags` (extra tag names),
//! `build-args`, `target`, `push` (default `true`), `cache` (default `true`),
//! `skip-unchanged` (default `false`: when `true` and pushing, an image already in the
//! registry that was built from the same context, Dockerfile and build args is tagged
//! instead of rebuilt).
//!
//! Tags come from [`TagTemplates`]: by default variant `docker` gets `latest`, `docker-latest`,
//! `docker-<sha>` and variant `k8s` gets `k8s-latest`, `k8s-<sha>`. An extra tag `v1` becomes
//! `v1` on the docker image and `k8s-v1` on the k8s image, mirroring `latest`/`k8s-latest`.
//! Outputs (per variant, see [`OutputsStyle::Dual`]): digest, `name@digest`, tags.

use std::path::PathBuf;

use super::error::BuildInputError;
use super::inputs::{boolean, get, in_context, list, pairs};
use super::request::{BuildRequest, OutputsStyle, Variant, VariantRequest};

/// `owner/name` of the action, as written in `uses:` (without the ref).
pub const DUAL_ACTION: &str = "hybrid-runner/build";

const ACTION: &str = DUAL_ACTION;

const KNOWN_INPUTS: &[&str] = &[
    "image",
    "context",
    "dockerfile",
    "k8s-dockerfile",
    "variants",
    "tags",
    "build-args",
    "target",
    "push",
    "cache",
    "skip-unchanged",
    "docker-tag-templates",
    "k8s-tag-templates",
];

/// Tag templates per variant; `{sha}` stands for the commit sha, cut to `sha_length`
/// characters when set (the full sha otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplates {
    pub docker: Vec<String>,
    pub k8s: Vec<String>,
    pub sha_length: Option<usize>,
}

impl Default for TagTemplates {
    fn default() -> Self {
        TagTemplates {
            docker: vec![
                "latest".to_string(),
                "docker-latest".to_string(),
                "docker-{sha}".to_string(),
            ],
            k8s: vec!["k8s-latest".to_string(), "k8s-{sha}".to_string()],
            sha_length: None,
        }
    }
}

impl TagTemplates {
    fn for_variant(&self, variant: Variant) -> &[String] {
        match variant {
            Variant::Docker => &self.docker,
            Variant::K8s => &self.k8s,
        }
    }

    fn sha<'a>(&self, sha: &'a str) -> &'a str {
        match self.sha_length {
            Some(n) => sha.get(..n).unwrap_or(sha),
            None => sha,
        }
    }
}

/// The full references (`image:tag`) of `variant`, in template order.
pub fn dual_tags(
    image: &str,
    sha: &str,
    variant: Variant,
    templates: &TagTemplates,
) -> Vec<String> {
    let sha = templates.sha(sha);
    let mut refs: Vec<String> = Vec::new();
    for template in templates.for_variant(variant) {
        let reference = format!("{image}:{}", template.replace("{sha}", sha));
        if !refs.contains(&reference) {
            refs.push(reference);
        }
    }
    refs
}

/// The workspace-relative path of the k8s Dockerfile `inputs` point at (the explicit
/// `k8s-dockerfile`, else `<context>/Dockerfile.k8s`): the file the caller checks before
/// calling [`from_dual_inputs`].
pub fn dual_k8s_dockerfile(inputs: &[(String, String)]) -> String {
    let context = get(inputs, "context").unwrap_or(".");
    in_context(
        context,
        get(inputs, "k8s-dockerfile").unwrap_or("Dockerfile.k8s"),
    )
}

fn invalid(input: &str, value: &str, remedy: impl Into<String>) -> BuildInputError {
    BuildInputError::InvalidValue {
        action: ACTION,
        input: input.to_string(),
        value: value.to_string(),
        remedy: remedy.into(),
    }
}

/// `hybrid-runner/build@v1` inputs -> [`BuildRequest`] tagged by [`dual_tags`].
/// The runner's tag templates, with a variant's list replaced where the step gives
/// `docker-tag-templates` / `k8s-tag-templates` (comma or newline separated, `{sha}` for the
/// commit sha); the rendered tags are checked like every other tag.
fn with_template_inputs(inputs: &[(String, String)], base: &TagTemplates) -> TagTemplates {
    let mut templates = base.clone();
    let docker = list(get(inputs, "docker-tag-templates"), false);
    if !docker.is_empty() {
        templates.docker = docker;
    }
    let k8s = list(get(inputs, "k8s-tag-templates"), false);
    if !k8s.is_empty() {
        templates.k8s = k8s;
    }
    templates
}

/// The default `k8s-dockerfile` is used only if `k8s_dockerfile_exists` (the caller checks
/// [`dual_k8s_dockerfile`]); an explicit `k8s-dockerfile` is trusted.
pub fn from_dual_inputs(
    inputs: &[(String, String)],
    sha: &str,
    k8s_dockerfile_exists: bool,
    templates: &TagTemplates,
) -> Result<BuildRequest, BuildInputError> {
    if let Some(name) = crate::inputs::unknown_input(inputs, KNOWN_INPUTS) {
        return Err(BuildInputError::Unsupported {
            action: ACTION,
            input: name.to_string(),
            remedy: format!(
                "it is not an input of {ACTION}; known inputs: {}",
                KNOWN_INPUTS.join(", ")
            ),
        });
    }
    let image = get(inputs, "image").ok_or_else(|| BuildInputError::Missing {
        action: ACTION,
        input: "image".to_string(),
        remedy:
            "set `image: registry.example.com/owner/name` (no tag; tags come from the variants)"
                .to_string(),
    })?;
    check_image(image)?;
    let templates = &with_template_inputs(inputs, templates);
    if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            "sha",
            sha,
            "the commit sha (GITHUB_SHA) must be set; run the build from a checked-out commit",
        ));
    }

    let context = get(inputs, "context").unwrap_or(".").to_string();
    let k8s_available = get(inputs, "k8s-dockerfile").is_some() || k8s_dockerfile_exists;
    let variants = variants(get(inputs, "variants"), k8s_available)?;
    if variants.contains(&Variant::K8s) && !k8s_available {
        return Err(invalid(
            "variants",
            get(inputs, "variants").unwrap_or(""),
            format!(
                "variant `k8s` needs a Dockerfile: add `{}`, set `k8s-dockerfile`, or use `variants: docker`",
                dual_k8s_dockerfile(inputs)
            ),
        ));
    }
    let extra = list(get(inputs, "tags"), false);
    for tag in &extra {
        let rendered = tag.replace("{sha}", templates.sha(sha));
        if !valid_tag(&rendered) {
            return Err(invalid(
                "tags",
                tag,
                "give tag names only (letters, digits, `_`, `.`, `-`, at most 128); the image name comes from `image`",
            ));
        }
    }

    let mut requests = Vec::new();
    for variant in variants {
        let mut tags = dual_tags(image, sha, variant, templates);
        tags.extend(extra.iter().map(|tag| {
            let tag = tag.replace("{sha}", templates.sha(sha));
            match variant {
                Variant::Docker => format!("{image}:{tag}"),
                Variant::K8s => format!("{image}:k8s-{tag}"),
            }
        }));
        if let Some(bad) = tags
            .iter()
            .find(|t| !valid_tag(t.rsplit(':').next().unwrap_or("")))
        {
            return Err(invalid(
                "tags",
                bad,
                "a tag template renders an invalid tag; fix the runner's tag templates",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        tags.retain(|t| seen.insert(t.clone()));
        let dockerfile = match variant {
            Variant::Docker => {
                in_context(&context, get(inputs, "dockerfile").unwrap_or("Dockerfile"))
            }
            Variant::K8s => dual_k8s_dockerfile(inputs),
        };
        requests.push(VariantRequest {
            variant,
            dockerfile,
            tags,
        });
    }

    Ok(BuildRequest {
        context: PathBuf::from(context),
        variants: requests,
        build_args: pairs(ACTION, inputs, "build-args")?,
        target: get(inputs, "target").map(str::to_string),
        labels: Vec::new(),
        push: boolean(ACTION, inputs, "push", true)?,
        cache: boolean(ACTION, inputs, "cache", true)?,
        skip_unchanged: boolean(ACTION, inputs, "skip-unchanged", false)?,
        outputs_for: OutputsStyle::Dual,
    })
}

/// `variants` -> the variants in canonical order (docker first).
fn variants(value: Option<&str>, k8s_available: bool) -> Result<Vec<Variant>, BuildInputError> {
    let Some(value) = value else {
        return Ok(if k8s_available {
            vec![Variant::Docker, Variant::K8s]
        } else {
            vec![Variant::Docker]
        });
    };
    let (mut docker, mut k8s) = (false, false);
    for item in list(Some(value), false) {
        match item.to_ascii_lowercase().as_str() {
            "docker" => docker = true,
            "k8s" | "kubernetes" => k8s = true,
            "both" => (docker, k8s) = (true, true),
            _ => {
                return Err(invalid(
                    "variants",
                    &item,
                    "use `docker`, `k8s`, or `docker,k8s` (`both`)",
                ));
            }
        }
    }
    let mut out = Vec::new();
    if docker {
        out.push(Variant::Docker);
    }
    if k8s {
        out.push(Variant::K8s);
    }
    if out.is_empty() {
        return Err(invalid(
            "variants",
            value,
            "use `docker`, `k8s`, or `docker,k8s`",
        ));
    }
    Ok(out)
}

/// `registry/name` without tag or digest, as Docker's reference grammar has it: an optional
/// registry host (`host[:port]`, recognised by a `.` or `:` or as `localhost`), then path
/// components of lower-case letters and digits joined by `.`, `_`, `__` or dashes.
pub fn check_image(image: &str) -> Result<(), BuildInputError> {
    let remedy = "write `registry/name` without a tag or digest (tags come from the variants), in lower case";
    let fail = || Err(invalid("image", image, remedy));
    let (host, path) = match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, image),
    };
    if let Some(host) = host {
        let (name, port) = host
            .split_once(':')
            .map_or((host, None), |(n, p)| (n, Some(p)));
        let name_ok = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !name_ok || !port_ok {
            return fail();
        }
    }
    if path.is_empty() || !path.split('/').all(path_component) {
        return fail();
    }
    Ok(())
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
}

/// A Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
