//! The reconcile pass: events can be lost upstream (a trail switched off, a
//! subscription deleted), so a scheduled full pass lists every secret of every
//! source a rule covers and syncs each one in reconcile mode: destinations
//! whose marks are behind are written, and drift (a destination changed
//! outside fedsync) is reported, or repaired where the rule says
//! `on_drift = "repair"`. Listing is paged, every store is called at the
//! configured rate, and a pass that reaches its deadline stops cleanly and says
//! where.

use crate::event::{ChangeKind, SecretChange};
use crate::report::{Report, Status};
use crate::stores::paced::{PacedDestination, PacedSource};
use crate::stores::{Destination, Source};
use crate::sync::{Engine, Mode};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What one pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    /// Whether every source was listed to its end.
    pub complete: bool,
    pub sources: Vec<SourcePass>,
    pub totals: Totals,
    /// The secrets where something happened (anything but all `unchanged`).
    pub secrets: Vec<Report>,
}

/// One source's part of a pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourcePass {
    pub source: String,
    /// Secrets listed.
    pub listed: usize,
    /// Of those, secrets a rule covers (each synced).
    pub covered: usize,
    pub pages: usize,
    pub complete: bool,
    /// Why listing stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Destination outcomes of a pass, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub synced: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub skipped: usize,
    pub drift_reported: usize,
    pub drift_repaired: usize,
    pub failed: usize,
    /// Secrets whose source could not be read.
    pub source_failures: usize,
}

impl Totals {
    fn add(&mut self, report: &Report) {
        if report.error.is_some() {
            self.source_failures += 1;
        }
        for o in &report.outcomes {
            match &o.status {
                Status::Synced => self.synced += 1,
                Status::Unchanged => self.unchanged += 1,
                Status::Deleted => self.deleted += 1,
                Status::Skipped { .. } => self.skipped += 1,
                Status::Drift {
                    repaired: false, ..
                } => self.drift_reported += 1,
                Status::Drift { repaired: true, .. } => self.drift_repaired += 1,
                Status::Failed { .. } => self.failed += 1,
            }
        }
    }
}

impl ReconcileReport {
    /// Whether anything failed, or the pass did not finish.
    pub fn has_failures(&self) -> bool {
        !self.complete || self.totals.failed > 0 || self.totals.source_failures > 0
    }

    /// Whether drift was found and left in place.
    pub fn has_unrepaired_drift(&self) -> bool {
        self.totals.drift_reported > 0
    }
}

impl Engine {
    /// One full pass over the sources (all, or only `only`), stopping before
    /// `stop_at` when given.
    pub async fn reconcile(&self, only: Option<&str>, stop_at: Option<Instant>) -> ReconcileReport {
        let settings = &self.config.reconcile;
        let paced = self.paced();
        let sources: BTreeSet<&str> = self
            .config
            .rules
            .iter()
            .map(|r| r.source.as_str())
            .filter(|s| only.is_none_or(|o| o == *s))
            .collect();
        let mut report = ReconcileReport {
            complete: true,
            ..Default::default()
        };
        for source in sources {
            let pass = paced
                .reconcile_source(source, settings.concurrency, stop_at, &mut report)
                .await;
            report.complete &= pass.complete;
            tracing::info!(
                source,
                listed = pass.listed,
                covered = pass.covered,
                pages = pass.pages,
                complete = pass.complete,
                error = pass.error.as_deref().unwrap_or(""),
                "reconciled a source"
            );
            report.sources.push(pass);
        }
        let t = &report.totals;
        tracing::info!(
            complete = report.complete,
            synced = t.synced,
            unchanged = t.unchanged,
            deleted = t.deleted,
            skipped = t.skipped,
            drift_reported = t.drift_reported,
            drift_repaired = t.drift_repaired,
            failed = t.failed,
            source_failures = t.source_failures,
            "reconcile pass done"
        );
        report
    }

