//! Exchanges: fedsync's identity token -> short-lived credentials at each
//! destination cloud, and the process-wide cache that keeps them.

pub mod aws;
pub mod azure;
mod cache;
#[cfg(test)]
mod echoes;
pub mod google;

pub use cache::{CacheKey, CredentialCache, Expiring};

use crate::report::{Failure, FailureClass};
use secrecy::{ExposeSecret, SecretBox};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// One exchange's entry in a process-wide cache, and how many exchanges it started.
pub struct CacheSlot<C> {
    cache: Arc<CredentialCache<C>>,
    key: CacheKey,
    exchanges: AtomicU64,
}

impl<C: Clone + Expiring> CacheSlot<C> {
    pub fn new(cache: Arc<CredentialCache<C>>, key: CacheKey) -> Self {
        CacheSlot {
            cache,
            key,
            exchanges: AtomicU64::new(0),
        }
    }

    /// The cached credentials, or `exchange`'s (run once for concurrent callers).
    pub async fn get<F, Fut>(&self, exchange: F) -> Result<C, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Failure>>,
    {
        self.cache
            .get(&self.key, || {
                self.exchanges.fetch_add(1, Ordering::Relaxed);
                exchange()
            })
            .await
    }

    /// Forgets the cached credentials if `is_stale` says they are the refused ones.
    pub async fn invalidate(&self, is_stale: impl FnOnce(&C) -> bool) {
        self.cache.invalidate(&self.key, is_stale).await;
    }

    /// Exchanges started through this slot in this process.
    pub fn exchanges(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }
}

/// Credentials an exchange obtained, as a person may see them: what they are
/// and until when, never the credentials themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obtained {
    /// E.g. `temporary credentials of role arn:aws:iam::…`.
    pub what: String,
    pub expires_at: SystemTime,
}

/// The caches of every kind of credentials, shared by all destinations of a process.
#[derive(Default, Clone)]
pub struct Caches {
    pub aws: Arc<CredentialCache<aws::AwsCredentials>>,
    pub bearer: Arc<CredentialCache<BearerToken>>,
}

/// An OAuth access token (Google, Azure): never printed.
#[derive(Clone)]
pub struct BearerToken {
    token: Arc<SecretBox<str>>,
    pub expires_at: SystemTime,
}

impl BearerToken {
    pub fn new(token: String, expires_at: SystemTime) -> Self {
        BearerToken {
            token: Arc::new(SecretBox::new(token.into_boxed_str())),
            expires_at,
        }
    }

    /// The token, for an `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.token.expose_secret()
    }

    /// `failure` without this token in its message (an endpoint may echo it).
    pub fn scrub(&self, failure: Failure) -> Failure {
        crate::secret::scrub_credential(self.expose(), failure)
    }

    /// Whether `other` is this same token (to invalidate only what a store refused).
    pub fn same_as(&self, other: &BearerToken) -> bool {
        Arc::ptr_eq(&self.token, &other.token)
    }
}

impl Expiring for BearerToken {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A token exchange the cloud refused, as one failure: a refused token is a trust
/// problem (`Auth`), not bad input, unless the cloud's answer says otherwise; with
/// the likely cause when the exchange could name one.
pub(crate) fn refusal(class: FailureClass, message: String, hint: Option<String>) -> Failure {
    let class = match class {
        FailureClass::BadInput => FailureClass::Auth,
        c => c,
    };
    let failure = Failure::new(class, message);
    match hint {
        Some(hint) => failure.with_likely_cause(hint),
        None => failure,
    }
}
