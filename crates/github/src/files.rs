//! The files a GitHub runner keeps next to itself: `.runner` (who it is and where its
//! broker is), `.credentials` (its OAuth client) and `.credentials_rsaparams` (its key, see
//! [`crate::key`]). They come in two forms, and both are read:
//!
//! - as the service sends them inside a JIT config: PascalCase keys, every value a string
//!   (`{"AgentId":"3","UseV2Flow":"True","PoolName":null}`);
//! - as actions/runner writes them (`IOUtil.SaveObject`): a UTF-8 byte order mark, indented
//!   camelCase JSON with typed values, default values left out.
//!
//! Names are matched without regard to case and values converted as Newtonsoft does
//! (`src/Runner.Common/ConfigurationStore.cs` `RunnerSettings`, `CredentialData.cs`,
//! `src/Runner.Sdk/Util/StringUtil.cs`). This runner writes the second form.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

/// The UTF-8 byte order mark .NET writes before JSON files.
const BOM: &str = "\u{feff}";

/// Why a runner file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} is not a runner file: {message}; register again (`hybrid-runner register --github URL --token TOKEN`) or pass a fresh JIT config"
    )]
    Parse { what: String, message: String },
    #[error("{0}")]
    Key(String),
}

fn parse_error(what: &str, message: impl Into<String>) -> FileError {
    FileError::Parse {
        what: what.to_string(),
        message: message.into(),
    }
}

/// A JSON object whose keys are looked up in any case, as Newtonsoft reads them.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    what: &'a str,
    object: Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Parses `text` (a leading byte order mark is skipped) as one JSON object.
    pub(crate) fn parse(what: &'a str, text: &str) -> Result<Fields<'a>, FileError> {
        let text = text.strip_prefix(BOM).unwrap_or(text);
        match serde_json::from_str(text) {
            Ok(Value::Object(object)) => Ok(Fields { what, object }),
            Ok(_) => Err(parse_error(what, "not a JSON object")),
            Err(e) => Err(parse_error(what, e.to_string())),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// A text value, `None` when absent, null or empty.
    pub(crate) fn some_text(&self, name: &str) -> Option<String> {
        self.text(name).filter(|s| !s.is_empty())
    }

    pub(crate) fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            _ => None,
        }
    }

    pub(crate) fn required(&self, name: &str) -> Result<String, FileError> {
        self.text(name)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| parse_error(self.what, format!("`{name}` is missing")))
    }

    /// A boolean as a JSON bool or as the strings `StringUtil.ConvertToBoolean` and
    /// `bool.Parse` accept; absent is false.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, FileError> {
        let Some(text) = self.text(name) else {
            return Ok(false);
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "$true" => Ok(true),
            "false" | "0" | "$false" | "" => Ok(false),
            other => Err(parse_error(
                self.what,
                format!("`{name}` is `{other}`, not a boolean"),
            )),
        }
    }

    pub(crate) fn number(&self, name: &str) -> Result<Option<u64>, FileError> {
        self.text(name)
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| parse_error(self.what, format!("`{name}` is `{s}`, not a number")))
            })
            .transpose()
    }

    pub(crate) fn object(&self, name: &str) -> Option<Fields<'a>> {
        match self.get(name)? {
            Value::Object(object) => Some(Fields {
                what: self.what,
                object: object.clone(),
            }),
            _ => None,
        }
    }
}

/// `.runner`: the registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerSettings {
    pub agent_id: u64,
    pub agent_name: String,
    pub pool_id: u64,
    pub pool_name: Option<String>,
    pub disable_update: bool,
    pub ephemeral: bool,
    /// The V1 (pipelines) tenant; unused by this runner, kept when rewriting.
    pub server_url: Option<String>,
    /// The broker base (V2).
    pub server_url_v2: Option<String>,
    pub use_v2_flow: bool,
    pub use_runner_admin_flow: bool,
    /// The repository, organisation or enterprise the runner serves, e.g.
    /// `https://github.com/owner/repo`; empty in JIT configs.
    pub github_url: Option<String>,
    pub work_folder: Option<String>,
}

