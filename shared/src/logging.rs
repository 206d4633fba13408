//! Structured logs: JSON lines for the functions (one object per event, as
//! CloudWatch and Cloud Logging expect), plain text for a person at a terminal.
//! The level comes from `FEDSYNC_LOG` (e.g. `info`, or `fedsync=debug,warn`).
//!
//! Whatever it says, the HTTP and AWS SDK crates never log below `debug`: at
//! `trace` they print request bodies, which carry secret values and tokens.

use tracing::Level;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::prelude::*;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "FEDSYNC_LOG";

/// Crates whose `trace` output includes request or response bodies.
const BODY_LOGGING_CRATES: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sdk_kms",
    "aws_sdk_secretsmanager",
    "aws_sdk_sqs",
    "aws_sdk_sts",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

fn user_filter() -> Targets {
    std::env::var(LOG_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

/// The cap that keeps body-logging crates at `debug` at most.
fn body_cap() -> Targets {
    BODY_LOGGING_CRATES
        .iter()
        .fold(Targets::new().with_default(Level::TRACE), |t, c| {
            t.with_target(*c, Level::DEBUG)
        })
}

/// JSON lines on standard output, for the functions.
pub fn init_json() {
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(user_filter().and(body_cap())))
        .try_init();
}

/// Plain text on standard error, for the command line (stdout stays for results).
pub fn init_text() {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(user_filter().and(body_cap())))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_logging_crates_never_trace() {
        let cap = body_cap();
        assert!(!cap.would_enable("aws_smithy_runtime::client::orchestrator", &Level::TRACE));
        assert!(!cap.would_enable("hyper::proto", &Level::TRACE));
        assert!(cap.would_enable("aws_smithy_runtime::client::orchestrator", &Level::DEBUG));
        assert!(cap.would_enable("fedsync::sync", &Level::TRACE));
    }
}
