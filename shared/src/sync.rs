//! The engine: route a change to its rules, read the source once (in parallel
//! with the state of every destination whose name is known before the read),
//! write all destinations concurrently, confirm the source did not move on, and
//! report one outcome per destination. It knows no cloud: stores and exchanges
//! are reached through their traits.

use crate::config::{Config, Granularity, OnDelete, OnDrift, Overwrite, Rule};
use crate::event::{ChangeKind, SecretChange};
use crate::exchange::Caches;
use crate::marks::{Age, Marks};
use crate::naming::NameVars;
use crate::report::{Failure, FailureClass, Outcome, Report, Status};
use crate::secret::SecretValue;
use crate::stores::{self, Destination, DestinationState, Source, SourceSecret, Write, Written};
use crate::value_hash::{Check, ValueKey};
use futures_util::future::join_all;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// How many times one change is synced again when the source moves on meanwhile.
const MAX_PASSES: usize = 3;

/// Everything built from a configuration, reused across changes (a warm Lambda
/// or Cloud Run instance keeps it, and with it the credential cache).
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) sources: HashMap<String, Arc<dyn Source>>,
    pub(crate) destinations: HashMap<String, Arc<dyn Destination>>,
    /// The key of the value hash in the marks (`[reconcile] value_key`).
    pub(crate) value_key: Option<Arc<ValueKey>>,
    /// One sync per secret at a time (see `turns`).
    pub(crate) turns: Arc<turns::Turns>,
}

/// Why a secret is being synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A change event: write what is behind.
    Change,
    /// A reconcile pass: write what is behind, and look for drift.
    Reconcile,
}

/// One (rule, destination, destination name) a change fans out to.
pub(crate) struct Target<'a> {
    pub(crate) rule: &'a Rule,
    pub(crate) destination: &'a str,
    pub(crate) store: &'a Arc<dyn Destination>,
    /// The JSON key this target copies (granularity `key`).
    pub(crate) key: Option<String>,
    pub(crate) name: Result<String, Failure>,
    /// The destination's exchange count before this change touched it.
    exchanges_before: u64,
    /// The name as the destination tells names apart (folded when it ignores case).
    pub(crate) identity: Option<String>,
}

pub(crate) type State = Result<DestinationState, Failure>;

