//! Whether the server is Gitea or Forgejo, which decides whose rules its tasks' workflows
//! are read by ([`Dialect`]). The runner protocol is the same for both and a task's context
//! has the same keys (Forgejo's `services/actions/context.go` also sends
//! `gitea_default_actions_url`), so the daemon asks the server's public
//! `GET /api/v1/version` once at start: Forgejo answers `{"version": "11.0.1+gitea-1.22.0"}`
//! (its own version, then the Gitea version it is compatible with), Gitea `{"version":
//! "1.24.0"}`.

use std::time::Duration;

use workflows::model::Dialect;

use crate::RunnerClient;

/// The dialect a `/api/v1/version` answer's `version` names.
pub fn dialect_of_version(version: &str) -> Dialect {
    let lower = version.to_ascii_lowercase();
    if lower.contains("+gitea-") || lower.contains("forgejo") {
        Dialect::Forgejo
    } else {
        Dialect::Gitea
    }
}

/// Asks `instance` for its version (5 s at most). A server that does not answer is taken
/// for Gitea, with a warning: its workflows are then read by Gitea's rules, which accept
/// Forgejo's keys except `forge.*` and `enable-email-notifications`.
pub async fn server_dialect(client: &RunnerClient, instance: &str) -> Dialect {
    let url = format!("{}/api/v1/version", instance.trim_end_matches('/'));
    let answer = async {
        let response = client
            .http()
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?;
        response.bytes().await
    };
    let parsed = answer.await.map_err(|e| e.to_string()).and_then(|bytes| {
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())
    });
    match parsed {
        Ok(body) => {
            let version = body["version"].as_str().unwrap_or_default().to_string();
            let dialect = dialect_of_version(&version);
            tracing::info!(%version, dialect = dialect.word(), "server version; its tasks' workflows are read by its rules");
            dialect
        }
        Err(error) => {
            tracing::warn!(%url, %error, "cannot read the server's version; reading its workflows as Gitea's");
            Dialect::Gitea
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgejo_names_the_gitea_version_it_follows() {
        assert_eq!(dialect_of_version("11.0.1+gitea-1.22.0"), Dialect::Forgejo);
        assert_eq!(
            dialect_of_version("7.0.0-dev-123+gitea-1.22.0"),
            Dialect::Forgejo
        );
        assert_eq!(dialect_of_version("1.24.0"), Dialect::Gitea);
        assert_eq!(dialect_of_version("1.25.0+dev-45-gabc"), Dialect::Gitea);
        assert_eq!(dialect_of_version(""), Dialect::Gitea);
    }
}
