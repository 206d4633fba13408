//! `fedsync doctor`: makes the trust behind a configuration visible. For every
//! identity, its token's claims (never the token) and its issuer's discovery
//! document and JWKS; for every destination, and every source reached through
//! federation, the exchange the sync makes and a harmless read with what it
//! yields. Each failure says which claim or setting most likely does not match
//! and how to fix it.
//!
//! [`examine`] runs the checks and [`render`] draws them, so that other commands
//! (the demo) can explain a failure in-process.

mod probe_name;
mod table;
mod token;
mod uses;

pub use table::render;

use fedsync::Config;
use fedsync::config::IdentityConfig;
use fedsync::exchange::{Caches, Obtained};
use fedsync::identity::{self, IdentityToken, TokenSource};
use fedsync::report::Failure;
use fedsync::stores;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use uses::{Kind, Use};

/// The audience asked of an identity that no store uses.
const UNUSED_AUDIENCE: &str = "fedsync-doctor";

/// One step of the examination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The identity's token, and its claims.
    Token,
    /// The token's issuer: discovery document, JWKS, key, signature.
    Issuer,
    /// The exchange for the store's credentials.
    Exchange,
    /// A harmless read with those credentials.
    Probe,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Token => "token",
            Step::Issuer => "issuer",
            Step::Exchange => "exchange",
            Step::Probe => "probe",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Not attempted: a step it depends on failed.
    Skipped,
}

impl Status {
    /// As the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }

    fn json(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One check: what it was about, which step, how it ended and why.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: Kind,
    /// The identity's, destination's or source's name in the configuration.
    pub name: String,
    pub step: Step,
    pub status: Status,
    pub detail: String,
    /// On failure: which claim or setting most likely does not match, and the fix.
    pub hint: Option<String>,
    /// For a token: its header and claims as JSON.
    pub token: Option<Value>,
}

impl Check {
    /// `identity deploy`, `destination aws-dr`, `source kv`.
    pub fn subject(&self) -> String {
        format!("{} {}", self.kind.name(), self.name)
    }

    fn to_json(&self) -> Value {
        let mut check = json!({
            "subject": self.subject(),
            "kind": self.kind.name(),
            "name": self.name,
            "step": self.step.name(),
            "status": self.status.json(),
            "detail": self.detail,
            "hint": self.hint,
        });
        if let Some(token) = &self.token {
            check["token"] = token.clone();
        }
        check
    }
}

/// Every check of one configuration, in order.
#[derive(Debug, Clone, Default)]
pub struct Examination {
    pub checks: Vec<Check>,
}

impl Examination {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Failed)
    }

    /// `{"ok": bool, "checks": [{"subject", "kind", "name", "step", "status",
    /// "detail", "hint", "token"?}]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": !self.failed(),
            "checks": self.checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        })
    }

    fn push(&mut self, on: &Subject<'_>, step: Step, status: Status, detail: String) {
        self.checks.push(Check {
            kind: on.kind,
            name: on.name.to_string(),
            step,
            status,
            detail,
            hint: None,
            token: None,
        });
    }

    fn ok(&mut self, on: &Subject<'_>, step: Step, detail: String) {
        self.push(on, step, Status::Ok, detail);
    }

    fn skipped(&mut self, on: &Subject<'_>, step: Step, detail: String) {
        self.push(on, step, Status::Skipped, detail);
    }

    fn failed_with(&mut self, on: &Subject<'_>, step: Step, detail: String, hint: String) {
        self.push(on, step, Status::Failed, detail);
        if let Some(last) = self.checks.last_mut() {
            last.hint = Some(hint);
        }
    }

    /// A failure, told apart from its likely cause (or `fallback`, if not
    /// empty, when it names none).
    fn failure(&mut self, on: &Subject<'_>, step: Step, failure: &Failure, fallback: &str) {
        let (what, cause) = failure.likely_cause();
        self.push(on, step, Status::Failed, what.to_string());
        let hint = cause.or((!fallback.is_empty()).then_some(fallback));
        if let Some(last) = self.checks.last_mut() {
            last.hint = hint.map(str::to_string);
        }
    }
}

