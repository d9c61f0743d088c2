//! The status page and the metrics over plain HTTP, on their own port of
//! the gateway process: a browser on a control-room wall and a Prometheus
//! scraper speak neither gRPC nor mutual TLS.
//!
//! `/` is the page, `/metrics` the Prometheus text, `/report.json` the
//! report the two are made from. Nothing here names a person.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::HealthError;
use crate::monitor::Monitor;

/// The status listener, bound and ready.
pub struct StatusServer {
    listener: TcpListener,
    address: SocketAddr,
    monitor: Arc<Monitor>,
}

impl StatusServer {
    /// Binds `address` (port 0 picks a free port).
    pub async fn bind(address: &str, monitor: Arc<Monitor>) -> Result<Self, HealthError> {
        let bind_error = |source| HealthError::Bind {
            address: address.to_string(),
            source,
        };
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            address,
            monitor,
        })
    }

    /// The address bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `stop` completes.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        let span = info_span!("status_page", address = %self.address);
        async move {
            info!("Status page serving.");
            tokio::pin!(stop);
            loop {
                let (stream, peer) = tokio::select! {
                    () = &mut stop => break,
                    accepted = self.listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            warn!(%error, "Status connection not accepted.");
                            continue;
                        }
                    },
                };
                let monitor = self.monitor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(monitor.clone(), request));
                    let served = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if let Err(error) = served {
                        debug!(%peer, %error, "Status connection ended.");
                    }
                });
            }
            info!("Status page stopped.");
        }
        .instrument(span)
        .await
    }
}

async fn answer(
    monitor: Arc<Monitor>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into()));
    }
    let path = request.uri().path();
    let kind = match path {
        "/" | "/index.html" => "text/html; charset=utf-8",
        "/metrics" => "text/plain; version=0.0.4; charset=utf-8",
        "/report.json" => "application/json",
        _ => return Ok(plain(StatusCode::NOT_FOUND, format!("no page {path}\n"))),
    };
    let report = match monitor.report().await {
        Ok(report) => report,
        Err(error) => {
            warn!(%error, "Status report failed.");
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the hub's store could not be read: {error}\n"),
            ));
        }
    };
    let body = match path {
        "/metrics" => crate::metrics::render(&report),
        "/report.json" => serde_json::to_string_pretty(&*report).unwrap_or_default(),
        _ => crate::page::render(&report),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
