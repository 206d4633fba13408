//! The credential cache: one entry per (identity, destination principal, audience,
//! scope), living for the process. It refreshes ahead of expiry, collapses
//! concurrent misses into one exchange, keeps serving credentials that are still
//! valid while a refresh fails, and remembers a failure only for a short backoff
//! so that a burst of changes cannot become a burst of refused exchanges.

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
    /// Anything else that changes the credentials (endpoint, session name, duration).
    pub scope: String,
}

/// Refresh this long before expiry at most (less for short-lived credentials).
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// The first backoff after a failed exchange; it doubles per consecutive failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One cache entry: the current credentials, readable without waiting, and a
/// lock held by whoever exchanges, so that concurrent misses wait for one result.
struct Slot<C> {
    current: Mutex<Option<Cached<C>>>,
    exchange: tokio::sync::Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    last: Option<(Instant, Failure)>,
    consecutive: u32,
}

#[derive(Clone)]
struct Cached<C> {
    credentials: C,
    refresh_at: SystemTime,
}

impl<C: Expiring + Clone> Slot<C> {
    fn snapshot(&self) -> Option<Cached<C>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Credentials not due for refresh yet.
    fn fresh(&self) -> Option<C> {
        self.snapshot()
            .filter(|c| SystemTime::now() < c.refresh_at)
            .map(|c| c.credentials)
    }

    /// Credentials that have not expired (even if due for refresh).
    fn still_valid(&self) -> Option<C> {
        let cached = self.snapshot()?;
        (SystemTime::now() < cached.credentials.expires_at()).then_some(cached.credentials)
    }
}

/// A process-wide cache of one kind of credentials.
pub struct CredentialCache<C> {
    slots: Mutex<HashMap<CacheKey, Arc<Slot<C>>>>,
}

