//! The public listener: HTTP/1.1 connections with a header-read timeout and a cap on open
//! connections, served until shutdown, then drained.

use crate::config::Config;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Longest wait for open requests to finish after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown`. A client that does not send its request headers
/// within `header_read_timeout_ms` is disconnected (idle keep-alive connections too); at most
/// `max_connections` are open, further ones wait in the listen backlog.
pub async fn serve(listener: TcpListener, app: Router, config: &Config, shutdown: CancellationToken) {
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let header_timeout = Duration::from_millis(config.header_read_timeout_ms);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // e.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(message = "Accept failed.", %error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while tasks.join_next().await.is_some() {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client that never finishes its headers is disconnected after the header-read timeout.
    #[tokio::test]
    async fn slow_headers_are_cut_off() {
        let config = Config { header_read_timeout_ms: 200, ..Config::default() };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn({
            let stop = stop.clone();
            async move { serve(listener, app, &config, stop).await }
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let t0 = std::time::Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "connection still open after 5 s");
        assert!(t0.elapsed() < Duration::from_secs(3));
        // A complete request on a new connection is served.
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        client.read_to_end(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
        stop.cancel();
        server.await.unwrap();
    }
}
