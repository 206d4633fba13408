//! The plan: a dry run of a reconcile pass that writes nothing. For every
//! source secret a rule covers, it reads the source and inspects each
//! destination exactly as a sync does (the same targets, names, marks and
//! decision), and says what the sync would do there: create, update, leave
//! unchanged, report drift, refuse by policy, or collide with another secret
//! written to the same name. Values are shown only as their keyed hash.

use crate::marks::Marks;
use crate::reconcile::SourcePass;
use crate::report::{Failure, FailureClass};
use crate::secret::SecretValue;
use crate::stores::{DestinationState, Source, SourceSecret};
use crate::sync::{Decision, Engine, Prepared, State, Target, decide_write, value_of};
use crate::value_hash::{MIN_KEY_BYTES, ValueKey};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// What a plan covers: every source a rule reads from, or one; every secret
/// listed, or one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub source: Option<&'a str>,
    pub secret: Option<&'a str>,
}

/// What a sync would do at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The name is free (or held by fedsync's own deleted copy): a secret would be created.
    Create,
    /// The secret is there and behind: a new value would be written.
    Update,
    /// The destination already holds this source version.
    Unchanged,
    /// Changed outside fedsync, and the rule reports drift (`on_drift = "report"`):
    /// nothing would be written.
    Drift,
    /// A policy refuses the write (overwrite, a name pending deletion, an
    /// invalid name or value).
    Refused,
    /// Another secret, or another value of this one, would be written to the same name.
    Collision,
    /// The destination could not be read.
    Error,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Drift => "drift",
            Action::Refused => "refused",
            Action::Collision => "collision",
            Action::Error => "error",
        }
    }
}

/// How the value hashes of a plan are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashKey {
    /// With `[reconcile] value_key`: the same hashes as in the destinations' marks.
    ValueKey,
    /// With a key made for this plan and forgotten after it: comparable within the plan only.
    ThisPlan,
}

/// One (rule, destination) a source secret maps to, and what a sync would do there.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTarget {
    /// The rule's index in the configuration (`rules[N]`).
    pub rule: usize,
    pub destination: String,
    /// The name at the destination (empty when none could be made).
    pub name: String,
    /// The JSON key copied (granularity `key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The keyed hash of the value a sync would write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_hash: Option<String>,
    /// The source version the destination holds, by fedsync's marks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_version: Option<String>,
    /// The value hash in the destination's marks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_hash: Option<String>,
    /// The name as the destination tells names apart, for finding collisions.
    #[serde(skip)]
    identity: Option<String>,
}

/// One source secret's part of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct SecretPlan {
    pub source: String,
    pub secret: String,
    /// The source version a sync would copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Why nothing is planned, when nothing is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The source could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    pub targets: Vec<PlannedTarget>,
}

/// Planned targets by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub drift: usize,
    pub refused: usize,
    pub collision: usize,
    pub error: usize,
    /// Secrets whose source could not be read.
    pub source_failures: usize,
}

/// A whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Whether every source was listed to its end.
    pub complete: bool,
    pub value_hashes: HashKey,
    /// The sources listed (none when one secret was named).
    pub sources: Vec<SourcePass>,
    pub secrets: Vec<SecretPlan>,
    pub totals: PlanTotals,
}

impl Plan {
    /// Whether something could not be read: the plan is not whole.
    pub fn has_failures(&self) -> bool {
        !self.complete || self.totals.error > 0 || self.totals.source_failures > 0
    }

    /// Whether a sync would refuse a write or meet a name collision.
    pub fn has_refusals(&self) -> bool {
        self.totals.refused > 0 || self.totals.collision > 0
    }
}

impl Engine {
    /// Plans a reconcile pass over `scope` without writing anything: sources are
    /// listed and read, destinations inspected (and, where fedsync's marks
    /// carry a value hash, read to find drift), at the configured rate.
    pub async fn plan(&self, scope: Scope<'_>) -> Plan {
        let engine = self.paced();
        let run_key;
        let (key, value_hashes) = match &self.value_key {
            Some(key) => (key.as_ref(), HashKey::ValueKey),
            None => {
                run_key = plan_key();
                (&run_key, HashKey::ThisPlan)
            }
        };
        let sources: BTreeSet<&str> = (self.config.rules.iter())
            .filter(|r| scope.secret.is_none_or(|s| r.matches(&r.source, s)))
            .map(|r| r.source.as_str())
            .filter(|s| scope.source.is_none_or(|o| o == *s))
            .collect();
        let mut plan = Plan {
            complete: true,
            value_hashes,
            sources: vec![],
            secrets: vec![],
            totals: PlanTotals::default(),
        };
        for source in sources {
            let Some(store) = engine.sources.get(source) else {
                plan.complete = false;
                plan.sources.push(SourcePass {
                    source: source.to_string(),
                    error: Some("the configuration does not define this source".into()),
                    ..Default::default()
                });
                continue;
            };
            match scope.secret {
                Some(secret) => {
                    let mut planned = engine
                        .plan_secret(store.as_ref(), source, secret, key)
                        .await;
                    // Named on purpose: its absence is a failure, not a listing race.
                    if let Some(note) = planned.note.take() {
                        planned.error = Some(Failure::new(FailureClass::NotFound, note));
                    }
                    plan.secrets.push(planned);
                }
                None => {
                    let pass = engine
                        .plan_source(store.as_ref(), source, key, &mut plan.secrets)
                        .await;
                    plan.complete &= pass.complete;
                    plan.sources.push(pass);
                }
            }
        }
        mark_collisions(&mut plan.secrets);
        for secret in &plan.secrets {
            plan.totals.add(secret);
        }
        plan
    }

