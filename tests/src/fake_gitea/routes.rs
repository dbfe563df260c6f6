//! The HTTP surface, as Gitea mounts its Connect handlers: `POST /api/actions/{service}/{method}`
//! only, bodies in `application/proto` or `application/json` (proto3 JSON), gzip request
//! bodies accepted and answers of 1 KiB or more gzipped for clients that accept it, errors
//! as Connect JSON. Every call is recorded, then meets its injected fault, if any, then the
//! token check (every method but Ping and Register), then the rules in [`super::state`].

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::faults::{Fault, Method};
use super::state::{ErrorOrigin, RpcError};
use super::views::RecordedRequest;
use super::{AuthErrorStyle, Shared, lock, pb};

/// Answers at least this long are gzipped for clients that accept gzip (Gitea's
/// `connect.WithCompressMinBytes(1024)`).
const COMPRESS_MIN_BYTES: usize = 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/version", axum::routing::get(version))
        .fallback(handle)
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(shared)
}

/// Gitea's public `GET /api/v1/version` (`routers/api/v1/misc/version.go`): the version,
/// as JSON; not recorded with the runner protocol's calls.
async fn version(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({ "version": shared.options.version })).into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Proto,
    Json,
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A call in the form the handlers work on.
struct Call {
    codec: Codec,
    body: Vec<u8>,
    uuid: Option<String>,
    token: Option<String>,
    request_key: Option<String>,
}

impl Call {
    fn decode<M: Message + Default + DeserializeOwned>(&self) -> Result<M, RpcError> {
        match self.codec {
            Codec::Proto => M::decode(self.body.as_slice()).map_err(|e| invalid(&e)),
            Codec::Json if self.body.is_empty() => Ok(M::default()),
            Codec::Json => serde_json::from_slice(&self.body).map_err(|e| invalid(&e)),
        }
    }

    fn encode<M: Message + Serialize>(&self, message: &M) -> Vec<u8> {
        match self.codec {
            Codec::Proto => message.encode_to_vec(),
            Codec::Json => serde_json::to_vec(message).unwrap_or_default(),
        }
    }
}

fn invalid(e: &dyn std::fmt::Display) -> RpcError {
    RpcError {
        code: "invalid_argument",
        message: format!("unmarshal message: {e}"),
        origin: ErrorOrigin::Connect,
    }
}

fn connect_error(code: &str, http_status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"code": code, "message": message}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Gitea's handlers return gRPC `status` errors that connect-go does not recognise: they
/// reach the client as `unknown` / HTTP 500 with the gRPC text as message.
fn rpc_error_response(style: AuthErrorStyle, e: &RpcError) -> (Response, String) {
    match (style, e.origin) {
        (_, ErrorOrigin::Connect) | (AuthErrorStyle::Connect, _) => {
            let status = super::faults::connect_http_status(e.code);
            (
                connect_error(e.code, status, &e.message),
                e.code.to_string(),
            )
        }
        (AuthErrorStyle::GiteaUnknown, ErrorOrigin::GoError) => {
            (connect_error("unknown", 500, &e.message), "unknown".into())
        }
        (AuthErrorStyle::GiteaUnknown, ErrorOrigin::GrpcStatus) => {
            let message = format!(
                "rpc error: code = {} desc = {}",
                grpc_name(e.code),
                e.message
            );
            (connect_error("unknown", 500, &message), "unknown".into())
        }
    }
}

fn grpc_name(code: &str) -> String {
    code.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A 200 answer whose body is cut after half its announced length, so hyper closes the
/// connection and the client sees it dropped mid-answer.
fn dropped_connection(body: Vec<u8>) -> Response {
    let announced = body.len().max(16);
    let half = Bytes::from(body[..body.len() / 2].to_vec());
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fake-gitea: connection dropped by an injected fault",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        "application/proto".parse().expect("a header value"),
    );
    headers.insert(header::CONTENT_LENGTH, announced.into());
    response
}

