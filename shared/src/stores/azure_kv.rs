//! Azure Key Vault: a destination (`PUT /secrets/{name}`: every write is a new
//! version, with fedsync's marks as that version's tags, so value and marks land
//! together) and a source (`GET /secrets/{name}`). Names are sanitized to
//! `[0-9a-zA-Z-]`; a name held by a soft-deleted secret is recovered or refused
//! by the destination's policy; 429 answers are retried after `Retry-After`.

use super::{
    Destination, DestinationState, Listing, ProbeRead, Probed, Source, SourceSecret, Write, Written,
};
use crate::config::{AzureKeyVaultConfig, SoftDeleted};
use crate::exchange::Obtained;
use crate::exchange::azure::EntraExchange;
use crate::http::{self, BearerError, HttpError};
use crate::marks::{MANAGER, Marks};
use crate::naming::NameRules;
use crate::report::{Failure, FailureClass};
use crate::secret::{SecretBody, SecretValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Key Vault names: letters, digits and `-`, 1 to 127 characters.
pub const NAME_RULES: NameRules = NameRules {
    store: "Azure Key Vault",
    extra_chars: "-",
    max_len: 127,
    case_insensitive: true,
};

/// Key Vault stores at most 25 KB per value.
pub const MAX_VALUE_BYTES: usize = 25 * 1024;

const API_VERSION: &str = "7.5";
const TAG_MANAGED_BY: &str = "fedsync-managed-by";
const TAG_SOURCE: &str = "fedsync-source";
const TAG_SOURCE_VERSION: &str = "fedsync-source-version";
/// The keyed hash of the value fedsync wrote (see [`crate::value_hash`]).
const TAG_VALUE_HASH: &str = "fedsync-value-hmac";
/// Items per page when listing secrets or versions (the service's maximum).
const LIST_PAGE: &str = "25";
/// Pages of a secret's versions searched for fedsync's marks when its current
/// version carries none.
const MAX_HISTORY_PAGES: usize = 4;
/// How fedsync marks a binary value it stored as base64 text.
const BINARY_CONTENT_TYPE: &str = "application/octet-stream; encoding=base64";
/// How long a recovered secret may take to become usable.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);

/// A Key Vault error: `{"error": {"code", "message", "innererror": {"code"}}}`.
#[derive(Debug, Clone)]
struct KvError {
    http: HttpError,
    code: Option<String>,
    inner: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    innererror: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    code: Option<String>,
}

impl KvError {
    fn from_http(http: HttpError) -> Self {
        let body = serde_json::from_str::<Envelope>(&http.body)
            .ok()
            .map(|e| e.error);
        let inner = body
            .as_ref()
            .and_then(|b| b.innererror.as_ref())
            .and_then(|i| i.code.clone());
        KvError {
            code: body.as_ref().and_then(|b| b.code.clone()),
            message: body.and_then(|b| b.message),
            inner,
            http,
        }
    }

    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code) || self.inner.as_deref() == Some(code)
    }

    fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        let mut what = match (&self.code, &self.inner, &self.message) {
            (Some(c), Some(i), Some(m)) => format!("{c} ({i}): {m}"),
            (Some(c), None, Some(m)) => format!("{c}: {m}"),
            _ => return http::failure(&self.http, context),
        };
        if let Some(s) = self.http.status {
            what.push_str(&format!(" (HTTP {})", s.as_u16()));
        }
        Failure::new(self.http.class(), format!("{context}: {what}"))
    }
}

enum CallError {
    Exchange(Failure),
    Vault(KvError),
}

impl CallError {
    fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        match self {
            CallError::Exchange(f) => f.context(context),
            CallError::Vault(e) => e.into_failure(context),
        }
    }

    fn is(&self, code: &str) -> bool {
        matches!(self, CallError::Vault(e) if e.is(code))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    value: Option<String>,
    id: String,
    content_type: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct Attributes {
    /// Unix seconds.
    created: Option<u64>,
}

impl Bundle {
    fn version(&self) -> String {
        self.id.rsplit('/').next().unwrap_or_default().to_string()
    }

    /// The value, decoded from base64 when fedsync stored it so.
    fn value(self, secret: &str) -> Result<SecretValue, Failure> {
        let text = self.value.unwrap_or_default();
        if self.content_type.as_deref() != Some(BINARY_CONTENT_TYPE) {
            return Ok(SecretValue::text(text));
        }
        let bytes = BASE64.decode(text.as_bytes()).map_err(|_| {
            Failure::new(
                FailureClass::BadInput,
                format!("{secret:?} is marked as base64 but is not"),
            )
        })?;
        Ok(SecretValue::binary(bytes))
    }
}

/// A page of `GET /secrets` or `GET /secrets/{name}/versions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemPage {
    #[serde(default)]
    value: Vec<Item>,
    next_link: Option<String>,
}

