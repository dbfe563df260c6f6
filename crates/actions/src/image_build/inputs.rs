//! Reading action inputs the way `docker/build-push-action` does, and small reference helpers
//! shared by the three forms.
//!
//! List inputs follow the action's documented rules (README "inputs" table, and the
//! `getInputList` helper of `@docker/actions-toolkit`): a value is split on newlines, each line
//! is split on commas unless the input takes whole lines (`build-args`, `labels`), fields may be
//! double-quoted CSV-style (`"a,b"` stays one item, `""` is a literal quote), items are trimmed
//! and empty items dropped. `#` has no special meaning (no comment stripping).

use super::error::BuildInputError;
use crate::inputs::boolean_value;
pub(crate) use crate::inputs::get;

/// A list input: newline separated; also comma separated unless `whole_lines`.
pub(crate) fn list(value: Option<&str>, whole_lines: bool) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let mut items = Vec::new();
    for line in value.lines() {
        if whole_lines {
            items.push(unquote_whole(line.trim()));
        } else {
            items.extend(split_csv(line));
        }
    }
    items.retain(|item| !item.is_empty());
    items
}

/// A line taken whole keeps its commas; surrounding double quotes are removed.
fn unquote_whole(line: &str) -> String {
    if line.len() >= 2 && line.starts_with('"') && line.ends_with('"') {
        line[1..line.len() - 1].replace("\"\"", "\"")
    } else {
        line.to_string()
    }
}

/// One CSV record: commas split, double quotes group, `""` inside quotes is a quote.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    fields.push(current.trim().to_string());
    fields
}

/// A boolean input, accepting what `core.getBooleanInput` accepts (YAML 1.2 core schema:
/// `true`/`True`/`TRUE`/`false`/`False`/`FALSE`); absent -> `default`.
pub(crate) fn boolean(
    action: &'static str,
    inputs: &[(String, String)],
    name: &str,
    default: bool,
) -> Result<bool, BuildInputError> {
    let Some(text) = get(inputs, name) else {
        return Ok(default);
    };
    boolean_value(text).ok_or_else(|| BuildInputError::InvalidValue {
        action,
        input: name.to_string(),
        value: text.to_string(),
        remedy: "write `true` or `false`".to_string(),
    })
}

/// `K=V` (the value may contain `=`) -> `(K, V)`.
pub(crate) fn key_value(item: &str) -> Option<(String, String)> {
    let (key, value) = item.split_once('=')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), value.to_string()))
}

/// `name` -> `name:latest`; a reference that already has a tag or a digest is kept.
pub(crate) fn with_default_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

/// The single platform the runner builds for: `linux/<arch of this runner>`.
pub(crate) fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    format!("linux/{arch}")
}

/// Whether `platforms` names nothing but the host's platform (`linux/amd64` also matches
/// `linux/amd64/v1`-style variants of the same architecture).
pub(crate) fn only_host_platform(platforms: &[String]) -> bool {
    let host = host_platform();
    platforms.iter().all(|p| {
        let p = p.trim();
        p == host
            || p.strip_prefix(host.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The Dockerfile default: `<context>/Dockerfile`, or `Dockerfile` for context `.`.
pub(crate) fn in_context(context: &str, file: &str) -> String {
    let context = context.trim_end_matches('/');
    if context.is_empty() || context == "." {
        file.to_string()
    } else {
        format!("{context}/{file}")
    }
}

/// A `cache-from`/`cache-to` entry the runner can honour (its own registry layer cache):
/// `type=registry`, `type=inline`, or a bare reference (which means `type=registry`).
pub(crate) fn cache_entry_honoured(entry: &str) -> bool {
    let kind = entry
        .split(',')
        .find_map(|field| field.trim().strip_prefix("type="))
        .map(str::trim);
    match kind {
        None => !entry.contains('='),
        Some(kind) => matches!(kind, "registry" | "inline"),
    }
}

/// A whole-line `K=V` list input (`build-args`, `labels`).
pub(crate) fn pairs(
    action: &'static str,
    inputs: &[(String, String)],
    name: &str,
) -> Result<Vec<(String, String)>, BuildInputError> {
    list(get(inputs, name), true)
        .into_iter()
        .map(|item| {
            key_value(&item).ok_or_else(|| BuildInputError::InvalidValue {
                action,
                input: name.to_string(),
                value: item.clone(),
                remedy: "write one `NAME=value` per line".to_string(),
            })
        })
        .collect()
}