impl RunnerSettings {
    /// Reads `.runner` in either form.
    pub fn parse(text: &str) -> Result<RunnerSettings, FileError> {
        let f = Fields::parse(".runner", text)?;
        Ok(RunnerSettings {
            agent_id: f
                .number("AgentId")?
                .ok_or_else(|| parse_error(".runner", "`AgentId` is missing"))?,
            agent_name: f.required("AgentName")?,
            pool_id: f.number("PoolId")?.unwrap_or_default(),
            pool_name: f.some_text("PoolName"),
            disable_update: f.flag("DisableUpdate")?,
            ephemeral: f.flag("Ephemeral")?,
            server_url: f.some_text("ServerUrl"),
            server_url_v2: f.some_text("ServerUrlV2"),
            use_v2_flow: f.flag("UseV2Flow")?,
            use_runner_admin_flow: f.flag("UseRunnerAdminFlow")?,
            github_url: f.some_text("GitHubUrl"),
            work_folder: f.some_text("WorkFolder"),
        })
    }

    /// `.runner` as actions/runner writes it.
    pub fn to_file(&self) -> String {
        with_bom(&Value::Object(self.to_json()))
    }

    /// The fields of [`RunnerSettings::to_file`], for a caller that adds its own.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut o = Map::new();
        let mut put = |k: &str, v: Value| {
            let default = matches!(&v, Value::Bool(false) | Value::Null)
                || v.as_u64() == Some(0)
                || v.as_str() == Some("");
            if !default {
                o.insert(k.to_string(), v);
            }
        };
        put("agentId", json!(self.agent_id));
        put("agentName", json!(self.agent_name));
        put("poolId", json!(self.pool_id));
        put("poolName", json!(self.pool_name));
        put("disableUpdate", json!(self.disable_update));
        put("ephemeral", json!(self.ephemeral));
        put("serverUrl", json!(self.server_url));
        put("gitHubUrl", json!(self.github_url));
        put("workFolder", json!(self.work_folder));
        put("useV2Flow", json!(self.use_v2_flow));
        put("useRunnerAdminFlow", json!(self.use_runner_admin_flow));
        put("serverUrlV2", json!(self.server_url_v2));
        o
    }
}

/// `.credentials`: the runner's OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthCredentials {
    pub client_id: String,
    /// The audience of the client assertion, and the token endpoint unless
    /// `oauth_endpoint_url` says otherwise.
    pub authorization_url: String,
    pub oauth_endpoint_url: Option<String>,
    /// Sign with PS256 instead of RS256.
    pub require_fips_cryptography: bool,
    pub authorization_url_v2: Option<String>,
    pub enable_auth_migration_by_default: bool,
}

impl OAuthCredentials {
    /// Reads `.credentials` in either form; only the `OAuth` scheme is known.
    pub fn parse(text: &str) -> Result<OAuthCredentials, FileError> {
        let f = Fields::parse(".credentials", text)?;
        let scheme = f.required("Scheme")?;
        if !scheme.eq_ignore_ascii_case("OAuth") {
            return Err(parse_error(
                ".credentials",
                format!("the scheme is `{scheme}`; only OAuth runners are supported"),
            ));
        }
        let data = f
            .object("Data")
            .ok_or_else(|| parse_error(".credentials", "`Data` is missing"))?;
        Ok(OAuthCredentials {
            client_id: data.required("clientId")?,
            authorization_url: data.required("authorizationUrl")?,
            oauth_endpoint_url: data.some_text("oauthEndpointUrl"),
            require_fips_cryptography: data.flag("requireFipsCryptography")?,
            authorization_url_v2: data.some_text("authorizationUrlV2"),
            enable_auth_migration_by_default: data.flag("enableAuthMigrationByDefault")?,
        })
    }

