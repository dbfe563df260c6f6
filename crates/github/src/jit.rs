//! JIT configs: what `POST …/actions/runners/generate-jitconfig` answers as
//! `encoded_jit_config`, and what ARC hands its runner pods as
//! `ACTIONS_RUNNER_INPUT_JITCONFIG`: base64 of a JSON object mapping the file names
//! `.runner`, `.credentials` and `.credentials_rsaparams` to each file's base64 content
//! (actions/runner `src/Runner.Listener/Runner.cs`, which writes them to disk; this runner
//! keeps them in memory). It holds the runner's private key: a secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::files::{Fields, FileError, OAuthCredentials, RunnerSettings};
use crate::key::RunnerKey;

/// An ephemeral runner's registration, decoded.
#[derive(Debug, Clone)]
pub struct JitConfig {
    pub settings: RunnerSettings,
    pub credentials: OAuthCredentials,
    pub key: RunnerKey,
}

fn jit_error(message: impl Into<String>) -> FileError {
    FileError::Parse {
        what: "the JIT config".to_string(),
        message: message.into(),
    }
}

fn decode_base64(what: &str, text: &str) -> Result<Vec<u8>, FileError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|e| jit_error(format!("{what} is not base64: {e}")))
}

impl JitConfig {
    /// Decodes an encoded JIT config.
    pub fn decode(encoded: &str) -> Result<JitConfig, FileError> {
        let outer = decode_base64("the config", encoded)?;
        let outer = String::from_utf8(outer).map_err(|_| jit_error("the config is not UTF-8"))?;
        let files = Fields::parse("the JIT config", &outer)?;
        let file = |name: &str| -> Result<String, FileError> {
            let content = files
                .text(name)
                .ok_or_else(|| jit_error(format!("it has no `{name}`")))?;
            String::from_utf8(decode_base64(name, &content)?)
                .map_err(|_| jit_error(format!("`{name}` is not UTF-8")))
        };
        let settings = RunnerSettings::parse(&file(".runner")?)?;
        let credentials = OAuthCredentials::parse(&file(".credentials")?)?;
        let params = file(".credentials_rsaparams")?;
        let params: Value = serde_json::from_str(params.trim_start_matches('\u{feff}'))
            .map_err(|e| jit_error(format!("`.credentials_rsaparams` is not JSON: {e}")))?;
        let key = RunnerKey::from_rsa_parameters(&params)?;
        Ok(JitConfig {
            settings,
            credentials,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(runner: &str, credentials: &str, params: &str) -> String {
        let files = json!({
            ".runner": STANDARD.encode(runner),
            ".credentials": STANDARD.encode(credentials),
            ".credentials_rsaparams": STANDARD.encode(params),
        });
        STANDARD.encode(files.to_string())
    }

    #[test]
    fn a_service_jit_config_decodes_to_the_runner_and_its_key() {
        let key = crate::test_key();
        let encoded = encode(
            r#"{"AgentId":"17","AgentName":"pool-1","PoolId":"1","PoolName":null,"Ephemeral":"True","DisableUpdate":"True","ServerUrlV2":"http://127.0.0.1:9/broker/","UseV2Flow":"True","WorkFolder":"_work"}"#,
            r#"{"Scheme":"OAuth","Data":{"ClientId":"abc","AuthorizationUrl":"http://127.0.0.1:9/oauth/token","RequireFipsCryptography":"False"}}"#,
            &key.to_rsa_parameters().to_string(),
        );
        let jit = JitConfig::decode(&encoded).unwrap();
        assert_eq!(jit.settings.agent_id, 17);
        assert!(jit.settings.ephemeral);
        assert_eq!(jit.credentials.client_id, "abc");
        assert!(!jit.credentials.require_fips_cryptography);
        assert_eq!(jit.key.modulus(), key.modulus());
        // Debug output never shows the key.
        assert!(!format!("{jit:?}").contains(key.to_rsa_parameters()["d"].as_str().unwrap()));
    }

    #[test]
    fn broken_jit_configs_name_the_part() {
        let err = JitConfig::decode("not base64!").unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
        let err = JitConfig::decode(&STANDARD.encode(r#"{".runner":"e30="}"#)).unwrap_err();
        assert!(err.to_string().contains("`AgentId` is missing"), "{err}");
        let no_key = encode(
            r#"{"AgentId":"1","AgentName":"a"}"#,
            r#"{"Scheme":"OAuth","Data":{"ClientId":"a","AuthorizationUrl":"http://x/"}}"#,
            "",
        );
        let err = JitConfig::decode(&no_key).unwrap_err();
        assert!(err.to_string().contains("credentials_rsaparams"), "{err}");
    }
}
