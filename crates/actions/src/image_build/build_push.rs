//! `docker/build-push-action` inputs -> [`BuildRequest`].
//!
//! Supported: `context` (default `.`, the checked-out workspace; the action's own default is
//! the Git context, which in this runner is the same tree; `{{defaultContext}}:sub` is `sub`),
//! `file` (default `<context>/Dockerfile`), `tags`, `push`, `build-args`, `target`, `labels`,
//! `no-cache`, `platforms` (the host's single platform only), `cache-from`/`cache-to` of type
//! `registry` or `inline` (served by the runner's own layer cache; their refs are not used).
//! Inputs that only tune the client (`builder`, `github-token`, `pull`, `provenance`, `load:
//! false`, `sbom: false`) are accepted and ignored. Everything else is refused with what to do
//! instead, including names the action does not have (GitHub would only warn).

use std::path::PathBuf;

use super::error::BuildInputError;
use super::inputs::{
    boolean, cache_entry_honoured, get, host_platform, in_context, list, only_host_platform, pairs,
    with_default_tag,
};
use super::request::{BuildRequest, OutputsStyle, Variant, VariantRequest};

/// `owner/name` of the action, as written in `uses:` (without the ref).
pub const BUILD_PUSH_ACTION: &str = "docker/build-push-action";

const ACTION: &str = BUILD_PUSH_ACTION;

/// Inputs that must stay unset (or empty), with the advice given when they are not.
const REFUSED_WHEN_SET: &[(&str, &str)] = &[
    (
        "outputs",
        "the runner pushes to a registry only; drop `outputs` and use `push: true`",
    ),
    (
        "secrets",
        "build secrets are not forwarded; pass the value as a `build-args` entry or fetch it in a `run:` step before the build",
    ),
    (
        "secret-files",
        "build secrets are not forwarded; copy the file into the build context or use a `build-args` entry",
    ),
    (
        "secret-envs",
        "build secrets are not forwarded; pass the value as a `build-args` entry",
    ),
    (
        "ssh",
        "SSH agent forwarding is not available; fetch private sources in a `run:` step before the build and copy them into the context",
    ),
    (
        "build-contexts",
        "extra named contexts are not supported; copy what you need into `context`",
    ),
    (
        "add-hosts",
        "custom host entries are not supported; use resolvable names in the Dockerfile",
    ),
    (
        "allow",
        "extra entitlements are not granted by this runner; remove `allow`",
    ),
    (
        "network",
        "the build network cannot be chosen; remove `network`",
    ),
    (
        "cgroup-parent",
        "remove `cgroup-parent`; builds run in the runner's own sandbox",
    ),
    (
        "shm-size",
        "remove `shm-size`; the build sandbox size is fixed by the runner",
    ),
    (
        "ulimit",
        "remove `ulimit`; the build sandbox limits are fixed by the runner",
    ),
    (
        "annotations",
        "OCI annotations are not written; use `labels` instead",
    ),
    ("attests", "attestations are not produced; remove `attests`"),
    (
        "no-cache-filters",
        "use `no-cache: true` to rebuild every stage",
    ),
    (
        "call",
        "only plain builds are run; remove `call` (or set it to `build`)",
    ),
];

/// Inputs read elsewhere or accepted without effect.
const ACCEPTED: &[&str] = &[
    "context",
    "file",
    "tags",
    "push",
    "build-args",
    "target",
    "labels",
    "no-cache",
    "platforms",
    "cache-from",
    "cache-to",
    "load",
    "builder",
    "github-token",
    "pull",
    "provenance",
    "sbom",
];

fn unsupported(input: &str, remedy: impl Into<String>) -> BuildInputError {
    BuildInputError::Unsupported {
        action: ACTION,
        input: input.to_string(),
        remedy: remedy.into(),
    }
}

