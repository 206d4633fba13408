//! The plan's decisions: the decision a sync acts on (drift, size), the plan's
//! words for each, and whole plans over stores in memory that refuse every write.

use super::*;
use crate::config::{Config, OnDrift, Overwrite, Rule};
use crate::stores::{Destination, Listing, Write, Written};
use std::collections::HashMap;
use std::sync::Arc;

fn marks(source_ref: &str, version: &str) -> Marks {
    Marks {
        source_ref: source_ref.into(),
        source_version: version.into(),
        source_time: None,
        value_hash: None,
    }
}

fn present(managed: bool, held: Option<Marks>, source_ref: Option<&str>) -> DestinationState {
    DestinationState::Present {
        managed,
        marks: held,
        source_ref: source_ref.map(str::to_string),
    }
}

fn rule(overwrite: Overwrite, on_drift: OnDrift) -> Rule {
    let config = Config::parse(CONFIG, "test.toml").unwrap();
    Rule {
        overwrite,
        on_drift,
        ..config.rules[0].clone()
    }
}

#[test]
fn drift_is_reported_or_repaired_as_the_rule_says() {
    let held = present(true, Some(marks("s:a", "2")), Some("s:a"));
    let wanted = marks("s:a", "2");
    let report = rule(Overwrite::Managed, OnDrift::Report);
    let repair = rule(Overwrite::Managed, OnDrift::Repair);
    assert_eq!(
        decide_write(&held, &wanted, &report, Some("changed"), 10, 100),
        Decision::Drift("changed".into())
    );
    assert_eq!(
        decide_write(&held, &wanted, &repair, Some("changed"), 10, 100),
        Decision::Write,
        "in step by the marks, not by the value: written again"
    );
    assert_eq!(
        decide_write(&held, &wanted, &repair, None, 10, 100),
        Decision::Unchanged
    );
    // Repairing never goes past what the overwrite policy allows.
    let if_absent = rule(Overwrite::IfAbsent, OnDrift::Repair);
    let rewritten = present(true, None, Some("s:a"));
    assert!(matches!(
        decide_write(&rewritten, &wanted, &if_absent, Some("changed"), 10, 100),
        Decision::Skip(r) if r.contains("if-absent")
    ));
}

#[test]
fn a_value_too_large_for_the_destination_is_refused_even_when_repairing() {
    let repair = rule(Overwrite::Managed, OnDrift::Repair);
    let wanted = marks("s:a", "2");
    for (state, drift) in [
        (DestinationState::Absent, None),
        (
            present(true, Some(marks("s:a", "2")), Some("s:a")),
            Some("changed"),
        ),
    ] {
        match decide_write(&state, &wanted, &repair, drift, 101, 100) {
            Decision::Fail(f) => {
                assert_eq!(f.class, FailureClass::BadInput);
                assert!(f.message.contains("101 bytes"), "{}", f.message);
                assert!(f.message.contains("at most 100"), "{}", f.message);
            }
            d => panic!("{d:?}"),
        }
    }
    assert_eq!(
        decide_write(&DestinationState::Absent, &wanted, &repair, None, 100, 100),
        Decision::Write
    );
}

#[test]
fn each_decision_has_its_action() {
    let wanted = marks("s:a", "3");
    let write = |state: &DestinationState| action(Decision::Write, state, &wanted, None);
    assert_eq!(write(&DestinationState::Absent), (Action::Create, None));
    let (a, reason) = write(&DestinationState::PendingDeletion {
        source_ref: Some("s:a".into()),
        recover: false,
    });
    assert_eq!(a, Action::Create);
    assert!(reason.unwrap().contains("own copy"));
    let (a, reason) = write(&present(true, Some(marks("s:a", "2")), Some("s:a")));
    assert_eq!(a, Action::Update);
    assert_eq!(
        reason.as_deref(),
        Some("holds source version 2; the source is at 3")
    );
    let (a, reason) = write(&present(false, None, None));
    assert_eq!(a, Action::Update);
    assert!(reason.unwrap().contains("adopts"));
    let (a, reason) = write(&present(true, None, Some("s:b")));
    assert_eq!(a, Action::Update);
    assert!(
        reason
            .unwrap()
            .contains("takes over fedsync's copy of \"s:b\"")
    );
    let (a, reason) = action(
        Decision::Write,
        &present(true, Some(wanted.clone()), Some("s:a")),
        &wanted,
        Some("its value no longer matches".into()),
    );
    assert_eq!(a, Action::Update);
    assert!(reason.unwrap().starts_with("repairs drift"));

    let held = present(true, Some(wanted.clone()), Some("s:a"));
    assert_eq!(
        action(Decision::Unchanged, &held, &wanted, None),
        (Action::Unchanged, None)
    );
    let (a, reason) = action(Decision::Drift("edited".into()), &held, &wanted, None);
    assert_eq!(a, Action::Drift);
    assert!(reason.unwrap().starts_with("edited"));
    assert_eq!(
        action(Decision::Skip("policy".into()), &held, &wanted, None),
        (Action::Refused, Some("policy".into()))
    );
    // Decided from real states, the two kinds of conflict stay apart.
    let other = present(true, Some(marks("s:b", "1")), Some("s:b"));
    let managed = rule(Overwrite::Managed, OnDrift::Report);
    let decided = decide_write(&other, &wanted, &managed, None, 1, 10);
    let (a, reason) = action(decided, &other, &wanted, None);
    assert_eq!(a, Action::Collision);
    assert!(reason.unwrap().contains("\"s:b\""));
    let pending = DestinationState::PendingDeletion {
        source_ref: None,
        recover: false,
    };
    let decided = decide_write(&pending, &wanted, &managed, None, 1, 10);
    let (a, reason) = action(decided, &pending, &wanted, None);
    assert_eq!(a, Action::Refused);
    assert!(reason.unwrap().contains("scheduled for deletion"));
}

