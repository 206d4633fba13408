//! Exchanges: fedsync's identity token -> short-lived credentials at each
//! destination cloud, and the process-wide cache that keeps them.

pub mod aws;
pub mod azure;
mod cache;
pub mod google;

pub use cache::{CacheKey, CredentialCache, Expiring};

use secrecy::{ExposeSecret, SecretBox};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

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
