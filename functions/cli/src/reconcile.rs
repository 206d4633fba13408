//! `fedsync reconcile`: one full pass over the sources, as the scheduled
//! function runs it: every secret a rule covers is synced where a destination
//! is behind, and drift is reported (or repaired where a rule says so).

use fedsync::retry;
use std::process::ExitCode;
use std::time::Instant;

/// Exit status when the pass found drift it left in place.
const DRIFT: u8 = 3;

pub async fn reconcile(
    config: Option<&std::path::Path>,
    source: Option<&str>,
    json: bool,
) -> Result<ExitCode, String> {
    let config = crate::load_config(config)?;
    if let Some(s) = source
        && !config.rules.iter().any(|r| r.source == s)
    {
        return Err(format!("no rule reads from source {s:?}"));
    }
    let time_limit = config.reconcile.time_limit;
    let engine = fedsync::Engine::new(config)
        .await
        .map_err(|e| e.to_string())?;
    let pass = engine.reconcile(source, Some(Instant::now() + time_limit));
    let report = retry::with_deadline(retry::deadline_in(time_limit), pass).await;
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        for pass in &report.sources {
            let state = match &pass.error {
                None => "complete".to_string(),
                Some(e) => format!("stopped: {e}"),
            };
            println!(
                "source {}: {} secrets listed, {} covered by a rule, {} pages; {state}",
                pass.source, pass.listed, pass.covered, pass.pages
            );
        }
        for secret in &report.secrets {
            crate::run::print_report(secret);
        }
        let t = &report.totals;
        println!(
            "synced {}, unchanged {}, deleted {}, skipped {}, drift reported {}, drift repaired {}, failed {}, unreadable sources {}",
            t.synced,
            t.unchanged,
            t.deleted,
            t.skipped,
            t.drift_reported,
            t.drift_repaired,
            t.failed,
            t.source_failures
        );
    }
    Ok(if report.has_failures() {
        ExitCode::FAILURE
    } else if report.has_unrepaired_drift() {
        ExitCode::from(DRIFT)
    } else {
        ExitCode::SUCCESS
    })
}
