//! Shared by the benchmarks: reads GitHub's suites from `../shared/conformance`
//! (or `$HYBRID_RUNNER_CONFORMANCE`). Benchmarks print a notice and measure nothing
//! when the data is absent.

#![allow(dead_code)] // each benchmark uses one of the two readers

use std::path::PathBuf;

pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HYBRID_RUNNER_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "notice: no conformance data at {}; nothing to measure",
            dir.display()
        );
        None
    }
}

/// (file name, workflow text) of every reader case: the second `---` document.
pub fn reader_workflows() -> Vec<(String, String)> {
    let Some(dir) = conformance_dir() else {
        return Vec::new();
    };
    let reader = dir.join("languageservices/workflow-parser/testdata/reader");
    let mut cases = Vec::new();
    let Ok(entries) = std::fs::read_dir(&reader) else {
        return cases;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let text = text.replace("\r\n", "\n");
        if let Some(workflow) = text.split("\n---\n").nth(1) {
            let name = format!(".github/workflows/{}", entry.file_name().to_string_lossy());
            cases.push((name, workflow.to_string()));
        }
    }
    cases.sort();
    cases
}

/// (expression, contexts as JSON) of every case of GitHub's expression suite.
pub fn expression_cases() -> Vec<(String, serde_json::Value)> {
    let Some(dir) = conformance_dir() else {
        return Vec::new();
    };
    let mut cases = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("languageservices/expressions/testdata")) else {
        return cases;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(serde_json::Value::Object(groups)) = serde_json::from_str(&text) else {
            continue;
        };
        for (_, group) in groups {
            for case in group.as_array().into_iter().flatten() {
                let expr = case["expr"].as_str().unwrap_or_default().to_string();
                let contexts = case
                    .get("contexts")
                    .cloned()
                    .unwrap_or(serde_json::json!({}));
                cases.push((expr, contexts));
            }
        }
    }
    cases
}