/// A secret (or version) without its value.
#[derive(Deserialize)]
struct Item {
    /// `{vault}/secrets/{name}` or `{vault}/secrets/{name}/{version}`.
    id: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// One vault, reached with Entra access tokens.
struct Vault {
    url: String,
    exchange: Arc<EntraExchange>,
}

impl Vault {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, CallError> {
        let url = format!("{}/{path}", self.url.trim_end_matches('/'));
        let query = [("api-version", API_VERSION)];
        http::send_with_bearer(self.exchange.as_ref(), method, &url, &query, body)
            .await
            .map_err(|e| match e {
                BearerError::Token(f) => CallError::Exchange(f),
                BearerError::Http(e) => CallError::Vault(KvError::from_http(e)),
            })
    }

    /// One page of a collection: `path` for the first, then the `nextLink`
    /// the previous page gave, which must lead back to this vault.
    async fn page(&self, path: &str, next: Option<&str>) -> Result<ItemPage, CallError> {
        let base = self.url.trim_end_matches('/');
        let response = match next {
            None => {
                let url = format!("{base}/{path}");
                let query = [("api-version", API_VERSION), ("maxresults", LIST_PAGE)];
                http::send_with_bearer(self.exchange.as_ref(), Method::GET, &url, &query, None)
                    .await
            }
            Some(link) if link.starts_with(&format!("{base}/")) => {
                http::send_with_bearer(self.exchange.as_ref(), Method::GET, link, &[], None).await
            }
            Some(_) => {
                let message = "Key Vault's nextLink leads away from the vault; not followed";
                return Err(CallError::Exchange(Failure::new(
                    FailureClass::BadInput,
                    message,
                )));
            }
        };
        let response = response.map_err(|e| match e {
            BearerError::Token(f) => CallError::Exchange(f),
            BearerError::Http(e) => CallError::Vault(KvError::from_http(e)),
        })?;
        http::json(response)
            .await
            .map_err(|e| CallError::Vault(KvError::from_http(e)))
    }

    async fn bundle(&self, path: &str) -> Result<Option<Bundle>, CallError> {
        match self.call(Method::GET, path, None).await {
            Ok(r) => http::json(r)
                .await
                .map(Some)
                .map_err(|e| CallError::Vault(KvError::from_http(e))),
            Err(e) if e.is("SecretNotFound") || e.is("DeletedSecretNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn vault(config: &AzureKeyVaultConfig, exchange: Arc<EntraExchange>) -> Vault {
    Vault {
        url: config.vault_url.clone(),
        exchange,
    }
}

/// Key Vault as a source.
pub struct AzureKvSource {
    vault: Vault,
}

impl AzureKvSource {
    pub fn new(config: &AzureKeyVaultConfig, exchange: Arc<EntraExchange>) -> Self {
        AzureKvSource {
            vault: vault(config, exchange),
        }
    }
}

#[async_trait::async_trait]
impl Source for AzureKvSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        let Some(bundle) = self
            .vault
            .bundle(&format!("secrets/{secret}"))
            .await
            .map_err(|e| {
                e.into_failure(format_args!(
                    "reading source secret {secret:?} from Azure Key Vault"
                ))
            })?
        else {
            return Ok(None);
        };
        let version = bundle.version();
        let created = bundle.attributes.as_ref().and_then(|a| a.created);
        let value = bundle.value(secret)?;
        Ok(Some(SourceSecret {
            name: secret.to_string(),
            version,
            created: created.map(|s| s * 1000),
            value,
        }))
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        let bundle = self.vault.bundle(&format!("secrets/{secret}")).await;
        bundle
            .map(|b| b.map(|b| b.version()))
            .map_err(|e| e.into_failure(format_args!("reading {secret:?}")))
    }

    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        let listed = self
            .vault
            .page("secrets", page)
            .await
            .map_err(|e| e.into_failure("listing the secrets of Azure Key Vault"))?;
        Ok(Listing {
            names: listed
                .value
                .iter()
                .filter_map(|i| i.id.rsplit_once("/secrets/"))
                .map(|(_, name)| name.trim_end_matches('/').to_string())
                .collect(),
            next: listed.next_link.filter(|l| !l.is_empty()),
        })
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        Some(self.vault.exchange.obtain().await)
    }
}

/// Key Vault as a destination.
pub struct AzureKvDestination {
    vault: Vault,
    on_soft_deleted: SoftDeleted,
}

impl AzureKvDestination {
    pub fn new(config: &AzureKeyVaultConfig, exchange: Arc<EntraExchange>) -> Self {
        AzureKvDestination {
            vault: vault(config, exchange),
            on_soft_deleted: config.on_soft_deleted,
        }
    }

