//! The live console feed: what GitHub's page shows of a step while it runs. When the job's
//! `SystemVssConnection` offers a `FeedStreamUrl`, actions/runner opens a websocket to it
//! (`https` → `wss`, `http` → `ws`) with the job token as `Authorization: Bearer`, and sends
//! each batch of a step's lines (at most 100) as one text message, the camelCase JSON of
//! `TimelineRecordFeedLinesWrapper`: `{count, value: [lines], stepId, startLine}`
//! (`src/Runner.Common/ResultsServer.cs` `AppendLiveConsoleFeedAsync`,
//! `src/Sdk/DTWebApi/WebApi/TimelineRecordFeedLinesWrapper.cs`). The feed is best effort:
//! the blobs hold the log; a feed that fails is given up.

use std::sync::Arc;

use futures_util::SinkExt as _;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// At most this many lines go in one message (actions/runner's batch).
pub const BATCH_LINES: usize = 100;

/// Why the feed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LiveConsoleError {
    #[error("the live console URL {0} is not an http(s) or ws(s) URL")]
    Url(String),
    #[error("cannot connect to the live console at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the live console at {url} refused the websocket: {message}")]
    Handshake { url: String, message: String },
    #[error("sending to the live console failed: {0}")]
    Send(String),
}

/// What the websocket runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open feed.
pub struct LiveConsole {
    socket: WebSocketStream<Box<dyn Io>>,
}

impl std::fmt::Debug for LiveConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConsole").finish_non_exhaustive()
    }
}

impl LiveConsole {
    /// Opens the feed at `feed_url` (the `FeedStreamUrl`) with the job's token.
    pub async fn connect(feed_url: &str, job_token: &str) -> Result<LiveConsole, LiveConsoleError> {
        let url = feed_url
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else {
            return Err(LiveConsoleError::Url(feed_url.to_string()));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(port) => (h, port),
                Err(_) => return Err(LiveConsoleError::Url(feed_url.to_string())),
            },
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(LiveConsoleError::Url(feed_url.to_string()));
        }
        let connect_error = |source| LiveConsoleError::Connect {
            url: url.clone(),
            source,
        };
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(connect_error)?;
        let stream: Box<dyn Io> = if tls {
            let connector = tls_connector().map_err(connect_error)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| connect_error(std::io::Error::other(e)))?;
            Box::new(connector.connect(name, tcp).await.map_err(connect_error)?)
        } else {
            Box::new(tcp)
        };
        let handshake = |message: String| LiveConsoleError::Handshake {
            url: url.clone(),
            message,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| handshake(e.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {job_token}"))
            .map_err(|_| handshake("the job token is not a header value".into()))?;
        request.headers_mut().insert("Authorization", bearer);
        let (socket, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| handshake(e.to_string()))?;
        Ok(LiveConsole { socket })
    }

    /// Sends one batch of a step's lines; `start_line` is the first one's number (from 1).
    pub async fn send(
        &mut self,
        step_id: &str,
        lines: &[String],
        start_line: u64,
    ) -> Result<(), LiveConsoleError> {
        for (i, batch) in lines.chunks(BATCH_LINES).enumerate() {
            let body = json!({
                "count": batch.len(),
                "value": batch,
                "stepId": step_id,
                "startLine": start_line + (i * BATCH_LINES) as u64,
            });
            self.socket
                .send(Message::text(body.to_string()))
                .await
                .map_err(|e| LiveConsoleError::Send(e.to_string()))?;
        }
        Ok(())
    }

    /// Closes the feed.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// TLS with the platform's roots and the process's one crypto provider (ring).
fn tls_connector() -> std::io::Result<tokio_rustls::TlsConnector> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_platform_verifier()
        .map_err(std::io::Error::other)?
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_feed_url_that_is_not_http_or_ws_is_refused() {
        for url in ["ftp://feed.example/x", "feed.example/x", "https:///nohost"] {
            let err = LiveConsole::connect(url, "t").await.unwrap_err();
            assert!(matches!(err, LiveConsoleError::Url(_)), "{url}: {err}");
        }
        // Nothing listens on port 9 of the loopback: a connect error naming the ws URL.
        let err = LiveConsole::connect("http://127.0.0.1:9/feed", "t")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ws://127.0.0.1:9/feed"), "{err}");
    }
}
