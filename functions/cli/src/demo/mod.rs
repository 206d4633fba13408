//! `fedsync demo`: fedsync end to end on this machine, with no cloud account. It
//! starts emulators of every cloud in this process (see [`world`]), writes a
//! configuration for them, and sends every sample event of `events/` through the
//! same code the functions run, printing what each change did at each destination.
//! A second pass shows the credential cache (changes land with no new exchange);
//! a third runs with a deliberately wrong audience, and `fedsync doctor` explains
//! the failure.

mod story;
mod world;

pub use world::{Prepared, prepare};

use std::process::ExitCode;
use std::time::Instant;

use fedsync::report::Status;
use fedsync::triggers::Handled;
use fedsync::{Engine, retry};
use story::{Step, Table};
use world::World;

/// How long one change may take, retries included.
const BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

pub async fn demo(prepared: Prepared, keep: bool) -> Result<ExitCode, String> {
    // A folder only this user can read: it holds the demo's signing key.
    let dir = tempfile::Builder::new()
        .prefix("fedsync-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let outcome = run(prepared, dir.path()).await;
    if keep {
        let kept = dir.keep();
        println!(
            "\nThe demo's files (configuration, signing key, issuer documents) are kept in {}",
            kept.display()
        );
    }
    outcome
}

async fn run(prepared: Prepared, dir: &std::path::Path) -> Result<ExitCode, String> {
    let started = Instant::now();
    let world = World::start(prepared, dir).await?;
    println!(
        "fedsync demo: AWS, Google and Azure emulators, and an issuer for fedsync's own key, \
         started in this process in {} ms.",
        started.elapsed().as_millis()
    );
    println!(
        "Every cloud trusts one identity: tokens fedsync signs with subject \"{}\".\n",
        world::SUBJECT
    );
    let config = fedsync::Config::load(&world.config_path).map_err(|e| e.to_string())?;
    let engine = Engine::new(config).await.map_err(|e| e.to_string())?;
    let mut ok = true;

    println!("Pass 1: every sample event, each after the change it reports");
    let mut table = Table::default();
    for step in story::first_pass() {
        send(&world, &engine, &step, &mut table).await?;
    }
    table.print();
    ok &= table.expect_synced(&story::expected_first_pass());
    let seen = world.exchanges();
    println!(
        "The clouds answered {} exchanges: AWS STS {}, Google (STS and impersonation) {}, Entra {}.\n",
        seen.iter().sum::<usize>(),
        seen[0],
        seen[1],
        seen[2]
    );

    println!("Pass 2: new values, with the credentials fedsync already holds");
    let mut table = Table::default();
    for step in story::second_pass() {
        send(&world, &engine, &step, &mut table).await?;
    }
    table.print();
    ok &= table.expect_synced(&story::expected_second_pass());
    let new = world
        .exchanges()
        .iter()
        .zip(seen)
        .map(|(now, before)| now - before)
        .sum::<usize>();
    println!(
        "New exchanges in pass 2: {} by fedsync's count, {new} by the clouds' count.\n",
        table.exchanges()
    );
    ok &= new == 0 && table.exchanges() == 0;

    println!(
        "Pass 3: a deliberately wrong trust: aws-dr asks for audience \"{}\", which the role does not trust",
        story::WRONG_AUDIENCE
    );
    let wrong = story::with_wrong_audience(&world.config);
    let wrong_path = dir.join("fedsync-wrong-audience.toml");
    std::fs::write(&wrong_path, &wrong)
        .map_err(|e| format!("cannot write {}: {e}", wrong_path.display()))?;
    let wrong = fedsync::Config::load(&wrong_path).map_err(|e| e.to_string())?;
    let wrong_engine = Engine::new(wrong.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut table = Table::default();
    for step in story::third_pass() {
        send(&world, &wrong_engine, &step, &mut table).await?;
    }
    table.print();
    let failed = table.failed("aws-dr");
    ok &= failed;
    println!("\nfedsync doctor --config {}:", wrong_path.display());
    let exam = crate::doctor::examine(&wrong).await;
    print!("{}", crate::doctor::render(&exam, crate::doctor::colour()));
    ok &= exam.failed();

    println!(
        "\n{}",
        if ok {
            "Demo complete: every change reached every destination, the cache held, and the wrong audience was caught and explained."
        } else {
            "Demo finished with unexpected results (see above)."
        }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Makes the step's change at its source, then hands its event to fedsync.
async fn send(
    world: &World,
    engine: &Engine,
    step: &Step,
    table: &mut Table,
) -> Result<(), String> {
    step.prepare(world);
    let event: serde_json::Value =
        serde_json::from_str(step.event).map_err(|e| format!("{} is not JSON: {e}", step.file))?;
    let started = Instant::now();
    let deadline = retry::deadline_in(BUDGET);
    let handled = retry::with_deadline(deadline, story::deliver(world, engine, step, &event)).await;
    let elapsed = started.elapsed();
    for handled in handled {
        match handled {
            Handled::Ignored => table.row(step.file, "-", "ignored", 0, elapsed),
            Handled::Rejected(f) => {
                table.row(step.file, "-", &format!("rejected: {f}"), 0, elapsed)
            }
            Handled::Synced(report) => {
                if let Some(e) = &report.error {
                    table.row(step.file, "-", &format!("source failed: {e}"), 0, elapsed);
                }
                for o in &report.outcomes {
                    let status = match &o.status {
                        Status::Failed { class, .. } => format!("failed ({class})"),
                        other => other.to_string(),
                    };
                    table.row(
                        step.file,
                        &o.destination,
                        &status,
                        o.exchanges,
                        std::time::Duration::from_millis(o.elapsed_ms),
                    );
                }
            }
        }
    }
    Ok(())
}
