//! The `fedsync` command: run an event through the same code path the
//! functions use, run a reconcile pass, publish the issuer documents of
//! fedsync's signing keys, and check trust definitions for trust broader than
//! one workload.

mod issuer;
mod reconcile;
mod run;
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

#[tokio::main]
async fn main() -> ExitCode {
    fedsync::logging::init_text();
    let result = match Cli::parse().command {
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
