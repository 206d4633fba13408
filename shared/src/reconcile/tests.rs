//! A reconcile pass over stores in memory: what it syncs, what it reports as
//! drift, what it repairs, and how it stops.

use super::*;
use crate::config::Config;
use crate::marks::Marks;
use crate::report::Failure;
use crate::secret::SecretValue;
use crate::stores::{DestinationState, Listing, SourceSecret, Write, Written};
use crate::value_hash::ValueKey;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A source in memory: name -> (version, value), listed two names a page.
struct MemorySource(Mutex<BTreeMap<String, (u64, String)>>);

impl MemorySource {
    fn new(secrets: &[(&str, u64)]) -> Arc<Self> {
        let secrets = secrets
            .iter()
            .map(|(n, v)| (n.to_string(), (*v, value_of(n, *v))))
            .collect();
        Arc::new(MemorySource(Mutex::new(secrets)))
    }
}

fn value_of(name: &str, version: u64) -> String {
    format!("{name} at version {version}")
}

#[async_trait::async_trait]
impl Source for MemorySource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(secret)
            .map(|(v, value)| SourceSecret {
                name: secret.into(),
                version: v.to_string(),
                created: None,
                value: SecretValue::text(value.clone()),
            }))
    }
    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(secret)
            .map(|(v, _)| v.to_string()))
    }
    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        let names: Vec<String> = self.0.lock().unwrap().keys().cloned().collect();
        let start: usize = page.map_or(0, |p| p.parse().unwrap());
        let end = (start + 2).min(names.len());
        Ok(Listing {
            names: names[start..end].to_vec(),
            next: (end < names.len()).then(|| end.to_string()),
        })
    }
}

/// One destination secret in memory: its value, the marks fedsync wrote on the
/// secret, and whether the current version is the one they describe.
#[derive(Clone)]
struct Held {
    value: String,
    marks: Marks,
    current_is_fedsyncs: bool,
}

#[derive(Default)]
struct MemoryDestination(Mutex<BTreeMap<String, Held>>);

impl MemoryDestination {
    fn value(&self, name: &str) -> Option<String> {
        self.0.lock().unwrap().get(name).map(|h| h.value.clone())
    }

    /// Someone sets a new version outside fedsync (marks stay on the secret).
    fn new_version_outside(&self, name: &str, value: &str) {
        let mut held = self.0.lock().unwrap();
        let h = held.get_mut(name).unwrap();
        h.value = value.into();
        h.current_is_fedsyncs = false;
    }

    /// Someone changes the value and copies fedsync's marks onto it.
    fn value_changed_under_marks(&self, name: &str, value: &str) {
        self.0.lock().unwrap().get_mut(name).unwrap().value = value.into();
    }
}

#[async_trait::async_trait]
impl Destination for MemoryDestination {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        Ok(match self.0.lock().unwrap().get(name) {
            None => DestinationState::Absent,
            Some(h) => DestinationState::Present {
                managed: true,
                marks: h.current_is_fedsyncs.then(|| h.marks.clone()),
                source_ref: Some(h.marks.source_ref.clone()),
            },
        })
    }
    async fn write(&self, w: Write<'_>) -> Result<Written, Failure> {
        let held = Held {
            value: w.value.expose_text().unwrap().into(),
            marks: w.marks.clone(),
            current_is_fedsyncs: true,
        };
        self.0.lock().unwrap().insert(w.name.into(), held);
        Ok(Written::Done)
    }
    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure> {
        Ok(self.value(name).map(SecretValue::text))
    }
    async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.0.lock().unwrap().remove(name);
        Ok(())
    }
    fn max_value_bytes(&self) -> usize {
        65_536
    }
    fn exchanges(&self) -> u64 {
        0
    }
}

const CONFIG: &str = r#"
[identities.ci]
kind = "github-actions"

[sources.main]
kind = "aws-secrets-manager"

[destinations.watched]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::210987654321:role/w"
identity = "ci"

[destinations.mended]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::210987654321:role/m"
identity = "ci"

[reconcile]
requests_per_second = 1000

[[rules]]
source = "main"
match = "app/*"
destinations = ["watched"]

[[rules]]
source = "main"
match = "app/*"
destinations = ["mended"]
on_drift = "repair"
"#;

struct World {
    watched: Arc<MemoryDestination>,
    mended: Arc<MemoryDestination>,
    engine: Engine,
}

fn world(secrets: &[(&str, u64)], key: bool) -> World {
    let source = MemorySource::new(secrets);
    let watched = Arc::new(MemoryDestination::default());
    let mended = Arc::new(MemoryDestination::default());
    let engine = Engine::with_stores(
        Config::parse(CONFIG, "test.toml").unwrap(),
        HashMap::from([("main".to_string(), source.clone() as Arc<dyn Source>)]),
        HashMap::from([
            (
                "watched".to_string(),
                watched.clone() as Arc<dyn Destination>,
            ),
            ("mended".to_string(), mended.clone() as Arc<dyn Destination>),
        ]),
    );
    let engine = match key {
        true => engine.with_value_key(ValueKey::new(&[9; 32]).unwrap()),
        false => engine,
    };
    World {
        watched,
        mended,
        engine,
    }
}