/// What a pass read before writing anything (see [`Engine::prepare`]).
pub(crate) enum Prepared<'a> {
    /// The source could not be read.
    Failed(Failure),
    /// The source knows the secret by another name.
    Renamed(String),
    /// The source holds no such secret: the targets a deletion would reach.
    Deleted(Vec<(Target<'a>, State)>),
    /// The source's value, and every target with its destination's state.
    Read {
        current: SourceSecret,
        pairs: Vec<(Target<'a>, State)>,
        /// The value of each JSON key (granularity `key`).
        keyed: BTreeMap<String, SecretValue>,
    },
}

/// Whether version `a` is older than `b`, for stores that number their versions.
fn numerically_older(a: &str, b: &str) -> bool {
    matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a < b)
}

/// What one pass over the destinations came to.
enum Pass {
    /// The source could not be read.
    Failed(Failure),
    /// The source knows the secret by another name: route again.
    Renamed(String),
    /// The source is gone; deletions were handled.
    Deleted(Vec<Outcome>),
    /// Written from this source version.
    Wrote(String, Vec<Outcome>),
}

impl Engine {
    /// Builds identities, exchanges and store adapters. Fails when an identity
    /// cannot be built (a missing key), so a broken deployment fails at start-up.
    pub async fn new(config: Config) -> Result<Engine, Failure> {
        let caches = Caches::default();
        let identities = crate::identity::build_all(&config.identities, &caches.bearer)?;
        let mut sources = HashMap::new();
        for (name, source) in &config.sources {
            sources.insert(
                name.clone(),
                stores::build_source(source, &identities, &caches).await,
            );
        }
        let mut destinations = HashMap::new();
        for (name, destination) in &config.destinations {
            let identity = identities
                .get(destination.identity())
                .cloned()
                .ok_or_else(|| {
                    Failure::new(
                        FailureClass::BadInput,
                        format!(
                            "destination {name:?} names unknown identity {:?}",
                            destination.identity()
                        ),
                    )
                })?;
            destinations.insert(
                name.clone(),
                stores::build_destination(name, destination, identity, &caches),
            );
        }
        let value_key = match &config.reconcile.value_key {
            None => None,
            Some(reference) => Some(Arc::new(ValueKey::load(reference).map_err(|e| {
                Failure::new(FailureClass::BadInput, format!("reconcile.value_key: {e}"))
            })?)),
        };
        Ok(Engine {
            config,
            sources,
            destinations,
            value_key,
            turns: Arc::default(),
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
            value_key: None,
            turns: Arc::default(),
        }
    }

    /// The same engine with a value key (tests, tools).
    pub fn with_value_key(mut self, key: ValueKey) -> Engine {
        self.value_key = Some(Arc::new(key));
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Syncs one change and reports every destination's outcome.
    pub async fn sync(&self, change: &SecretChange) -> Report {
        self.sync_in(change, Mode::Change).await
    }

    pub(crate) async fn sync_in(&self, change: &SecretChange, mode: Mode) -> Report {
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
            let message = format!(
                "the change names source {:?}, which the configuration does not define",
                change.source
            );
            report.error = Some(Failure::new(FailureClass::BadInput, message));
            return report;
        };
        let mut secret = change.secret.clone();
        if !self.routes(&change.source, &secret) {
            // The event may name the secret by an identifier the rules cannot match.
            match source.canonical_name(&secret).await {
                Ok(Some(name)) if self.routes(&change.source, &name) => secret = name,
                Ok(_) => {
                    report.note = Some("no rule matches this secret".into());
                    return report;
                }
                Err(f) => {
                    report.error = Some(f);
                    return report;
                }
            }
        }
        // A sync that read an older version never writes after one that read a newer.
        let _turn = match self.turns.take(&change.source, &secret).await {
            Ok(turn) => turn,
            Err(f) => {
                report.error = Some(f);
                log_outcomes(&report);
                return report;
            }
        };
        for pass in 1..=MAX_PASSES {
            report.secret = secret.clone();
            let (version, outcomes) = match self
                .pass(
                    source.as_ref(),
                    &change.source,
                    &secret,
                    change.version.as_deref(),
                    mode,
                )
                .await
            {
                Pass::Failed(f) => {
                    report.error = Some(f);
                    break;
                }
                Pass::Renamed(name) => {
                    secret = name;
                    if !self.routes(&change.source, &secret) {
                        report.secret = secret;
                        report.note = Some("no rule matches this secret".into());
                        break;
                    }
                    continue;
                }
                Pass::Deleted(outcomes) => {
                    report.kind = ChangeKind::Delete;
                    (None, outcomes)
                }
                Pass::Wrote(version, outcomes) => {
                    report.kind = ChangeKind::Upsert;
                    report.source_version = Some(version.clone());
                    (Some(version), outcomes)
                }
            };
            merge(&mut report.outcomes, outcomes);
            // Converge: the source must still be where this pass left it.
            match source.current_version(&secret).await {
                Ok(now) if now == version => break,
                // A replica behind what was just written has not moved on.
                Ok(Some(now))
                    if version
                        .as_deref()
                        .is_some_and(|v| numerically_older(&now, v)) =>
                {
                    break;
                }
                Ok(_) if pass < MAX_PASSES => {
                    tracing::info!(secret = %secret, pass, "the source moved on during the sync; syncing again");
                }
                Ok(_) => {
                    let message =
                        format!("the source kept changing; stopped after {MAX_PASSES} passes");
                    report.error = Some(Failure::new(FailureClass::Unavailable, message));
                }
                Err(f) => report.error = Some(f.context("confirming the source after writing")),
            }
        }
        log_outcomes(&report);
        // A reconcile pass does not know when the source changed.
        let changed_at = (mode == Mode::Change).then_some(change.observed_at);
        crate::metrics::record(&report, changed_at);
        report
    }

    fn routes(&self, source: &str, secret: &str) -> bool {
        self.config.rules_for(source, secret).next().is_some()
    }

    /// One read of the source and one round of writes. `named` is the version the
    /// change names: when the latest read is older (a lagging replica), that
    /// version is read instead, so a sync never writes an older value than the
    /// event announced.
    async fn pass(
        &self,
        source: &dyn Source,
        source_name: &str,
        secret: &str,
        named: Option<&str>,
        mode: Mode,
    ) -> Pass {
        let started = Instant::now();
        let (current, pairs, keyed) = match self.prepare(source, source_name, secret, named).await {
            Prepared::Failed(f) => return Pass::Failed(f),
            Prepared::Renamed(name) => return Pass::Renamed(name),
            Prepared::Deleted(pairs) => {
                let source_ref = Marks::source_ref(source_name, secret, None);
                let (targets, states): (Vec<Target>, Vec<State>) = pairs.into_iter().unzip();
                let work = targets
                    .iter()
                    .zip(states)
                    .map(|(t, s)| self.delete_one(t, s, &source_ref, started));
                return Pass::Deleted(join_all(work).await);
            }
            Prepared::Read {
                current,
                pairs,
                keyed,
            } => (current, pairs, keyed),
        };
        let work = pairs.iter().map(|(target, state)| {
            let value = value_of(target, &current, &keyed);
            let current = &current;
            async move {
                let status = self
                    .upsert_one(target, state.clone(), value, current, source_name, mode)
                    .await;
                outcome(target, status, started)
            }
        });
        Pass::Wrote(current.version.clone(), join_all(work).await)
    }

    /// Everything a pass reads before it writes: the source's value, and every
    /// target the rules give it with the destination's state (identical targets
    /// kept once, colliding ones failed). Reads only; a plan stops here.
    pub(crate) async fn prepare<'a>(
        &'a self,
        source: &dyn Source,
        source_name: &str,
        secret: &str,
        named: Option<&str>,
    ) -> Prepared<'a> {
        let rules: Vec<&'a Rule> = self.config.rules_for(source_name, secret).collect();
        // Names known before the read (granularity secret) are inspected in parallel with it.
        let targets = self.targets(&rules, source_name, secret, None);
        let (read, states) = tokio::join!(source.read(secret), self.inspect_all(&targets));
        let current = match read {
            Err(f) => return Prepared::Failed(f),
            Ok(Some(current)) if current.name != secret => return Prepared::Renamed(current.name),
            Ok(None) => return Prepared::Deleted(targets.into_iter().zip(states).collect()),
            Ok(Some(current)) => match named.filter(|n| numerically_older(&current.version, n)) {
                None => current,
                Some(newer) => {
                    tracing::info!(secret, read = %current.version, named = newer, "the source answered an older version than the change names; reading that one");
                    match source.read_version(secret, newer).await {
                        Ok(Some(found)) => found,
                        Ok(None) => current,
                        Err(f) => return Prepared::Failed(f),
                    }
                }
            },
        };
        let mut pairs: Vec<(Target, State)> = targets.into_iter().zip(states).collect();
        let mut keyed = BTreeMap::new();
        if rules.iter().any(|r| r.granularity == Granularity::Key) {
            match split_keys(&current.value) {
                Ok(keys) => {
                    let targets: Vec<Target> = keys
                        .keys()
                        .flat_map(|k| self.targets(&rules, source_name, &current.name, Some(k)))
                        .collect();
                    let states = self.inspect_all(&targets).await;
                    pairs.extend(targets.into_iter().zip(states));
                    keyed = keys;
                }
                Err(f) => {
                    for t in self.targets(&rules, source_name, &current.name, Some("")) {
                        pairs.push((
                            Target {
                                name: Err(f.clone()),
                                ..t
                            },
                            Err(f.clone()),
                        ));
                    }
                }
            }
        }
        Prepared::Read {
            current,
            pairs: without_collisions(pairs),
            keyed,
        }
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
                let key = key.map(str::to_string);
                targets.push(Target {
                    rule,
                    destination,
                    store,
                    key,
                    identity: name
                        .as_ref()
                        .ok()
                        .map(|n| config.name_rules().identity_of(n)),
                    name,
                    exchanges_before: store.exchanges(),
                });
            }
        }
        targets
    }

    async fn inspect_all(&self, targets: &[Target<'_>]) -> Vec<State> {
        join_all(targets.iter().map(|t| async move {
            match &t.name {
                Ok(name) => t.store.inspect(name).await,
                Err(f) => Err(f.clone()),
            }
        }))
        .await
    }

    async fn upsert_one(
        &self,
        target: &Target<'_>,
        state: State,
        value: Result<&SecretValue, Failure>,
        current: &SourceSecret,
        source: &str,
        mode: Mode,
    ) -> Status {
        match (&target.name, state, value) {
            (Err(f), _, _) => Status::from(f.clone()),
            (_, Err(f), _) | (_, _, Err(f)) => Status::from(f),
            (Ok(name), Ok(state), Ok(value)) => {
                let marks = self.wanted(target, current, source, value);
                self.write_if_needed(target, name, state, value, &marks, mode)
                    .await
            }
        }
    }

    /// The marks a write of `value` from `current` puts on `target`.
    pub(crate) fn wanted(
        &self,
        target: &Target<'_>,
        current: &SourceSecret,
        source: &str,
        value: &SecretValue,
    ) -> Marks {
        let source_ref = Marks::source_ref(source, &current.name, target.key.as_deref());
        Marks {
            value_hash: self.value_key.as_ref().map(|k| k.mark(&source_ref, value)),
            source_ref,
            source_version: current.version.clone(),
            source_time: current.created,
        }
    }

    async fn write_if_needed(
        &self,
        target: &Target<'_>,
        name: &str,
        mut state: DestinationState,
        value: &SecretValue,
        marks: &Marks,
        mode: Mode,
    ) -> Status {
        let drift = match mode {
            Mode::Change => None,
            Mode::Reconcile => match self.drift(target, name, &state, marks).await {
                Ok(drift) => drift,
                Err(f) => return Status::from(f),
            },
        };
        let stored = target.store.stored_size(value);
        let limit = target.store.max_value_bytes();
        // A create that finds the name taken decides once more from the new state.
        for _ in 0..2 {
            match decide_write(&state, marks, target.rule, drift.as_deref(), stored, limit) {
                Decision::Unchanged => return Status::Unchanged,
                Decision::Skip(reason) => return Status::Skipped { reason },
                Decision::Fail(f) => return Status::from(f),
                Decision::Drift(reason) => {
                    return Status::Drift {
                        reason,
                        repaired: false,
                    };
                }
                Decision::Write => {
                    let write = Write {
                        name,
                        value,
                        marks,
                        tags: &target.rule.tags,
                        state: &state,
                    };
                    match target.store.write(write).await {
                        Ok(Written::Done) => {
                            return match &drift {
                                Some(reason) => Status::Drift {
                                    reason: reason.clone(),
                                    repaired: true,
                                },
                                None => Status::Synced,
                            };
                        }
                        Ok(Written::NameTaken) => match target.store.inspect(name).await {
                            Ok(now) => state = now,
                            Err(f) => return Status::from(f),
                        },
                        // Some services echo the request in their errors: the
                        // value never reaches a report or a log.
                        Err(mut f) => {
                            f.message = value.scrub(&f.message);
                            return Status::from(f);
                        }
                    }
                }
            }
        }
        Status::from(Failure::new(
            FailureClass::Conflict,
            "the name keeps being taken by concurrent writers",
        ))
    }

    /// Drift at a destination that fedsync manages for this source: its current
    /// version is not the one fedsync wrote, or the value no longer matches the
    /// value hash in marks that name the source's current version.
    pub(crate) async fn drift(
        &self,
        target: &Target<'_>,
        name: &str,
        state: &DestinationState,
        wanted: &Marks,
    ) -> Result<Option<String>, Failure> {
        match state {
            DestinationState::Present {
                managed: true,
                marks: Some(held),
                ..
            } if held.age(wanted) == Age::Same => {
                let (Some(key), Some(hash)) = (&self.value_key, &held.value_hash) else {
                    return Ok(None);
                };
                let Some(value) = target.store.read_value(name).await? else {
                    // Gone since it was inspected: the next change or pass sees it.
                    return Ok(None);
                };
                Ok((key.check(hash, &wanted.source_ref, &value) == Check::Differs).then(|| {
                    "its value no longer matches the value hash in fedsync's marks: changed outside fedsync".into()
                }))
            }
            DestinationState::Present {
                managed: true,
                marks: None,
                source_ref: Some(r),
            } if *r == wanted.source_ref => Ok(Some(
                "its current version is not the one fedsync wrote: changed outside fedsync, or a write was cut short".into(),
            )),
            _ => Ok(None),
        }
    }

    async fn delete_one(
        &self,
        target: &Target<'_>,
        state: State,
        source_ref: &str,
        started: Instant,
    ) -> Outcome {
        let status = match (target.rule.on_delete, &target.name, state) {
            (OnDelete::Ignore, _, _) => Status::Skipped {
                reason: "the source was deleted; on_delete = \"ignore\"".into(),
            },
            (_, Err(f), _) => Status::from(f.clone()),
            (_, _, Err(f)) => Status::from(f),
            (_, Ok(_), Ok(DestinationState::Absent | DestinationState::PendingDeletion { .. })) => {
                Status::Unchanged
            }
            (
                _,
                Ok(name),
                Ok(DestinationState::Present {
                    managed: true,
                    source_ref: Some(r),
                    ..
                }),
            ) if r == source_ref => match target.store.delete(name).await {
                Ok(()) => Status::Deleted,
                Err(f) => Status::from(f),
            },
            (_, Ok(_), Ok(_)) => Status::Skipped {
                reason:
                    "not deleted: fedsync does not manage this destination secret for this source"
                        .into(),
            },
        };
        outcome(target, status, started)
    }
}

