//! Exchanges: fedsync's identity token -> short-lived credentials at each
//! destination cloud, and the process-wide cache that keeps them.

pub mod aws;
mod cache;

pub use cache::{CacheKey, CredentialCache, Expiring};

use std::sync::Arc;

/// The caches of every kind of credentials, shared by all destinations of a process.
#[derive(Default, Clone)]
pub struct Caches {
    pub aws: Arc<CredentialCache<aws::AwsCredentials>>,
}