fn finish(shared: &Shared, slot: usize, status: u16, error_code: Option<String>) {
    if let Some(r) = lock(&shared.requests).get_mut(slot) {
        r.status = status;
        r.error_code = error_code;
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    http_method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/api/actions_pipeline/_apis/pipelines/workflows/")
        && path.ends_with("/summary")
    {
        if http_method != HttpMethod::PUT {
            return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
        }
        let answer = lock(&shared.server).put_summary(
            header_text(&headers, "authorization").as_deref(),
            &path,
            header_text(&headers, "content-type").as_deref(),
            &raw,
        );
        return match answer {
            Ok((message, size)) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"message": message, "sizeBytes": size, "runAttempt": 1}).to_string(),
            )
                .into_response(),
            Err((status, text)) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                text,
            )
                .into_response(),
        };
    }
    let method = path
        .strip_prefix("/api/actions/")
        .and_then(|p| p.split_once('/'))
        .and_then(|(service, name)| Method::from_procedure(service, name));
    let content_type = header_text(&headers, "content-type");
    let content_encoding = header_text(&headers, "content-encoding");
    let codec = match content_type
        .as_deref()
        .map(|c| c.split(';').next().unwrap_or(c).trim())
    {
        Some("application/proto") => Some(Codec::Proto),
        Some("application/json") => Some(Codec::Json),
        _ => None,
    };
    let body = match content_encoding.as_deref() {
        Some("gzip") => {
            let mut out = Vec::new();
            match flate2::read::GzDecoder::new(raw.as_ref()).read_to_end(&mut out) {
                Ok(_) => Some(out),
                Err(_) => None,
            }
        }
        None | Some("identity") => Some(raw.to_vec()),
        Some(_) => None,
    };
    let call = Call {
        codec: codec.unwrap_or(Codec::Proto),
        body: body.clone().unwrap_or_default(),
        uuid: header_text(&headers, "x-runner-uuid"),
        token: header_text(&headers, "x-runner-token"),
        request_key: header_text(&headers, "x-runner-request-key"),
    };
    let recorded_body = match (method, codec, &body) {
        (Some(m), Some(_), Some(_)) => body_as_json(m, &call),
        _ => None,
    };
    let slot = {
        let mut requests = lock(&shared.requests);
        requests.push(RecordedRequest {
            method,
            http_method: http_method.to_string(),
            path: path.clone(),
            content_type,
            content_encoding: content_encoding.clone(),
            accept_encoding: header_text(&headers, "accept-encoding"),
            user_agent: header_text(&headers, "user-agent"),
            connect_protocol_version: header_text(&headers, "connect-protocol-version"),
            runner_uuid: call.uuid.clone(),
            runner_token_sent: call.token.is_some(),
            request_key: call.request_key.clone(),
            body: recorded_body,
            status: 0,
            error_code: None,
            received_at: SystemTime::now(),
        });
        requests.len() - 1
    };
    let Some(method) = method else {
        let r = connect_error("unimplemented", 404, &format!("{path} is not a procedure"));
        finish(&shared, slot, 404, Some("unimplemented".into()));
        return r;
    };
    if http_method != HttpMethod::POST {
        finish(&shared, slot, 405, None);
        return (StatusCode::METHOD_NOT_ALLOWED, "only POST is routed").into_response();
    }
    if codec.is_none() {
        finish(&shared, slot, 415, None);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/proto or application/json",
        )
            .into_response();
    }
    if body.is_none() {
        let r = connect_error(
            "internal",
            500,
            "unsupported or corrupt request compression",
        );
        finish(&shared, slot, 500, Some("internal".into()));
        return r;
    }
    let fault = {
        let roll = lock(&shared.server).roll();
        lock(&shared.faults).take(method, roll)
    };
    match &fault {
        Some(Fault::ConnectError {
            code,
            http_status,
            message,
        }) => {
            finish(&shared, slot, *http_status, Some(code.clone()));
            return connect_error(code, *http_status, message);
        }
        Some(Fault::HttpStatus(status)) => {
            finish(&shared, slot, *status, None);
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (code, "fake-gitea: injected HTTP error").into_response();
        }
        Some(Fault::Unauthenticated) => {
            let (response, code) =
                rpc_error_response(shared.options.auth_errors, &RpcError::unauthenticated());
            finish(&shared, slot, response.status().as_u16(), Some(code));
            return response;
        }
        Some(Fault::DropBeforeHandling) => return dropped_connection(vec![0; 64]),
        _ => {}
    }
    let answer = dispatch(&shared, method, &call, fault.as_ref());
    let body = match answer {
        Ok(body) => body,
        Err(e) => {
            let (response, code) = rpc_error_response(shared.options.auth_errors, &e);
            finish(&shared, slot, response.status().as_u16(), Some(code));
            return response;
        }
    };
    match fault {
        Some(Fault::DropAfterHandling) => return dropped_connection(body),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    finish(&shared, slot, 200, None);
    success(&shared, method, call.codec, &headers, body)
}

