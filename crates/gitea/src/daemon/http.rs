//! The daemon's HTTP endpoints (`metrics.enabled`) on `metrics.addr`: `/metrics` in
//! Prometheus' text format, `/healthz` (200 while the process runs) and `/readyz` (200
//! once declared and while polling works; 503 with the reason otherwise). The listener is
//! bound before the poll loop starts, so a taken port fails the start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::metrics::{DaemonMetrics, ReportFigures};
use hr_image::metrics::BuildMetrics;

/// The content type of the text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serving the endpoints failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen on metrics.addr {addr}; is another process using the port? Set another metrics.addr or metrics.enabled: false"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the handlers read.
struct Endpoints<R> {
    metrics: Arc<DaemonMetrics>,
    builds: &'static BuildMetrics,
    report: R,
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: tokio::net::TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> Result<MetricsServer, HttpError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        Ok(MetricsServer { listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `stop` fires. `report` reads the reporter's counters at each scrape.
    pub async fn serve<R>(
        self,
        metrics: Arc<DaemonMetrics>,
        builds: &'static BuildMetrics,
        report: R,
        stop: CancellationToken,
    ) where
        R: Fn() -> ReportFigures + Send + Sync + 'static,
    {
        let state = Arc::new(Endpoints {
            metrics,
            builds,
            report,
        });
        let router = Router::new()
            .route("/metrics", get(metrics_text::<R>))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readiness::<R>))
            .with_state(state);
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the metrics server stopped");
        }
    }
}

async fn metrics_text<R>(State(state): State<Arc<Endpoints<R>>>) -> impl IntoResponse
where
    R: Fn() -> ReportFigures + Send + Sync + 'static,
{
    let text = state.metrics.to_text((state.report)(), state.builds);
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text)
}

async fn readiness<R>(State(state): State<Arc<Endpoints<R>>>) -> impl IntoResponse
where
    R: Fn() -> ReportFigures + Send + Sync + 'static,
{
    match state.metrics.readiness(Instant::now()) {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (status, body)
    }

    #[tokio::test]
    async fn endpoints_answer_metrics_health_and_readiness() {
        static BUILDS: BuildMetrics = BuildMetrics::new();
        let metrics = Arc::new(DaemonMetrics::new(4, Duration::from_secs(30)));
        let server = MetricsServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        let report = || ReportFigures {
            rows_sent: 7,
            ..ReportFigures::default()
        };
        let serving =
            tokio::spawn(server.serve(Arc::clone(&metrics), &BUILDS, report, stop.clone()));

        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("not declared"), "{body}");
        metrics.set_declared();
        assert_eq!(get(addr, "/readyz").await.0, 200);
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("hybrid_runner_capacity 4\n"), "{body}");
        assert!(
            body.contains("hybrid_runner_log_rows_sent_total 7\n"),
            "{body}"
        );
        metrics.set_shutting_down();
        assert_eq!(get(addr, "/readyz").await.0, 503);

        // A second server on the same port cannot start.
        let taken = MetricsServer::bind(addr).await.unwrap_err();
        assert!(taken.to_string().contains("metrics.addr"), "{taken}");
        stop.cancel();
        serving.await.unwrap();
    }
}
