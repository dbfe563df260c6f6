//! Schema validation of the manifests a client sent: `kubernetes-validate --strict` against
//! Kubernetes 1.30.0 and the newest version the installed tool knows.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::under_ci;

/// The `kubernetes-validate` program, installed with pip when missing. `None` (after a
/// notice) when it cannot be had outside CI; under CI=true that panics.
pub fn kubernetes_validate() -> Option<String> {
    let found = || {
        Command::new("kubernetes-validate")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found() {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "kubernetes-validate"])
            .status();
    }
    if found() {
        return Some("kubernetes-validate".to_string());
    }
    if under_ci() {
        panic!(
            "kubernetes-validate is missing and `python3 -m pip install kubernetes-validate` failed"
        );
    }
    eprintln!("notice: kubernetes-validate unavailable (pip failed); schema validation skipped");
    None
}

/// Validates every manifest strictly against Kubernetes 1.30.0 and the newest version the
/// tool knows, panicking with the validator's output when one fails. Returns `false` when
/// the validator is unavailable (outside CI) and nothing was checked.
pub fn validate_manifests(manifests: &[Value]) -> bool {
    assert!(
        !manifests.is_empty(),
        "validate_manifests: no manifests to validate"
    );
    let Some(tool) = kubernetes_validate() else {
        return false;
    };
    let dir = tempfile::tempdir().expect("a folder for the manifests");
    let files: Vec<_> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let kind = m["kind"].as_str().unwrap_or("object").to_lowercase();
            let path = dir.path().join(format!("{i:03}-{kind}.yaml"));
            std::fs::write(&path, serde_json::to_string_pretty(m).expect("JSON text"))
                .expect("write a manifest");
            path
        })
        .collect();
    for version in [Some("1.30.0"), None] {
        run(&tool, version, &files, dir.path());
    }
    true
}

fn run(tool: &str, version: Option<&str>, files: &[std::path::PathBuf], dir: &Path) {
    let mut cmd = Command::new(tool);
    if let Some(v) = version {
        cmd.args(["-k", v]);
    }
    let out = cmd
        .arg("--strict")
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stdout.contains("ERROR") && !stderr.contains("ERROR"),
        "kubernetes-validate {} --strict failed on the manifests in {}:\n{stdout}\n{stderr}",
        version.unwrap_or("(newest)"),
        dir.display()
    );
}