    /// Where the client assertion is exchanged for an access token.
    pub fn token_url(&self) -> &str {
        self.oauth_endpoint_url
            .as_deref()
            .unwrap_or(&self.authorization_url)
    }

    /// `.credentials` as actions/runner writes it (`Data` values are strings there).
    pub fn to_file(&self) -> String {
        let mut data = Map::new();
        data.insert("clientId".into(), json!(self.client_id));
        data.insert("authorizationUrl".into(), json!(self.authorization_url));
        if let Some(url) = &self.oauth_endpoint_url {
            data.insert("oauthEndpointUrl".into(), json!(url));
        }
        data.insert(
            "requireFipsCryptography".into(),
            json!(if self.require_fips_cryptography {
                "True"
            } else {
                "False"
            }),
        );
        if let Some(url) = &self.authorization_url_v2 {
            data.insert("authorizationUrlV2".into(), json!(url));
        }
        if self.enable_auth_migration_by_default {
            data.insert("enableAuthMigrationByDefault".into(), json!("true"));
        }
        with_bom(&json!({"scheme": "OAuth", "data": data}))
    }
}

/// Indented JSON after a byte order mark, as `IOUtil.SaveObject` writes it.
pub fn with_bom(value: &Value) -> String {
    let body = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("{BOM}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_files_read_in_the_service_form_and_the_runner_form() {
        let service = r#"{"AgentId":"3","AgentName":"jit-1","PoolId":"1","PoolName":null,"DisableUpdate":"True","Ephemeral":"True","ServerUrl":"https://pipelines.example/abc","ServerUrlV2":"https://broker.example/","UseV2Flow":"True","GitHubUrl":"","WorkFolder":"_work"}"#;
        let settings = RunnerSettings::parse(service).unwrap();
        assert_eq!(settings.agent_id, 3);
        assert!(settings.ephemeral && settings.use_v2_flow && settings.disable_update);
        assert!(!settings.use_runner_admin_flow);
        assert_eq!(settings.pool_name, None);
        assert_eq!(
            settings.server_url_v2.as_deref(),
            Some("https://broker.example/")
        );
        // Written the runner's way, read back the same.
        let file = settings.to_file();
        assert!(file.starts_with('\u{feff}'), "{file}");
        assert!(file.contains("\n  \"agentId\": 3,"), "{file}");
        assert!(
            !file.contains("poolName") && !file.contains("gitHubUrl"),
            "{file}"
        );
        assert_eq!(RunnerSettings::parse(&file).unwrap(), settings);
    }

    #[test]
    fn bad_runner_files_say_what_is_wrong() {
        let err = RunnerSettings::parse(r#"{"AgentName":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("`AgentId` is missing"), "{err}");
        let err = RunnerSettings::parse(r#"{"AgentId":"3","AgentName":"x","Ephemeral":"maybe"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("`Ephemeral` is `maybe`"), "{err}");
        let err = RunnerSettings::parse("[]").unwrap_err();
        assert!(err.to_string().contains("register again"), "{err}");
    }

    #[test]
    fn credentials_read_both_forms_and_choose_the_token_url() {
        let service = r#"{"Scheme":"OAuth","Data":{"ClientId":"c0ffee","AuthorizationUrl":"https://auth.example/token","RequireFipsCryptography":"True"}}"#;
        let creds = OAuthCredentials::parse(service).unwrap();
        assert_eq!(creds.client_id, "c0ffee");
        assert!(creds.require_fips_cryptography);
        assert_eq!(creds.token_url(), "https://auth.example/token");
        let file = creds.to_file();
        assert!(
            file.contains("\"requireFipsCryptography\": \"True\""),
            "{file}"
        );
        assert_eq!(OAuthCredentials::parse(&file).unwrap(), creds);
        let other = r#"{"scheme":"OAuthAccessToken","data":{}}"#;
        let err = OAuthCredentials::parse(other).unwrap_err();
        assert!(err.to_string().contains("only OAuth runners"), "{err}");
    }
}
