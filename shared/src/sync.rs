//! The engine: route a change to its rules, read the source once (in parallel
//! with every destination's state), write all destinations concurrently, confirm
//! the source did not move on, and report one outcome per destination.
//! It knows no cloud: stores and exchanges are reached through their traits.

use crate::config::{Config, Granularity, OnDelete, Overwrite, Rule};
use crate::event::{ChangeKind, SecretChange};
use crate::exchange::Caches;
use crate::marks::Marks;
use crate::naming::NameVars;
use crate::report::{Failure, FailureClass, Outcome, Report, Status};
use crate::secret::SecretValue;
use crate::stores::{self, Destination, DestinationState, Source, SourceSecret, Write};
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// How many times one change is synced again when the source moves on meanwhile.
const MAX_PASSES: usize = 3;

/// Everything built from a configuration, reused across changes (a warm Lambda
/// or Cloud Run instance keeps it, and with it the credential cache).
pub struct Engine {
    config: Config,
    sources: HashMap<String, Arc<dyn Source>>,
    destinations: HashMap<String, Arc<dyn Destination>>,
}

/// One (rule, destination, destination name) a change fans out to.
struct Target<'a> {
    rule: &'a Rule,
    destination: &'a str,
    store: &'a Arc<dyn Destination>,
    /// The JSON key this target copies (granularity `key`).
    key: Option<String>,
    name: Result<String, Failure>,
    /// The destination's exchange count before this change touched it.
    exchanges_before: u64,
}

impl Engine {
    /// Builds identities, exchanges and store adapters. Fails when an identity
    /// cannot be built (a missing key), so a broken deployment fails at start-up.
    pub async fn new(config: Config) -> Result<Engine, Failure> {
        let caches = Caches::default();
        let mut identities = HashMap::new();
        for (name, identity) in &config.identities {
            let built = crate::identity::build(name, identity)
                .map_err(|f| f.context(format!("identity {name:?}")))?;
            identities.insert(name.clone(), built);
        }
        let mut sources = HashMap::new();
        for (name, source) in &config.sources {
            sources.insert(name.clone(), stores::build_source(source).await);
        }
        let mut destinations = HashMap::new();
        for (name, destination) in &config.destinations {
            let identity = identities[destination.identity()].clone();
            destinations.insert(
                name.clone(),
                stores::build_destination(name, destination, identity, &caches),
            );
        }
        Ok(Engine {
            config,
            sources,
            destinations,
        })
    }