/// Keeps one of several identical targets (two rules naming the same
/// destination and name for the same value), and fails targets where different
/// values would land on one name (JSON keys that sanitize alike).
fn without_collisions<'a>(pairs: Vec<(Target<'a>, State)>) -> Vec<(Target<'a>, State)> {
    // (destination, name as the destination tells names apart) -> (name, key) first seen.
    let mut seen: HashMap<(&str, String), (String, Option<String>)> = HashMap::new();
    let mut colliding = Vec::new();
    let mut kept = Vec::new();
    for (target, state) in pairs {
        let (Ok(name), Some(identity)) = (&target.name, &target.identity) else {
            kept.push((target, state));
            continue;
        };
        let slot = (target.destination, identity.clone());
        match seen.get(&slot) {
            Some((first, key)) if first == name && *key == target.key => continue,
            Some(_) => colliding.push(slot),
            None => {
                seen.insert(slot, (name.clone(), target.key.clone()));
            }
        }
        kept.push((target, state));
    }
    for (target, state) in kept.iter_mut() {
        if let (Ok(name), Some(identity)) = (&target.name, &target.identity)
            && colliding.contains(&(target.destination, identity.clone()))
        {
            let message = format!(
                "name collision: several values of this secret map to {name:?} at this destination"
            );
            *state = Err(Failure::new(FailureClass::Conflict, message));
        }
    }
    kept
}

