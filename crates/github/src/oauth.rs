//! Access tokens: the runner proves itself with a client assertion
//! ([`crate::assertion`]) at its token URL (`POST`, form-encoded
//! `grant_type=client_credentials`, `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
//! `client_assertion=<JWT>`) and gets `{access_token, token_type, expires_in}` back
//! (actions/runner `src/Sdk/WebApi/WebApi/OAuth/VssOAuthTokenHttpClient.cs`,
//! `VssOAuthTokenResponse.cs`). The token is kept until a minute before it expires, and
//! fetched again at once after a 401 or the broker's `ForceTokenRefresh`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::assertion::{SigningAlgorithm, client_assertion};
use crate::files::OAuthCredentials;
use crate::key::RunnerKey;

/// The `client_assertion_type` of a JWT bearer assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long before its expiry a token is replaced.
const EARLY: Duration = Duration::from_secs(60);

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "cannot reach the token endpoint {url}; check the network and the runner's proxy settings"
    )]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the token endpoint {url} refused the runner's credentials (HTTP {status}: {body}); the runner may have been removed on GitHub (register it again), or this host's clock is more than 5 minutes off"
    )]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the token endpoint {url} answered HTTP {status}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the token endpoint {url} answered something that is not a token: {message}")]
    Answer { url: String, message: String },
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Clone)]
struct Held {
    token: String,
    renew_at: Instant,
}

/// Hands out the runner's access token, fetching it when needed.
#[derive(Debug)]
pub struct TokenSource {
    http: reqwest::Client,
    credentials: OAuthCredentials,
    key: RunnerKey,
    held: Mutex<Option<Held>>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, credentials: OAuthCredentials, key: RunnerKey) -> Self {
        TokenSource {
            http,
            credentials,
            key,
            held: Mutex::new(None),
        }
    }

    /// The current token, fetched first when there is none or it is about to expire.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && Instant::now() < h.renew_at
        {
            return Ok(h.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// Sends the request `make` builds, with the current token as `Bearer`; after a 401,
    /// fetches a new token and sends once more. The status and the body, or the transport
    /// error of the send.
    pub async fn send_authorized(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Result<(u16, String), reqwest::Error>, TokenError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let response = match make().bearer_auth(&token).send().await {
                Ok(response) => response,
                Err(e) => return Ok(Err(e)),
            };
            let (status, body) = crate::status_and_text(response).await;
            if status == 401 && !retried {
                self.invalidate().await;
                retried = true;
                continue;
            }
            return Ok(Ok((status, body)));
        }
    }

    /// Forgets the token (after a 401, or when the broker asks), so the next
    /// [`TokenSource::token`] fetches a new one.
    pub async fn invalidate(&self) {
        *self.held.lock().await = None;
    }

    async fn fetch(&self) -> Result<Held, TokenError> {
        let url = self.credentials.token_url().to_string();
        let algorithm =
            SigningAlgorithm::for_credentials(self.credentials.require_fips_cryptography);
        let assertion = client_assertion(
            &self.key,
            &self.credentials.client_id,
            &self.credentials.authorization_url,
            algorithm,
            SystemTime::now(),
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let started = Instant::now();
        let response = self
            .http
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|source| TokenError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let (status, text) = crate::status_and_text(response).await;
        let short = crate::excerpt(&text);
        match status {
            200..=299 => {}
            400 | 401 | 403 => {
                return Err(TokenError::Refused {
                    url,
                    status,
                    body: short,
                });
            }
            _ => {
                return Err(TokenError::Failed {
                    url,
                    status,
                    body: short,
                });
            }
        }
        let answer: TokenAnswer = serde_json::from_str(&text).map_err(|e| TokenError::Answer {
            url: url.clone(),
            message: e.to_string(),
        })?;
        if answer.access_token.is_empty() {
            return Err(TokenError::Answer {
                url,
                message: "`access_token` is empty".to_string(),
            });
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        Ok(Held {
            token: answer.access_token,
            renew_at: started + lifetime.saturating_sub(EARLY),
        })
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("a b:c/d.e_f"), "a+b%3Ac%2Fd.e_f");
        assert_eq!(
            form_encode(JWT_BEARER),
            "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        );
    }
}
