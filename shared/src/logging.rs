//! Structured logs: JSON lines for the functions (one object per event, as
//! CloudWatch and Cloud Logging expect), plain text for a person at a terminal.
//! The level comes from `FEDSYNC_LOG` (e.g. `info`, or `fedsync=debug,warn`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "FEDSYNC_LOG";

fn filter() -> Targets {
    std::env::var(LOG_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
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
        .with(layer.with_filter(filter()))
        .try_init();
}

/// Plain text on standard error, for the command line (stdout stays for results).
pub fn init_text() {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter()))
        .try_init();
}