/// What a check is about.
struct Subject<'a> {
    kind: Kind,
    name: &'a str,
}

/// Runs every check of `config` (see the module's documentation); prints nothing.
pub async fn examine(config: &Config) -> Examination {
    let caches = Caches::default();
    let built = identity::build_each(&config.identities, &caches.bearer);
    let identities: HashMap<String, Arc<dyn TokenSource>> = built
        .iter()
        .filter_map(|(name, b)| Some((name.clone(), b.as_ref().ok()?.clone())))
        .collect();
    let uses = uses::uses(config);
    let mut exam = Examination::default();
    for (name, source) in &built {
        let on = Subject {
            kind: Kind::Identity,
            name,
        };
        // A `vault-oidc` identity's login shows in that identity's own token step.
        let stores: Vec<&Use> = uses
            .iter()
            .filter(|u| &u.identity == name && u.kind != Kind::Identity)
            .collect();
        let tokens = match source {
            Ok(source) => {
                let kind = config.identities.get(name);
                tokens(&mut exam, &on, (source.as_ref(), kind), &uses).await
            }
            Err(f) => {
                let hint = token::no_token_hint(config.identities.get(name), f);
                exam.failure(&on, Step::Token, f, &hint);
                Vec::new()
            }
        };
        // Any token shows whether the issuer is published, fit to present or not.
        match tokens.iter().find_map(|t| t.token.as_ref()) {
            Some(first) => match fedsync::discovery::check_issuer(first).await {
                Ok(checked) => exam.ok(
                    &on,
                    Step::Issuer,
                    format!(
                        "{} names this issuer; its JWKS {} holds key {:?}, which verifies the token's signature",
                        checked.discovery_url, checked.jwks_uri, checked.kid
                    ),
                ),
                Err(f) => exam.failure(&on, Step::Issuer, &f, ""),
            },
            None => exam.skipped(&on, Step::Issuer, "no token to check it with".into()),
        }
        for user in stores {
            let usable = tokens.iter().any(|t| t.audience == user.audience && t.fit);
            examine_store(&mut exam, config, user, &identities, &caches, usable).await;
        }
    }
    exam
}

/// The token an identity gave for one audience.
struct Minted {
    audience: String,
    token: Option<IdentityToken>,
    /// Whether a store may present it: unexpired, and for this audience.
    fit: bool,
}

/// The token step of one identity, once per audience its uses ask for.
async fn tokens(
    exam: &mut Examination,
    on: &Subject<'_>,
    (source, kind): (&dyn TokenSource, Option<&IdentityConfig>),
    uses: &[Use],
) -> Vec<Minted> {
    let mut audiences = uses::audiences(uses, on.name);
    if audiences.is_empty() {
        audiences.push(UNUSED_AUDIENCE);
    }
    let mut tokens = Vec::new();
    for audience in audiences {
        let users: Vec<String> = uses
            .iter()
            .filter(|u| u.identity == on.name && u.audience == audience)
            .map(|u| format!("{} {:?}", u.kind.name(), u.name))
            .collect();
        let users = match users.is_empty() {
            true => "nothing (no store uses this identity)".to_string(),
            false => users.join(", "),
        };
        let (token, fit) = match source.token(audience).await {
            Err(f) => {
                let hint = token::no_token_hint(kind, &f);
                exam.failure(on, Step::Token, &f, &hint);
                (None, false)
            }
            Ok(t) => match t.inspect() {
                Err(f) => {
                    exam.failure(on, Step::Token, &f, "the identity must yield a signed JWT");
                    (None, false)
                }
                Ok(seen) => {
                    let claims = token::describe(&seen);
                    let problem = token::problem(&seen, audience, &users);
                    match &problem {
                        None => exam.ok(on, Step::Token, format!("for {users}: {claims}")),
                        Some((what, fix)) => exam.failed_with(
                            on,
                            Step::Token,
                            format!("{what}; {claims}"),
                            fix.clone(),
                        ),
                    }
                    if let Some(last) = exam.checks.last_mut() {
                        last.token = Some(token::to_json(&seen));
                    }
                    (Some(t), problem.is_none())
                }
            },
        };
        tokens.push(Minted {
            audience: audience.to_string(),
            token,
            fit,
        });
    }
    tokens
}

