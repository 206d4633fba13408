//! One sync per secret at a time within a process. A webhook serves several
//! requests at once, and a reconcile pass can meet a change: two syncs of one
//! secret running together could each read the source and inspect the
//! destinations before the other wrote, and the one that read the older
//! version could then write last. Taking turns makes each sync read the source
//! after the previous one wrote, so the marks it inspects are never behind a
//! write in flight. Across processes, the trigger orders changes per secret
//! (an SQS FIFO group, a Pub/Sub ordering key).

use crate::report::{Failure, FailureClass};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// A secret: its source's name and its own.
type SecretKey = (String, String);

/// The secrets being synced, each with the lock its syncs take turns on.
#[derive(Default)]
pub(crate) struct Turns {
    locks: Mutex<HashMap<SecretKey, Arc<TurnLock<()>>>>,
}

/// The right to sync one secret until dropped.
pub(crate) type Turn = OwnedMutexGuard<()>;

impl Turns {
    /// Waits for the turn to sync `secret` of `source`, at most until the
    /// invocation's deadline (when one is set).
    pub(crate) async fn take(&self, source: &str, secret: &str) -> Result<Turn, Failure> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // A lock only this map holds has no sync running or waiting.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks
                .entry((source.to_string(), secret.to_string()))
                .or_default()
                .clone()
        };
        let Some(deadline) = crate::retry::deadline() else {
            return Ok(lock.lock_owned().await);
        };
        tokio::time::timeout_at(deadline, lock.lock_owned())
            .await
            .map_err(|_| {
                Failure::new(
                    FailureClass::Unavailable,
                    "another sync of this secret was still running when the time ran out",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::{ChangeKind, SecretChange};
    use crate::marks::Marks;
    use crate::secret::SecretValue;
    use crate::stores::{
        Destination, DestinationState, Listing, Source, SourceSecret, Write, Written,
    };
    use crate::sync::Engine;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A Vault-like source whose latest version the test moves on.
    #[derive(Default)]
    struct Moving(AtomicU64);

    #[async_trait::async_trait]
    impl Source for Moving {
        async fn read(&self, _: &str) -> Result<Option<SourceSecret>, Failure> {
            let n = self.0.load(Ordering::SeqCst).to_string();
            Ok(Some(SourceSecret {
                name: "app/db".into(),
                value: SecretValue::text(format!("value {n}")),
                version: n,
                created: None,
            }))
        }
        async fn current_version(&self, _: &str) -> Result<Option<String>, Failure> {
            Ok(Some(self.0.load(Ordering::SeqCst).to_string()))
        }
        async fn list(&self, _: Option<&str>) -> Result<Listing, Failure> {
            unreachable!("a change never lists")
        }
    }

    /// A destination where writing version 1 takes a while; it keeps every version written.
    #[derive(Default)]
    struct Slow {
        held: Mutex<Option<Marks>>,
        history: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Destination for Slow {
        async fn inspect(&self, _: &str) -> Result<DestinationState, Failure> {
            Ok(match self.held.lock().unwrap().clone() {
                None => DestinationState::Absent,
                Some(m) => DestinationState::Present {
                    managed: true,
                    source_ref: Some(m.source_ref.clone()),
                    marks: Some(m),
                },
            })
        }
        async fn write(&self, w: Write<'_>) -> Result<Written, Failure> {
            if w.marks.source_version == "1" {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            self.history
                .lock()
                .unwrap()
                .push(w.marks.source_version.clone());
            *self.held.lock().unwrap() = Some(w.marks.clone());
            Ok(Written::Done)
        }
        async fn read_value(&self, _: &str) -> Result<Option<SecretValue>, Failure> {
            unreachable!("a change never reads a destination's value")
        }
        async fn delete(&self, _: &str) -> Result<(), Failure> {
            unreachable!("nothing is deleted")
        }
        fn max_value_bytes(&self) -> usize {
            65_536
        }
        fn exchanges(&self) -> u64 {
            0
        }
    }

    #[tokio::test]
    async fn concurrent_changes_of_one_secret_never_write_an_older_version_last() {
        let config = Config::parse(
            "[sources.vault]\nkind = \"vault-kv\"\naddress = \"https://vault.example.com\"\n\n[identities.ci]\nkind = \"github-actions\"\n\n[destinations.dr]\nkind = \"aws-secrets-manager\"\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::210987654321:role/w\"\nidentity = \"ci\"\n\n[[rules]]\nsource = \"vault\"\nmatch = \"app/**\"\ndestinations = [\"dr\"]\n",
            "test.toml",
        )
        .unwrap();
        let source = Arc::new(Moving(AtomicU64::new(1)));
        let slow = Arc::new(Slow::default());
        let engine = Engine::with_stores(
            config,
            HashMap::from([("vault".to_string(), source.clone() as Arc<dyn Source>)]),
            HashMap::from([("dr".to_string(), slow.clone() as Arc<dyn Destination>)]),
        );
        let change = |version: &str| SecretChange {
            source: "vault".into(),
            secret: "app/db".into(),
            version: Some(version.into()),
            kind: ChangeKind::Upsert,
            observed_at: std::time::SystemTime::now(),
        };
        // The first change's write is still in flight when the second one
        // arrives with a newer version.
        let (one, two) = (change("1"), change("2"));
        let first = engine.sync(&one);
        let second = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            source.0.store(2, Ordering::SeqCst);
            engine.sync(&two).await
        };
        let (first, second) = tokio::join!(first, second);
        assert!(first.error.is_none() && second.error.is_none());
        assert_eq!(
            *slow.history.lock().unwrap(),
            ["1", "2"],
            "version 1 never lands after version 2"
        );
    }
}