    fn marks(tags: &BTreeMap<String, String>) -> (bool, Option<String>, Option<Marks>) {
        let managed = tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGER);
        let source_ref = tags.get(TAG_SOURCE).cloned().filter(|_| managed);
        let marks = match (&source_ref, tags.get(TAG_SOURCE_VERSION)) {
            (Some(r), Some(v)) => Some(Marks {
                value_hash: tags.get(TAG_VALUE_HASH).cloned(),
                ..Marks::read(r.clone(), v)
            }),
            _ => None,
        };
        (managed, source_ref, marks)
    }

    /// The source reference of the newest earlier version fedsync wrote, when the
    /// current version carries no marks (a version set outside fedsync): marks
    /// live on versions here, so only the history tells that fedsync manages
    /// the secret.
    async fn managed_before(&self, name: &str) -> Result<Option<String>, Failure> {
        let path = format!("secrets/{name}/versions");
        let mut next = None;
        let mut found = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let page =
                self.vault.page(&path, next.as_deref()).await.map_err(|e| {
                    e.into_failure(format_args!("listing the versions of {name:?}"))
                })?;
            // Versions come in no documented order: the last one seen is kept.
            for item in &page.value {
                if let (true, Some(r), _) = Self::marks(&item.tags) {
                    found = Some(r);
                }
            }
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(link) => next = Some(link),
                None => break,
            }
        }
        Ok(found)
    }

    /// Recovers a soft-deleted secret and waits until it can be read again.
    async fn recover(&self, name: &str) -> Result<(), Failure> {
        let recovered = self
            .vault
            .call(
                Method::POST,
                &format!("deletedsecrets/{name}/recover"),
                None,
            )
            .await;
        match recovered {
            Ok(_) => {}
            Err(e) if e.is("ObjectIsBeingRecovered") => {}
            Err(e) => {
                return Err(e.into_failure(format_args!("recovering the soft-deleted {name:?}")));
            }
        }
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            match self.vault.bundle(&format!("secrets/{name}")).await {
                Ok(Some(_)) => return Ok(()),
                // Waiting ends with the invocation's time too.
                Ok(None) | Err(_)
                    if started.elapsed() < RECOVERY_WAIT
                        && crate::retry::time_left().is_none_or(|left| left > wait) =>
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Ok(None) | Err(_) => {
                    let message = format!(
                        "{name:?} was recovered but is still not usable after {}s; it will be retried",
                        started.elapsed().as_secs()
                    );
                    return Err(Failure::new(FailureClass::Unavailable, message));
                }
            }
        }
    }

    fn soft_deleted_failure(&self, name: &str) -> Failure {
        Failure::new(
            FailureClass::Conflict,
            format!(
                "the name {name:?} is held by a soft-deleted secret in {}: recover it (az keyvault secret recover), \
                 purge it (az keyvault secret purge), or set on_soft_deleted = \"recover\" on this destination",
                self.vault.url
            ),
        )
    }
}