/// The value `target` copies: the whole secret, or one of its JSON keys.
pub(crate) fn value_of<'v>(
    target: &Target<'_>,
    current: &'v SourceSecret,
    keyed: &'v BTreeMap<String, SecretValue>,
) -> Result<&'v SecretValue, Failure> {
    match &target.key {
        None => Ok(&current.value),
        Some(k) => keyed.get(k).ok_or_else(|| {
            Failure::new(
                FailureClass::BadInput,
                format!("the value has no key {k:?}"),
            )
        }),
    }
}

/// Adds a pass's outcomes to the earlier ones: a later `unchanged` does not hide
/// an earlier `synced` of the same destination secret.
fn merge(into: &mut Vec<Outcome>, later: Vec<Outcome>) {
    for o in later {
        match into
            .iter_mut()
            .find(|e| e.destination == o.destination && e.name == o.name)
        {
            Some(earlier) => {
                let keep_synced = earlier.status == Status::Synced && o.status == Status::Unchanged;
                earlier.exchanges += o.exchanges;
                earlier.elapsed_ms = o.elapsed_ms;
                if !keep_synced {
                    earlier.acknowledged_at = o.acknowledged_at;
                    earlier.status = o.status;
                }
            }
            None => into.push(o),
        }
    }
}

fn outcome(target: &Target<'_>, status: Status, started: Instant) -> Outcome {
    let exchanges = target
        .store
        .exchanges()
        .saturating_sub(target.exchanges_before);
    Outcome {
        destination: target.destination.to_string(),
        name: target.name.clone().unwrap_or_default(),
        status,
        exchanges: u32::try_from(exchanges).unwrap_or(u32::MAX),
        elapsed_ms: started.elapsed().as_millis() as u64,
        acknowledged_at: SystemTime::now(),
    }
}

