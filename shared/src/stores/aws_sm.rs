//! AWS Secrets Manager: a source read with the host's ambient credentials, and a
//! destination written with role credentials from the STS exchange. fedsync's
//! marks are tags; each write's `ClientRequestToken` is derived from (source,
//! source version, destination), so a retried write never makes a second version.

use super::{Destination, DestinationState, Source, SourceSecret, Write};
use crate::aws::{AwsError, timeouts};
use crate::exchange::aws::{AwsExchange, CachedRoleCredentials};
use crate::marks::{MANAGER, Marks};
use crate::naming::NameRules;
use crate::report::{Failure, FailureClass};
use crate::secret::{SecretValue, hex};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Secrets Manager names: ASCII letters, digits and `/_+=.@-`; 512 accepted on
/// input, but only 256 come back in responses, so fedsync stays within 256.
pub const NAME_RULES: NameRules = NameRules {
    store: "AWS Secrets Manager",
    extra_chars: "/_+=.@-",
    max_len: 256,
};

/// `SecretString` / `SecretBinary` limit.
pub const MAX_VALUE_BYTES: usize = 65_536;

const TAG_MANAGED_BY: &str = "fedsync:managed-by";
const TAG_SOURCE: &str = "fedsync:source";
const TAG_SOURCE_VERSION: &str = "fedsync:source-version";

/// Secrets Manager as a source.
pub struct AwsSmSource {
    client: Client,
}

impl AwsSmSource {
    /// A source using the host's credentials (Lambda role, instance profile, env).
    pub async fn new(region: Option<&str>, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts());
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        AwsSmSource {
            client: Client::new(&loader.load().await),
        }
    }
}

/// Secrets Manager reports a secret scheduled for deletion with this code and text.
fn is_marked_for_deletion(e: &AwsError) -> bool {
    e.is("InvalidRequestException")
        && e.message
            .as_deref()
            .is_some_and(|m| m.contains("marked for deletion"))
}

#[async_trait::async_trait]
impl Source for AwsSmSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        let out = match self
            .client
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = AwsError::from_sdk(&e);
                if e.class == FailureClass::NotFound || is_marked_for_deletion(&e) {
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
                return Err(Failure::new(
                    FailureClass::BadInput,
                    format!("source secret {secret:?} has no value"),
                ));
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
            value,
        }))
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        match self.client.describe_secret().secret_id(secret).send().await {
            Ok(out) if out.deleted_date.is_some() => Ok(None),
            Ok(out) => Ok(out
                .version_ids_to_stages
                .unwrap_or_default()
                .into_iter()
                .find_map(|(id, stages)| stages.iter().any(|s| s == "AWSCURRENT").then_some(id))),
            Err(e) => {
                let e = AwsError::from_sdk(&e);
                if e.class == FailureClass::NotFound {
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
        }
    }

    /// The `ClientRequestToken` of a write: a function of (source, source version,
    /// destination, name), so the same write retried is recognized by AWS.
    fn request_token(&self, name: &str, marks: &Marks) -> String {
        let digest = Sha256::digest(
            [
                marks.source_ref.as_str(),
                &marks.source_version,
                &self.destination,
                name,
            ]
            .join("\0"),
        );
        let h = hex(&digest[..16]);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Runs a call with role credentials; if AWS says they expired, exchange once more and retry once.
    async fn with_credentials<T, F, Fut>(&self, call: F) -> Result<T, AwsCallError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.exchange
            .credentials()
            .await
            .map_err(AwsCallError::Exchange)?;
        match call().await {
            Err(e) if e.is_expired_credential() => {
                tracing::warn!(destination = %self.destination, "AWS refused the cached credentials as expired; exchanging again");
                self.exchange.invalidate().await;
                self.exchange
                    .credentials()
                    .await
                    .map_err(AwsCallError::Exchange)?;
                call().await.map_err(AwsCallError::Aws)
            }
            other => other.map_err(AwsCallError::Aws),
        }
    }

    fn tags(write: &Write<'_>) -> Vec<Tag> {
        let mark = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut tags: Vec<Tag> = write.tags.iter().map(|(k, v)| mark(k, v)).collect();
        tags.push(mark(TAG_MANAGED_BY, MANAGER));
        tags.push(mark(TAG_SOURCE, &write.marks.source_ref));
        tags.push(mark(TAG_SOURCE_VERSION, &write.marks.source_version));
        tags
    }
}

