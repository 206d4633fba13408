//! The webhook receiver `fedsync-webhook`: one router (see `routes`) served two
//! ways. As a container it listens on `$PORT`, and also accepts an OpenBao/Vault
//! audit stream when `[triggers.vault_audit]` is configured; on AWS Lambda
//! (`AWS_LAMBDA_RUNTIME_API` is set) it serves the same router as a function URL.
//! `FEDSYNC_BUDGET` bounds each request and each sync from the audit stream
//! (default 25 s: Event Grid waits 30 s for an answer).

mod audit_stream;
mod routes;

use fedsync::triggers::event_grid::EventGridAuth;
use fedsync::triggers::notify::NotifyAuth;
use fedsync::{Config, Engine, retry};
use std::sync::Arc;
use std::time::Duration;

/// The default budget of one request or one audit-stream sync.
const BUDGET: Duration = Duration::from_secs(25);

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    fedsync::logging::init_json();
    let started = start()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "start-up"))?;
    let (app, audit) = started;
    let router = routes::router(app.clone());
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_http::run(router).await;
    }
    if let Some(audit) = audit {
        tokio::spawn(audit_stream::serve(audit, app));
    }
    fedsync::serve::serve(router).await?;
    Ok(())
}

/// Loads the configuration and builds what every request needs.
async fn start() -> Result<(Arc<routes::App>, Option<audit_stream::Listener>), Error> {
    let config = Config::from_environment()?;
    let budget = retry::budget_from_env(BUDGET)?;
    let event_grid = config
        .triggers
        .event_grid
        .as_ref()
        .map(EventGridAuth::new)
        .transpose()?;
    let notify = config
        .triggers
        .notify
        .as_ref()
        .map(NotifyAuth::new)
        .transpose()?;
    let audit = match &config.triggers.vault_audit {
        Some(_) if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            return Err("[triggers.vault_audit] needs a long-running receiver: a Lambda function cannot accept the audit stream; run the container image instead".into());
        }
        Some(c) => Some(audit_stream::Listener::bind(c).await?),
        None => None,
    };
    let engine = Engine::new(config).await?;
    let app = Arc::new(routes::App {
        engine,
        event_grid,
        notify,
        budget,
    });
    Ok((app, audit))
}