/// A 200 answer: the encoded message, gzipped when long enough and accepted, with the
/// capabilities header on Declare answers when configured.
fn success(
    shared: &Shared,
    method: Method,
    codec: Codec,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Response {
    let content_type = match codec {
        Codec::Proto => "application/proto",
        Codec::Json => "application/json",
    };
    let gzip = header_text(headers, "accept-encoding")
        .is_some_and(|a| a.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response_headers = vec![(header::CONTENT_TYPE, content_type.to_string())];
    if method == Method::Declare
        && let Some(caps) = &shared.options.declare_capabilities
    {
        response_headers.push((
            header::HeaderName::from_static("x-gitea-actions-capabilities"),
            caps.clone(),
        ));
    }
    let body = if gzip && body.len() >= COMPRESS_MIN_BYTES {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match encoder.write_all(&body).and_then(|()| encoder.finish()) {
            Ok(zipped) => {
                response_headers.push((header::CONTENT_ENCODING, "gzip".to_string()));
                zipped
            }
            Err(_) => body,
        }
    } else {
        body
    };
    let mut response = Response::new(Body::from(body));
    for (name, value) in response_headers {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// Runs one call against the server rules and encodes its answer.
fn dispatch(
    shared: &Shared,
    method: Method,
    call: &Call,
    fault: Option<&Fault>,
) -> Result<Vec<u8>, RpcError> {
    // connect-go decodes the message before Gitea's interceptor checks the runner.
    let mut server = lock(&shared.server);
    let (uuid, token) = (call.uuid.as_deref(), call.token.as_deref());
    match method {
        Method::Register => Ok(call.encode(&server.register(call.decode()?)?)),
        Method::Declare => {
            let req = call.decode()?;
            let runner = server.authenticate(uuid, token)?;
            Ok(call.encode(&server.declare(runner, req)))
        }
        Method::FetchTask => {
            let req = call.decode()?;
            let runner = server.authenticate(uuid, token)?;
            let key = call
                .request_key
                .as_deref()
                .filter(|_| shared.options.redeliver_by_request_key);
            Ok(call.encode(&server.fetch_task(runner, &req, key)))
        }
        Method::UpdateTask => {
            let req = call.decode()?;
            let runner = server.authenticate(uuid, token)?;
            Ok(call.encode(&server.update_task(runner, req)?))
        }
        Method::UpdateLog => {
            let req = call.decode()?;
            let runner = server.authenticate(uuid, token)?;
            Ok(call.encode(&server.update_log(runner, req, fault)?))
        }
        Method::Ping => {
            let req: pb::PingRequest = call.decode()?;
            Ok(call.encode(&pb::PingResponse {
                data: format!("Hello, {}!", req.data),
            }))
        }
    }
}

fn to_json<M: Serialize>(m: &M) -> Option<Value> {
    serde_json::to_value(m).ok()
}

/// The request message in proto3 JSON form, for [`RecordedRequest::body`].
fn body_as_json(method: Method, call: &Call) -> Option<Value> {
    match method {
        Method::Ping => to_json(&call.decode::<pb::PingRequest>().ok()?),
        Method::Register => to_json(&call.decode::<pb::RegisterRequest>().ok()?),
        Method::Declare => to_json(&call.decode::<pb::DeclareRequest>().ok()?),
        Method::FetchTask => to_json(&call.decode::<pb::FetchTaskRequest>().ok()?),
        Method::UpdateTask => to_json(&call.decode::<pb::UpdateTaskRequest>().ok()?),
        Method::UpdateLog => to_json(&call.decode::<pb::UpdateLogRequest>().ok()?),
    }
}
