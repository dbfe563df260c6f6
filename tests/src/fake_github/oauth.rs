//! `POST /oauth/token`: the client-credentials grant with a JWT bearer assertion.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{BoxedUint, PublicKey};
use serde_json::{Value, json};

use super::{OAuthClient, Shared, TokenRequest, lock};

/// Clock skew the fake tolerates on `nbf` and `exp`.
const SKEW_SECS: u64 = 300;

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn public_key(client: &OAuthClient) -> Option<PublicKey> {
    let uint = |b: &[u8]| {
        let bits = (b.len().max(1) * 8).next_multiple_of(64) as u32;
        BoxedUint::from_be_slice(b, bits).ok()
    };
    PublicKey::new(uint(&client.modulus)?, uint(&client.exponent)?).ok()
}

/// Checks the assertion; the client id, the algorithm and the refusal reason.
fn check(
    shared: &Shared,
    assertion: &str,
    audience: &str,
) -> (Option<String>, Option<String>, Result<String, String>) {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return (None, None, Err("the assertion is not a JWT".into()));
    };
    let json = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims), Ok(signature)) = (
        json(header),
        json(claims),
        URL_SAFE_NO_PAD.decode(signature),
    ) else {
        return (None, None, Err("the assertion does not decode".into()));
    };
    let alg = header["alg"].as_str().map(str::to_string);
    let iss = claims["iss"].as_str().map(str::to_string);
    let Some(client_id) = iss.clone() else {
        return (None, alg, Err("the assertion has no issuer".into()));
    };
    if claims["sub"].as_str() != Some(client_id.as_str()) {
        return (iss, alg, Err("sub is not the issuer".into()));
    }
    if claims["aud"].as_str() != Some(audience) {
        return (iss, alg, Err(format!("aud is not {audience}")));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (Some(nbf), Some(exp)) = (claims["nbf"].as_u64(), claims["exp"].as_u64()) else {
        return (iss, alg, Err("nbf or exp is missing".into()));
    };
    if nbf > now + SKEW_SECS || exp + SKEW_SECS < now {
        return (iss, alg, Err("the assertion is not valid now".into()));
    }
    let client = lock(&shared.state).clients.get(&client_id).cloned();
    let Some(key) = client.as_ref().and_then(public_key) else {
        return (iss, alg, Err(format!("unknown client {client_id}")));
    };
    let input = format!("{}.{}", parts[0], parts[1]);
    let verified = match alg.as_deref() {
        Some("RS256") => signature.as_slice().try_into().is_ok_and(|s| {
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                .verify(input.as_bytes(), &s)
                .is_ok()
        }),
        Some("PS256") => signature.as_slice().try_into().is_ok_and(|s| {
            rsa::pss::VerifyingKey::<Sha256>::new(key)
                .verify(input.as_bytes(), &s)
                .is_ok()
        }),
        _ => false,
    };
    if !verified {
        return (iss, alg, Err("the signature does not verify".into()));
    }
    (iss, alg, Ok(client_id))
}

pub(super) async fn token(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let fields = form(&body);
    let field = |k: &str| {
        fields
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let audience = format!("http://{}/oauth/token", shared.addr);
    let (client_id, algorithm, outcome) = if field("grant_type").as_deref()
        != Some("client_credentials")
        || field("client_assertion_type").as_deref()
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        (None, None, Err("unsupported grant".to_string()))
    } else {
        check(
            &shared,
            &field("client_assertion").unwrap_or_default(),
            &audience,
        )
    };
    let mut state = lock(&shared.state);
    let outcome = outcome.map(|client| {
        state.next_token += 1;
        let token = format!("fake-github-access-{}", state.next_token);
        state.tokens.insert(token.clone(), client);
        token
    });
    state.token_requests.push(TokenRequest {
        client_id,
        algorithm,
        outcome: outcome.clone(),
    });
    match outcome {
        Ok(token) => (
            StatusCode::OK,
            axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})),
        )
            .into_response(),
        Err(why) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": why})),
        )
            .into_response(),
    }
}
