//! The OpenBao/Vault audit stream listener: a `socket` audit device connects over
//! TCP and writes one JSON entry per line; KV v2 writes and deletes on the
//! configured source become changes, synced in the background so that the
//! server's audit writes are never held up (OpenBao blocks a request until its
//! audit entry is written; see `Queue`). The stream carries no credential: the listener binds
//! only loopback or private addresses (checked at load) and drops connections
//! from peers other than the configured ones. An entry only ever triggers a
//! read of the source, never carries a value into a destination.

use crate::routes::App;
use fedsync::SecretChange;
use fedsync::config::SourceConfig;
use fedsync::config::{VaultAuditConfig, VaultKvConfig};
use fedsync::retry;
use fedsync::triggers::vault_audit;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

/// Entries longer than this are skipped (a KV write's entry is a few KiB).
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Syncs running at once from the stream; further changes wait their turn.
const CONCURRENT_SYNCS: usize = 32;

/// A bound listener and what it admits.
pub struct Listener {
    tcp: TcpListener,
    config: VaultAuditConfig,
}

impl Listener {
    pub async fn bind(config: &VaultAuditConfig) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(config.listen).await?;
        tracing::info!(listen = %config.listen, source = %config.source, "accepting the Vault audit stream");
        Ok(Listener {
            tcp,
            config: config.clone(),
        })
    }
}

/// Accepts audit connections until the process stops.
pub async fn serve(listener: Listener, app: Arc<App>) {
    let Some(SourceConfig::VaultKv(source)) = app
        .engine
        .config()
        .sources
        .get(&listener.config.source)
        .cloned()
    else {
        // Validation makes sure the source exists and is a vault-kv source.
        tracing::error!(source = %listener.config.source, "the audit stream's source is not a vault-kv source");
        return;
    };
    let source = Arc::new(source);
    let queue = Arc::new(Queue::new());
    loop {
        let (stream, peer) = match listener.tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an audit connection failed");
                continue;
            }
        };
        if !listener.config.admits(peer.ip()) {
            tracing::warn!(peer = %peer.ip(), "refused an audit connection from a peer not in allowed_peers");
            continue;
        }
        tracing::info!(peer = %peer, "audit stream connected");
        let (app, source, queue) = (app.clone(), source.clone(), queue.clone());
        let name = listener.config.source.clone();
        tokio::spawn(async move {
            read_entries(stream, &name, &source, &app, &queue).await;
            tracing::info!(peer = %peer, "audit stream closed");
        });
    }
}

async fn read_entries(
    stream: TcpStream,
    name: &str,
    source: &VaultKvConfig,
    app: &Arc<App>,
    queue: &Queue,
) {
    let mut lines = FramedRead::new(stream, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(line) => line,
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                tracing::warn!(
                    limit = MAX_LINE_BYTES,
                    "skipped an audit entry longer than the limit"
                );
                continue;
            }
            Err(LinesCodecError::Io(e)) => {
                tracing::warn!(error = %e, "reading the audit stream failed");
                return;
            }
        };
        let change = match vault_audit::parse(&line, name, source) {
            Ok(Some(change)) => change,
            Ok(None) => continue,
            Err(f) => {
                tracing::warn!(error = %f, "skipped an audit line");
                continue;
            }
        };
        tracing::info!(source = %change.source, secret = %change.secret, kind = ?change.kind, "change received from the audit stream");
        queue.push(app, change);
    }
}

/// Changes waiting for a sync. Reading the stream never waits for a sync (the
/// server blocks its requests until their audit entries are written). One
/// secret is synced by one task at a time, so its syncs never overtake each
/// other; changes that arrive while it runs collapse into one more sync, which
/// reads the latest value when it starts. A burst of writes to one secret thus
/// costs at most two syncs, and the queue holds at most one entry per secret.
/// At most `CONCURRENT_SYNCS` secrets are synced at once.
pub struct Queue {
    slots: Arc<Semaphore>,
    /// Secrets being synced, and whether a change arrived meanwhile.
    running: Arc<Mutex<HashMap<String, bool>>>,
}

impl Queue {
    pub fn new() -> Self {
        Queue {
            slots: Arc::new(Semaphore::new(CONCURRENT_SYNCS)),
            running: Arc::default(),
        }
    }

    fn push(&self, app: &Arc<App>, change: SecretChange) {
        let key = format!("{}\n{}", change.source, change.secret);
        {
            let mut running = lock(&self.running);
            if let Some(again) = running.get_mut(&key) {
                *again = true;
                tracing::debug!(secret = %change.secret, "a sync of this secret is under way; one more follows it");
                return;
            }
            running.insert(key.clone(), false);
        }
        let (app, slots, running) = (app.clone(), self.slots.clone(), self.running.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(_slot) = slots.acquire().await {
                    // A spawned task: it sets its own deadline.
                    let deadline = retry::deadline_in(app.budget);
                    let report = retry::with_deadline(deadline, app.engine.sync(&change)).await;
                    if report.needs_retry() {
                        tracing::warn!(secret = %change.secret, "a change from the audit stream did not reach every destination; the next change or a reconcile pass retries it");
                    }
                }
                let mut running = lock(&running);
                match running.get_mut(&key) {
                    Some(again) if *again => *again = false,
                    _ => {
                        running.remove(&key);
                        return;
                    }
                }
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