/// `docker/build-push-action` inputs (as GitHub passes them: multi-line or comma-separated
/// lists, `build-args`/`labels` one `K=V` per line) -> [`BuildRequest`], or an error naming the
/// unsupported input and what to do instead.
pub fn from_build_push_inputs(
    inputs: &[(String, String)],
) -> Result<BuildRequest, BuildInputError> {
    for (name, value) in inputs {
        let name = name.trim().to_ascii_lowercase();
        if value.trim().is_empty() {
            continue;
        }
        if let Some((_, remedy)) = REFUSED_WHEN_SET.iter().find(|(n, _)| *n == name) {
            if name == "call" && value.trim() == "build" {
                continue;
            }
            return Err(unsupported(&name, *remedy));
        }
        if !ACCEPTED.contains(&name.as_str()) {
            return Err(unsupported(
                &name,
                "it is not an input of docker/build-push-action known to this runner; remove it",
            ));
        }
    }

    if boolean(ACTION, inputs, "load", false)? {
        return Err(unsupported(
            "load",
            "there is no local Docker daemon to load into; set `push: true` and pull the image by its digest (output `digest`) where you need it",
        ));
    }
    let platforms = list(get(inputs, "platforms"), false);
    if platforms.len() > 1 || !only_host_platform(&platforms) {
        return Err(unsupported(
            "platforms",
            format!(
                "this runner builds for its own platform only ({}); remove `platforms` or build the other platforms on a matching runner",
                host_platform()
            ),
        ));
    }
    for input in ["cache-from", "cache-to"] {
        if let Some(entry) = list(get(inputs, input), true)
            .into_iter()
            .find(|entry| !cache_entry_honoured(entry))
        {
            return Err(unsupported(
                input,
                format!(
                    "cache `{entry}` cannot be honoured; remove `{input}` (the runner keeps its own layer cache; `no-cache: true` turns it off) or use `type=registry`"
                ),
            ));
        }
    }
    let sbom = get(inputs, "sbom");
    if sbom.is_some_and(|v| !v.eq_ignore_ascii_case("false")) {
        return Err(unsupported("sbom", "SBOMs are not produced; remove `sbom`"));
    }

    let context = context(get(inputs, "context"))?;
    let dockerfile = get(inputs, "file")
        .map(str::to_string)
        .unwrap_or_else(|| in_context(&context, "Dockerfile"));
    let tags = list(get(inputs, "tags"), false)
        .iter()
        .map(|tag| with_default_tag(tag))
        .collect();
    let build_args = pairs(ACTION, inputs, "build-args")?;
    let labels = pairs(ACTION, inputs, "labels")?;
    let no_cache = boolean(ACTION, inputs, "no-cache", false)?;
    // `pull` and `provenance` are read only to reject malformed values early.
    boolean(ACTION, inputs, "pull", false)?;

    Ok(BuildRequest {
        context: PathBuf::from(context),
        variants: vec![VariantRequest {
            variant: Variant::Docker,
            dockerfile,
            tags,
        }],
        build_args,
        target: get(inputs, "target").map(str::to_string),
        labels,
        push: boolean(ACTION, inputs, "push", false)?,
        cache: !no_cache,
        skip_unchanged: false,
        outputs_for: OutputsStyle::BuildPush,
    })
}

/// `context` as the action reads it: absent or `{{defaultContext}}` is the checked-out
/// repository (the workspace, `.`); `{{defaultContext}}:sub` is `sub` in it; a remote Git or
/// tarball URL is refused (the runner builds from the workspace only).
fn context(value: Option<&str>) -> Result<String, BuildInputError> {
    let Some(value) = value else {
        return Ok(".".to_string());
    };
    if let Some(rest) = value.strip_prefix("{{defaultContext}}") {
        return match rest.strip_prefix(':') {
            Some(sub) if !sub.trim().is_empty() => Ok(sub.trim().to_string()),
            _ if rest.is_empty() => Ok(".".to_string()),
            _ => Err(BuildInputError::InvalidValue {
                action: ACTION,
                input: "context".to_string(),
                value: value.to_string(),
                remedy: "write `{{defaultContext}}:subdir` or a path in the workspace".to_string(),
            }),
        };
    }
    if value.contains("://") || value.starts_with("git@") {
        return Err(unsupported(
            "context",
            "remote build contexts are not fetched; check the repository out in an earlier step and give its path",
        ));
    }
    Ok(value.to_string())
}
