//! The object store of the fake: every object as JSON keyed by resource, namespace and name,
//! a monotonic `resourceVersion`, and the log of watch events (kept whole, so a watch can
//! resume from any version it was given).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::api::{ApiError, ResourceType, now};

/// Where an object lives: its resource type (plural), namespace (`""` when cluster
/// scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub plural: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Key {
            plural: rt.plural,
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub key: Key,
    pub kind: EventType,
    pub object: Value,
    /// The object before a modification (to tell when it starts or stops matching a
    /// selector).
    pub old: Option<Value>,
}

#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    pub events: Vec<Event>,
    seed: u64,
}

/// The characters Kubernetes uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Store {
    pub fn new(seed: u64) -> Self {
        Store {
            seed: seed | 1,
            rv: 1,
            ..Store::default()
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Five random characters from the alphabet of generated names.
    pub fn random_suffix(&mut self) -> String {
        (0..5)
            .map(|_| {
                NAME_ALPHABET[(self.next_random() % NAME_ALPHABET.len() as u64) as usize] as char
            })
            .collect()
    }

    pub fn uid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of `plural`, in `namespace` when given, in key order (as etcd lists them).
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.plural == plural && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Keys of every object in `namespace`.
    pub fn keys_in(&self, namespace: &str) -> Vec<Key> {
        self.objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect()
    }

    fn record(&mut self, key: Key, kind: EventType, object: Value, old: Option<Value>) {
        self.events.push(Event {
            rv: self.rv,
            key,
            kind,
            object,
            old,
        });
    }

    /// Stores a new object: fills in name (from `generateName`), namespace, `uid`,
    /// `resourceVersion`, `creationTimestamp` and `generation`. 409 when the name is taken.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON object",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let mut name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match obj["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    name = format!("{prefix}{}", self.random_suffix());
                }
                _ => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                }
            }
        }
        let key = Key::new(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        self.rv += 1;
        let uid = match obj["metadata"]["uid"].as_str() {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => self.uid(),
        };
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        if rt.namespaced {
            meta["namespace"] = json!(namespace);
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["creationTimestamp"] = json!(now());
        if rt.has_generation() {
            meta["generation"] = json!(1);
        }
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
        }
        self.objects.insert(key.clone(), obj.clone());
        self.record(key, EventType::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces a stored object with `new`, keeping its identity (`uid`, creation time,
    /// name, namespace) and bumping `resourceVersion` and, when the spec changed,
    /// `generation`. A write that changes nothing is a no-op, as in Kubernetes.
    pub fn replace(&mut self, key: &Key, new: Value) -> Option<Value> {
        self.write(key, new, true)
    }

    fn write(&mut self, key: &Key, mut new: Value, count_generation: bool) -> Option<Value> {
        let old = self.objects.get(key)?.clone();
        for field in [
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "generation",
            "resourceVersion",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        if new == old {
            return Some(old);
        }
        self.rv += 1;
        // Spec changes bump the generation; for a Deployment, annotation changes too, as
        // they are copied to its ReplicaSets (pkg/registry/apps/deployment/strategy.go
        // `PrepareForUpdate`).
        let annotations_count = key.plural == "deployments"
            && old["metadata"]["annotations"] != new["metadata"]["annotations"];
        if count_generation
            && old["metadata"].get("generation").is_some()
            && (old.get("spec") != new.get("spec") || annotations_count)
        {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        new["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.objects.insert(key.clone(), new.clone());
        self.record(key.clone(), EventType::Modified, new.clone(), Some(old));
        Some(new)
    }

    /// Changes a stored object in place with `change`: the controllers' and the kubelet's
    /// own writes (status, binding), which do not count as a new `generation`.
    pub fn modify(&mut self, key: &Key, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut obj = self.objects.get(key)?.clone();
        change(&mut obj);
        self.write(key, obj, false)
    }

    /// Changes a stored object in place with `change` as a controller's plain update does
    /// (e.g. the Deployment controller scaling a ReplicaSet): a spec change counts as a new
    /// `generation`, as a user's write does.
    pub fn update(&mut self, key: &Key, change: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut obj = self.objects.get(key)?.clone();
        change(&mut obj);
        self.write(key, obj, true)
    }

    /// Removes an object; watches see it DELETED with a new `resourceVersion`.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(key.clone(), EventType::Deleted, obj.clone(), None);
        Some(obj)
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (None, Some(p)) => {
            *target = json!({});
            merge_patch(target, &Value::Object(p.clone()));
        }
        _ => *target = patch.clone(),
    }
}

/// A parsed `labelSelector`: equality (`k=v`, `k==v`, `k!=v`), existence (`k`, `!k`) and
/// set-based (`k in (a,b)`, `k notin (a,b)`) terms, all of which must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    terms: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let mut parts = Vec::new();
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let set = |rest: &str| -> Vec<String> {
                rest.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect()
            };
            let term = if let Some((k, v)) = part.split_once("!=") {
                Term::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Term::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Term::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Term::NotIn(k.trim().into(), set(rest))
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Term::In(k.trim().into(), set(rest))
            } else if let Some(k) = part.strip_prefix('!') {
                Term::Absent(k.trim().into())
            } else if part.contains(char::is_whitespace) || part.contains('(') {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            } else {
                Term::Exists(part.into())
            };
            terms.push(term);
        }
        Ok(LabelSelector { terms })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.terms.iter().all(|t| match t {
            Term::Eq(k, v) => get(k) == Some(v.as_str()),
            Term::Ne(k, v) => get(k) != Some(v.as_str()),
            Term::Exists(k) => get(k).is_some(),
            Term::Absent(k) => get(k).is_none(),
            Term::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Term::NotIn(k, vs) => get(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
        })
    }
}

/// A parsed `fieldSelector`: `path=value`, `path==value` or `path!=value` terms over dotted
/// paths such as `metadata.name` or `status.phase`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    terms: Vec<(Vec<String>, String, bool)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, equal) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            terms.push((
                path.trim().split('.').map(str::to_string).collect(),
                value.trim().to_string(),
                equal,
            ));
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(path, value, equal)| {
            let mut v = obj;
            for p in path {
                v = &v[p.as_str()];
            }
            let actual = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selectors_match_like_the_api_server() {
        let obj = labelled(json!({"app": "x", "tier": "web"}));
        for (sel, want) in [
            ("app=x", true),
            ("app==x", true),
            ("app=y", false),
            ("app!=y", true),
            ("app,tier=web", true),
            ("!app", false),
            ("missing", false),
            ("!missing", true),
            ("tier in (web, db)", true),
            ("tier notin (web)", false),
            ("app=x,tier in (db)", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&obj),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app x").is_err());
    }

    #[test]
    fn field_selectors_follow_dotted_paths() {
        let obj = labelled(json!({}));
        assert!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name=b")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("status.phase!=Pending")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn user_spec_writes_count_generations_and_controller_writes_do_not() {
        let rt = crate::fake_kube::api::resource_named("jobs").unwrap();
        let mut store = Store::new(7);
        let job = store
            .create(
                rt,
                "ns",
                json!({"metadata": {"name": "j"}, "spec": {"parallelism": 1}}),
            )
            .unwrap();
        assert_eq!(job["metadata"]["generation"], 1);
        let key = Key::new(rt, "ns", "j");
        let status = store.modify(&key, |j| j["spec"]["x"] = json!(1)).unwrap();
        assert_eq!(status["metadata"]["generation"], 1);
        let mut user = status.clone();
        user["spec"]["parallelism"] = json!(2);
        assert_eq!(
            store.replace(&key, user).unwrap()["metadata"]["generation"],
            2
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"a": [1, 2]});
        merge_patch(&mut target, &json!({"a": [3]}));
        assert_eq!(target, json!({"a": [3]}));
    }

    #[test]
    fn versions_rise_and_no_op_writes_are_not_events() {
        let rt = crate::fake_kube::api::resource_named("configmaps").unwrap();
        let mut store = Store::new(42);
        let a = store
            .create(rt, "ns", json!({"metadata": {"name": "a"}}))
            .unwrap();
        let rv: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            store
                .create(rt, "ns", json!({"metadata": {"name": "a"}}))
                .is_err()
        );
        let key = Key::new(rt, "ns", "a");
        let same = store.replace(&key, a.clone()).unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        let changed = store
            .modify(&key, |o| o["data"] = json!({"k": "v"}))
            .unwrap();
        let rv2: u64 = changed["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv2 > rv);
        assert_eq!(changed["metadata"]["uid"], a["metadata"]["uid"]);
        let gone = store.remove(&key).unwrap();
        assert_eq!(store.events.len(), 3);
        assert_eq!(store.events[2].kind, EventType::Deleted);
        assert_eq!(store.events[2].object, gone);
        let generated = store
            .create(rt, "ns", json!({"metadata": {"generateName": "job-"}}))
            .unwrap();
        let name = generated["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    }
}
