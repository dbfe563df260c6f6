//! The runner's registry credentials (the `auths` of its Docker `config.json`) and the
//! registries' authentication challenges (`WWW-Authenticate`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{DOCKER_HUB, DOCKER_HUB_API, RegistryError};

/// Username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ***)", self.username)
    }
}

/// The `auths` of a Docker `config.json`, by registry host.
#[derive(Debug, Clone, Default)]
pub struct DockerCredentials {
    by_host: HashMap<String, Credential>,
}

impl DockerCredentials {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`; none when absent.
    pub fn load(docker_config: Option<&Path>, home: Option<&Path>) -> Result<Self, RegistryError> {
        let path = match (docker_config, home) {
            (Some(dir), _) => dir.join("config.json"),
            (None, Some(home)) => home.join(".docker/config.json"),
            (None, None) => return Ok(Self::default()),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(RegistryError::Config {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Self::parse(&text).map_err(|message| RegistryError::Config { path, message })
    }

    /// The runner's own credentials, from its environment.
    pub fn from_environment() -> Result<Self, RegistryError> {
        let docker_config = std::env::var_os("DOCKER_CONFIG").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self::load(docker_config.as_deref(), home.as_deref())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut by_host = HashMap::new();
        for (key, entry) in json["auths"].as_object().into_iter().flatten() {
            let credential = if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| format!("the `auth` of {key} is not base64: {e}"))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| format!("the `auth` of {key} is not UTF-8"))?;
                let Some((username, password)) = decoded.split_once(':') else {
                    return Err(format!("the `auth` of {key} is not `user:password`"));
                };
                Credential {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else if let (Some(username), Some(password)) =
                (entry["username"].as_str(), entry["password"].as_str())
            {
                Credential {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else {
                continue;
            };
            by_host.insert(host_of(key), credential);
        }
        Ok(DockerCredentials { by_host })
    }

    /// The credential for `registry` (`docker.io` also matches Docker Hub's legacy keys).
    pub fn get(&self, registry: &str) -> Option<&Credential> {
        if registry == DOCKER_HUB {
            ["docker.io", "index.docker.io", DOCKER_HUB_API]
                .iter()
                .find_map(|h| self.by_host.get(*h))
        } else {
            self.by_host.get(registry)
        }
    }
}

/// `https://index.docker.io/v1/` -> `index.docker.io`.
fn host_of(key: &str) -> String {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut values: HashMap<String, String> = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        values.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: values.remove("realm")?,
        service: values.remove("service"),
        scope: values.remove("scope"),
    })
}

pub(super) fn basic(credential: &Credential) -> String {
    let pair = format!("{}:{}", credential.username, credential.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docker_config_auths_are_read_by_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret");
        let text = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example.com:5000":{{"username":"u","password":"p"}},"empty.io":{{}}}},"credsStore":"desktop"}}"#
        );
        let creds = DockerCredentials::parse(&text).unwrap();
        assert_eq!(
            creds.get("docker.io"),
            Some(&Credential {
                username: "me".into(),
                password: "s3cret".into()
            })
        );
        assert_eq!(creds.get("reg.example.com:5000").unwrap().username, "u");
        assert!(creds.get("empty.io").is_none());
        assert!(creds.get("other.io").is_none());
        assert!(!format!("{:?}", creds).contains("s3cret"));
        assert!(DockerCredentials::parse(r#"{"auths":{"x":{"auth":"!!"}}}"#).is_err());
    }

    #[test]
    fn docker_config_location_follows_docker_config_then_home() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        std::fs::write(
            dir.path().join("home/.docker/config.json"),
            r#"{"auths":{"a.io":{"username":"home","password":"x"}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("cfg")).unwrap();
        std::fs::write(
            dir.path().join("cfg/config.json"),
            r#"{"auths":{"a.io":{"username":"cfg","password":"x"}}}"#,
        )
        .unwrap();
        let home = dir.path().join("home");
        let cfg = dir.path().join("cfg");
        let from_home = DockerCredentials::load(None, Some(&home)).unwrap();
        assert_eq!(from_home.get("a.io").unwrap().username, "home");
        let from_cfg = DockerCredentials::load(Some(&cfg), Some(&home)).unwrap();
        assert_eq!(from_cfg.get("a.io").unwrap().username, "cfg");
        let missing = DockerCredentials::load(Some(&dir.path().join("none")), None).unwrap();
        assert!(missing.get("a.io").is_none());
    }

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/app:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/app:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }
}
