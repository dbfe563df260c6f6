//! The patch formats the API server applies besides JSON merge patch (`store::merge_patch`):
//!
//! - *Strategic merge patch* (`application/strategic-merge-patch+json`), as
//!   staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go applies it to the
//!   Pod fields a client patches: maps merge recursively (`null` deletes a key); a list
//!   whose field has a `patchMergeKey` in staging/src/k8s.io/api/core/v1/types.go merges
//!   element by element on that key (a new key is appended, `"$patch": "delete"` removes
//!   the element, an element `{"$patch": "replace"}` makes the rest of the patch list the
//!   whole list); any other list is replaced. `$setElementOrder/<field>` and
//!   `$retainKeys` directives are read and ignored (the order of the stored list is kept;
//!   kubectl sends them, kube-rs does not); `$deleteFromPrimitiveList/<field>` removes
//!   values from a list of strings.
//! - *JSON patch* (`application/json-patch+json`, RFC 6902): `add`, `remove`, `replace`,
//!   `move`, `copy`, `test`, with RFC 6901 pointers.

use serde_json::{Map, Value};

/// The `patchMergeKey` of a list field of the Pod API (the fields a pod patch can reach;
/// every other list is `replace`d, as lists without the tag are).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "resizePolicy" => "resourceName",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Applies a strategic merge patch to `target`; `Err` with the API server's text for a
/// malformed directive.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            *target = Value::Object(m);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some(other) => return Err(format!("Unknown patch type: {other} in map: {patch}")),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return Ok(());
    };
    for (k, v) in p {
        if k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let Some(list) = t.get_mut(field).and_then(Value::as_array_mut) {
                let gone: Vec<&Value> = v.as_array().into_iter().flatten().collect();
                list.retain(|x| !gone.contains(&x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (v.as_array(), merge_key(k)) {
            (Some(items), Some(key)) => {
                let current = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(current, items, key)?;
            }
            _ => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v)?,
        }
    }
    Ok(())
}

/// Merges the patch `items` into the list `current` element by element on `key`.
fn merge_list(current: &mut Value, items: &[Value], key: &str) -> Result<(), String> {
    if items.iter().any(|i| i["$patch"] == "replace") {
        let rest: Vec<Value> = items
            .iter()
            .filter(|i| i["$patch"] != "replace")
            .cloned()
            .collect();
        *current = Value::Array(rest);
        return Ok(());
    }
    if !current.is_array() {
        *current = Value::Array(Vec::new());
    }
    let Some(list) = current.as_array_mut() else {
        return Ok(());
    };
    for item in items {
        let Some(id) = item.get(key).filter(|v| !v.is_null()) else {
            // Elements without their merge key cannot be matched: the API server says so.
            return Err(format!(
                "map: {item} does not contain declared merge key: {key}"
            ));
        };
        let at = list.iter().position(|e| e.get(key) == Some(id));
        match (item["$patch"].as_str(), at) {
            (Some("delete"), Some(i)) => {
                list.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => strategic_merge(&mut list[i], item)?,
            (_, None) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item)?;
                list.push(fresh);
            }
        }
    }
    Ok(())
}

/// The tokens of an RFC 6901 pointer (`~1` is `/`, `~0` is `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "invalid JSON pointer {pointer:?}: it must start with '/'"
        ));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The parent of the value at `path` and the last token.
fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(path)?;
    let Some(last) = toks.pop() else {
        return Err("cannot operate on the document root".to_string());
    };
    let mut at = doc;
    for t in toks {
        at = match at {
            Value::Object(m) => m
                .get_mut(&t)
                .ok_or_else(|| format!("doc is missing path: {path:?}"))?,
            Value::Array(a) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| format!("invalid array index {t:?} in {path:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("doc is missing path: {path:?}"))?
            }
            _ => return Err(format!("doc is missing path: {path:?}")),
        };
    }
    Ok((at, last))
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut at = doc;
    for t in tokens(path)? {
        at = match at {
            Value::Object(m) => m.get(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
    }
    Ok(at)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent(doc, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| format!("invalid array index {last:?} in {path:?}"))?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = parent(doc, path)?;
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("doc is missing path: {path:?}")),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(format!("doc is missing path: {path:?}")),
        },
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

/// Applies an RFC 6902 JSON patch (a list of operations) to `doc`.
pub(crate) fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let Some(ops) = ops.as_array() else {
        return Err("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into());
    };
    for op in ops {
        let path = op["path"].as_str().unwrap_or_default();
        match op["op"].as_str().unwrap_or_default() {
            "add" => add(doc, path, op["value"].clone())?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                get(doc, path)?;
                if path.is_empty() {
                    *doc = op["value"].clone();
                } else {
                    remove(doc, path)?;
                    add(doc, path, op["value"].clone())?;
                }
            }
            "move" => {
                let from = op["from"].as_str().unwrap_or_default();
                let value = remove(doc, from)?;
                add(doc, path, value)?;
            }
            "copy" => {
                let from = op["from"].as_str().unwrap_or_default();
                let value = get(doc, from)?.clone();
                add(doc, path, value)?;
            }
            "test" => {
                if get(doc, path)? != &op["value"] {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_container_lists_by_name() {
        let mut pod = json!({"spec": {"ephemeralContainers": [{"name": "a", "image": "x"}],
            "containers": [{"name": "steps", "env": [{"name": "A", "value": "1"}]}]}});
        strategic_merge(
            &mut pod,
            &json!({"spec": {
                "ephemeralContainers": [{"name": "b", "image": "y"}],
                "containers": [{"name": "steps", "env": [{"name": "B", "value": "2"}]}]}}),
        )
        .unwrap();
        assert_eq!(
            pod["spec"]["ephemeralContainers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
        );
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        strategic_merge(
            &mut pod,
            &json!({"spec": {"ephemeralContainers": [{"name": "a", "$patch": "delete"}, {"name": "b", "image": "z"}]}}),
        )
        .unwrap();
        assert_eq!(
            pod["spec"]["ephemeralContainers"],
            json!([{"name": "b", "image": "z"}])
        );
        // Lists without a merge key are replaced.
        let mut c = json!({"command": ["a", "b"]});
        strategic_merge(&mut c, &json!({"command": ["c"]})).unwrap();
        assert_eq!(c, json!({"command": ["c"]}));
        let err = strategic_merge(
            &mut pod,
            &json!({"spec": {"ephemeralContainers": [{"image": "q"}]}}),
        )
        .unwrap_err();
        assert!(
            err.contains("does not contain declared merge key: name"),
            "{err}"
        );
    }

    #[test]
    fn json_patches_follow_rfc_6902() {
        let mut doc = json!({"spec": {"ephemeralContainers": [{"name": "a"}]}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/spec/ephemeralContainers/0/name", "value": "a"},
                {"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "b"}},
                {"op": "replace", "path": "/spec/ephemeralContainers/0/name", "value": "c"},
                {"op": "copy", "from": "/spec/ephemeralContainers/1", "path": "/spec/x"},
                {"op": "remove", "path": "/spec/x"},
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"ephemeralContainers": [{"name": "c"}, {"name": "b"}]}})
        );
        let err =
            json_patch(&mut doc, &json!([{"op": "remove", "path": "/spec/nope"}])).unwrap_err();
        assert_eq!(err, "doc is missing path: \"/spec/nope\"");
    }
}
