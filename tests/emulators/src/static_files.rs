//! A plain static file server: what an operator would use to host the issuer
//! documents `fedsync issuer` writes (a bucket, a CDN, nginx).

use crate::server::Server;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::path::PathBuf;
use std::sync::Arc;

/// Serves the files under a folder chosen from the server's own URL.
#[derive(Debug)]
pub struct StaticFiles {
    url: String,
    _server: Server,
}

impl StaticFiles {
    /// Starts serving; `root` picks the folder from the server's base URL.
    pub async fn start(root: impl FnOnce(&str) -> PathBuf) -> Self {
        let server = Server::start(|url| {
            let root = Arc::new(root(url));
            Router::new().route("/{*path}", get(serve)).with_state(root)
        })
        .await;
        StaticFiles {
            url: server.base_url(),
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn serve(State(root): State<Arc<PathBuf>>, Path(path): Path<String>) -> impl IntoResponse {
    if path.split('/').any(|part| part == "..") {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    match std::fs::read(root.join(&path)) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        ),
        Err(_) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        ),
    }
}
