//! `fedsync plan`: a dry run against the real stores that writes nothing. Prints
//! what a sync would do for every (source secret, rule, destination), as a
//! table or as JSON, with value hashes in place of values; exits 0 when the plan
//! is clean, 2 when a write would be refused or names would collide, 1 when a
//! store could not be read.

use fedsync::plan::{HashKey, Plan, Scope};
use std::process::ExitCode;

/// Exit status when a sync would refuse a write or meet a name collision.
const REFUSED: u8 = 2;

pub async fn plan(
    config: Option<&std::path::Path>,
    scope: Scope<'_>,
    json: bool,
) -> Result<ExitCode, String> {
    // Failing before any store is read is exit 1 too: 2 means a refusal.
    let plan = match make(config, scope).await {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("fedsync: {message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        let text = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print_plan(&plan);
    }
    Ok(if plan.has_failures() {
        ExitCode::FAILURE
    } else if plan.has_refusals() {
        ExitCode::from(REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn make(config: Option<&std::path::Path>, scope: Scope<'_>) -> Result<Plan, String> {
    let config = crate::load_config(config)?;
    if let Some(s) = scope.source
        && !config.rules.iter().any(|r| r.source == s)
    {
        return Err(format!("no rule reads from source {s:?}"));
    }
    if let Some(secret) = scope.secret
        && !config
            .rules
            .iter()
            .any(|r| r.matches(scope.source.unwrap_or(&r.source), secret))
    {
        return Err(format!("no rule covers the secret {secret:?}"));
    }
    let engine = fedsync::Engine::new(config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(engine.plan(scope).await)
}

/// The key id and the first characters of a value hash: enough to tell values apart.
fn short(hash: Option<&str>) -> String {
    match hash {
        None => "-".into(),
        Some(h) => match h.split_once(':') {
            Some((id, mac)) => format!("{id}:{}", mac.chars().take(8).collect::<String>()),
            None => h.chars().take(17).collect(),
        },
    }
}

fn print_plan(plan: &Plan) {
    match plan.value_hashes {
        HashKey::ValueKey => {
            println!("value hashes: keyed by [reconcile] value_key, as in the destinations' marks")
        }
        HashKey::ThisPlan => println!(
            "value hashes: keyed for this plan only; set [reconcile] value_key to compare them with the destinations' marks"
        ),
    }
    for pass in &plan.sources {
        let state = match &pass.error {
            None => "complete".to_string(),
            Some(e) => format!("stopped: {e}"),
        };
        println!(
            "source {}: {} secrets listed, {} covered by a rule, {} pages; {state}",
            pass.source, pass.listed, pass.covered, pass.pages
        );
    }
    let mut rows: Vec<[String; 7]> = Vec::new();
    for secret in &plan.secrets {
        let name = format!("{}:{}", secret.source, secret.secret);
        if let Some(e) = &secret.error {
            println!("{name}: cannot be planned: {e}");
        } else if let Some(note) = &secret.note {
            println!("{name}: {note}");
        }
        for t in &secret.targets {
            let name = match &t.key {
                Some(k) => format!("{name}#{k}"),
                None => name.clone(),
            };
            rows.push([
                name,
                format!("rules[{}]", t.rule),
                t.destination.clone(),
                t.name.clone(),
                t.action.as_str().to_string(),
                short(t.value_hash.as_deref()),
                t.reason.clone().unwrap_or_default(),
            ]);
        }
    }
    if !rows.is_empty() {
        let header = [
            "SECRET",
            "RULE",
            "DESTINATION",
            "NAME",
            "ACTION",
            "VALUE HASH",
            "WHY",
        ];
        let widths = crate::table::widths(&header, &rows);
        println!("{}", crate::table::line(&header, &widths, &[]));
        for row in &rows {
            println!("{}", crate::table::line(row, &widths, &[]));
        }
    }
    let t = &plan.totals;
    println!(
        "create {}, update {}, unchanged {}, drift {}, refused {}, collision {}, unreadable destinations {}, unreadable source secrets {}",
        t.create,
        t.update,
        t.unchanged,
        t.drift,
        t.refused,
        t.collision,
        t.error,
        t.source_failures
    );
}