const CONFIG: &str = r#"
[identities.ci]
kind = "github-actions"

[sources.main]
kind = "aws-secrets-manager"

[destinations.dr]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::210987654321:role/w"
identity = "ci"

[reconcile]
requests_per_second = 1000

[[rules]]
source = "main"
match = "app/*"
destinations = ["dr"]

[[rules]]
source = "main"
match = "team-*/db"
destinations = ["dr"]
name = "shared-{basename}"
"#;

/// A source in memory: name -> (version, value), listed two names a page.
struct MemorySource(BTreeMap<String, (u64, String)>);

#[async_trait::async_trait]
impl Source for MemorySource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        Ok(self.0.get(secret).map(|(v, value)| SourceSecret {
            name: secret.into(),
            version: v.to_string(),
            created: None,
            value: SecretValue::text(value.clone()),
        }))
    }
    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        Ok(self.0.get(secret).map(|(v, _)| v.to_string()))
    }
    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        let names: Vec<String> = self.0.keys().cloned().collect();
        let start: usize = page.map_or(0, |p| p.parse().unwrap());
        let end = (start + 2).min(names.len());
        Ok(Listing {
            names: names[start..end].to_vec(),
            next: (end < names.len()).then(|| end.to_string()),
        })
    }
}

/// A destination whose states are set by the test, and that refuses to be changed.
struct Frozen(BTreeMap<String, (DestinationState, String)>);

#[async_trait::async_trait]
impl Destination for Frozen {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        Ok(self
            .0
            .get(name)
            .map_or(DestinationState::Absent, |(s, _)| s.clone()))
    }
    async fn write(&self, w: Write<'_>) -> Result<Written, Failure> {
        panic!("a plan wrote {:?}", w.name)
    }
    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure> {
        Ok(self.0.get(name).map(|(_, v)| SecretValue::text(v.clone())))
    }
    async fn delete(&self, name: &str) -> Result<(), Failure> {
        panic!("a plan deleted {name:?}")
    }
    fn max_value_bytes(&self) -> usize {
        65_536
    }
    fn exchanges(&self) -> u64 {
        0
    }
}

fn value(name: &str, version: u64) -> String {
    format!("{name} value at version {version} 7c1e")
}

/// Marks as fedsync would have written them for version `version` of `name`.
fn ours(name: &str, version: u64, key: Option<&ValueKey>) -> DestinationState {
    let source_ref = format!("main:{name}");
    let held = Marks {
        value_hash: key.map(|k| k.mark(&source_ref, &SecretValue::text(value(name, version)))),
        ..marks(&source_ref, &version.to_string())
    };
    present(true, Some(held), Some(&source_ref))
}

fn engine(destination: Frozen, key: Option<ValueKey>) -> Engine {
    let secrets = [
        ("app/new", 1),
        ("app/old", 2),
        ("app/same", 4),
        ("app/taken", 1),
        ("other/x", 1),
        ("team-a/db", 1),
        ("team-b/db", 1),
    ];
    let source = MemorySource(
        secrets
            .iter()
            .map(|(n, v)| (n.to_string(), (*v, value(n, *v))))
            .collect(),
    );
    let engine = Engine::with_stores(
        Config::parse(CONFIG, "test.toml").unwrap(),
        HashMap::from([("main".to_string(), Arc::new(source) as Arc<dyn Source>)]),
        HashMap::from([(
            "dr".to_string(),
            Arc::new(destination) as Arc<dyn Destination>,
        )]),
    );
    match key {
        Some(key) => engine.with_value_key(key),
        None => engine,
    }
}

fn frozen(key: Option<&ValueKey>) -> Frozen {
    Frozen(BTreeMap::from([
        (
            "app/old".to_string(),
            (ours("app/old", 1, key), value("app/old", 1)),
        ),
        (
            "app/same".to_string(),
            (ours("app/same", 4, key), value("app/same", 4)),
        ),
        (
            "app/taken".to_string(),
            (
                present(false, None, None),
                "someone else's value 7c1e".into(),
            ),
        ),
    ]))
}

