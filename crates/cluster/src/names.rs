//! Kubernetes names and label values derived from free-form ids: DNS-1123 labels of at
//! most 63 characters, readable where possible, made unique by a short hash of the input.

use sha2::{Digest, Sha256};

/// Longest DNS-1123 label (namespace names, label values).
const MAX_LABEL: usize = 63;
/// Hex digits of the uniqueness hash.
const HASH_LEN: usize = 10;

/// The namespace of one build: `<prefix>-<task>-<job>-<hash>`, a DNS-1123 label of at most
/// 63 characters. The readable parts are lowercased, reduced to `[a-z0-9-]` and shortened
/// as needed; the hash covers the exact runner, task and job ids, so distinct inputs give
/// distinct names even when their readable parts coincide.
pub fn namespace_name(prefix: &str, runner: &str, task: &str, job: &str) -> String {
    let hash = short_hash(&[prefix, runner, task, job]);
    let prefix = truncate(&slug(prefix), 12);
    let room = MAX_LABEL - HASH_LEN - 1;
    let mut parts: Vec<String> = [prefix, slug(task), slug(job)]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    // Shorten the longest part until everything fits before the hash.
    while joined_len(&parts) > room {
        let Some(longest) = (0..parts.len()).max_by_key(|&i| parts[i].len()) else {
            break;
        };
        let excess = joined_len(&parts) - room;
        let keep = parts[longest].len().saturating_sub(excess).max(1);
        parts[longest] = truncate(&parts[longest], keep);
        if parts[longest].len() == 1 && joined_len(&parts) > room {
            parts.remove(longest);
        }
    }
    let mut name = parts.join("-");
    if !name.is_empty() {
        name.push('-');
    }
    name.push_str(&hash);
    name
}

/// A label value for a free-form id: the id itself when it is a valid label value, else a
/// cleaned, shortened form ending in a hash of the original. Full ids belong in annotations.
pub fn label_value(id: &str) -> String {
    if is_label_value(id) {
        return id.to_string();
    }
    let hash = short_hash(&[id]);
    let mut cleaned: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned = truncate_with(&cleaned, MAX_LABEL - HASH_LEN - 1, |c| {
        c.is_ascii_alphanumeric()
    });
    if cleaned.is_empty() {
        hash
    } else {
        format!("{cleaned}-{hash}")
    }
}

/// Whether `s` is a DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS-1123 subdomain, what most object names must be: dot-separated
/// [DNS-1123 labels](is_dns1123_label), at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Whether `s` is a label value: empty, or `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?` of at
/// most 63 characters.
pub fn is_label_value(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let edge = |c: char| c.is_ascii_alphanumeric();
    s.len() <= MAX_LABEL
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(edge)
        && s.ends_with(edge)
}

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(HASH_LEN);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
        if hex.len() >= HASH_LEN {
            break;
        }
    }
    hex.truncate(HASH_LEN);
    hex
}

/// Lowercase `[a-z0-9-]`, runs of other characters collapsed into one `-`, no `-` at the ends.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn truncate(s: &str, max: usize) -> String {
    truncate_with(s, max, |c| c != '-')
}

/// The first `max` characters of ASCII `s`, then trailing characters failing `end_ok` removed.
fn truncate_with(s: &str, max: usize, end_ok: impl Fn(char) -> bool) -> String {
    let cut: String = s.chars().take(max).collect();
    cut.trim_end_matches(|c: char| !end_ok(c))
        .trim_start_matches(|c: char| !end_ok(c))
        .to_string()
}

fn joined_len(parts: &[String]) -> usize {
    parts.iter().map(String::len).sum::<usize>() + parts.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_short_valid_and_readable() {
        let name = namespace_name("hr", "runner-1", "1234", "build");
        assert!(is_dns1123_label(&name), "{name}");
        assert!(name.starts_with("hr-1234-build-"), "{name}");
        let long = "Very Long Task Name With Spaces And ÜNICODE ".repeat(5);
        let name = namespace_name("HR_Prefix!", "r", &long, &long);
        assert!(is_dns1123_label(&name), "{name}");
        assert_eq!(name.len(), 63);
        let name = namespace_name("", "", "", "");
        assert!(is_dns1123_label(&name), "{name}");
        assert_eq!(name.len(), HASH_LEN);
    }

    #[test]
    fn namespace_names_are_deterministic_and_distinct() {
        let a = namespace_name("hr", "r", "task", "job/a");
        assert_eq!(a, namespace_name("hr", "r", "task", "job/a"));
        // Same slug, different ids: the hash tells them apart.
        let b = namespace_name("hr", "r", "task", "job a");
        assert_ne!(a, b);
        assert_ne!(a, namespace_name("hr", "r2", "task", "job/a"));
        assert_ne!(a, namespace_name("hr", "r", "task2", "job/a"));
    }

    #[test]
    fn label_values_keep_valid_ids_and_shorten_others() {
        assert_eq!(label_value("runner-7"), "runner-7");
        let value = label_value("owner/repo@refs/heads/main");
        assert!(is_label_value(&value), "{value}");
        assert!(value.starts_with("owner-repo-refs-heads-main-"), "{value}");
        let long = "x".repeat(100);
        let value = label_value(&long);
        assert!(is_label_value(&value) && value.len() <= 63, "{value}");
        assert_ne!(label_value(&long), label_value(&"x".repeat(101)));
        assert!(is_label_value(&label_value("!!!")));
    }

    #[test]
    fn dns1123_rules() {
        assert!(is_dns1123_label("a-1"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }
}
