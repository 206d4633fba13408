//! Stores: one adapter per secret store, reading (source) and/or writing
//! (destination). The engine talks to them only through these traits.

pub mod aws_sm;
pub mod azure_kv;
pub mod gcp_sm;
pub mod paced;
pub mod vault_kv;

use crate::config::{DestinationConfig, SourceConfig};
use crate::exchange::aws::AwsExchange;
use crate::exchange::azure::EntraExchange;
use crate::exchange::google::{self, GoogleCredentials};
use crate::exchange::{Caches, Obtained};
use crate::identity::{MetadataServer, TokenSource};
use crate::marks::Marks;
use crate::report::{Failure, FailureClass};
use crate::secret::SecretValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A source secret's current state, read once per change.
#[derive(Debug)]
pub struct SourceSecret {
    /// The secret's canonical name in its store (the event may have named it by ARN).
    pub name: String,
    /// The store's version id of this value.
    pub version: String,
    /// When the store created this version (Unix milliseconds), for stores whose
    /// version ids do not order themselves; `None` for numbered versions.
    pub created: Option<u64>,
    pub value: SecretValue,
}

/// A store changes come from.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// The secret's latest value; `None` when it no longer exists (deleted, or
    /// scheduled for deletion).
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure>;

    /// The latest version id only (to confirm nothing moved on after a sync).
    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure>;

    /// The value at `version`, for stores whose versions are numbered and stay
    /// readable (Vault KV); `None` when there is no such version, or the store
    /// cannot read one.
    async fn read_version(
        &self,
        _secret: &str,
        _version: &str,
    ) -> Result<Option<SourceSecret>, Failure> {
        Ok(None)
    }

    /// One page of the names of the secrets the store holds (those scheduled for
    /// deletion left out), for a reconcile pass. `page` is the `next` of the
    /// previous page, `None` for the first.
    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure>;

    /// The secret's name, when an event named it by another identifier (such as a
    /// partial ARN) that the rules cannot match; `None` when it is already a name.
    async fn canonical_name(&self, _secret: &str) -> Result<Option<String>, Failure> {
        Ok(None)
    }

    /// Obtains the credentials the source reads with, from the process's cache
    /// or by exchanging its identity's token, and says what they are; `None`
    /// when it reads with the host's own credentials (no exchange).
    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        None
    }
}

/// One page of secret names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub names: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<String>,
}

/// What a destination holds under one name, as far as fedsync can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationState {
    Absent,
    /// The name is held by a secret scheduled for deletion (or soft-deleted).
    PendingDeletion {
        /// The source reference in its marks, if fedsync manages it.
        source_ref: Option<String>,
        /// The destination's policy is to recover such a name when writing to it
        /// (the engine then decides again from the recovered secret).
        recover: bool,
    },
    Present {
        /// Whether fedsync's managed-by mark is on it.
        managed: bool,
        /// fedsync's marks, when the destination provably holds the version they name.
        marks: Option<Marks>,
        /// The source reference in its marks, if managed (even when the version is not held).
        source_ref: Option<String>,
    },
}

/// One write to a destination.
pub struct Write<'a> {
    pub name: &'a str,
    pub value: &'a SecretValue,
    pub marks: &'a Marks,
    /// The rule's extra tags.
    pub tags: &'a BTreeMap<String, String>,
    /// The state `inspect` returned just before.
    pub state: &'a DestinationState,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The name was absent when inspected but taken when created: nothing was
    /// written, and the engine decides again from the new state.
    NameTaken,
}

/// A store secrets are written to.
#[async_trait::async_trait]
pub trait Destination: Send + Sync {
    /// Reads the state of `name` (marks, ownership); never its value.
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure>;

    /// Writes the value and the marks, and makes the value the current one.
    /// Retrying the same write must not create a second version.
    async fn write(&self, write: Write<'_>) -> Result<Written, Failure>;

    /// The value `name` holds now (for a reconcile pass to compare with the value
    /// hash in its marks); `None` when there is none.
    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure>;

    /// Deletes `name` (the engine has checked that fedsync manages it).
    async fn delete(&self, name: &str) -> Result<(), Failure>;

    /// The largest value the store accepts, in bytes.
    fn max_value_bytes(&self) -> usize;

    /// How many bytes `value` takes in the store (more than its length when the
    /// store keeps binary values encoded).
    fn stored_size(&self, value: &SecretValue) -> usize {
        value.len()
    }

    /// Credential exchanges this destination has caused so far in this process.
    fn exchanges(&self) -> u64;

    /// Obtains the credentials the destination writes with, from the process's
    /// cache or by exchanging its identity's token, and says what they are.
    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        None
    }

    /// Reads what the destination holds under `name` (a name its rules would
    /// write), never a value, to show its credentials may read there; whether a
    /// secret is there does not matter. Nothing is written.
    async fn probe(&self, name: &str) -> Result<Probed, Failure> {
        let state = self.inspect(name).await?;
        Ok(Probed {
            call: format!("inspecting {name:?}"),
            present: !matches!(state, DestinationState::Absent),
        })
    }
}

