//! The credential cache: one entry per (identity, destination principal, audience,
//! scope), living for the process. It refreshes ahead of expiry, collapses
//! concurrent misses into one exchange, and remembers a failure only for a short
//! backoff so that a burst of changes cannot become a burst of refused exchanges.

use crate::report::Failure;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Credentials that expire.
pub trait Expiring {
    fn expires_at(&self) -> SystemTime;
}

/// What one cached credential is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub identity: String,
    /// The principal the credentials act as (role ARN, service account, client id).
    pub principal: String,
    pub audience: String,
    /// Anything else that changes the credentials (region, scope, duration).
    pub scope: String,
}

/// Refresh this long before expiry at most (less for short-lived credentials).
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// The first backoff after a failed exchange; it doubles per consecutive failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Slot<C> {
    value: Option<Cached<C>>,
    failure: Option<(Instant, Failure)>,
    consecutive_failures: u32,
    exchanges: u64,
}

struct Cached<C> {
    credentials: C,
    refresh_at: SystemTime,
}

type SlotRef<C> = Arc<tokio::sync::Mutex<Slot<C>>>;

/// A process-wide cache of one kind of credentials.
pub struct CredentialCache<C> {
    slots: Mutex<HashMap<CacheKey, SlotRef<C>>>,
}

impl<C> Default for CredentialCache<C> {
    fn default() -> Self {
        CredentialCache {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<C: Clone + Expiring> CredentialCache<C> {
    fn slot(&self, key: &CacheKey) -> SlotRef<C> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    value: None,
                    failure: None,
                    consecutive_failures: 0,
                    exchanges: 0,
                }))
            })
            .clone()
    }

    /// Cached credentials for `key`, or the result of `exchange` run once for all
    /// concurrent callers. Returns the credentials and whether this call exchanged.
    pub async fn get<F, Fut>(&self, key: &CacheKey, exchange: F) -> Result<(C, bool), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Failure>>,
    {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        let now = SystemTime::now();
        if let Some(cached) = &slot.value
            && now < cached.refresh_at
        {
            return Ok((cached.credentials.clone(), false));
        }
        if let Some((until, failure)) = &slot.failure
            && Instant::now() < *until
        {
            return Err(failure.clone());
        }
        slot.exchanges += 1;
        match exchange().await {
            Ok(credentials) => {
                let refresh_at = refresh_time(now, credentials.expires_at());
                slot.value = Some(Cached {
                    credentials: credentials.clone(),
                    refresh_at,
                });
                slot.failure = None;
                slot.consecutive_failures = 0;
                Ok((credentials, true))
            }
            Err(failure) => {
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << slot.consecutive_failures.min(5))
                    .min(MAX_BACKOFF);
                slot.consecutive_failures += 1;
                slot.failure = Some((Instant::now() + backoff, failure.clone()));
                // Credentials refreshed early are still good until they expire.
                match &slot.value {
                    Some(old) if SystemTime::now() < old.credentials.expires_at() => {
                        tracing::warn!(error = %failure, "refreshing credentials failed; using the current ones until they expire");
                        Ok((old.credentials.clone(), true))
                    }
                    _ => Err(failure),
                }
            }
        }
    }

    /// Forgets the credentials for `key` (a store said they are expired or revoked).
    pub async fn invalidate(&self, key: &CacheKey) {
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        slot.value = None;
        slot.failure = None;
    }

    /// How many exchanges have been started for `key` in this process.
    pub async fn exchanges(&self, key: &CacheKey) -> u64 {
        self.slot(key).lock().await.exchanges
    }
}

/// When to refresh credentials obtained at `now` that expire at `expires`:
/// ahead of expiry by a fifth of their lifetime, at most five minutes.
fn refresh_time(now: SystemTime, expires: SystemTime) -> SystemTime {
    let lifetime = expires.duration_since(now).unwrap_or_default();
    expires - (lifetime / 5).min(MAX_REFRESH_AHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FailureClass;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Clone, Debug, PartialEq)]
    struct Creds(u32, SystemTime);
    impl Expiring for Creds {
        fn expires_at(&self) -> SystemTime {
            self.1
        }
    }

    fn key() -> CacheKey {
        CacheKey {
            identity: "i".into(),
            principal: "p".into(),
            audience: "a".into(),
            scope: "s".into(),
        }
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_exchange() {
        let cache = Arc::new(CredentialCache::<Creds>::default());
        let calls = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get(&key(), || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(Creds(1, SystemTime::now() + Duration::from_secs(3600)))
                        })
                        .await
                        .unwrap()
                        .0
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().0, 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.exchanges(&key()).await, 1);
    }

    #[tokio::test]
    async fn refreshes_ahead_of_expiry() {
        let cache = CredentialCache::<Creds>::default();
        // 10 s of lifetime: refreshed 2 s ahead, so usable for 8 s.
        let short = || async { Ok(Creds(1, SystemTime::now() + Duration::from_secs(10))) };
        assert!(cache.get(&key(), short).await.unwrap().1);
        assert!(
            !cache.get(&key(), short).await.unwrap().1,
            "fresh: served from the cache"
        );
        // Already inside the refresh window: a new exchange.
        let cache = CredentialCache::<Creds>::default();
        let nearly = || async { Ok(Creds(2, SystemTime::now() + Duration::from_millis(100))) };
        cache.get(&key(), nearly).await.unwrap();
        tokio::time::sleep(Duration::from_millis(90)).await;
        assert!(cache.get(&key(), nearly).await.unwrap().1);
    }

    #[tokio::test]
    async fn a_failure_is_remembered_only_for_a_short_backoff() {
        let cache = CredentialCache::<Creds>::default();
        let refused = || async { Err(Failure::new(FailureClass::Auth, "refused")) };
        assert!(cache.get(&key(), refused).await.is_err());
        let calls = AtomicU32::new(0);
        let counted = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(Creds(3, SystemTime::now() + Duration::from_secs(3600)))
        };
        assert_eq!(
            cache.get(&key(), counted).await.unwrap_err().message,
            "refused"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "within the backoff no new exchange"
        );
        tokio::time::sleep(FIRST_BACKOFF + Duration::from_millis(50)).await;
        assert_eq!(cache.get(&key(), counted).await.unwrap().0.0, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidate_forces_a_new_exchange() {
        let cache = CredentialCache::<Creds>::default();
        let ok = || async { Ok(Creds(4, SystemTime::now() + Duration::from_secs(3600))) };
        cache.get(&key(), ok).await.unwrap();
        cache.invalidate(&key()).await;
        assert!(cache.get(&key(), ok).await.unwrap().1);
        assert_eq!(cache.exchanges(&key()).await, 2);
    }
}