    /// The same engine with every store called at the configured rate
    /// (`[reconcile] requests_per_second`), for passes over whole stores.
    pub(crate) fn paced(&self) -> Engine {
        let rate = self.config.reconcile.requests_per_second;
        Engine {
            config: self.config.clone(),
            sources: self
                .sources
                .iter()
                .map(|(n, s)| {
                    let s: Arc<dyn Source> = Arc::new(PacedSource::new(s.clone(), rate));
                    (n.clone(), s)
                })
                .collect::<HashMap<_, _>>(),
            destinations: self
                .destinations
                .iter()
                .map(|(n, d)| {
                    let d: Arc<dyn Destination> = Arc::new(PacedDestination::new(d.clone(), rate));
                    (n.clone(), d)
                })
                .collect(),
            value_key: self.value_key.clone(),
            turns: self.turns.clone(),
        }
    }

    /// The pages of `source`, listed until the end or `stop_at`, each as the
    /// secrets a rule covers.
    pub(crate) fn covered_pages<'e>(
        &'e self,
        store: &'e dyn Source,
        source: &'e str,
        stop_at: Option<Instant>,
    ) -> CoveredPages<'e> {
        CoveredPages {
            engine: self,
            store,
            stop_at,
            next: None,
            pass: SourcePass {
                source: source.to_string(),
                ..Default::default()
            },
            ended: false,
        }
    }

    /// One source's part of a pass: every covered secret synced, page by page.
    async fn reconcile_source(
        &self,
        source: &str,
        concurrency: usize,
        stop_at: Option<Instant>,
        report: &mut ReconcileReport,
    ) -> SourcePass {
        let Some(store) = self.sources.get(source) else {
            return SourcePass {
                source: source.to_string(),
                error: Some("the configuration does not define this source".into()),
                ..Default::default()
            };
        };
        let mut pages = self.covered_pages(store.as_ref(), source, stop_at);
        while let Some(covered) = pages.next().await {
            let mut synced = futures_util::stream::iter(covered)
                .map(|secret| {
                    let change = SecretChange {
                        source: source.to_string(),
                        secret,
                        version: None,
                        kind: ChangeKind::Upsert,
                        observed_at: SystemTime::now(),
                    };
                    async move { self.sync_in(&change, Mode::Reconcile).await }
                })
                .buffer_unordered(concurrency);
            while let Some(secret) = synced.next().await {
                report.totals.add(&secret);
                let eventful = secret.error.is_some()
                    || secret
                        .outcomes
                        .iter()
                        .any(|o| o.status != Status::Unchanged);
                if eventful {
                    report.secrets.push(secret);
                }
            }
        }
        pages.pass
    }
}

/// A source listed page by page (see [`Engine::covered_pages`]); `pass` counts
/// what was listed and says how the listing ended.
pub(crate) struct CoveredPages<'e> {
    engine: &'e Engine,
    store: &'e dyn Source,
    stop_at: Option<Instant>,
    next: Option<String>,
    pub pass: SourcePass,
    ended: bool,
}

impl CoveredPages<'_> {
    /// The next page's covered secrets; `None` at the end, at the deadline or on
    /// a listing failure (each recorded in `pass`).
    pub async fn next(&mut self) -> Option<Vec<String>> {
        if self.ended {
            return None;
        }
        self.ended = true;
        let pass = &mut self.pass;
        if self.stop_at.is_some_and(|t| Instant::now() >= t) {
            pass.error = Some(format!(
                "stopped at the deadline after {} secrets; the next pass starts over",
                pass.listed
            ));
            return None;
        }
        let listing = match self.store.list(self.next.as_deref()).await {
            Ok(l) => l,
            Err(f) => {
                pass.error = Some(f.to_string());
                return None;
            }
        };
        pass.pages += 1;
        pass.listed += listing.names.len();
        let config = &self.engine.config;
        let covered: Vec<String> = (listing.names.into_iter())
            .filter(|name| config.rules_for(&pass.source, name).next().is_some())
            .collect();
        pass.covered += covered.len();
        match listing.next {
            Some(n) => {
                self.next = Some(n);
                self.ended = false;
            }
            None => pass.complete = true,
        }
        Some(covered)
    }
}

#[cfg(test)]
mod tests;