    /// Lists one source page by page and plans every secret a rule covers.
    async fn plan_source(
        &self,
        store: &dyn Source,
        source: &str,
        key: &ValueKey,
        into: &mut Vec<SecretPlan>,
    ) -> SourcePass {
        let mut pages = self.covered_pages(store, source, None);
        while let Some(covered) = pages.next().await {
            let planned: Vec<SecretPlan> = futures_util::stream::iter(covered)
                .map(|secret| async move { self.plan_secret(store, source, &secret, key).await })
                .buffered(self.config.reconcile.concurrency)
                .collect()
                .await;
            into.extend(planned);
        }
        pages.pass
    }

    /// Reads one source secret and decides every target it maps to.
    async fn plan_secret(
        &self,
        store: &dyn Source,
        source: &str,
        secret: &str,
        key: &ValueKey,
    ) -> SecretPlan {
        let mut planned = SecretPlan {
            source: source.to_string(),
            secret: secret.to_string(),
            source_version: None,
            note: None,
            error: None,
            targets: vec![],
        };
        let mut renamed = false;
        let (current, pairs, keyed) = loop {
            match self.prepare(store, source, &planned.secret, None).await {
                Prepared::Failed(f) => {
                    planned.error = Some(f);
                    return planned;
                }
                // Named by another identifier: planned under its name, as a sync routes it.
                Prepared::Renamed(name)
                    if !renamed && self.config.rules_for(source, &name).next().is_some() =>
                {
                    renamed = true;
                    planned.secret = name;
                }
                Prepared::Renamed(name) => {
                    planned.note = Some(format!(
                        "the source knows this secret as {}; plan that name",
                        crate::excerpt::quote(&name)
                    ));
                    return planned;
                }
                Prepared::Deleted(_) => {
                    planned.note = Some("the source holds no such secret".into());
                    return planned;
                }
                Prepared::Read {
                    current,
                    pairs,
                    keyed,
                } => break (current, pairs, keyed),
            }
        };
        planned.source_version = Some(current.version.clone());
        let judged = pairs.into_iter().map(|(target, state)| {
            let value = value_of(&target, &current, &keyed);
            let current = &current;
            async move {
                self.plan_target(&target, state, value, current, source, key)
                    .await
            }
        });
        planned.targets = futures_util::future::join_all(judged).await;
        planned
    }

    /// What a reconcile sync would do at one target, from the same decision it acts on.
    async fn plan_target(
        &self,
        target: &Target<'_>,
        state: State,
        value: Result<&SecretValue, Failure>,
        current: &SourceSecret,
        source: &str,
        key: &ValueKey,
    ) -> PlannedTarget {
        let mut planned = PlannedTarget {
            rule: (self.config.rules.iter())
                .position(|r| std::ptr::eq(r, target.rule))
                .unwrap_or_default(),
            destination: target.destination.to_string(),
            name: target.name.clone().unwrap_or_default(),
            key: target.key.clone(),
            action: Action::Refused,
            reason: None,
            value_hash: None,
            held_version: None,
            held_hash: None,
            identity: target.identity.clone(),
        };
        let (name, state, value) = match (&target.name, state, value) {
            (Err(f), _, _) => {
                planned.reason = Some(f.message.clone());
                return planned;
            }
            (_, Err(f), _) => {
                // Two keys of one secret bound for one name are a collision, not
                // an unreadable destination.
                planned.action = if f.class == FailureClass::Conflict {
                    Action::Collision
                } else {
                    Action::Error
                };
                planned.reason = Some(f.to_string());
                return planned;
            }
            (_, _, Err(f)) => {
                planned.reason = Some(f.message);
                return planned;
            }
            (Ok(name), Ok(state), Ok(value)) => (name, state, value),
        };
        let wanted = self.wanted(target, current, source, value);
        planned.value_hash = Some(key.mark(&wanted.source_ref, value));
        if let DestinationState::Present {
            marks: Some(held), ..
        } = &state
        {
            planned.held_version = Some(held.source_version.clone());
            planned.held_hash = held.value_hash.clone();
        }
        let drift = match self.drift(target, name, &state, &wanted).await {
            Ok(drift) => drift,
            Err(f) => {
                planned.action = Action::Error;
                planned.reason = Some(f.context("reading the value to check it").to_string());
                return planned;
            }
        };
        let decision = decide_write(
            &state,
            &wanted,
            target.rule,
            drift.as_deref(),
            target.store.stored_size(value),
            target.store.max_value_bytes(),
        );
        (planned.action, planned.reason) = action(decision, &state, &wanted, drift);
        planned
    }
}

