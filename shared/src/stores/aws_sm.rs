//! AWS Secrets Manager: a source read with the host's ambient credentials, and a
//! destination written with role credentials from the STS exchange. fedsync's
//! marks are tags; each write's `ClientRequestToken` is derived from (source,
//! source version, destination, name), so a retried write never makes a second
//! version, and the version that holds `AWSCURRENT` tells whether the marks hold.

use super::{
    Destination, DestinationState, Listing, ProbeRead, Probed, Source, SourceSecret, Write, Written,
};
use crate::aws::{AwsError, EgressGuard, no_retries, timeouts};
use crate::exchange::Obtained;
use crate::exchange::aws::{AwsExchange, CachedRoleCredentials};
use crate::marks::{MANAGER, Marks};
use crate::naming::NameRules;
use crate::report::{Failure, FailureClass};
use crate::retry::Idempotency::{Idempotent, NotIdempotent};
use crate::secret::SecretValue;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Secrets Manager names: ASCII letters, digits and `/_+=.@-`; 512 accepted on
/// input, but only 256 come back in responses, so fedsync stays within 256.
pub const NAME_RULES: NameRules = NameRules {
    store: "AWS Secrets Manager",
    extra_chars: "/_+=.@-",
    max_len: 256,
    case_insensitive: false,
};

/// `SecretString` / `SecretBinary` limit.
pub const MAX_VALUE_BYTES: usize = 65_536;

const TAG_MANAGED_BY: &str = "fedsync:managed-by";
const TAG_SOURCE: &str = "fedsync:source";
const TAG_SOURCE_VERSION: &str = "fedsync:source-version";
const TAG_VALUE_HASH: &str = "fedsync:value-hmac";
/// The largest `ListSecrets` page.
const LIST_PAGE: i32 = 100;
const CURRENT: &str = "AWSCURRENT";

/// Only Secrets Manager's own answer proves a secret absent; a bare 404 from a
/// wrong endpoint or a proxy must not read as a deletion.
fn is_absent(e: &AwsError) -> bool {
    e.is("ResourceNotFoundException")
}

/// The version id holding `AWSCURRENT`.
fn current_version(stages: Option<&HashMap<String, Vec<String>>>) -> Option<&str> {
    stages?
        .iter()
        .find_map(|(id, s)| s.iter().any(|s| s == CURRENT).then_some(id.as_str()))
}

/// Secrets Manager as a source.
pub struct AwsSmSource {
    client: Client,
}

impl AwsSmSource {
    /// A source using the host's credentials (Lambda role, instance profile, env).
    pub async fn new(region: Option<&str>, endpoint: Option<&str>) -> Self {
        let sdk = crate::aws::ambient_config(region, endpoint).await;
        let config = aws_sdk_secretsmanager::config::Builder::from(&sdk).interceptor(EgressGuard);
        AwsSmSource {
            client: Client::from_conf(config.build()),
        }
    }
}

