//! The engine's decisions: what each destination state and policy leads to.

use super::*;

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

#[test]
fn absent_is_always_written() {
    for policy in [Overwrite::Managed, Overwrite::Always, Overwrite::IfAbsent] {
        assert_eq!(
            decide(&DestinationState::Absent, &marks("s:a", "v2"), policy),
            Decision::Write
        );
    }
}

#[test]
fn the_same_source_version_is_unchanged_under_every_policy() {
    let held = present(true, Some(marks("s:a", "v2")), Some("s:a"));
    for policy in [Overwrite::Managed, Overwrite::Always, Overwrite::IfAbsent] {
        assert_eq!(
            decide(&held, &marks("s:a", "v2"), policy),
            Decision::Unchanged
        );
    }
    let older = present(true, Some(marks("s:a", "v1")), Some("s:a"));
    assert_eq!(
        decide(&older, &marks("s:a", "v2"), Overwrite::Managed),
        Decision::Write
    );
}

#[test]
fn unmanaged_secrets_are_left_alone_unless_always() {
    let foreign = present(false, None, None);
    assert!(
        matches!(decide(&foreign, &marks("s:a", "v1"), Overwrite::Managed), Decision::Skip(r) if r.contains("does not manage"))
    );
    assert!(
        matches!(decide(&foreign, &marks("s:a", "v1"), Overwrite::IfAbsent), Decision::Skip(r) if r.contains("if-absent"))
    );
    assert_eq!(
        decide(&foreign, &marks("s:a", "v1"), Overwrite::Always),
        Decision::Write
    );
}

