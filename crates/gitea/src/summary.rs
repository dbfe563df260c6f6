//! Job summaries (`GITHUB_STEP_SUMMARY`) uploaded to a Gitea that announces the
//! `job-summary` capability (`X-Gitea-Actions-Capabilities` on Declare), as Gitea's runner
//! uploads them (act/runner/job_executor.go `tryUploadJobSummary` at b235535c; the
//! server's routers/api/actions/job_summary.go at 153766a2): at the end of the job, each
//! main step's markdown with a `PUT` to
//! `{instance}/api/actions_pipeline/_apis/pipelines/workflows/{run_id}/jobs/{job_id}/steps/{index}/summary`,
//! `Authorization: Bearer <runtime token>`, `Content-Type: text/markdown; charset=utf-8`.
//! The job id is the `JobID` claim of the runtime token (a JWT Gitea signs; read here
//! without verifying, the server verifies it). A failed upload is tried once more when it
//! may pass (408, 429, 5xx, no answer) and otherwise only logged: the job's result stands.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use hr_engine::eval::display;
use workflows::expression::Object;

/// Where a task's summaries go.
#[derive(Debug, Clone)]
pub struct SummaryUpload {
    /// `…/steps/` (the step index and `/summary` follow).
    base: String,
    token: String,
}

/// The `job-summary` capability in the server's list (comma or space separated).
pub fn announces_summaries(capabilities: Option<&str>) -> bool {
    capabilities.is_some_and(|c| {
        c.split(|ch: char| ch == ',' || ch.is_whitespace())
            .any(|c| c == "job-summary")
    })
}

/// The `JobID` claim of a runtime token, unverified; `None` when it is no JWT or has none.
pub fn job_id_of(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_, Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    claims["JobID"].as_i64().filter(|id| *id > 0)
}

impl SummaryUpload {
    /// For a task of `instance` with this `context`, when the server announced the
    /// capability and the task's runtime token names its job.
    pub fn for_task(
        instance: &str,
        capabilities: Option<&str>,
        context: &Object,
    ) -> Option<SummaryUpload> {
        if !announces_summaries(capabilities) {
            return None;
        }
        let text = |k: &str| context.get(k).map(display).unwrap_or_default();
        let token = ["gitea_runtime_token", "forgejo_runtime_token"]
            .iter()
            .map(|k| text(k))
            .find(|t| !t.is_empty())?;
        let run = text("run_id");
        let job = job_id_of(&token)?;
        if run.is_empty() {
            return None;
        }
        Some(SummaryUpload {
            base: format!(
                "{}/api/actions_pipeline/_apis/pipelines/workflows/{run}/jobs/{job}/steps/",
                instance.trim_end_matches('/')
            ),
            token,
        })
    }

    /// Uploads each step's summary; the problems, as lines for the log.
    pub async fn send(&self, http: &reqwest::Client, steps: &[(usize, String)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (index, markdown) in steps.iter().filter(|(_, m)| !m.is_empty()) {
            let url = format!("{}{index}/summary", self.base);
            let mut last = String::new();
            for attempt in 0..2 {
                let sent = http
                    .put(&url)
                    .bearer_auth(&self.token)
                    .header("Content-Type", "text/markdown; charset=utf-8")
                    .timeout(Duration::from_secs(30))
                    .body(markdown.clone())
                    .send()
                    .await;
                let transient = match sent {
                    Ok(r) if r.status().is_success() => {
                        last.clear();
                        break;
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        last = format!("HTTP {status}: {}", body.trim());
                        status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error()
                    }
                    Err(e) => {
                        last = e.to_string();
                        true
                    }
                };
                if !transient || attempt == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if !last.is_empty() {
                problems.push(format!(
                    "warning: the summary of step {index} did not reach the server: {last}"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflows::expression::Value;

    #[test]
    fn uploads_need_the_capability_and_a_job_id_in_the_token() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"TaskID":7,"RunID":3,"JobID":42}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(job_id_of(&token), Some(42));
        assert_eq!(job_id_of("runtime.plain"), None);
        assert!(announces_summaries(Some("cancelling, job-summary")));
        assert!(!announces_summaries(Some("cancelling")));
        let mut context = Object::new();
        context.insert("gitea_runtime_token", Value::from(token.as_str()));
        context.insert("run_id", Value::from("3"));
        let upload =
            SummaryUpload::for_task("https://gitea.example/", Some("job-summary"), &context)
                .unwrap();
        assert_eq!(
            upload.base,
            "https://gitea.example/api/actions_pipeline/_apis/pipelines/workflows/3/jobs/42/steps/"
        );
        assert!(SummaryUpload::for_task("https://g/", None, &context).is_none());
    }
}