#[async_trait::async_trait]
impl Source for AwsSmSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        let out = match crate::aws::send("GetSecretValue", Idempotent, || {
            self.client
                .get_secret_value()
                .secret_id(secret)
                // AWSCURRENT is the default, but named it is exact everywhere.
                .version_stage(CURRENT)
                .send()
        })
        .await
        {
            Ok(out) => out,
            Err(e) => {
                // A secret scheduled for deletion refuses reads; its description says so.
                let pending = e.is("InvalidRequestException")
                    && self.current_version(secret).await?.is_none();
                if is_absent(&e) || pending {
                    return Ok(None);
                }
                return Err(e.into_failure(format_args!(
                    "reading source secret {secret:?} from AWS Secrets Manager"
                )));
            }
        };
        let value = match (out.secret_string, out.secret_binary) {
            (Some(s), _) => SecretValue::text(s),
            (None, Some(b)) => SecretValue::binary(b.into_inner()),
            (None, None) => {
                let message = format!("source secret {secret:?} has no value");
                return Err(Failure::new(FailureClass::BadInput, message));
            }
        };
        let missing = |what| {
            Failure::new(
                FailureClass::Unavailable,
                format!("GetSecretValue answered without {what}"),
            )
        };
        Ok(Some(SourceSecret {
            name: out.name.ok_or_else(|| missing("Name"))?,
            version: out.version_id.ok_or_else(|| missing("VersionId"))?,
            // Not the version's creation time: moving AWSCURRENT back to an
            // earlier version (a rollback) is a newer change of an older version.
            // Per-secret order on AWS comes from the FIFO queue and the
            // confirming read after each write.
            created: None,
            value,
        }))
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        Ok(self.describe(secret).await?.and_then(|out| {
            let live = out.deleted_date.is_none();
            current_version(out.version_ids_to_stages())
                .filter(|_| live)
                .map(str::to_string)
        }))
    }

    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        let out = crate::aws::send("ListSecrets", Idempotent, || {
            self.client
                .list_secrets()
                .max_results(LIST_PAGE)
                .set_next_token(page.map(str::to_string))
                .send()
        })
        .await
        .map_err(|e| e.into_failure("listing the secrets of AWS Secrets Manager"))?;
        Ok(Listing {
            names: out
                .secret_list()
                .iter()
                .filter(|s| s.deleted_date.is_none())
                .filter_map(|s| s.name.clone())
                .collect(),
            next: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    async fn canonical_name(&self, secret: &str) -> Result<Option<String>, Failure> {
        if !secret.starts_with("arn:") {
            return Ok(None);
        }
        Ok(self.describe(secret).await?.and_then(|out| out.name))
    }
}

impl AwsSmSource {
    /// DescribeSecret of a source secret; `None` when it does not exist.
    async fn describe(
        &self,
        secret: &str,
    ) -> Result<
        Option<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput>,
        Failure,
    > {
        let described = crate::aws::send("DescribeSecret", Idempotent, || {
            self.client.describe_secret().secret_id(secret).send()
        });
        match described.await {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                if is_absent(&e) {
                    return Ok(None);
                }
                Err(e.into_failure(format_args!("describing source secret {secret:?}")))
            }
        }
    }
}

/// Secrets Manager as a destination in one account and region.
pub struct AwsSmDestination {
    client: Client,
    exchange: Arc<AwsExchange>,
    /// The destination's configured name, part of every request token.
    destination: String,
    kms_key_id: Option<String>,
    recovery_window_days: u8,
    role_arn: String,
}

/// Why a call with role credentials failed.
enum CallError {
    Exchange(Failure),
    Aws(AwsError),
}

impl CallError {
    fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        match self {
            CallError::Exchange(f) => f,
            CallError::Aws(e) => e.into_failure(context),
        }
    }
}

