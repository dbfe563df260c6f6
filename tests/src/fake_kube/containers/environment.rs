//! A container's environment (`env`, `envFrom`, `secretKeyRef`/`configMapKeyRef`,
//! `$(VAR)` expansion) and its argv, as kubelet_pods.go makes them.

use super::*;

/// Expands `$(VAR)` from `vars` (`$$` escapes; unknown references stay as written), as
/// `expansion.MappingFuncFor` does.
pub(super) fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = value,
        None => env.push((key.to_string(), value)),
    }
}

/// The container's environment (`makeEnvironmentVariables`): `PATH`, `HOSTNAME`, the
/// image's `Env`, then `envFrom` and `env` of the container; `Err` with the kubelet's text
/// for a missing Secret, ConfigMap or key.
pub(super) fn container_env(
    ctx: &Ctx,
    spec: &Value,
    image: Option<&Image>,
) -> Result<Vec<(String, String)>, String> {
    let ns = ctx.ns().to_string();
    let object = |plural: &str, name: &str| {
        ctx.shared
            .read(|s| s.get(&Key::new(rt(plural), &ns, name)).cloned())
    };
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), ctx.key.name.clone()),
    ];
    for kv in image.map(|i| i.env.clone()).unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            set(&mut env, k, v.to_string());
        }
    }
    let mut vars: Vec<(String, String)> = Vec::new();
    for from in spec["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let (plural, what, source) = if from.get("secretRef").is_some() {
            ("secrets", "secret", &from["secretRef"])
        } else {
            ("configmaps", "configmap", &from["configMapRef"])
        };
        let name = source["name"].as_str().unwrap_or_default();
        match object(plural, name) {
            None if source["optional"] == true => {}
            None => return Err(format!("{what} \"{name}\" not found")),
            Some(o) => {
                for (k, v) in o["data"].as_object().into_iter().flatten() {
                    let value = if plural == "secrets" {
                        String::from_utf8_lossy(&decode(v)).into_owned()
                    } else {
                        v.as_str().unwrap_or_default().to_string()
                    };
                    set(&mut vars, &format!("{prefix}{k}"), value);
                }
            }
        }
    }
    for e in spec["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default();
        let from = &e["valueFrom"];
        let value = if let Some(v) = e["value"].as_str() {
            expand(v, &vars)
        } else if from.get("secretKeyRef").is_some() || from.get("configMapKeyRef").is_some() {
            let secret = from.get("secretKeyRef").is_some();
            let r = if secret {
                &from["secretKeyRef"]
            } else {
                &from["configMapKeyRef"]
            };
            let (plural, what, kind) = if secret {
                ("secrets", "secret", "Secret")
            } else {
                ("configmaps", "configmap", "ConfigMap")
            };
            let optional = r["optional"] == true;
            let obj_name = r["name"].as_str().unwrap_or_default();
            let key = r["key"].as_str().unwrap_or_default();
            let Some(o) = object(plural, obj_name) else {
                if optional {
                    continue;
                }
                return Err(format!("{what} \"{obj_name}\" not found"));
            };
            let raw = if secret {
                o["data"]
                    .get(key)
                    .map(|v| String::from_utf8_lossy(&decode(v)).into_owned())
            } else {
                o["data"]
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            match raw {
                Some(v) => v,
                None if optional => continue,
                None => return Err(format!("couldn't find key {key} in {kind} {ns}/{obj_name}")),
            }
        } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => ctx.key.name.clone(),
                "metadata.namespace" => ns.clone(),
                "metadata.uid" => ctx.uid(),
                "spec.nodeName" => "fake-node".to_string(),
                "status.podIP" => POD_IP.to_string(),
                "status.hostIP" => "127.0.0.1".to_string(),
                _ => String::new(),
            }
        } else {
            String::new()
        };
        set(&mut vars, name, value);
    }
    for (k, v) in vars {
        set(&mut env, &k, v);
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".to_string(), "/root".to_string()));
    }
    Ok(env)
}

/// What the container runs: `command` overrides the image's Entrypoint, `args` its Cmd.
pub(super) fn argv(spec: &Value, image: Option<&Image>, env: &[(String, String)]) -> Vec<String> {
    let command = strings(&spec["command"]);
    let args = strings(&spec["args"]);
    let (entrypoint, cmd) = image.map_or((Vec::new(), Vec::new()), |i| {
        (i.entrypoint.clone(), i.cmd.clone())
    });
    let expand_all = |v: Vec<String>| v.into_iter().map(|a| expand(&a, env)).collect::<Vec<_>>();
    match (command.is_empty(), args.is_empty()) {
        (false, false) => [expand_all(command), expand_all(args)].concat(),
        (false, true) => expand_all(command),
        (true, false) => [entrypoint, expand_all(args)].concat(),
        (true, true) => [entrypoint, cmd].concat(),
    }
}
