//! Pods whose container runs a shell (`sh -c '...'`, such as the context loader): the
//! command runs on the host with `sh`, every volume mount mapped to a host folder (persistent
//! volumes filled from and saved back to the fake's volume store, ConfigMaps projected as
//! files), the container's environment, and its stdin fed from an attach.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::kaniko::{Outcome, ProcessGroup, Stdin, pump, say};
use super::logs::LogKey;
use super::store::Key;
use super::{Shared, lock};

/// One volume mount as a host folder.
#[derive(Debug)]
struct Mount {
    path: String,
    host: PathBuf,
    /// The claim to save back to, for writable persistent volume mounts.
    claim: Option<String>,
}

pub(crate) async fn run(
    shared: &Shared,
    pod: &Value,
    container: &Value,
    log: &LogKey,
    stdin: Option<Stdin>,
) -> Outcome {
    let argv: Vec<String> = ["command", "args"]
        .iter()
        .flat_map(|f| container[*f].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let program = argv
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string());
    if !matches!(program.as_deref(), Some("sh" | "bash")) {
        say(
            shared,
            log,
            &format!(
                "the fake kubelet runs Kaniko executors and shell commands only (got {argv:?})"
            ),
        );
        return Outcome::failed(127);
    }
    let work = shared.work_dir.join(format!("{}-{}-sh", log.0, log.1));
    if let Err(e) = std::fs::create_dir_all(&work) {
        say(
            shared,
            log,
            &format!("cannot create {}: {e}", work.display()),
        );
        return Outcome::failed(1);
    }
    let mounts = match mount(shared, pod, container, &log.0, &work) {
        Ok(m) => m,
        Err(e) => {
            say(shared, log, &e);
            return Outcome::failed(1);
        }
    };
    let mut by_length: Vec<&Mount> = mounts.iter().collect();
    by_length.sort_by_key(|m| std::cmp::Reverse(m.path.len()));
    let rewrite = |s: &str| {
        by_length.iter().fold(s.to_string(), |acc, m| {
            replace_path(&acc, &m.path, &m.host.to_string_lossy())
        })
    };
    let mut cmd = Command::new(program.unwrap_or_default());
    cmd.args(argv[1..].iter().map(|a| rewrite(a)));
    for e in container["env"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (e["name"].as_str(), e["value"].as_str()) {
            cmd.env(name, value);
        }
    }
    cmd.current_dir(&work)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            say(shared, log, &format!("cannot start the shell: {e}"));
            return Outcome::failed(127);
        }
    };
    let _group = ProcessGroup::of(&child);
    let feed = async {
        if let (Some(mut rx), Some(mut input)) = (stdin, child.stdin.take()) {
            while let Some(chunk) = rx.recv().await {
                if input.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        }
    };
    let out = child.stdout.take();
    let err = child.stderr.take();
    tokio::join!(feed, pump(shared, log, out), pump(shared, log, err));
    let code = match child.wait().await {
        Ok(status) => status.code().unwrap_or(137),
        Err(_) => 137,
    };
    for m in &mounts {
        if let Some(claim) = &m.claim {
            let mut files = BTreeMap::new();
            read_tree(&m.host, &m.host, &mut files);
            lock(&shared.volumes).insert((log.0.clone(), claim.clone()), files);
        }
    }
    let _ = tokio::fs::remove_dir_all(&work).await;
    Outcome::failed(code)
}

fn mount(
    shared: &Shared,
    pod: &Value,
    container: &Value,
    ns: &str,
    work: &Path,
) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    for (i, vm) in container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = vm["name"].as_str().unwrap_or_default();
        let path = vm["mountPath"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let host = work.join(format!("volume-{i}"));
        std::fs::create_dir_all(&host)
            .map_err(|e| format!("cannot create {}: {e}", host.display()))?;
        let volume = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == name)
            .ok_or_else(|| format!("the pod has no volume {name}"))?;
        let mut files = BTreeMap::new();
        let mut claim = None;
        if let Some(c) = volume["persistentVolumeClaim"]["claimName"].as_str() {
            if let Some(existing) = lock(&shared.volumes).get(&(ns.to_string(), c.to_string())) {
                files = existing.clone();
            }
            let read_only = vm["readOnly"] == Value::Bool(true)
                || volume["persistentVolumeClaim"]["readOnly"] == Value::Bool(true);
            claim = (!read_only).then(|| c.to_string());
        } else if let Some(cm) = volume["configMap"]["name"].as_str() {
            let rt = super::api::resource_named("configmaps").ok_or("no configmaps")?;
            let obj = shared
                .read(|s| s.get(&Key::new(rt, ns, cm)).cloned())
                .ok_or_else(|| format!("configmap {cm} not found"))?;
            for (k, v) in obj["data"].as_object().into_iter().flatten() {
                files.insert(
                    k.clone(),
                    v.as_str().unwrap_or_default().as_bytes().to_vec(),
                );
            }
            for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
                let bytes: k8s_openapi::ByteString = serde_json::from_value(v.clone())
                    .map_err(|e| format!("binaryData.{k} of {cm}: {e}"))?;
                files.insert(k.clone(), bytes.0);
            }
        }
        for (rel, bytes) in &files {
            let file = host.join(rel);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&file, bytes)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        mounts.push(Mount { path, host, claim });
    }
    Ok(mounts)
}

/// Replaces the path `from` by `to` where it stands as a whole path or path prefix (not
/// inside a longer name, so `/context` in `/context/context.tar.gz` is replaced once).
fn replace_path(s: &str, from: &str, to: &str) -> String {
    let path_char = |c: char| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-');
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().last().or_else(|| out.chars().last());
        let after = rest[i + from.len()..].chars().next();
        let whole =
            before.is_none_or(|c| !path_char(c)) && after.is_none_or(|c| c == '/' || !path_char(c));
        out.push_str(&rest[..i]);
        out.push_str(if whole { to } else { from });
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_tree(root, &path, files);
        } else if let (Ok(rel), Ok(bytes)) = (path.strip_prefix(root), std::fs::read(&path)) {
            files.insert(rel.to_string_lossy().into_owned(), bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replace_path;

    #[test]
    fn mount_paths_are_replaced_as_whole_paths() {
        assert_eq!(
            replace_path("cat > /context/context.tar.gz.part", "/context", "/tmp/v"),
            "cat > /tmp/v/context.tar.gz.part"
        );
        assert_eq!(
            replace_path("/contexts/x /context", "/context", "/v"),
            "/contexts/x /v"
        );
        assert_eq!(replace_path("\"/context\"", "/context", "/v"), "\"/v\"");
    }
}