impl AwsSmDestination {
    pub fn new(
        destination: &str,
        config: &crate::config::AwsDestinationConfig,
        exchange: Arc<AwsExchange>,
    ) -> Self {
        let mut builder = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts())
            .retry_config(no_retries())
            .interceptor(EgressGuard)
            // fedsync's cache decides when to exchange; the SDK asks it on every call.
            .identity_cache(aws_sdk_secretsmanager::config::IdentityCache::no_cache())
            .credentials_provider(CachedRoleCredentials(exchange.clone()));
        if let Some(e) = &config.endpoint {
            builder = builder.endpoint_url(e);
        }
        AwsSmDestination {
            client: Client::from_conf(builder.build()),
            exchange,
            destination: destination.to_string(),
            kms_key_id: config.kms_key_id.clone(),
            recovery_window_days: config.recovery_window_days,
            role_arn: config.role_arn.clone(),
        }
    }

    /// The `ClientRequestToken` of a write: a function of (source, source version,
    /// destination, name), so the same write retried is recognized by AWS.
    fn request_token(&self, name: &str, marks: &Marks) -> String {
        let fields = [
            marks.source_ref.as_str(),
            &marks.source_version,
            &self.destination,
            name,
        ];
        let h = hex::encode(&Sha256::digest(fields.join("\0"))[..16]);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Runs a call with role credentials under the retry policy (`operation`
    /// names it in logs); if AWS says the credentials expired, exchanges once
    /// more (unless a concurrent call already did) and sends it once more.
    async fn call<T, F, Fut>(
        &self,
        operation: &str,
        idempotency: crate::retry::Idempotency,
        call: F,
    ) -> Result<T, CallError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        let used = self
            .exchange
            .credentials()
            .await
            .map_err(CallError::Exchange)?;
        let send = || crate::retry::run(operation, idempotency, &call);
        match send().await {
            Err(e) if e.is_expired_credential() => {
                tracing::warn!(destination = %self.destination, "AWS refused the cached credentials as expired; exchanging again");
                self.exchange.invalidate(&used).await;
                self.exchange
                    .credentials()
                    .await
                    .map_err(CallError::Exchange)?;
                send().await.map_err(CallError::Aws)
            }
            other => other.map_err(CallError::Aws),
        }
    }

    fn tags(write: &Write<'_>) -> Vec<Tag> {
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut tags: Vec<Tag> = write.tags.iter().map(|(k, v)| tag(k, v)).collect();
        tags.push(tag(TAG_MANAGED_BY, MANAGER));
        tags.push(tag(TAG_SOURCE, &write.marks.source_ref));
        tags.push(tag(TAG_SOURCE_VERSION, &write.marks.version_mark()));
        if let Some(hash) = &write.marks.value_hash {
            tags.push(tag(TAG_VALUE_HASH, hash));
        }
        tags
    }

    /// Creates the secret with its value and marks in one call.
    async fn create(&self, write: &Write<'_>, token: &str) -> Result<Written, Failure> {
        // The request token makes a repeat harmless.
        let created = self
            .call("CreateSecret", Idempotent, || async {
                self.client
                    .create_secret()
                    .name(write.name)
                    .client_request_token(token)
                    .set_secret_string(write.value.expose_text().map(str::to_string))
                    .set_secret_binary(binary(write.value))
                    .set_kms_key_id(self.kms_key_id.clone())
                    .description("Managed by fedsync")
                    .set_tags(Some(Self::tags(write)))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))
            })
            .await;
        match created {
            Ok(_) => Ok(Written::Done),
            // Created since it was inspected (a concurrent delivery, or someone else).
            Err(CallError::Aws(e)) if e.is("ResourceExistsException") => Ok(Written::NameTaken),
            Err(e) => Err(e.into_failure(format_args!("creating {:?}", write.name))),
        }
    }

    /// Puts a new version and retags, concurrently: `inspect` trusts the marks only
    /// when `AWSCURRENT` is this write's token, so a half-done write is redone, and
    /// the same token makes the redo a no-op.
    async fn update(&self, write: &Write<'_>, token: &str) -> Result<Written, Failure> {
        let put = self.call("PutSecretValue", Idempotent, || async {
            self.client
                .put_secret_value()
                .secret_id(write.name)
                .client_request_token(token)
                .set_secret_string(write.value.expose_text().map(str::to_string))
                .set_secret_binary(binary(write.value))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        });
        let tag = self.call("TagResource", Idempotent, || async {
            self.client
                .tag_resource()
                .secret_id(write.name)
                .set_tags(Some(Self::tags(write)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        });
        let (put, tag) = tokio::join!(put, tag);
        let put = put
            .map_err(|e| e.into_failure(format_args!("writing a new value to {:?}", write.name)))?;
        tag.map_err(|e| e.into_failure(format_args!("tagging {:?}", write.name)))?;
        // A token AWS already knows is accepted without moving AWSCURRENT (the
        // source went back to an earlier version): move it explicitly.
        if !put.version_stages().iter().any(|s| s == CURRENT) {
            self.make_current(write.name, token).await?;
        }
        Ok(Written::Done)
    }

    async fn describe(
        &self,
        name: &str,
    ) -> Result<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput, CallError>
    {
        self.call("DescribeSecret", Idempotent, || async {
            self.client
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        })
        .await
    }

    async fn make_current(&self, name: &str, token: &str) -> Result<(), Failure> {
        let described = self
            .describe(name)
            .await
            .map_err(|e| e.into_failure(format_args!("describing {name:?}")))?;
        let current = current_version(described.version_ids_to_stages()).map(str::to_string);
        // Repeated after it landed, the move would fail: not idempotent.
        self.call("UpdateSecretVersionStage", NotIdempotent, || async {
            self.client
                .update_secret_version_stage()
                .secret_id(name)
                .version_stage(CURRENT)
                .move_to_version_id(token)
                .set_remove_from_version_id(current.clone())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        })
        .await
        .map(|_| ())
        .map_err(|e| e.into_failure(format_args!("making version {token} of {name:?} current")))
    }

    async fn restore(&self, name: &str) -> Result<(), Failure> {
        self.call("RestoreSecret", NotIdempotent, || async {
            self.client
                .restore_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        })
        .await
        .map(|_| ())
        .map_err(|e| e.into_failure(format_args!("restoring {name:?}")))
    }
}

fn binary(value: &SecretValue) -> Option<Blob> {
    match value {
        SecretValue::Binary(_) => Some(Blob::new(value.expose_bytes())),
        SecretValue::Text(_) => None,
    }
}

#[async_trait::async_trait]
impl Destination for AwsSmDestination {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        let described = self.describe(name).await;
        let out = match described {
            Ok(out) => out,
            Err(CallError::Aws(e)) if is_absent(&e) => return Ok(DestinationState::Absent),
            Err(e) => return Err(e.into_failure(format_args!("describing {name:?}"))),
        };
        let tag = |key: &str| {
            let found = out.tags().iter().find(|t| t.key() == Some(key));
            found.and_then(|t| t.value()).map(str::to_string)
        };
        let managed = tag(TAG_MANAGED_BY).as_deref() == Some(MANAGER);
        let source_ref = tag(TAG_SOURCE).filter(|_| managed);
        if out.deleted_date.is_some() {
            return Ok(DestinationState::PendingDeletion {
                source_ref,
                recover: false,
            });
        }
        // The marks count only if the current version is the one fedsync wrote for
        // them: a write whose tags landed but whose value did not is redone.
        let current = current_version(out.version_ids_to_stages());
        let marks = match (&source_ref, tag(TAG_SOURCE_VERSION)) {
            (Some(source_ref), Some(version_mark)) => {
                let marks = Marks {
                    value_hash: tag(TAG_VALUE_HASH),
                    ..Marks::read(source_ref.clone(), &version_mark)
                };
                (current == Some(self.request_token(name, &marks).as_str())).then_some(marks)
            }
            _ => None,
        };
        Ok(DestinationState::Present {
            managed,
            marks,
            source_ref,
        })
    }

    async fn write(&self, write: Write<'_>) -> Result<Written, Failure> {
        let token = self.request_token(write.name, write.marks);
        match write.state {
            DestinationState::Absent => self.create(&write, &token).await,
            DestinationState::PendingDeletion { .. } => {
                // The engine only writes here when fedsync manages the secret for
                // this same source (it was deleted at the source, then came back).
                self.restore(write.name).await?;
                self.update(&write, &token).await
            }
            DestinationState::Present { .. } => self.update(&write, &token).await,
        }
    }

    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure> {
        let read = self
            .call("GetSecretValue", Idempotent, || async {
                self.client
                    .get_secret_value()
                    .secret_id(name)
                    .version_stage(CURRENT)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))
            })
            .await;
        match read {
            Ok(out) => Ok(match (out.secret_string, out.secret_binary) {
                (Some(s), _) => Some(SecretValue::text(s)),
                (None, Some(b)) => Some(SecretValue::binary(b.into_inner())),
                (None, None) => None,
            }),
            Err(CallError::Aws(e)) if is_absent(&e) => Ok(None),
            Err(e) => Err(e.into_failure(format_args!("reading the value of {name:?}"))),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        // Repeated after it landed, it would fail (already scheduled): not idempotent.
        self.call("DeleteSecret", NotIdempotent, || async {
            self.client
                .delete_secret()
                .secret_id(name)
                .recovery_window_in_days(i64::from(self.recovery_window_days))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        })
        .await
        .map(|_| ())
        .map_err(|e| e.into_failure(format_args!("deleting {name:?}")))
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE_BYTES
    }

    fn exchanges(&self) -> u64 {
        self.exchange.exchanges()
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        Some(self.exchange.obtain().await)
    }

    async fn probe(&self, name: &str) -> Result<Probed, Failure> {
        let read = ProbeRead {
            call: format!("DescribeSecret {name:?}"),
            permission: "secretsmanager:DescribeSecret",
            reader: format!("role {}", self.role_arn),
            grant: "allow it in the role's permission policy on the names the rules produce".into(),
        };
        let described = match self.describe(name).await {
            Ok(_) => Ok(true),
            Err(CallError::Aws(e)) if is_absent(&e) => Ok(false),
            Err(e) => Err(e.into_failure(&read.call)),
        };
        read.outcome(described)
    }
}