enum AwsCallError {
    Exchange(Failure),
    Aws(AwsError),
}

impl AwsCallError {
    fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        match self {
            AwsCallError::Exchange(f) => f,
            AwsCallError::Aws(e) => e.into_failure(context),
        }
    }
}

#[async_trait::async_trait]
impl Destination for AwsSmDestination {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        let described = self
            .with_credentials(|| async {
                self.client
                    .describe_secret()
                    .secret_id(name)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))
            })
            .await;
        let out = match described {
            Ok(out) => out,
            Err(AwsCallError::Aws(e)) if e.class == FailureClass::NotFound => {
                return Ok(DestinationState::Absent);
            }
            Err(e) => return Err(e.into_failure(format_args!("describing {name:?}"))),
        };
        if out.deleted_date.is_some() {
            return Ok(DestinationState::PendingDeletion);
        }
        let tag = |key: &str| {
            out.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let managed = tag(TAG_MANAGED_BY).as_deref() == Some(MANAGER);
        let source_ref = tag(TAG_SOURCE).filter(|_| managed);
        // The marks count only if the current version is the one fedsync wrote for
        // them: a write whose tags landed but whose value did not is redone.
        let current = out.version_ids_to_stages().and_then(|m| {
            m.iter().find_map(|(id, stages)| {
                stages
                    .iter()
                    .any(|s| s == "AWSCURRENT")
                    .then_some(id.as_str())
            })
        });
        let marks = match (&source_ref, tag(TAG_SOURCE_VERSION)) {
            (Some(source_ref), Some(source_version)) => {
                let marks = Marks {
                    source_ref: source_ref.clone(),
                    source_version,
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

    async fn write(&self, write: Write<'_>) -> Result<(), Failure> {
        let token = self.request_token(write.name, write.marks);
        let (string, binary) = match write.value {
            SecretValue::Text(_) => (
                Some(String::from_utf8_lossy(write.value.expose_bytes()).into_owned()),
                None,
            ),
            SecretValue::Binary(_) => (None, Some(Blob::new(write.value.expose_bytes()))),
        };
        if matches!(write.state, DestinationState::Absent) {
            let created = self
                .with_credentials(|| async {
                    self.client
                        .create_secret()
                        .name(write.name)
                        .client_request_token(&token)
                        .set_secret_string(string.clone())
                        .set_secret_binary(binary.clone())
                        .set_kms_key_id(self.kms_key_id.clone())
                        .description("Managed by fedsync")
                        .set_tags(Some(Self::tags(&write)))
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(&e))
                })
                .await;
            match created {
                Ok(_) => return Ok(()),
                // Created meanwhile (a concurrent delivery, or our own earlier attempt): put instead.
                Err(AwsCallError::Aws(e)) if e.is("ResourceExistsException") => {}
                Err(e) => return Err(e.into_failure(format_args!("creating {:?}", write.name))),
            }
        }
        // The value and the marks are written concurrently: `inspect` trusts the
        // marks only when the current version is this token, so a half-done write
        // is seen as not done and redone (the same token makes the redo a no-op).
        let put = self.with_credentials(|| async {
            self.client
                .put_secret_value()
                .secret_id(write.name)
                .client_request_token(&token)
                .set_secret_string(string.clone())
                .set_secret_binary(binary.clone())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        });
        let tag = self.with_credentials(|| async {
            self.client
                .tag_resource()
                .secret_id(write.name)
                .set_tags(Some(Self::tags(&write)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&e))
        });
        let (put, tag) = tokio::join!(put, tag);
        put.map_err(|e| e.into_failure(format_args!("writing a new value to {:?}", write.name)))?;
        tag.map_err(|e| e.into_failure(format_args!("tagging {:?}", write.name)))?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.with_credentials(|| async {
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
}
