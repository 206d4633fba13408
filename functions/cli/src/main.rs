//! The `fedsync` command: run an event through the same code path the
//! functions use, run a reconcile pass or plan one that writes nothing,
//! publish the issuer documents of fedsync's signing keys, and check trust
//! definitions for trust broader than one workload.

mod demo;
mod doctor;
mod issuer;
mod plan;
mod reconcile;
mod run;
mod table;
mod trust_lint;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fedsync",
    version,
    about = "Keeps secrets in step across clouds with short-lived federated credentials"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// fedsync end to end on this machine, with no cloud account: emulators of
    /// AWS, Google and Azure start in this process, every sample event is synced
    /// to every destination, then the credential cache and a wrong audience are shown.
    Demo {
        /// Keep the demo's configuration, signing key and issuer documents.
        #[arg(long)]
        keep: bool,
    },
    /// Syncs the change one event file describes, exactly as the functions would.
    Run {
        /// The configuration file (default: as the functions find it, from
        /// FEDSYNC_CONFIG_TOML, or the file FEDSYNC_CONFIG names, or fedsync.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The event file (an EventBridge event or a Pub/Sub push request, as in events/).
        #[arg(long)]
        event: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One full pass over the sources: syncs every destination that is behind
    /// and reports drift (exit 3 when drift was left in place, 1 on failures).
    Reconcile {
        /// The configuration file (default: as for `run`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A dry run that writes nothing: what a sync would do for every secret a
    /// rule covers, at every destination (exit 2 when a write would be refused
    /// or names collide, 1 when a store could not be read).
    Plan {
        /// The configuration file (default: as for `run`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only this source secret (not listed: read by name).
        #[arg(long)]
        secret: Option<String>,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Checks every identity (its token's claims, its issuer's discovery
    /// document and JWKS), every exchange and a harmless read at every store,
    /// and explains each failure (exit 1 when a check fails).
    Doctor {
        /// The configuration file (default: as for `run`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints (or writes) the OpenID discovery document and JWKS of every
    /// signing-key identity, to host at its issuer URL.
    Issuer {
        /// The configuration file (default: as for `run`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write `<issuer host and path>/.well-known/{openid-configuration,jwks.json}` under this folder.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Checks the trust the clouds place in fedsync's identities.
    Trust {
        #[command(subcommand)]
        command: TrustCommand,
    },
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Flags trust definitions (AWS role trust policies, Google workload identity
    /// providers and IAM policies, Azure federated credentials) that trust more
    /// than one workload or audience (exit 1 on findings, 2 on unreadable files).
    Lint {
        /// The JSON files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the findings as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    // The demo's AWS source reads with credentials from the environment, as a
    // Lambda function does: they are set before any other thread starts.
    let demo = matches!(command, Command::Demo { .. }).then(demo::prepare);
    fedsync::logging::init_text();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fedsync: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(dispatch(command, demo))
}

async fn dispatch(command: Command, demo: Option<demo::Prepared>) -> ExitCode {
    let result = match command {
        Command::Demo { keep } => match demo {
            Some(prepared) => demo::demo(prepared, keep).await,
            None => Err("the demo was not prepared".into()),
        },
        Command::Run {
            config,
            event,
            json,
        } => run::run(config.as_deref(), &event, json).await,
        Command::Reconcile {
            config,
            source,
            json,
        } => reconcile::reconcile(config.as_deref(), source.as_deref(), json).await,
        Command::Plan {
            config,
            secret,
            source,
            json,
        } => {
            let scope = fedsync::plan::Scope {
                source: source.as_deref(),
                secret: secret.as_deref(),
            };
            plan::plan(config.as_deref(), scope, json).await
        }
        Command::Doctor { config, json } => doctor::doctor(config.as_deref(), json).await,
        Command::Issuer { config, out } => issuer::issuer(config.as_deref(), out.as_deref()).await,
        Command::Trust {
            command: TrustCommand::Lint { files, json },
        } => trust_lint::lint(&files, json),
    };
    result.unwrap_or_else(|message| {
        eprintln!("fedsync: {message}");
        ExitCode::from(2)
    })
}

/// The configuration from `path`, or as the functions find it.
fn load_config(path: Option<&std::path::Path>) -> Result<fedsync::Config, String> {
    match path {
        Some(path) => fedsync::Config::load(path),
        None => fedsync::Config::from_environment(),
    }
    .map_err(|e| e.to_string())
}
