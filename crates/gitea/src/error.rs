//! What can go wrong in one call to the server: the typed Connect error code and message
//! decoded from an error body, plus transport failures, with the two questions every caller
//! asks answered: does the server still know this runner, and can trying again help?

use std::time::Duration;

use serde::Deserialize;

/// A Connect error code (<https://connectrpc.com/docs/protocol#error-codes>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

const CODES: [(Code, &str); 16] = [
    (Code::Canceled, "canceled"),
    (Code::Unknown, "unknown"),
    (Code::InvalidArgument, "invalid_argument"),
    (Code::DeadlineExceeded, "deadline_exceeded"),
    (Code::NotFound, "not_found"),
    (Code::AlreadyExists, "already_exists"),
    (Code::PermissionDenied, "permission_denied"),
    (Code::ResourceExhausted, "resource_exhausted"),
    (Code::FailedPrecondition, "failed_precondition"),
    (Code::Aborted, "aborted"),
    (Code::OutOfRange, "out_of_range"),
    (Code::Unimplemented, "unimplemented"),
    (Code::Internal, "internal"),
    (Code::Unavailable, "unavailable"),
    (Code::DataLoss, "data_loss"),
    (Code::Unauthenticated, "unauthenticated"),
];

impl Code {
    /// The code's name as written in a Connect error body (`"unauthenticated"`).
    pub fn as_str(self) -> &'static str {
        CODES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("unknown", |(_, name)| name)
    }

    /// The code named `name` in a Connect error body; `None` for a name Connect lacks.
    pub fn from_name(name: &str) -> Option<Code> {
        CODES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// The code the Connect protocol assigns to an HTTP status when the body carries none
    /// (a proxy's HTML error page, say).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502..=504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Connect unary error body: `{"code": "...", "message": "...", "details": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ConnectErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// One call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(
        "the instance address {instance:?} is not an http:// or https:// URL; give it as https://gitea.example.com"
    )]
    Address { instance: String },
    #[error("the HTTP client could not be set up (TLS provider or system settings)")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{method}: the runner token holds characters an HTTP header cannot carry; re-register the runner"
    )]
    Credentials { method: &'static str },
    #[error(
        "{method}: the server could not be reached; check the instance address, DNS, proxy and TLS"
    )]
    Send {
        method: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method}: no answer within {timeout:?}; the server is slow or unreachable")]
    Timeout {
        method: &'static str,
        timeout: Duration,
    },
    #[error("{method}: the server answered HTTP {status}, {code}: {message}")]
    Server {
        method: &'static str,
        status: u16,
        code: Code,
        message: String,
    },
    #[error("{method}: the response is not gzip as its Content-Encoding says")]
    Gzip {
        method: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{method}: the response uses Content-Encoding {encoding:?}; only gzip is supported")]
    Encoding {
        method: &'static str,
        encoding: String,
    },
    #[error(
        "{method}: the response is larger than {limit} bytes; is this a Gitea or Forgejo server?"
    )]
    TooLarge { method: &'static str, limit: u64 },
    #[error(
        "{method}: the response is not a valid protobuf message; is the address a Gitea or Forgejo server (1.21 or later)?"
    )]
    Decode {
        method: &'static str,
        #[source]
        source: prost::DecodeError,
    },
}

impl RpcError {
    /// The Connect code of a server error, `None` for transport failures.
    pub fn code(&self) -> Option<Code> {
        match self {
            RpcError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server no longer knows this runner (deleted, or its token changed): Connect
    /// `unauthenticated`, or Gitea's interceptor error that connect-go flattens to
    /// `unknown` with `rpc error: code = Unauthenticated desc = unregistered runner`.
    pub fn is_unauthenticated(&self) -> bool {
        match self {
            RpcError::Server {
                code: Code::Unauthenticated,
                ..
            } => true,
            RpcError::Server {
                code: Code::Unknown,
                message,
                ..
            } => message.contains("Unauthenticated") || message.contains("unregistered runner"),
            _ => false,
        }
    }

    /// Trying the same call again later may succeed: the network, a timeout, or a server
    /// that is restarting or overloaded. Refusals (bad token, bad request) are not.
    pub fn is_transient(&self) -> bool {
        if self.is_unauthenticated() {
            return false;
        }
        match self {
            RpcError::Send { .. } | RpcError::Timeout { .. } => true,
            RpcError::Server { code, status, .. } => {
                matches!(
                    code,
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::ResourceExhausted
                        | Code::Aborted
                        | Code::Internal
                ) || (*code == Code::Unknown && *status >= 500)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: Code, status: u16, message: &str) -> RpcError {
        RpcError::Server {
            method: "FetchTask",
            status,
            code,
            message: message.to_string(),
        }
    }

    #[test]
    fn every_code_round_trips_through_its_name() {
        for (code, name) in CODES {
            assert_eq!(Code::from_name(name), Some(code));
            assert_eq!(code.as_str(), name);
        }
        assert_eq!(Code::from_name("UNAUTHENTICATED"), None);
    }

    #[test]
    fn http_status_maps_as_connect_says() {
        assert_eq!(Code::from_http_status(401), Code::Unauthenticated);
        assert_eq!(Code::from_http_status(503), Code::Unavailable);
        assert_eq!(Code::from_http_status(404), Code::Unimplemented);
        assert_eq!(Code::from_http_status(500), Code::Unknown);
    }

    #[test]
    fn gitea_unknown_wrapped_unauthenticated_counts_as_unauthenticated() {
        let wrapped = server(
            Code::Unknown,
            500,
            "rpc error: code = Unauthenticated desc = unregistered runner",
        );
        assert!(wrapped.is_unauthenticated());
        assert!(!wrapped.is_transient());
        assert!(server(Code::Unauthenticated, 401, "unregistered runner").is_unauthenticated());
        let other = server(Code::Unknown, 500, "database is locked");
        assert!(!other.is_unauthenticated());
        assert!(other.is_transient());
    }

    #[test]
    fn refusals_are_not_transient() {
        assert!(!server(Code::InvalidArgument, 400, "bad").is_transient());
        assert!(!server(Code::Unimplemented, 404, "no").is_transient());
        assert!(server(Code::Unavailable, 503, "restarting").is_transient());
        let timeout = RpcError::Timeout {
            method: "Ping",
            timeout: Duration::from_secs(1),
        };
        assert!(timeout.is_transient());
        assert!(!timeout.is_unauthenticated());
    }
}