/// The exchange and probe steps of one destination or source.
async fn examine_store(
    exam: &mut Examination,
    config: &Config,
    user: &Use,
    identities: &HashMap<String, Arc<dyn TokenSource>>,
    caches: &Caches,
    usable: bool,
) {
    let on = Subject {
        kind: user.kind,
        name: &user.name,
    };
    if !usable {
        let why = format!(
            "identity {:?} has no token fit for aud {:?}",
            user.identity, user.audience
        );
        exam.skipped(&on, Step::Exchange, why.clone());
        exam.skipped(&on, Step::Probe, why);
        return;
    }
    match user.kind {
        Kind::Destination => {
            let (Some(destination), Some(identity)) = (
                config.destinations.get(&user.name),
                identities.get(&user.identity),
            ) else {
                return;
            };
            let store =
                stores::build_destination(&user.name, destination, identity.clone(), caches);
            if exchange(exam, &on, store.exchange().await) {
                let name = probe_name::probe_name(config, &user.name);
                match store.probe(&name).await {
                    Ok(probed) => {
                        let held = match probed.present {
                            true => "a secret holds this name",
                            false => "no secret holds this name yet",
                        };
                        exam.ok(
                            &on,
                            Step::Probe,
                            format!("{}: {held}; the credentials may read there", probed.call),
                        );
                    }
                    Err(f) => exam.failure(&on, Step::Probe, &f, ""),
                }
            }
        }
        Kind::Source => {
            let Some(source) = config.sources.get(&user.name) else {
                return;
            };
            let store = stores::build_source(source, identities, caches).await;
            if exchange(exam, &on, store.exchange().await) {
                match store.list(None).await {
                    Ok(page) => exam.ok(
                        &on,
                        Step::Probe,
                        format!(
                            "listing its secrets: {} name(s) on the first page",
                            page.names.len()
                        ),
                    ),
                    Err(f) => exam.failure(
                        &on,
                        Step::Probe,
                        &f,
                        "the source's credentials cannot list its secrets, which a reconcile pass needs (an event-driven sync only reads the secrets it is told of)",
                    ),
                }
            }
        }
        // A Vault login identity: its exchange is the token step of the
        // `vault-oidc` identity itself.
        Kind::Identity => {}
    }
}

/// Records an exchange's outcome; whether the probe may follow.
fn exchange(
    exam: &mut Examination,
    on: &Subject<'_>,
    obtained: Option<Result<Obtained, Failure>>,
) -> bool {
    match obtained {
        Some(Ok(o)) => {
            let until = humantime::format_rfc3339_seconds(o.expires_at);
            exam.ok(
                on,
                Step::Exchange,
                format!("obtained {}, valid until {until}", o.what),
            );
            true
        }
        Some(Err(f)) => {
            exam.failure(on, Step::Exchange, &f, "");
            exam.skipped(on, Step::Probe, "the exchange failed".into());
            false
        }
        None => {
            exam.ok(
                on,
                Step::Exchange,
                "none: the host's own credentials are used".into(),
            );
            true
        }
    }
}

/// `fedsync doctor`: exit 0 when every check passed, 1 when one failed (2, by
/// the caller, for a configuration that cannot be read).
pub async fn doctor(config: Option<&std::path::Path>, json: bool) -> Result<ExitCode, String> {
    let config = crate::load_config(config)?;
    let exam = examine(&config).await;
    if json {
        let text = serde_json::to_string_pretty(&exam.to_json()).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render(&exam, colour()));
    }
    Ok(if exam.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Colours on a terminal, unless `NO_COLOR` is set.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
