//! Stores called at a steady rate: a reconcile pass over thousands of secrets
//! goes through these wrappers so that each store sees at most a configured
//! number of calls per second, whatever the pass's concurrency, and stays
//! within its quotas.

use super::{Destination, DestinationState, Listing, Probed, Source, SourceSecret, Write, Written};
use crate::exchange::Obtained;
use crate::report::Failure;
use crate::secret::SecretValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::{Interval, MissedTickBehavior, interval};

/// Lets one call through per tick; a pause does not make a burst afterwards.
pub struct Pacer(Mutex<Interval>);

impl Pacer {
    pub fn per_second(calls: u32) -> Pacer {
        let mut ticks = interval(Duration::from_secs(1) / calls.max(1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Pacer(Mutex::new(ticks))
    }

    /// Waits for this call's turn.
    pub async fn wait(&self) {
        self.0.lock().await.tick().await;
    }
}

/// A source whose every call waits for its turn.
pub struct PacedSource {
    inner: Arc<dyn Source>,
    pacer: Pacer,
}

impl PacedSource {
    pub fn new(inner: Arc<dyn Source>, calls_per_second: u32) -> Self {
        PacedSource {
            inner,
            pacer: Pacer::per_second(calls_per_second),
        }
    }
}

#[async_trait::async_trait]
impl Source for PacedSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        self.pacer.wait().await;
        self.inner.read(secret).await
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        self.pacer.wait().await;
        self.inner.current_version(secret).await
    }

    async fn read_version(
        &self,
        secret: &str,
        version: &str,
    ) -> Result<Option<SourceSecret>, Failure> {
        self.pacer.wait().await;
        self.inner.read_version(secret, version).await
    }

    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        self.pacer.wait().await;
        self.inner.list(page).await
    }

    async fn canonical_name(&self, secret: &str) -> Result<Option<String>, Failure> {
        self.pacer.wait().await;
        self.inner.canonical_name(secret).await
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        self.inner.exchange().await
    }
}

/// A destination whose every call waits for its turn.
pub struct PacedDestination {
    inner: Arc<dyn Destination>,
    pacer: Pacer,
}

impl PacedDestination {
    pub fn new(inner: Arc<dyn Destination>, calls_per_second: u32) -> Self {
        PacedDestination {
            inner,
            pacer: Pacer::per_second(calls_per_second),
        }
    }
}

#[async_trait::async_trait]
impl Destination for PacedDestination {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        self.pacer.wait().await;
        self.inner.inspect(name).await
    }

    async fn write(&self, write: Write<'_>) -> Result<Written, Failure> {
        self.pacer.wait().await;
        self.inner.write(write).await
    }

    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure> {
        self.pacer.wait().await;
        self.inner.read_value(name).await
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.pacer.wait().await;
        self.inner.delete(name).await
    }

    fn max_value_bytes(&self) -> usize {
        self.inner.max_value_bytes()
    }

    fn stored_size(&self, value: &SecretValue) -> usize {
        self.inner.stored_size(value)
    }

    fn exchanges(&self) -> u64 {
        self.inner.exchanges()
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        self.inner.exchange().await
    }

    async fn probe(&self, name: &str) -> Result<Probed, Failure> {
        self.pacer.wait().await;
        self.inner.probe(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spread_at_the_configured_rate() {
        let pacer = Arc::new(Pacer::per_second(10));
        let started = tokio::time::Instant::now();
        let calls = (0..21).map(|_| {
            let pacer = pacer.clone();
            async move { pacer.wait().await }
        });
        futures_util::future::join_all(calls).await;
        // The first call goes at once; twenty more take two seconds at ten a second.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
