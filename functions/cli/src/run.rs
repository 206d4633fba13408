//! `fedsync run`: one event file through the same code path the functions use,
//! with this shell's credentials as the host's; prints the report.

use fedsync::Engine;
use fedsync::report::Status;
use fedsync::triggers::{self, Handled};
use std::process::ExitCode;

pub async fn run(
    config: Option<&std::path::Path>,
    event: &std::path::Path,
    json: bool,
) -> Result<ExitCode, String> {
    let config = crate::load_config(config)?;
    let text = std::fs::read_to_string(event)
        .map_err(|e| format!("cannot read {}: {e}", event.display()))?;
    let event: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", event.display()))?;
    let engine = Engine::new(config).await.map_err(|e| e.to_string())?;
    let handled = triggers::handle_any(&engine, &event).await;
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
            let status = match &o.status {
                Status::Synced => "synced".to_string(),
                Status::Unchanged => "unchanged".to_string(),
                Status::Deleted => "deleted".to_string(),
                Status::Skipped { reason } => format!("skipped: {reason}"),
                Status::Failed { class, message, .. } => format!("failed ({class}): {message}"),
            };
            [
                o.destination.clone(),
                o.name.clone(),
                o.exchanges.to_string(),
                format!("{} ms", o.elapsed_ms),
                status,
            ]
        })
        .collect();
    let header = ["DESTINATION", "NAME", "EXCHANGES", "TIME", "STATUS"].map(String::from);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in [&header].into_iter().chain(&rows) {
        println!(
            "{:w0$}  {:w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
}