fn target<'a>(plan: &'a Plan, secret: &str) -> &'a PlannedTarget {
    let found = plan.secrets.iter().find(|s| s.secret == secret);
    let found = found.unwrap_or_else(|| panic!("{secret} not planned: {plan:#?}"));
    assert_eq!(found.targets.len(), 1, "{found:#?}");
    &found.targets[0]
}

#[tokio::test]
async fn a_plan_shows_every_action_and_writes_nothing() {
    let plan = engine(frozen(None), None).plan(Scope::default()).await;
    assert!(plan.complete, "{plan:#?}");
    assert_eq!(plan.sources[0].listed, 7);
    assert_eq!(plan.sources[0].covered, 6, "other/x is covered by no rule");
    assert_eq!(plan.sources[0].pages, 4);

    let new = target(&plan, "app/new");
    assert_eq!((new.action, new.name.as_str()), (Action::Create, "app/new"));
    let old = target(&plan, "app/old");
    assert_eq!(old.action, Action::Update, "{old:#?}");
    assert_eq!(old.held_version.as_deref(), Some("1"));
    assert_eq!(
        old.reason.as_deref(),
        Some("holds source version 1; the source is at 2")
    );
    assert_eq!(target(&plan, "app/same").action, Action::Unchanged);
    let taken = target(&plan, "app/taken");
    assert_eq!(taken.action, Action::Refused);
    assert!(
        taken.reason.as_deref().unwrap().contains("does not manage"),
        "{taken:#?}"
    );
    for secret in ["team-a/db", "team-b/db"] {
        let t = target(&plan, secret);
        assert_eq!(
            (t.action, t.name.as_str()),
            (Action::Collision, "shared-db")
        );
        assert_eq!(t.rule, 1);
        let reason = t.reason.as_deref().unwrap();
        assert!(
            reason.contains("main:team-a/db") && reason.contains("main:team-b/db"),
            "both sources are named: {reason}"
        );
    }
    assert_eq!(
        plan.totals,
        PlanTotals {
            create: 1,
            update: 1,
            unchanged: 1,
            refused: 1,
            collision: 2,
            ..Default::default()
        }
    );
    assert!(plan.has_refusals() && !plan.has_failures());

    // Values appear as hashes only, keyed for this plan alone.
    assert_eq!(plan.value_hashes, HashKey::ThisPlan);
    let hashes: BTreeSet<&str> = (plan.secrets.iter())
        .flat_map(|s| &s.targets)
        .map(|t| t.value_hash.as_deref().unwrap())
        .collect();
    assert_eq!(hashes.len(), 6, "each value its own hash");
    let shown = format!("{plan:?}{}", serde_json::to_string(&plan).unwrap());
    assert!(!shown.contains("7c1e"), "no value in a plan: {shown}");
}

#[tokio::test]
async fn with_a_value_key_hashes_match_the_marks_and_drift_is_found() {
    let key = || ValueKey::new(&[7; 32]).unwrap();
    let mut destination = frozen(Some(&key()));
    // Changed outside fedsync under fedsync's marks.
    destination.0.get_mut("app/same").unwrap().1 = "edited by hand 7c1e".into();
    let plan = engine(destination, Some(key()))
        .plan(Scope::default())
        .await;
    assert_eq!(plan.value_hashes, HashKey::ValueKey);
    let same = target(&plan, "app/same");
    assert_eq!(same.action, Action::Drift, "{same:#?}");
    assert!(same.reason.as_deref().unwrap().contains("value hash"));
    assert_eq!(
        same.value_hash, same.held_hash,
        "the marks' hash, as the sync computes it"
    );
    let old = target(&plan, "app/old");
    assert_ne!(old.value_hash, old.held_hash, "a newer value");
    assert!(!plan.has_failures());
}

#[tokio::test]
async fn a_scope_narrows_the_plan_to_one_secret() {
    let engine = engine(frozen(None), None);
    let scope = |secret| Scope {
        source: None,
        secret: Some(secret),
    };
    let plan = engine.plan(scope("app/same")).await;
    assert!(plan.sources.is_empty(), "nothing listed: {plan:#?}");
    assert_eq!(plan.secrets.len(), 1);
    assert_eq!(target(&plan, "app/same").action, Action::Unchanged);
    assert!(!plan.has_failures() && !plan.has_refusals());

    // One of two colliding secrets alone collides with nothing in the plan.
    let plan = engine.plan(scope("team-a/db")).await;
    assert_eq!(target(&plan, "team-a/db").action, Action::Create);

    let plan = engine.plan(scope("app/gone")).await;
    let error = plan.secrets[0].error.as_ref().unwrap();
    assert_eq!(error.class, FailureClass::NotFound);
    assert!(plan.has_failures());

    let plan = engine.plan(scope("nowhere/x")).await;
    assert!(plan.secrets.is_empty(), "no rule covers it: {plan:#?}");
}