fn statuses(report: &ReconcileReport, destination: &str, name: &str) -> Vec<Status> {
    report
        .secrets
        .iter()
        .flat_map(|r| &r.outcomes)
        .filter(|o| o.destination == destination && o.name == name)
        .map(|o| o.status.clone())
        .collect()
}

#[tokio::test]
async fn a_pass_lists_every_page_and_syncs_only_what_is_behind_and_covered() {
    let w = world(
        &[("app/a", 1), ("app/b", 3), ("app/c", 2), ("ops/x", 1)],
        false,
    );
    w.engine.sync(&change("app/b")).await;

    let report = w.engine.reconcile(None, None).await;

    assert!(report.complete, "{report:?}");
    let pass = &report.sources[0];
    assert_eq!((pass.listed, pass.covered, pass.pages), (4, 3, 2));
    assert_eq!(
        report.totals.synced, 4,
        "app/a and app/c at both destinations"
    );
    assert_eq!(report.totals.unchanged, 2, "app/b was already there");
    for (name, version) in [("app/a", 1), ("app/b", 3), ("app/c", 2)] {
        assert_eq!(w.watched.value(name), Some(value_of(name, version)));
        assert_eq!(w.mended.value(name), Some(value_of(name, version)));
    }
    assert_eq!(w.watched.value("ops/x"), None, "no rule covers it");
    assert!(!report.has_failures() && !report.has_unrepaired_drift());

    let again = w.engine.reconcile(None, None).await;
    assert_eq!(again.totals.unchanged, 6);
    assert!(again.secrets.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_version_set_outside_fedsync_is_reported_or_repaired_per_rule() {
    let w = world(&[("app/a", 1)], false);
    w.engine.reconcile(None, None).await;
    w.watched.new_version_outside("app/a", "edited by hand");
    w.mended.new_version_outside("app/a", "edited by hand");

    let report = w.engine.reconcile(None, None).await;

    let [
        Status::Drift {
            reason,
            repaired: false,
        },
    ] = &statuses(&report, "watched", "app/a")[..]
    else {
        panic!("{report:?}");
    };
    assert!(reason.contains("not the one fedsync wrote"), "{reason}");
    assert_eq!(w.watched.value("app/a").as_deref(), Some("edited by hand"));
    assert!(matches!(
        &statuses(&report, "mended", "app/a")[..],
        [Status::Drift { repaired: true, .. }]
    ));
    assert_eq!(w.mended.value("app/a"), Some(value_of("app/a", 1)));
    assert!(report.has_unrepaired_drift());
    assert_eq!(
        (report.totals.drift_reported, report.totals.drift_repaired),
        (1, 1)
    );

    let again = w.engine.reconcile(None, None).await;
    assert_eq!(
        again.totals.drift_reported, 1,
        "reported until someone acts"
    );
    assert_eq!(
        again.totals.unchanged, 1,
        "the repaired copy stays repaired"
    );
}

#[tokio::test]
async fn a_value_changed_under_fedsyncs_marks_is_found_by_the_value_hash() {
    let w = world(&[("app/a", 1)], true);
    w.engine.reconcile(None, None).await;
    w.watched
        .value_changed_under_marks("app/a", "edited, marks copied");
    w.mended
        .value_changed_under_marks("app/a", "edited, marks copied");

    let report = w.engine.reconcile(None, None).await;

    let [
        Status::Drift {
            reason,
            repaired: false,
        },
    ] = &statuses(&report, "watched", "app/a")[..]
    else {
        panic!("{report:?}");
    };
    assert!(reason.contains("value hash"), "{reason}");
    assert!(!reason.contains("edited"), "no value in a report: {reason}");
    assert_eq!(
        w.watched.value("app/a").as_deref(),
        Some("edited, marks copied")
    );
    assert_eq!(w.mended.value("app/a"), Some(value_of("app/a", 1)));
}

#[tokio::test]
async fn without_a_value_key_the_marks_alone_decide() {
    let w = world(&[("app/a", 1)], false);
    w.engine.reconcile(None, None).await;
    assert!(
        w.watched.0.lock().unwrap()["app/a"]
            .marks
            .value_hash
            .is_none(),
        "no key, no hash"
    );
    w.watched
        .value_changed_under_marks("app/a", "edited, marks copied");
    let report = w.engine.reconcile(None, None).await;
    assert_eq!(report.totals.unchanged, 2, "{report:?}");
}

#[tokio::test]
async fn a_pass_past_its_deadline_stops_and_says_so() {
    let w = world(&[("app/a", 1), ("app/b", 1), ("app/c", 1)], false);
    let report = w.engine.reconcile(None, Some(Instant::now())).await;
    assert!(!report.complete);
    assert!(report.has_failures());
    let error = report.sources[0].error.as_deref().unwrap();
    assert!(error.contains("deadline"), "{error}");
    assert_eq!(w.watched.value("app/a"), None);
}

#[tokio::test]
async fn a_pass_can_be_limited_to_one_source() {
    let w = world(&[("app/a", 1)], false);
    let report = w.engine.reconcile(Some("elsewhere"), None).await;
    assert!(report.sources.is_empty() && report.complete);
    assert_eq!(w.watched.value("app/a"), None);
}

fn change(secret: &str) -> SecretChange {
    SecretChange {
        source: "main".into(),
        secret: secret.into(),
        version: None,
        kind: ChangeKind::Upsert,
        observed_at: SystemTime::now(),
    }
}
