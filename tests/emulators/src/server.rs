//! Serves an axum router on an ephemeral loopback port for as long as a handle lives:
//! a cloud API under the process's network conditions (see `conditions`), or any
//! other server as it is.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An HTTP server on `127.0.0.1`, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `127.0.0.1:0` and serves the router that `make_router` builds from the
    /// server's own base URL (`http://127.0.0.1:PORT`).
    pub async fn start(make_router: impl FnOnce(&str) -> Router) -> Self {
        Self::serve(make_router, false).await
    }

    /// As [`Server::start`], for a cloud API: every answer waits for the delay
    /// `conditions::set_delay` sets.
    pub async fn start_api(make_router: impl FnOnce(&str) -> Router) -> Self {
        Self::serve(make_router, true).await
    }

    async fn serve(make_router: impl FnOnce(&str) -> Router, api: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        let mut router = make_router(&format!("http://{addr}"));
        if api {
            router = router.layer(axum::middleware::from_fn(crate::conditions::delayed));
        }
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the test HTTP server failed");
        });
        Self { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
