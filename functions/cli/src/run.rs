//! `fedsync run`: one event file through the same code path the functions use,
//! with this shell's credentials as the host's; prints the report. Its outbound
//! calls, retries included, end within `FEDSYNC_BUDGET` (default 5 minutes).

use fedsync::triggers::{self, Handled};
use fedsync::{Engine, retry};
use std::process::ExitCode;
use std::time::Duration;

/// The default budget of one run: generous, since no platform waits for it.
const BUDGET: Duration = Duration::from_secs(300);

pub async fn run(
    config: Option<&std::path::Path>,
    event: &std::path::Path,
    json: bool,
) -> Result<ExitCode, String> {
    let config = crate::load_config(config)?;
    let budget = retry::budget_from_env(BUDGET)?;
    let text = std::fs::read_to_string(event)
        .map_err(|e| format!("cannot read {}: {e}", event.display()))?;
    let event: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", event.display()))?;
    let engine = Engine::new(config).await.map_err(|e| e.to_string())?;
    let deadline = retry::deadline_in(budget);
    let handled = retry::with_deadline(deadline, triggers::handle_any(&engine, &event)).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&handled.to_json()).unwrap_or_default()
        );
    } else {
        print_table(&handled);
    }
    let failed = match &handled {
        Handled::Rejected(_) => true,
        Handled::Synced(r) => r.has_failures(),
        Handled::Ignored => false,
    };
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(handled: &Handled) {
    let report = match handled {
        Handled::Ignored => return println!("ignored: the event is not a change fedsync acts on"),
        Handled::Rejected(f) => return println!("rejected: {f}"),
        Handled::Synced(r) => r,
    };
    print_report(report);
}

/// One change's report: what it synced, then a row per destination.
pub fn print_report(report: &fedsync::Report) {
    let version = report.source_version.as_deref().unwrap_or("-");
    println!(
        "{:?} {}:{} (source version {version})",
        report.kind, report.source, report.secret
    );
    if let Some(note) = &report.note {
        println!("  {note}");
    }
    if let Some(e) = &report.error {
        println!("  error: {e}");
    }
    if report.outcomes.is_empty() {
        return;
    }
    let rows: Vec<[String; 5]> = report
        .outcomes
        .iter()
        .map(|o| {
            [
                o.destination.clone(),
                o.name.clone(),
                o.exchanges.to_string(),
                format!("{} ms", o.elapsed_ms),
                o.status.to_string(),
            ]
        })
        .collect();
    let header = ["DESTINATION", "NAME", "EXCHANGES", "TIME", "STATUS"];
    let widths = crate::table::widths(&header, &rows);
    let right = [false, false, true, true, false];
    println!("{}", crate::table::line(&header, &widths, &right));
    for row in &rows {
        println!("{}", crate::table::line(row, &widths, &right));
    }
}