    /// Builds an engine from already-built adapters (tests, tools).
    pub fn with_stores(
        config: Config,
        sources: HashMap<String, Arc<dyn Source>>,
        destinations: HashMap<String, Arc<dyn Destination>>,
    ) -> Engine {
        Engine {
            config,
            sources,
            destinations,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Syncs one change and reports every destination's outcome.
    pub async fn sync(&self, change: &SecretChange) -> Report {
        let mut report = Report {
            source: change.source.clone(),
            secret: change.secret.clone(),
            kind: change.kind,
            source_version: None,
            note: None,
            error: None,
            outcomes: vec![],
        };
        let Some(source) = self.sources.get(&change.source) else {
            report.error = Some(Failure::new(
                FailureClass::BadInput,
                format!(
                    "the change names source {:?}, which the configuration does not define",
                    change.source
                ),
            ));
            return report;
        };
        let mut secret = change.secret.clone();
        for pass in 1..=MAX_PASSES {
            if self
                .config
                .rules_for(&change.source, &secret)
                .next()
                .is_none()
            {
                report.note = Some("no rule matches this secret".into());
                return report;
            }
            let synced = match self
                .pass(source.as_ref(), &change.source, &secret, &mut report)
                .await
            {
                Pass::Done => return report,
                Pass::Renamed(name) => {
                    // The event named the secret differently (an ARN); route by its real name.
                    report.secret = name.clone();
                    secret = name;
                    continue;
                }
                Pass::Wrote(version) => version,
            };
            match source.current_version(&secret).await {
                Ok(Some(current)) if current != synced && pass < MAX_PASSES => {
                    tracing::info!(secret = %secret, pass, "the source moved on during the sync; syncing again");
                }
                Ok(_) => return report,
                Err(f) => {
                    tracing::warn!(secret = %secret, error = %f, "could not confirm the source version after writing");
                    return report;
                }
            }
        }
        report.note = Some(format!(
            "the source kept changing; stopped after {MAX_PASSES} passes"
        ));
        report
    }

    async fn pass(
        &self,
        source: &dyn Source,
        source_name: &str,
        secret: &str,
        report: &mut Report,
    ) -> Pass {
        let started = Instant::now();
        let rules: Vec<&Rule> = self.config.rules_for(source_name, secret).collect();
        // Names known before the read (granularity secret) are inspected in parallel with it.
        let targets = self.targets(&rules, source_name, secret, None);
        let (read, states) = tokio::join!(source.read(secret), self.inspect_all(&targets));
        report.outcomes.clear();
        let current = match read {
            Err(f) => {
                report.error = Some(f);
                return Pass::Done;
            }
            Ok(Some(current)) if current.name != secret => return Pass::Renamed(current.name),
            Ok(current) => current,
        };
        report.error = None;
        let Some(current) = current else {
            report.kind = ChangeKind::Delete;
            let source_ref = Marks::source_ref(source_name, secret, None);
            report.outcomes = self.delete_all(targets, states, &source_ref, started).await;
            log_outcomes(report);
            return Pass::Done;
        };
        report.kind = ChangeKind::Upsert;
        report.source_version = Some(current.version.clone());
        report.outcomes = self
            .upsert_all(&rules, targets, states, &current, source_name, started)
            .await;
        log_outcomes(report);
        Pass::Wrote(current.version)
    }

    fn targets<'a>(
        &'a self,
        rules: &[&'a Rule],
        source: &str,
        secret: &str,
        key: Option<&str>,
    ) -> Vec<Target<'a>> {
        let mut targets = Vec::new();
        for rule in rules {
            if (rule.granularity == Granularity::Key) != key.is_some() {
                continue;
            }
            for destination in &rule.destinations {
                let (Some(store), Some(config)) = (
                    self.destinations.get(destination),
                    self.config.destinations.get(destination),
                ) else {
                    continue;
                };
                let vars = NameVars {
                    name: secret,
                    source,
                    destination,
                    key,
                };
                let name = rule.name.render(&vars, config.name_rules()).map_err(|e| {
                    Failure::new(FailureClass::BadInput, format!("destination name: {e}"))
                });
                targets.push(Target {
                    rule,
                    destination,
                    store,
                    key: key.map(str::to_string),
                    name,
                    exchanges_before: store.exchanges(),
                });
            }
        }
        targets
    }

    async fn inspect_all(&self, targets: &[Target<'_>]) -> Vec<Result<DestinationState, Failure>> {
        join_all(targets.iter().map(|t| async move {
            match &t.name {
                Ok(name) => t.store.inspect(name).await,
                Err(f) => Err(f.clone()),
            }
        }))
        .await
    }

    async fn upsert_all(
        &self,
        rules: &[&Rule],
        mut targets: Vec<Target<'_>>,
        mut states: Vec<Result<DestinationState, Failure>>,
        current: &SourceSecret,
        source: &str,
        started: Instant,
    ) -> Vec<Outcome> {
        let mut keyed_values = HashMap::new();
        if rules.iter().any(|r| r.granularity == Granularity::Key) {
            match split_keys(&current.value) {
                Ok(keys) => {
                    for (key, value) in keys {
                        let keyed = self.targets(rules, source, &current.name, Some(&key));
                        states.extend(self.inspect_all(&keyed).await);
                        targets.extend(keyed);
                        keyed_values.insert(key, value);
                    }
                }
                Err(f) => {
                    for t in self.targets(rules, source, &current.name, Some("")) {
                        targets.push(Target {
                            name: Err(f.clone()),
                            ..t
                        });
                        states.push(Err(f.clone()));
                    }
                }
            }
        }
        let work = targets.iter().zip(states).map(|(target, state)| {
            let value = match &target.key {
                Some(k) => keyed_values.get(k).unwrap_or(&current.value),
                None => &current.value,
            };
            let marks = Marks {
                source_ref: Marks::source_ref(source, &current.name, target.key.as_deref()),
                source_version: current.version.clone(),
            };
            self.upsert_one(target, state, value, marks, started)
        });
        join_all(work).await
    }

    async fn upsert_one(
        &self,
        target: &Target<'_>,
        state: Result<DestinationState, Failure>,
        value: &SecretValue,
        marks: Marks,
        started: Instant,
    ) -> Outcome {
        let name = target.name.clone().unwrap_or_default();
        let status = match (&target.name, state.as_ref()) {
            (Err(f), _) | (_, Err(f)) => Status::from(f.clone()),
            (Ok(name), Ok(state)) => match decide(state, &marks, target.rule.overwrite) {
                Decision::Unchanged => Status::Unchanged,
                Decision::Skip(reason) => Status::Skipped { reason },
                Decision::Fail(f) => Status::from(f),
                Decision::Write if value.len() > target.store.max_value_bytes() => {
                    Status::from(Failure::new(
                        FailureClass::BadInput,
                        format!(
                            "the value is {} bytes; the destination accepts at most {}",
                            value.len(),
                            target.store.max_value_bytes()
                        ),
                    ))
                }
                Decision::Write => {
                    let write = Write {
                        name,
                        value,
                        marks: &marks,
                        tags: &target.rule.tags,
                        state,
                    };
                    match target.store.write(write).await {
                        Ok(()) => Status::Synced,
                        Err(f) => Status::from(f),
                    }
                }
            },
        };
        outcome(target, name, status, started)
    }

    async fn delete_all(
        &self,
        targets: Vec<Target<'_>>,
        states: Vec<Result<DestinationState, Failure>>,
        source_ref: &str,
        started: Instant,
    ) -> Vec<Outcome> {
        join_all(targets.iter().zip(states).map(|(target, state)| async move {
            let name = target.name.clone().unwrap_or_default();
            let status = match (target.rule.on_delete, &target.name, state.as_ref()) {
                (OnDelete::Ignore, _, _) => {
                    Status::Skipped { reason: "the source was deleted; on_delete = \"ignore\"".into() }
                }
                (_, Err(f), _) | (_, _, Err(f)) => Status::from(f.clone()),
                (_, Ok(_), Ok(DestinationState::Absent | DestinationState::PendingDeletion)) => Status::Unchanged,
                (_, Ok(name), Ok(DestinationState::Present { managed: true, source_ref: Some(r), .. }))
                    if r == source_ref =>
                {
                    match target.store.delete(name).await {
                        Ok(()) => Status::Deleted,
                        Err(f) => Status::from(f),
                    }
                }
                (_, Ok(_), Ok(_)) => Status::Skipped {
                    reason: "not deleted: fedsync does not manage this destination secret for this source".into(),
                },
            };
            outcome(target, name, status, started)
        }))
        .await
    }
}

enum Pass {
    /// Nothing more to do (an error, a deletion, or no value).
    Done,
    /// The source knows the secret by another name: route again.
    Renamed(String),
    /// Written from this source version: confirm the source is still there.
    Wrote(String),
}

fn outcome(target: &Target<'_>, name: String, status: Status, started: Instant) -> Outcome {
    let exchanges = target
        .store
        .exchanges()
        .saturating_sub(target.exchanges_before);
    Outcome {
        destination: target.destination.to_string(),
        name,
        status,
        exchanges: u32::try_from(exchanges).unwrap_or(u32::MAX),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

fn log_outcomes(report: &Report) {
    for o in &report.outcomes {
        match &o.status {
            Status::Failed {
                class,
                retryable,
                message,
            } => tracing::error!(
                source = %report.source, secret = %report.secret, destination = %o.destination, name = %o.name,
                class = %class, retryable, error = %message, "destination failed"
            ),
            status => tracing::info!(
                source = %report.source, secret = %report.secret, destination = %o.destination, name = %o.name,
                status = ?status, exchanges = o.exchanges, elapsed_ms = o.elapsed_ms, "destination done"
            ),
        }
    }
}

/// What to do at one destination, given what it holds and the overwrite policy.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Write,
    Unchanged,
    Skip(String),
    Fail(Failure),
}

fn decide(state: &DestinationState, wanted: &Marks, overwrite: Overwrite) -> Decision {
    match state {
        DestinationState::Absent => Decision::Write,
        DestinationState::PendingDeletion => Decision::Fail(Failure::new(
            FailureClass::Conflict,
            "the name is held by a secret scheduled for deletion: restore it, or delete it for good, then retry",
        )),
        DestinationState::Present { marks: Some(m), .. } if m == wanted => Decision::Unchanged,
        DestinationState::Present { .. } if overwrite == Overwrite::IfAbsent => {
            Decision::Skip("the secret exists and overwrite = \"if-absent\"".into())
        }
        DestinationState::Present { managed: false, .. } if overwrite == Overwrite::Managed => Decision::Skip(
            "the secret exists and fedsync does not manage it (overwrite = \"managed\"); set overwrite = \"always\" to adopt it".into(),
        ),
        DestinationState::Present { source_ref: Some(other), .. }
            if overwrite == Overwrite::Managed && *other != wanted.source_ref =>
        {
            Decision::Fail(Failure::new(
                FailureClass::Conflict,
                format!(
                    "name collision: fedsync manages this secret as a copy of {other:?}, not of {:?}; two rules map different secrets to one name",
                    wanted.source_ref
                ),
            ))
        }
        DestinationState::Present { .. } => Decision::Write,
    }
}

/// Splits a JSON object secret into one value per key (strings as they are,
/// anything else as its JSON text).
fn split_keys(value: &SecretValue) -> Result<Vec<(String, SecretValue)>, Failure> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(value.expose_bytes()).map_err(|_| {
            Failure::new(
                FailureClass::BadInput,
                "granularity = \"key\" needs a JSON object value, and this value is not one",
            )
        })?;
    Ok(object
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => SecretValue::text(s),
                other => SecretValue::text(other.to_string()),
            };
            (k, value)
        })
        .collect())
}

#[cfg(test)]
mod tests;