impl<C> Default for CredentialCache<C> {
    fn default() -> Self {
        CredentialCache {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<C: Clone + Expiring> CredentialCache<C> {
    fn slot(&self, key: &CacheKey) -> Arc<Slot<C>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(key.clone()).or_insert_with(|| {
            Arc::new(Slot {
                current: Mutex::new(None),
                exchange: tokio::sync::Mutex::default(),
            })
        });
        slot.clone()
    }

    /// Cached credentials for `key`, or the result of `exchange`, run once for all
    /// concurrent callers. Credentials due for refresh but still valid are served
    /// to everyone but the one caller that refreshes them.
    pub async fn get<F, Fut>(&self, key: &CacheKey, exchange: F) -> Result<C, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Failure>>,
    {
        let slot = self.slot(key);
        if let Some(fresh) = slot.fresh() {
            return Ok(fresh);
        }
        let mut failures = match (slot.still_valid(), slot.exchange.try_lock()) {
            (_, Ok(guard)) => guard,
            // Someone is refreshing already: these are still good meanwhile.
            (Some(valid), Err(_)) => return Ok(valid),
            (None, Err(_)) => slot.exchange.lock().await,
        };
        // A concurrent caller may have exchanged while this one waited.
        if let Some(fresh) = slot.fresh() {
            return Ok(fresh);
        }
        if let Some((until, failure)) = &failures.last
            && Instant::now() < *until
        {
            return slot.still_valid().ok_or_else(|| failure.clone());
        }
        let now = SystemTime::now();
        match exchange().await {
            Ok(credentials) => {
                let refresh_at = refresh_time(now, credentials.expires_at());
                *slot.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
                    credentials: credentials.clone(),
                    refresh_at,
                });
                *failures = Failures::default();
                Ok(credentials)
            }
            Err(failure) => {
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << failures.consecutive.min(5))
                    .min(MAX_BACKOFF);
                failures.consecutive += 1;
                failures.last = Some((Instant::now() + backoff, failure.clone()));
                match slot.still_valid() {
                    Some(current) => {
                        tracing::warn!(error = %failure, "refreshing credentials failed; using the current ones until they expire");
                        Ok(current)
                    }
                    None => Err(failure),
                }
            }
        }
    }

    /// Forgets the credentials for `key` if `is_stale` says they are the ones a
    /// store refused (a concurrent caller may already have replaced them).
    pub async fn invalidate(&self, key: &CacheKey, is_stale: impl FnOnce(&C) -> bool) {
        let slot = self.slot(key);
        let mut current = slot.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|c| is_stale(&c.credentials)) {
            *current = None;
        }
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

    fn hour(n: u32) -> Creds {
        Creds(n, SystemTime::now() + Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_exchange() {
        let cache = Arc::new(CredentialCache::<Creds>::default());
        let calls = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    let exchange = || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(hour(1))
                    };
                    cache.get(&key(), exchange).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().0, 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_ahead_of_expiry() {
        let calls = AtomicU32::new(0);
        let exchange = |ttl: Duration| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Creds(1, SystemTime::now() + ttl)) }
        };
        // 10 s of lifetime: refreshed 2 s ahead, so served from the cache for 8 s.
        let cache = CredentialCache::<Creds>::default();
        cache
            .get(&key(), || exchange(Duration::from_secs(10)))
            .await
            .unwrap();
        cache
            .get(&key(), || exchange(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // 100 ms of lifetime: after 90 ms it is inside the refresh window.
        let cache = CredentialCache::<Creds>::default();
        cache
            .get(&key(), || exchange(Duration::from_millis(100)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(90)).await;
        cache
            .get(&key(), || exchange(Duration::from_millis(100)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failure_is_remembered_only_for_a_short_backoff() {
        let cache = CredentialCache::<Creds>::default();
        let refused = || async { Err(Failure::new(FailureClass::Auth, "refused")) };
        assert!(cache.get(&key(), refused).await.is_err());
        let calls = AtomicU32::new(0);
        let counted = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(hour(3))
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
        assert_eq!(cache.get(&key(), counted).await.unwrap().0, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn valid_credentials_outlive_a_failed_refresh_and_its_backoff() {
        let cache = CredentialCache::<Creds>::default();
        // 1 s of lifetime: due for refresh after 800 ms, expired after 1 s.
        let short = || async { Ok(Creds(5, SystemTime::now() + Duration::from_secs(1))) };
        cache.get(&key(), short).await.unwrap();
        tokio::time::sleep(Duration::from_millis(850)).await;
        let refused = || async { Err(Failure::new(FailureClass::Unavailable, "sts down")) };
        assert_eq!(
            cache.get(&key(), refused).await.unwrap().0,
            5,
            "the refreshing caller"
        );
        assert_eq!(
            cache.get(&key(), refused).await.unwrap().0,
            5,
            "a caller within the backoff"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            cache.get(&key(), refused).await.unwrap_err().message,
            "sts down",
            "expired now"
        );
    }

    #[tokio::test]
    async fn callers_do_not_wait_for_a_refresh_while_the_credentials_are_valid() {
        let cache = Arc::new(CredentialCache::<Creds>::default());
        // 1 s of lifetime: due for refresh after 800 ms.
        cache
            .get(&key(), || async {
                Ok(Creds(6, SystemTime::now() + Duration::from_secs(1)))
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(850)).await;
        let refreshing = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let slow = || async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok(hour(7))
                };
                cache.get(&key(), slow).await.unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let served = cache.get(&key(), || async { Ok(hour(8)) }).await.unwrap();
        assert_eq!(served.0, 6, "the still-valid credentials, at once");
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(refreshing.await.unwrap().0, 7);
        assert_eq!(
            cache.get(&key(), || async { Ok(hour(9)) }).await.unwrap().0,
            7
        );
    }

    #[tokio::test]
    async fn invalidate_forgets_only_the_refused_credentials() {
        let cache = CredentialCache::<Creds>::default();
        cache.get(&key(), || async { Ok(hour(4)) }).await.unwrap();
        cache.invalidate(&key(), |c| c.0 == 3).await;
        let kept = cache.get(&key(), || async { Ok(hour(9)) }).await.unwrap();
        assert_eq!(kept.0, 4, "another caller's newer credentials stay");
        cache.invalidate(&key(), |c| c.0 == 4).await;
        assert_eq!(
            cache.get(&key(), || async { Ok(hour(9)) }).await.unwrap().0,
            9
        );
    }
}
