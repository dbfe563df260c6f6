//! Pod admission as the LimitRanger and ResourceQuota plugins do it: container defaults and
//! maxima from the namespace's LimitRanges, then every ResourceQuota's `hard` limits on
//! `pods`, `requests.*` and `limits.*` checked against the non-terminal pods already there
//! (403 `must specify` / `exceeded quota`, with the real messages), and `status.used` kept.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::api::{ApiError, resource_named};
use super::store::{Key, Store};

/// A quantity in base units (cores, bytes): `500m`, `2`, `1Gi`, `512M`, `1e3`.
pub(crate) fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}

fn objects(store: &Store, plural: &str, ns: &str) -> Vec<Value> {
    store.list(plural, Some(ns))
}

/// Fills container requests and limits from the LimitRanges of `ns` and enforces their
/// `max`; requests default to limits, as the API server defaults them.
pub(crate) fn limit_ranges(store: &Store, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ranges = objects(store, "limitranges", ns);
    let Some(containers) = pod["spec"]["containers"].as_array_mut() else {
        return Ok(());
    };
    for c in containers {
        for range in &ranges {
            for item in range["spec"]["limits"].as_array().into_iter().flatten() {
                if item["type"] != "Container" {
                    continue;
                }
                for (field, source) in [("limits", "default"), ("requests", "defaultRequest")] {
                    for (res, value) in item[source].as_object().into_iter().flatten() {
                        if c["resources"][field].get(res).is_none() {
                            c["resources"][field][res] = value.clone();
                        }
                    }
                }
                for (res, max) in item["max"].as_object().into_iter().flatten() {
                    let limit = c["resources"]["limits"][res].as_str().and_then(quantity);
                    let cap = max.as_str().and_then(quantity);
                    if let (Some(l), Some(m)) = (limit, cap)
                        && l > m
                    {
                        return Err(forbidden(
                            &name,
                            &format!(
                                "maximum {res} usage per Container is {}, but limit is {}",
                                max.as_str().unwrap_or_default(),
                                c["resources"]["limits"][res].as_str().unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
        }
        let limits = c["resources"]["limits"].clone();
        for (res, value) in limits.as_object().into_iter().flatten() {
            if c["resources"]["requests"].get(res).is_none() {
                c["resources"]["requests"][res] = value.clone();
            }
        }
    }
    Ok(())
}

fn forbidden(pod: &str, why: &str) -> ApiError {
    let mut e = ApiError::bad_request(format!("pods \"{pod}\" is forbidden: {why}"));
    e.code = 403;
    e.reason = "Forbidden";
    e.details = json!({"name": pod, "kind": "pods"});
    e
}

/// What a pod counts against a quota resource name, if the name is tracked for pods.
fn usage(pod: &Value, resource: &str) -> Option<Option<f64>> {
    if resource == "pods" || resource == "count/pods" {
        return Some(Some(1.0));
    }
    let (field, res) = match resource.split_once('.') {
        Some(("requests", r)) => ("requests", r),
        Some(("limits", r)) => ("limits", r),
        None if matches!(resource, "cpu" | "memory" | "ephemeral-storage") => {
            ("requests", resource)
        }
        _ => return None,
    };
    let mut total = 0.0;
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        match c["resources"][field][res].as_str().and_then(quantity) {
            Some(q) => total += q,
            None => return Some(None),
        }
    }
    Some(Some(total))
}

fn live(pod: &Value) -> bool {
    !matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Checks `pod` against every ResourceQuota of `ns`; on success records the new usage in
/// each quota's `status`.
pub(crate) fn quota(store: &mut Store, ns: &str, pod: &Value) -> Result<(), ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let existing: Vec<Value> = objects(store, "pods", ns)
        .into_iter()
        .filter(live)
        .collect();
    let quotas = objects(store, "resourcequotas", ns);
    let mut updates = Vec::new();
    for q in &quotas {
        let qname = q["metadata"]["name"].as_str().unwrap_or_default();
        let mut used = BTreeMap::new();
        for (res, hard) in q["spec"]["hard"].as_object().into_iter().flatten() {
            let Some(wanted) = usage(pod, res) else {
                continue;
            };
            let Some(wanted) = wanted else {
                return Err(forbidden(
                    name,
                    &format!("failed quota: {qname}: must specify {res}"),
                ));
            };
            let in_use: f64 = existing
                .iter()
                .filter_map(|p| usage(p, res).flatten())
                .sum();
            let limit = hard.as_str().and_then(quantity).unwrap_or(f64::INFINITY);
            if in_use + wanted > limit + 1e-9 {
                return Err(forbidden(
                    name,
                    &format!(
                        "exceeded quota: {qname}, requested: {res}={}, used: {res}={}, limited: {res}={}",
                        show(wanted),
                        show(in_use),
                        hard.as_str().unwrap_or_default()
                    ),
                ));
            }
            used.insert(res.clone(), json!(show(in_use + wanted)));
        }
        updates.push((qname.to_string(), q["spec"]["hard"].clone(), used));
    }
    let Some(rt) = resource_named("resourcequotas") else {
        return Ok(());
    };
    for (qname, hard, used) in updates {
        store.modify(&Key::new(rt, ns, &qname), |q| {
            q["status"] = json!({"hard": hard, "used": used});
        });
    }
    Ok(())
}

/// A quantity written back the short way (`1.5`, `500m`, `1073741824`).
fn show(q: f64) -> String {
    if q.fract().abs() < 1e-9 {
        format!("{}", q.round() as i64)
    } else {
        format!("{}m", (q * 1000.0).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_in_base_units() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("1Gi"), Some(1073741824.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("20G"), Some(2e10));
        assert_eq!(quantity("1x"), None);
        assert_eq!(show(0.5), "500m");
        assert_eq!(show(4.0), "4");
    }
}