/// The plan's words for the sync's decision.
pub(crate) fn action(
    decision: Decision,
    state: &DestinationState,
    wanted: &Marks,
    drift: Option<String>,
) -> (Action, Option<String>) {
    match decision {
        Decision::Unchanged => (Action::Unchanged, None),
        Decision::Drift(reason) => (
            Action::Drift,
            Some(format!(
                "{reason} (on_drift = \"report\": left as it is)"
            )),
        ),
        Decision::Skip(reason) => (Action::Refused, Some(reason)),
        // The only failure decided on a present secret: another source's copy holds the name.
        Decision::Fail(f)
            if f.class == FailureClass::Conflict
                && matches!(state, DestinationState::Present { .. }) =>
        {
            (Action::Collision, Some(f.message))
        }
        Decision::Fail(f) => (Action::Refused, Some(f.message)),
        Decision::Write => match state {
            DestinationState::Absent => (Action::Create, None),
            DestinationState::PendingDeletion {
                source_ref: Some(r),
                ..
            } if *r == wanted.source_ref => (
                Action::Create,
                Some("restores fedsync's own copy, scheduled for deletion with its source".into()),
            ),
            DestinationState::PendingDeletion { .. } => (
                Action::Create,
                Some("recovers the soft-deleted secret holding the name, then decides again from what it holds".into()),
            ),
            DestinationState::Present { .. } if drift.is_some() => (
                Action::Update,
                drift.map(|reason| format!("repairs drift (on_drift = \"repair\"): {reason}")),
            ),
            DestinationState::Present { managed: false, .. } => (
                Action::Update,
                Some("adopts a secret fedsync does not manage (overwrite = \"always\")".into()),
            ),
            DestinationState::Present {
                source_ref: Some(other),
                ..
            } if *other != wanted.source_ref => (
                Action::Update,
                Some(format!(
                    "takes over fedsync's copy of {other:?} (overwrite = \"always\")"
                )),
            ),
            DestinationState::Present {
                marks: Some(held), ..
            } => (
                Action::Update,
                Some(format!(
                    "holds source version {}; the source is at {}",
                    held.source_version, wanted.source_version
                )),
            ),
            DestinationState::Present { .. } => (
                Action::Update,
                Some("its current version is not one fedsync wrote for this source".into()),
            ),
        },
    }
}

/// Marks every target whose name another target of the plan writes too (at
/// the same destination, as it tells names apart): two secrets, two sources'
/// rules, or two keys of one secret. A sync would fail or overwrite one with
/// the other. Targets that could not be read keep their error.
fn mark_collisions(secrets: &mut [SecretPlan]) {
    let mut slots: BTreeMap<(String, String), Vec<(usize, usize)>> = BTreeMap::new();
    for (s, secret) in secrets.iter().enumerate() {
        for (t, target) in secret.targets.iter().enumerate() {
            if let Some(identity) = &target.identity {
                slots
                    .entry((target.destination.clone(), identity.clone()))
                    .or_default()
                    .push((s, t));
            }
        }
    }
    for ((destination, _), writers) in slots.into_iter().filter(|(_, w)| w.len() > 1) {
        let names: Vec<String> = writers
            .iter()
            .map(|&(s, t)| {
                let (secret, target) = (&secrets[s], &secrets[s].targets[t]);
                let key = target
                    .key
                    .as_deref()
                    .map(|k| format!("#{k}"))
                    .unwrap_or_default();
                format!(
                    "{}:{}{key} (rules[{}]) as {:?}",
                    secret.source, secret.secret, target.rule, target.name
                )
            })
            .collect();
        let (last, others) = names.split_last().expect("two writers or more");
        let reason = format!(
            "name collision at {destination}: {} and {last} would be written to one secret",
            others.join(", ")
        );
        for (s, t) in writers {
            let target = &mut secrets[s].targets[t];
            if target.action != Action::Error {
                target.action = Action::Collision;
                target.reason = Some(reason.clone());
            }
        }
    }
}

impl PlanTotals {
    fn add(&mut self, secret: &SecretPlan) {
        if secret.error.is_some() {
            self.source_failures += 1;
        }
        for target in &secret.targets {
            match target.action {
                Action::Create => self.create += 1,
                Action::Update => self.update += 1,
                Action::Unchanged => self.unchanged += 1,
                Action::Drift => self.drift += 1,
                Action::Refused => self.refused += 1,
                Action::Collision => self.collision += 1,
                Action::Error => self.error += 1,
            }
        }
    }
}

/// A value key made for one plan and forgotten with it, when the configuration
/// has none: hashes then tell values apart within the plan, and nowhere else.
fn plan_key() -> ValueKey {
    let mut bytes = Zeroizing::new([0u8; MIN_KEY_BYTES]);
    aws_lc_rs::rand::fill(&mut bytes[..]).expect("the system's random source answers");
    ValueKey::new(&bytes[..]).expect("the key is long enough")
}

#[cfg(test)]
mod tests;
