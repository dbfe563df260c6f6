//! GitHub's workflow-parser "reader" cases (`languageservices/workflow-parser/testdata/reader`):
//! each file split into its options, the workflow under test, the workflows it calls,
//! and the expected model or errors (the format of the suite files is described in docs/internals/conformance.md).

use std::path::Path;

use serde_json::Value as Json;

/// One reader case split into its documents.
#[derive(Debug, Clone)]
pub struct ReaderCase {
    /// The file name, e.g. `basic.yml`.
    pub name: String,
    /// The first document (YAML options such as `skip` or `max-depth`).
    pub options: Json,
    /// The workflow under test, as text.
    pub workflow: String,
    /// The last document: the expected model, or `{"errors": [...]}`.
    pub expected: Json,
    /// Called workflows supplied with the case: (reference, content).
    pub called: Vec<(String, String)>,
}

impl ReaderCase {
    /// The expected error messages in GitHub's form (`file (Line: L, Col: C): text`).
    pub fn expected_messages(&self) -> Vec<String> {
        self.expected
            .get("errors")
            .and_then(Json::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e.get("Message").and_then(Json::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Every reader case under the conformance folder, sorted by name; a file that cannot
/// be read or split is returned as `Err` naming it, so a suite can count it as failed.
pub fn reader_cases(conformance: &Path) -> Vec<Result<ReaderCase, String>> {
    let folder = conformance.join("languageservices/workflow-parser/testdata/reader");
    let mut paths: Vec<_> = match std::fs::read_dir(&folder) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .collect(),
        Err(e) => return vec![Err(format!("{}: {e}", folder.display()))],
    };
    paths.sort();
    paths.iter().map(|p| read_case(p)).collect()
}

fn read_case(path: &Path) -> Result<ReaderCase, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let text = text.replace("\r\n", "\n");
    let docs: Vec<&str> = text.split("\n---\n").collect();
    if docs.len() < 3 {
        return Err(format!("{name}: fewer than 3 documents"));
    }
    let options: Json = serde_saphyr::from_str(docs[0]).unwrap_or(Json::Null);
    let expected: Json = serde_json::from_str(docs[docs.len() - 1].trim())
        .map_err(|e| format!("{name}: expected JSON: {e}"))?;
    let called = docs[2..docs.len() - 1]
        .chunks(2)
        .filter_map(|pair| match pair {
            [reference, content] => Some((reference.trim().to_string(), content.to_string())),
            _ => None,
        })
        .collect();
    Ok(ReaderCase {
        name,
        options,
        workflow: docs[1].to_string(),
        expected,
        called,
    })
}