#[test]
fn a_name_managed_for_another_source_is_a_collision() {
    let other = present(true, Some(marks("s:b", "v9")), Some("s:b"));
    match decide(&other, &marks("s:a", "v1"), Overwrite::Managed) {
        Decision::Fail(f) => {
            assert_eq!(f.class, FailureClass::Conflict);
            assert!(f.message.contains("name collision"), "{}", f.message);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn a_name_pending_deletion_is_a_conflict_that_says_what_to_do() {
    match decide(
        &DestinationState::PendingDeletion {
            source_ref: None,
            recover: false,
        },
        &marks("s:a", "v1"),
        Overwrite::Always,
    ) {
        Decision::Fail(f) => {
            assert!(f.class == FailureClass::Conflict && f.message.contains("restore it"))
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn fedsyncs_own_deleted_copy_comes_back_with_its_source() {
    let ours = DestinationState::PendingDeletion {
        source_ref: Some("s:a".into()),
        recover: false,
    };
    assert_eq!(
        decide(&ours, &marks("s:a", "v3"), Overwrite::Managed),
        Decision::Write
    );
    let theirs = DestinationState::PendingDeletion {
        source_ref: Some("s:b".into()),
        recover: false,
    };
    assert!(matches!(
        decide(&theirs, &marks("s:a", "v3"), Overwrite::Managed),
        Decision::Fail(_)
    ));
    // A destination that recovers soft-deleted names writes, then decides again
    // from the recovered secret.
    let recoverable = DestinationState::PendingDeletion {
        source_ref: Some("s:b".into()),
        recover: true,
    };
    assert_eq!(
        decide(&recoverable, &marks("s:a", "v3"), Overwrite::Managed),
        Decision::Write
    );
}

#[test]
fn key_granularity_splits_json_objects_only() {
    let keys = split_keys(&SecretValue::text(r#"{"user":"app","port":5432}"#)).unwrap();
    let shown: Vec<_> = keys
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                String::from_utf8(v.expose_bytes().to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![("port", "5432".to_string()), ("user", "app".to_string())]
    );
    let err = split_keys(&SecretValue::text("plain")).unwrap_err();
    assert_eq!(err.class, FailureClass::BadInput);
    assert!(
        !err.message.contains("plain"),
        "the value never appears in an error"
    );
}

/// A source whose latest read lags behind (a Vault performance standby, a
/// replica): it answers version 1 while version 2 is readable by number.
struct LaggingSource;

fn version(n: &str) -> crate::stores::SourceSecret {
    crate::stores::SourceSecret {
        name: "app/db".into(),
        version: n.into(),
        created: None,
        value: crate::secret::SecretValue::text(format!("value {n}")),
    }
}

#[async_trait::async_trait]
impl Source for LaggingSource {
    async fn read(&self, _: &str) -> Result<Option<crate::stores::SourceSecret>, Failure> {
        Ok(Some(version("1")))
    }
    async fn current_version(&self, _: &str) -> Result<Option<String>, Failure> {
        Ok(Some("1".into()))
    }
    async fn read_version(
        &self,
        _: &str,
        v: &str,
    ) -> Result<Option<crate::stores::SourceSecret>, Failure> {
        Ok((v == "2").then(|| version("2")))
    }
    async fn list(&self, _: Option<&str>) -> Result<crate::stores::Listing, Failure> {
        unreachable!("a change never lists")
    }
}

/// One destination secret in memory.
#[derive(Default)]
struct Memory(std::sync::Mutex<Option<(String, Marks)>>);

#[async_trait::async_trait]
impl Destination for Memory {
    async fn inspect(&self, _: &str) -> Result<DestinationState, Failure> {
        Ok(match &*self.0.lock().unwrap() {
            None => DestinationState::Absent,
            Some((_, m)) => present(true, Some(m.clone()), Some(&m.source_ref)),
        })
    }
    async fn write(&self, w: crate::stores::Write<'_>) -> Result<crate::stores::Written, Failure> {
        let value = w.value.expose_text().unwrap().to_string();
        *self.0.lock().unwrap() = Some((value, w.marks.clone()));
        Ok(crate::stores::Written::Done)
    }
    async fn read_value(&self, _: &str) -> Result<Option<SecretValue>, Failure> {
        unreachable!("a change never reads a destination's value")
    }
    async fn delete(&self, _: &str) -> Result<(), Failure> {
        *self.0.lock().unwrap() = None;
        Ok(())
    }
    fn max_value_bytes(&self) -> usize {
        65_536
    }
    fn exchanges(&self) -> u64 {
        0
    }
}

#[tokio::test]
async fn a_lagging_source_read_never_writes_older_than_the_change_names() {
    let config = Config::parse(
        "[sources.vault]\nkind = \"vault-kv\"\naddress = \"https://vault.example.com\"\n\n[identities.ci]\nkind = \"github-actions\"\n\n[destinations.dr]\nkind = \"aws-secrets-manager\"\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::210987654321:role/w\"\nidentity = \"ci\"\n\n[[rules]]\nsource = \"vault\"\nmatch = \"app/**\"\ndestinations = [\"dr\"]\n",
        "test.toml",
    )
    .unwrap();
    let memory = Arc::new(Memory::default());
    let engine = Engine::with_stores(
        config,
        HashMap::from([(
            "vault".to_string(),
            Arc::new(LaggingSource) as Arc<dyn Source>,
        )]),
        HashMap::from([("dr".to_string(), memory.clone() as Arc<dyn Destination>)]),
    );
    let change = |version: Option<&str>| SecretChange {
        source: "vault".into(),
        secret: "app/db".into(),
        version: version.map(String::from),
        kind: crate::event::ChangeKind::Upsert,
        observed_at: std::time::SystemTime::now(),
    };
    let report = engine.sync(&change(Some("2"))).await;
    assert_eq!(report.source_version.as_deref(), Some("2"), "{report:?}");
    assert!(
        report.error.is_none(),
        "a replica behind the write is not a moving source: {report:?}"
    );
    assert_eq!(memory.0.lock().unwrap().as_ref().unwrap().0, "value 2");
}

#[test]
fn a_newer_source_version_held_is_never_replaced_by_an_older_one() {
    let held = present(true, Some(marks("s:a", "7")), Some("s:a"));
    assert!(
        matches!(decide(&held, &marks("s:a", "6"), Overwrite::Always), Decision::Skip(r) if r.contains("newer source version (7)"))
    );
    assert_eq!(
        decide(&held, &marks("s:a", "8"), Overwrite::Managed),
        Decision::Write
    );
    // Versions that do not order themselves are ordered by their creation time.
    let timed = |version: &str, time: u64| Marks {
        source_time: Some(time),
        ..marks("s:a", version)
    };
    let held = present(true, Some(timed("f00d", 2_000)), Some("s:a"));
    assert!(matches!(
        decide(&held, &timed("beef", 1_000), Overwrite::Managed),
        Decision::Skip(_)
    ));
    assert_eq!(
        decide(&held, &timed("cafe", 3_000), Overwrite::Managed),
        Decision::Write
    );
    // Another source's copy is a collision, whatever its version.
    let other = present(true, Some(marks("s:b", "9")), Some("s:b"));
    assert!(matches!(
        decide(&other, &marks("s:a", "1"), Overwrite::Managed),
        Decision::Fail(_)
    ));
}