#[async_trait::async_trait]
impl Destination for AzureKvDestination {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        let context = || format!("reading {name:?}");
        if let Some(bundle) = self
            .vault
            .bundle(&format!("secrets/{name}"))
            .await
            .map_err(|e| e.into_failure(context()))?
        {
            let (mut managed, mut source_ref, marks) = Self::marks(&bundle.tags);
            if !managed {
                source_ref = self.managed_before(name).await?;
                managed = source_ref.is_some();
            }
            return Ok(DestinationState::Present {
                managed,
                marks,
                source_ref,
            });
        }
        // Absent, or soft-deleted: only the deleted-secrets collection tells.
        match self
            .vault
            .bundle(&format!("deletedsecrets/{name}"))
            .await
            .map_err(|e| e.into_failure(context()))?
        {
            None => Ok(DestinationState::Absent),
            Some(deleted) => {
                let (_, source_ref, _) = Self::marks(&deleted.tags);
                Ok(DestinationState::PendingDeletion {
                    source_ref,
                    recover: self.on_soft_deleted == SoftDeleted::Recover,
                })
            }
        }
    }

    async fn write(&self, write: Write<'_>) -> Result<Written, Failure> {
        if let DestinationState::PendingDeletion { .. } = write.state {
            if self.on_soft_deleted == SoftDeleted::Fail {
                return Err(self.soft_deleted_failure(write.name));
            }
            self.recover(write.name).await?;
            // The recovered secret may not be fedsync's: decide again from what it is.
            return Ok(Written::NameTaken);
        }
        let mut tags = write.tags.clone();
        tags.insert(TAG_MANAGED_BY.into(), MANAGER.into());
        tags.insert(TAG_SOURCE.into(), write.marks.source_ref.clone());
        tags.insert(TAG_SOURCE_VERSION.into(), write.marks.version_mark());
        if let Some(hash) = &write.marks.value_hash {
            tags.insert(TAG_VALUE_HASH.into(), hash.clone());
        }
        let (value, content_type) = match write.value.expose_text() {
            Some(text) => (text.to_string(), "text/plain"),
            None => (
                BASE64.encode(write.value.expose_bytes()),
                BINARY_CONTENT_TYPE,
            ),
        };
        // The value moves into the body, which is wiped once sent.
        let mut body = json!({"contentType": content_type, "tags": tags});
        body["value"] = Value::String(value);
        let body = SecretBody(body);
        match self
            .vault
            .call(
                Method::PUT,
                &format!("secrets/{}", write.name),
                Some(&*body),
            )
            .await
        {
            Ok(_) => Ok(Written::Done),
            // Deleted since it was inspected: decide again.
            Err(e) if e.is("ObjectIsDeletedButRecoverable") => Ok(Written::NameTaken),
            Err(e) => Err(e.into_failure(format_args!("writing {:?}", write.name))),
        }
    }

    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure> {
        let bundle = self.vault.bundle(&format!("secrets/{name}")).await;
        match bundle.map_err(|e| e.into_failure(format_args!("reading {name:?}")))? {
            Some(b) => b.value(name).map(Some),
            None => Ok(None),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.vault
            .call(Method::DELETE, &format!("secrets/{name}"), None)
            .await
            .map(|_| ())
            .map_err(|e| e.into_failure(format_args!("deleting {name:?}")))
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE_BYTES
    }

    fn stored_size(&self, value: &SecretValue) -> usize {
        match value {
            SecretValue::Text(_) => value.len(),
            // Binary values are stored as base64.
            SecretValue::Binary(_) => value.len().div_ceil(3) * 4,
        }
    }

    fn exchanges(&self) -> u64 {
        self.vault.exchange.exchanges()
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        Some(self.vault.exchange.obtain().await)
    }

    async fn probe(&self, name: &str) -> Result<Probed, Failure> {
        let read = ProbeRead {
            call: format!("listing one version of {name:?}"),
            permission: "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            reader: format!(
                "application {}",
                self.vault.exchange.application().client_id
            ),
            grant: format!(
                "assign it a role that allows it on the vault {} (Key Vault Secrets Officer does)",
                self.vault.url
            ),
        };
        let url = format!(
            "{}/secrets/{name}/versions",
            self.vault.url.trim_end_matches('/')
        );
        let query = [("api-version", API_VERSION), ("maxresults", "1")];
        let exchange = self.vault.exchange.as_ref();
        // An unknown name may answer 404 or an empty list.
        let listed = match http::send_with_bearer(exchange, Method::GET, &url, &query, None).await {
            Ok(response) => http::json::<ItemPage>(response)
                .await
                .map(|page| !page.value.is_empty())
                .map_err(|e| KvError::from_http(e).into_failure(&read.call)),
            Err(BearerError::Token(f)) => Err(f),
            Err(BearerError::Http(e)) => {
                let e = KvError::from_http(e);
                if e.is("SecretNotFound") {
                    Ok(false)
                } else {
                    Err(e.into_failure(&read.call))
                }
            }
        };
        read.outcome(listed)
    }
}