/// What a destination's probe read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// The call made, as a person reads it (`DescribeSecret "prod/db"`).
    pub call: String,
    /// Whether a secret (or a deleted one) holds the name.
    pub present: bool,
}

/// The one read a store's probe makes, and what it takes to be allowed it.
pub(crate) struct ProbeRead<'a> {
    /// The call, as a person reads it.
    pub call: String,
    /// The permission (IAM action, Google permission, RBAC data action) it needs.
    pub permission: &'a str,
    /// Who reads: the role, service account or application the exchange yields.
    pub reader: String,
    /// How to grant the permission.
    pub grant: String,
}

impl ProbeRead<'_> {
    /// The probe's outcome from whether the name is held, or the read's failure
    /// (described with the call): a refusal (a 401 or 403, whatever the store's
    /// own code) names the permission missing and how to grant it.
    pub fn outcome(self, read: Result<bool, Failure>) -> Result<Probed, Failure> {
        match read {
            Ok(present) => Ok(Probed {
                call: self.call,
                present,
            }),
            // An exchange's refusal already says what to fix.
            Err(f) if f.class == FailureClass::Auth && f.likely_cause().1.is_none() => Err(f
                .with_likely_cause(format!(
                    "{} lacks {}, which this read needs and so does the sync: {}",
                    self.reader, self.permission, self.grant
                ))),
            Err(f) => Err(f),
        }
    }
}

/// Builds the adapter for a configured source.
pub async fn build_source(
    config: &crate::config::SourceConfig,
    identities: &HashMap<String, Arc<dyn TokenSource>>,
    caches: &Caches,
) -> Arc<dyn Source> {
    match config {
        SourceConfig::AwsSecretsManager { region, endpoint } => {
            Arc::new(aws_sm::AwsSmSource::new(region.as_deref(), endpoint.as_deref()).await)
        }
        SourceConfig::GcpSecretManager(c) => {
            let credentials = match (&c.identity, &c.workload_identity_provider) {
                (Some(identity), Some(provider)) => {
                    let federation = google::federation(
                        provider,
                        c.audience.as_deref(),
                        c.service_account.as_deref(),
                        c.sts_endpoint.as_deref(),
                        c.iamcredentials_endpoint.as_deref(),
                    );
                    let token_source = identities[identity].clone();
                    let exchange = google::GoogleExchange::new(
                        identity,
                        token_source,
                        federation,
                        caches.bearer.clone(),
                    );
                    GoogleCredentials::Federated(Arc::new(exchange))
                }
                _ => GoogleCredentials::metadata(
                    MetadataServer::new(c.metadata_host.as_deref()),
                    caches.bearer.clone(),
                ),
            };
            Arc::new(gcp_sm::GcpSmSource::new(
                credentials,
                c.secretmanager_endpoint.as_deref(),
                &c.project,
            ))
        }
        SourceConfig::VaultKv(c) => {
            let identity = c
                .login
                .identity
                .as_ref()
                .and_then(|i| identities.get(i))
                .cloned();
            Arc::new(vault_kv::VaultKvSource::new(
                c,
                identity,
                caches.bearer.clone(),
            ))
        }
        SourceConfig::AzureKeyVault(c) => {
            let exchange = entra(c, identities[&c.identity].clone(), caches);
            Arc::new(azure_kv::AzureKvSource::new(c, exchange))
        }
    }
}

/// Builds the adapter for a configured destination, with its exchange.
pub fn build_destination(
    name: &str,
    config: &DestinationConfig,
    identity: Arc<dyn TokenSource>,
    caches: &Caches,
) -> Arc<dyn Destination> {
    match config {
        DestinationConfig::AwsSecretsManager(c) => {
            let exchange = AwsExchange::new(&c.identity, identity, c, caches.aws.clone());
            Arc::new(aws_sm::AwsSmDestination::new(name, c, Arc::new(exchange)))
        }
        DestinationConfig::GcpSecretManager(c) => {
            let federation = google::federation(
                &c.workload_identity_provider,
                c.audience.as_deref(),
                c.service_account.as_deref(),
                c.sts_endpoint.as_deref(),
                c.iamcredentials_endpoint.as_deref(),
            );
            let exchange = google::GoogleExchange::new(
                &c.identity,
                identity,
                federation,
                caches.bearer.clone(),
            );
            Arc::new(gcp_sm::GcpSmDestination::new(
                GoogleCredentials::Federated(Arc::new(exchange)),
                c,
            ))
        }
        DestinationConfig::AzureKeyVault(c) => Arc::new(azure_kv::AzureKvDestination::new(
            c,
            entra(c, identity, caches),
        )),
    }
}

fn entra(
    c: &crate::config::AzureKeyVaultConfig,
    identity: Arc<dyn TokenSource>,
    caches: &Caches,
) -> Arc<EntraExchange> {
    let app = crate::exchange::azure::Application::from_config(c);
    Arc::new(EntraExchange::new(
        &c.identity,
        identity,
        app,
        caches.bearer.clone(),
    ))
}