fn log_outcomes(report: &Report) {
    if let Some(e) = &report.error {
        tracing::error!(source = %report.source, secret = %report.secret, class = %e.class, retryable = e.is_retryable(), error = %e.message, "sync failed");
    }
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

/// What to do at one destination, given what it holds and the rule's policies.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Write,
    Unchanged,
    Skip(String),
    Fail(Failure),
    /// Changed outside fedsync, and the rule reports drift rather than repairing it.
    Drift(String),
}

/// The decision a sync acts on at one destination, and a plan reports: from
/// what the destination holds (`state`), the marks a write would put there
/// (`wanted`), the drift a reconcile pass found (`drift`, `None` in a change
/// sync), and the value's size there (`stored`) against what it accepts (`limit`).
pub(crate) fn decide_write(
    state: &DestinationState,
    wanted: &Marks,
    rule: &Rule,
    drift: Option<&str>,
    stored: usize,
    limit: usize,
) -> Decision {
    if let Some(reason) = drift
        && rule.on_drift == OnDrift::Report
    {
        return Decision::Drift(reason.to_string());
    }
    let decision = match decide(state, wanted, rule.overwrite) {
        // The marks say in step, the value says otherwise: write it again.
        Decision::Unchanged if drift.is_some() => Decision::Write,
        decision => decision,
    };
    match decision {
        Decision::Write if stored > limit => {
            let message = format!(
                "the value takes {stored} bytes at the destination, which accepts at most {limit}"
            );
            Decision::Fail(Failure::new(FailureClass::BadInput, message))
        }
        decision => decision,
    }
}

