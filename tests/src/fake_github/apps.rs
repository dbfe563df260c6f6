//! GitHub App authentication: `POST /api/v3/app/installations/{id}/access_tokens` with
//! `Authorization: Bearer <JWT>`. The JWT must be RS256, its `iss` the App's id (a number or
//! a string), its `exp` neither past nor more than 10 minutes ahead, its `iat` not in the
//! future (a minute of skew each way), and its signature must verify with the public key the
//! test registered for the App (docs.github.com "Generating a JSON Web Token (JWT) for a
//! GitHub App"). The answer is 201 `{token, expires_at, permissions, repository_selection}`;
//! the token then manages the runners of the URL the App is installed on, until it expires.
//! A refused JWT gets 401, an installation the App does not have 404.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hr_github::RunnerKey;
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use serde_json::{Value, json};

use super::runners::{ApiToken, message};
use super::{FakeGitHub, OAuthClient, Shared, credential, lock};

/// Clock skew the fake allows on an App JWT's `iat` and `exp`.
const JWT_SKEW_SECS: u64 = 60;
/// GitHub's limit on how far ahead an App JWT may expire.
const JWT_MAX_SECS: u64 = 600;
/// How long an installation token lasts unless a test says otherwise (GitHub: one hour).
pub(super) const DEFAULT_INSTALLATION_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// One `access_tokens` request as the fake saw it.
#[derive(Debug, Clone)]
pub struct InstallationTokenRequest {
    pub installation_id: u64,
    /// The installation token handed out, or why none was.
    pub outcome: Result<String, String>,
}

/// Why an App JWT is refused, or the App id it proves.
fn check_app_jwt(shared: &Shared, jwt: &str) -> Result<u64, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("A JSON web token could not be decoded".into());
    };
    let decode = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims), Ok(signature)) = (
        decode(header),
        decode(claims),
        URL_SAFE_NO_PAD.decode(signature),
    ) else {
        return Err("A JSON web token could not be decoded".into());
    };
    if header["alg"] != "RS256" {
        return Err("The JWT must be signed with RS256".into());
    }
    let app_id = claims["iss"]
        .as_u64()
        .or_else(|| claims["iss"].as_str().and_then(|s| s.parse().ok()))
        .ok_or("'Issuer' claim ('iss') must be the App's id")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let exp = claims["exp"].as_u64().unwrap_or_default();
    if exp < now {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".into());
    }
    if exp > now + JWT_MAX_SECS + JWT_SKEW_SECS {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    if claims["iat"]
        .as_u64()
        .is_some_and(|iat| iat > now + JWT_SKEW_SECS)
    {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".into());
    }
    let client = lock(&shared.state).apps.get(&app_id).cloned();
    let key = client
        .as_ref()
        .and_then(super::oauth::public_key)
        .ok_or_else(|| format!("Integration not found: {app_id}"))?;
    let input = format!("{}.{}", parts[0], parts[1]);
    let verified = signature.as_slice().try_into().is_ok_and(|s| {
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
            .verify(input.as_bytes(), &s)
            .is_ok()
    });
    if !verified {
        return Err("A JSON web token could not be decoded".into());
    }
    Ok(app_id)
}

pub(super) async fn access_tokens(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(installation_id): Path<u64>,
) -> Response {
    let jwt = credential(&headers, "Bearer").unwrap_or_default();
    let outcome = check_app_jwt(&shared, &jwt).and_then(|app_id| {
        let mut state = lock(&shared.state);
        // Another App's installation is as unknown as a missing one.
        let (_, scope) = state
            .installations
            .get(&installation_id)
            .cloned()
            .filter(|(owner, _)| *owner == app_id)
            .ok_or_else(|| "Not Found".to_string())?;
        state.next_token += 1;
        let token = format!("ghs_fakeinstallation{:020}", state.next_token);
        let expires = SystemTime::now() + state.installation_token_lifetime;
        state.api_tokens.insert(
            token.clone(),
            ApiToken {
                scope,
                expires: Some(expires),
            },
        );
        Ok((token, expires))
    });
    lock(&shared.state)
        .installation_token_requests
        .push(InstallationTokenRequest {
            installation_id,
            outcome: outcome
                .as_ref()
                .map(|(t, _)| t.clone())
                .map_err(String::clone),
        });
    match outcome {
        Ok((token, expires)) => (
            StatusCode::CREATED,
            Json(json!({
                "token": token,
                "expires_at": hr_cluster::time::rfc3339(expires),
                "permissions": {"administration": "write", "organization_self_hosted_runners": "write"},
                "repository_selection": "all",
            })),
        )
            .into_response(),
        Err(why) if why == "Not Found" => message(StatusCode::NOT_FOUND, &why),
        Err(why) => message(StatusCode::UNAUTHORIZED, &why),
    }
}

/// The PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`) of `key`, as GitHub hands out App keys.
pub fn private_key_pem(key: &RunnerKey) -> String {
    use pkcs1::EncodeRsaPrivateKey as _;
    let params = key.to_rsa_parameters();
    let bytes = |name: &str| {
        STANDARD
            .decode(params[name].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    let (n, e, d, p, q, dp, dq, qi) = (
        bytes("modulus"),
        bytes("exponent"),
        bytes("d"),
        bytes("p"),
        bytes("q"),
        bytes("dp"),
        bytes("dq"),
        bytes("inverseQ"),
    );
    fn uint(b: &[u8]) -> pkcs1::UintRef<'_> {
        pkcs1::UintRef::new(b).expect("an RSA key part")
    }
    let der = pkcs1::RsaPrivateKeyRef {
        modulus: uint(&n),
        public_exponent: uint(&e),
        private_exponent: uint(&d),
        prime1: uint(&p),
        prime2: uint(&q),
        exponent1: uint(&dp),
        exponent2: uint(&dq),
        coefficient: uint(&qi),
        other_prime_infos: None,
    };
    der.to_pkcs1_pem(pkcs1::LineEnding::LF)
        .expect("a PEM key")
        .to_string()
}

impl FakeGitHub {
    /// Registers GitHub App `app_id` with the public half of `key`; its JWTs must be signed
    /// with `key` ([`private_key_pem`] gives the PEM an App's owner downloads).
    pub fn add_app(&self, app_id: u64, key: &RunnerKey) {
        lock(&self.shared.state).apps.insert(
            app_id,
            OAuthClient {
                modulus: key.modulus(),
                exponent: key.exponent(),
            },
        );
    }

    /// Installs App `app_id` on `url` (a repository or organisation) as `installation_id`.
    pub fn add_installation(&self, installation_id: u64, app_id: u64, url: &str) {
        lock(&self.shared.state)
            .installations
            .insert(installation_id, (app_id, url.to_string()));
    }

    /// How long the installation tokens issued from now on last (GitHub: one hour).
    pub fn set_installation_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.state).installation_token_lifetime = lifetime;
    }

    /// Every installation token request so far, in order.
    pub fn installation_token_requests(&self) -> Vec<InstallationTokenRequest> {
        lock(&self.shared.state).installation_token_requests.clone()
    }
}
