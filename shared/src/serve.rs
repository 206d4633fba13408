//! Serving an HTTP receiver as a container platform expects: on `$PORT` (default
//! 8080) on all interfaces, finishing the requests in flight on SIGTERM.

use std::io;

/// Serves `router` until SIGTERM or Ctrl-C.
pub async fn serve(router: axum::Router) -> io::Result<()> {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080u16);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!(port, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(terminated())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM (Cloud Run's and Kubernetes' stop signal) or Ctrl-C.
async fn terminated() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