fn decide(state: &DestinationState, wanted: &Marks, overwrite: Overwrite) -> Decision {
    match state {
        DestinationState::Absent => Decision::Write,
        // fedsync's own copy, deleted when its source was: the source is back, so is the copy.
        DestinationState::PendingDeletion {
            source_ref: Some(r),
            ..
        } if *r == wanted.source_ref => Decision::Write,
        DestinationState::PendingDeletion { recover: true, .. } => Decision::Write,
        DestinationState::PendingDeletion { .. } => Decision::Fail(Failure::new(
            FailureClass::Conflict,
            "the name is held by a secret scheduled for deletion: restore it, or delete it for good, then retry",
        )),
        DestinationState::Present { marks: Some(m), .. } => match m.age(wanted) {
            Age::Same => Decision::Unchanged,
            Age::Newer => Decision::Skip(format!(
                "the destination already holds a newer source version ({}); an older one never replaces it",
                m.source_version
            )),
            Age::Older | Age::Unknown => decide_present(state, wanted, overwrite),
        },
        DestinationState::Present { .. } => decide_present(state, wanted, overwrite),
    }
}

/// A present secret that does not hold a newer version of the source than `wanted`.
fn decide_present(state: &DestinationState, wanted: &Marks, overwrite: Overwrite) -> Decision {
    match state {
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
        _ => Decision::Write,
    }
}

/// Splits a JSON object secret into one value per key (strings as they are,
/// anything else as its JSON text).
fn split_keys(value: &SecretValue) -> Result<BTreeMap<String, SecretValue>, Failure> {
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
                other => SecretValue::text(crate::secret::SecretBody(other).to_string()),
            };
            (k, value)
        })
        .collect())
}

#[cfg(test)]
mod echoes;
#[cfg(test)]
mod tests;
mod turns;
