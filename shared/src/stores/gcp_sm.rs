//! Google Secret Manager: a source (read `versions/latest:access`, CRC32C
//! checked) and a destination (create when missing, then `addVersion` with
//! `dataCrc32c`). fedsync's marks are annotations, plus a managed-by label; they
//! name the Google version that holds the source version, so a retried write is
//! recognized even though `addVersion` has no idempotency token, and marks
//! patches carry the secret's `etag` so that racing writers are detected.
//! When `inspect` has just read the latest version number, an update adds the
//! version and patches the marks naming its predicted number at once (one round
//! trip); it patches again when another writer took the predicted number, and
//! puts the previous marks back when adding failed. Marks that name a version
//! other than the latest are never trusted, so marks written ahead of their
//! version do not hide a missing write (`add_and_mark` names the one narrow
//! case that escapes).

use super::{
    Destination, DestinationState, Listing, ProbeRead, Probed, Source, SourceSecret, Write, Written,
};
use crate::exchange::Obtained;
use crate::exchange::google::GoogleCredentials;
use crate::google::GoogleError;
use crate::http::{self, BearerError};
use crate::marks::{MANAGER, Marks};
use crate::naming::NameRules;
use crate::report::{Failure, FailureClass};
use crate::secret::{SecretBody, SecretValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use zeroize::Zeroize;

/// Secret ids: letters, digits, `-` and `_`, at most 255.
pub const NAME_RULES: NameRules = NameRules {
    store: "Google Secret Manager",
    extra_chars: "_-",
    max_len: 255,
    case_insensitive: false,
};

/// The payload limit (64 KiB).
pub const MAX_VALUE_BYTES: usize = 65_536;

const LABEL_MANAGED_BY: &str = "fedsync-managed-by";
const ANNOTATION_SOURCE: &str = "fedsync-source";
const ANNOTATION_SOURCE_VERSION: &str = "fedsync-source-version";
/// The Google version number that holds the source version.
const ANNOTATION_VERSION: &str = "fedsync-version";
/// The keyed hash of the value fedsync wrote (see [`crate::value_hash`]).
const ANNOTATION_VALUE_HASH: &str = "fedsync-value-hmac";
/// Secrets per `secrets.list` page.
const LIST_PAGE: &str = "250";

/// A Google Secret Manager project, reached with one kind of credentials.
struct Project {
    credentials: GoogleCredentials,
    /// The project's id (or number), as configured.
    id: String,
    /// `https://secretmanager.googleapis.com/v1/projects/{project}`
    base: String,
}

impl Project {
    fn new(credentials: GoogleCredentials, endpoint: Option<&str>, project: &str) -> Self {
        let endpoint = endpoint
            .unwrap_or(crate::google::SECRET_MANAGER)
            .trim_end_matches('/');
        Project {
            credentials,
            id: project.to_string(),
            base: format!("{endpoint}/v1/projects/{project}"),
        }
    }

    /// One call with a bearer token; a 401 (expired or revoked token) makes one
    /// fresh exchange and one retry.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, CallError> {
        let url = format!("{}/{path}", self.base);
        http::send_with_bearer(&self.credentials, method, &url, &[], body)
            .await
            .map_err(|e| match e {
                BearerError::Token(f) => CallError::Exchange(f),
                BearerError::Http(e) => CallError::Google(GoogleError::from_http(&e)),
            })
    }

    /// One page of `secrets.list`.
    async fn list(&self, page: Option<&str>) -> Result<SecretList, CallError> {
        let url = format!("{}/secrets", self.base);
        let mut query = vec![("pageSize", LIST_PAGE)];
        query.extend(page.map(|p| ("pageToken", p)));
        let response = http::send_with_bearer(&self.credentials, Method::GET, &url, &query, None)
            .await
            .map_err(|e| match e {
                BearerError::Token(f) => CallError::Exchange(f),
                BearerError::Http(e) => CallError::Google(GoogleError::from_http(&e)),
            })?;
        http::json(response)
            .await
            .map_err(|e| CallError::Google(GoogleError::from_http(&e)))
    }

    async fn call_json<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, CallError> {
        let response = self.call(method, path, body).await?;
        http::json(response)
            .await
            .map_err(|e| CallError::Google(GoogleError::from_http(&e)))
    }

    /// The latest version's number (`None`: the secret has no version yet).
    async fn latest_version(&self, secret: &str) -> Result<Option<u64>, CallError> {
        match self
            .call_json::<VersionMeta>(
                Method::GET,
                &format!("secrets/{secret}/versions/latest"),
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(v.number())),
            Err(CallError::Google(e)) if e.is("NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The latest version's value, with its CRC32C checked.
    async fn access_latest(&self, secret: &str) -> Result<Option<(u64, Vec<u8>)>, CallError> {
        match self
            .call_json::<Accessed>(
                Method::GET,
                &format!("secrets/{secret}/versions/latest:access"),
                None,
            )
            .await
        {
            Ok(mut a) => {
                let data = BASE64.decode(&a.payload.data);
                a.payload.data.zeroize();
                let data = data.map_err(|_| corrupt(secret, "is not base64"))?;
                if let Some(expected) = a.payload.data_crc32c.as_ref().and_then(Crc::value)
                    && u64::from(crc32c::crc32c(&data)) != expected
                {
                    return Err(corrupt(secret, "does not match its dataCrc32c"));
                }
                Ok(Some((a.number(), data)))
            }
            Err(CallError::Google(e)) if e.is("NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A `secrets.list` page (fields absent when empty).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretList {
    #[serde(default)]
    secrets: Vec<ListedSecret>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct ListedSecret {
    /// `projects/{project}/secrets/{id}`
    name: String,
}

fn corrupt(secret: &str, what: &str) -> CallError {
    let message = format!("the payload Google returned for {secret:?} {what}");
    CallError::Exchange(Failure::new(FailureClass::Unavailable, message))
}

/// Why a call failed: getting a token, or the call itself.
enum CallError {
    Exchange(Failure),
    Google(GoogleError),
}

impl CallError {
    fn into_failure(self, context: impl std::fmt::Display) -> Failure {
        match self {
            CallError::Exchange(f) => f.context(context),
            CallError::Google(e) if e.is("PERMISSION_DENIED") => {
                let mut f = e.into_failure(context);
                f.message
                    .push_str(" (Google answers this also for a secret that does not exist)");
                f
            }
            CallError::Google(e) => e.into_failure(context),
        }
    }
}

#[derive(Deserialize)]
struct VersionMeta {
    name: String,
}

impl VersionMeta {
    fn number(&self) -> u64 {
        version_number(&self.name)
    }
}

/// `.../versions/N` → N.
fn version_number(name: &str) -> u64 {
    name.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// An int64 in proto3 JSON: a decimal string, or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Crc {
    Text(String),
    Number(u64),
}

impl Crc {
    fn value(&self) -> Option<u64> {
        match self {
            Crc::Text(s) => s.parse().ok(),
            Crc::Number(n) => Some(*n),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    data: String,
    data_crc32c: Option<Crc>,
}

#[derive(Deserialize)]
struct Accessed {
    name: String,
    payload: Payload,
}

impl Accessed {
    fn number(&self) -> u64 {
        version_number(&self.name)
    }
}

#[derive(Deserialize, Clone, Default)]
struct SecretMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    etag: Option<String>,
}

/// `projects/{p}/secrets/{id}` (as Pub/Sub notifications name secrets) → `id`.
pub fn secret_id(name: &str) -> &str {
    match name
        .strip_prefix("projects/")
        .and_then(|r| r.split_once("/secrets/"))
    {
        Some((_, id)) => id.split('/').next().unwrap_or(id),
        None => name,
    }
}

/// Google Secret Manager as a source.
pub struct GcpSmSource {
    project: Project,
}

impl GcpSmSource {
    pub fn new(credentials: GoogleCredentials, endpoint: Option<&str>, project: &str) -> Self {
        GcpSmSource {
            project: Project::new(credentials, endpoint, project),
        }
    }
}

#[async_trait::async_trait]
impl Source for GcpSmSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        let id = secret_id(secret);
        let Some((number, data)) = self.project.access_latest(id).await.map_err(|e| {
            e.into_failure(format_args!(
                "reading source secret {id:?} from Google Secret Manager"
            ))
        })?
        else {
            return Ok(None);
        };
        let value = match String::from_utf8(data) {
            Ok(text) => SecretValue::text(text),
            Err(bytes) => SecretValue::binary(bytes.into_bytes()),
        };
        Ok(Some(SourceSecret {
            name: id.to_string(),
            version: number.to_string(),
            created: None,
            value,
        }))
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        let id = secret_id(secret);
        // Through `versions.access`, the one permission a source needs
        // (`roles/secretmanager.secretAccessor` cannot get a version's metadata).
        let latest = self.project.access_latest(id).await;
        match latest {
            Ok(latest) => Ok(latest.map(|(n, _)| n.to_string())),
            Err(CallError::Google(e)) if e.is("NOT_FOUND") => Ok(None),
            Err(e) => Err(e.into_failure(format_args!("reading the latest version of {id:?}"))),
        }
    }

    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        let listed = self
            .project
            .list(page)
            .await
            .map_err(|e| e.into_failure("listing the secrets of Google Secret Manager"))?;
        Ok(Listing {
            names: listed
                .secrets
                .iter()
                .map(|s| secret_id(&s.name).to_string())
                .collect(),
            next: listed.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    async fn canonical_name(&self, secret: &str) -> Result<Option<String>, Failure> {
        Ok((secret_id(secret) != secret).then(|| secret_id(secret).to_string()))
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        self.project.credentials.obtain().await
    }
}

/// What `inspect` saw of a secret, kept for the `write` that follows it.
struct Seen {
    /// The labels and annotations to preserve, and the etag that makes the
    /// marks patch conditional.
    meta: SecretMeta,
    /// The latest version's number (0: no version yet) when it was read with
    /// `meta`: the next `addVersion` is then predicted to add the one after it.
    latest: Option<u64>,
}

/// Entries kept at most; inspected names that are never written do not pile up.
const MAX_REMEMBERED: usize = 1024;

/// Google Secret Manager as a destination in one project.
pub struct GcpSmDestination {
    project: Project,
    replication: Value,
    seen: Mutex<HashMap<String, Seen>>,
}

impl GcpSmDestination {
    pub fn new(
        credentials: GoogleCredentials,
        config: &crate::config::GcpDestinationConfig,
    ) -> Self {
        let replication = if config.replication_locations.is_empty() {
            json!({"automatic": {}})
        } else {
            let replicas: Vec<Value> = config
                .replication_locations
                .iter()
                .map(|l| json!({"location": l}))
                .collect();
            json!({"userManaged": {"replicas": replicas}})
        };
        GcpSmDestination {
            project: Project::new(
                credentials,
                config.secretmanager_endpoint.as_deref(),
                &config.project,
            ),
            replication,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn remember(&self, name: &str, seen: Seen) {
        let mut remembered = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(name.to_string(), seen);
    }

    fn recall(&self, name: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }

    /// fedsync's annotations for `marks` held by Google version `version`, over
    /// the secret's other annotations and the rule's tags.
    fn annotations(
        existing: &BTreeMap<String, String>,
        write: &Write<'_>,
        version: u64,
    ) -> BTreeMap<String, String> {
        let mut annotations = existing.clone();
        for (k, v) in write.tags {
            annotations.insert(annotation_key(k), v.clone());
        }
        annotations.insert(ANNOTATION_SOURCE.into(), write.marks.source_ref.clone());
        annotations.insert(ANNOTATION_SOURCE_VERSION.into(), write.marks.version_mark());
        annotations.insert(ANNOTATION_VERSION.into(), version.to_string());
        match &write.marks.value_hash {
            Some(hash) => annotations.insert(ANNOTATION_VALUE_HASH.into(), hash.clone()),
            // A hash from an earlier write would describe another value.
            None => annotations.remove(ANNOTATION_VALUE_HASH),
        };
        annotations
    }

    /// The `addVersion` body; the encoded value moves into it, and is wiped with it.
    fn payload(value: &SecretValue) -> SecretBody {
        let data = value.expose_bytes();
        let mut body = json!({"payload": {"dataCrc32c": crc32c::crc32c(data).to_string()}});
        body["payload"]["data"] = Value::String(BASE64.encode(data));
        SecretBody(body)
    }

    async fn create(&self, write: &Write<'_>) -> Result<Written, Failure> {
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
        let body = json!({
            "replication": self.replication,
            "labels": labels,
            "annotations": Self::annotations(&BTreeMap::new(), write, 1),
        });
        let created = self
            .project
            .call(
                Method::POST,
                &format!("secrets?secretId={}", write.name),
                Some(&body),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(CallError::Google(e)) if e.is("ALREADY_EXISTS") => return Ok(Written::NameTaken),
            Err(e) => return Err(e.into_failure(format_args!("creating {:?}", write.name))),
        }
        let added: VersionMeta = self
            .project
            .call_json(
                Method::POST,
                &format!("secrets/{}:addVersion", write.name),
                Some(&*Self::payload(write.value)),
            )
            .await
            .map_err(|e| {
                e.into_failure(format_args!("adding the first version of {:?}", write.name))
            })?;
        if added.number() != 1 {
            // Someone added a version meanwhile: say which one holds this value.
            self.patch_marks(
                write,
                &SecretMeta {
                    labels,
                    ..Default::default()
                },
                added.number(),
            )
            .await?;
        }
        Ok(Written::Done)
    }

    /// `addVersion` with the write's value; the number of the version added.
    async fn add_version(&self, write: &Write<'_>) -> Result<u64, Failure> {
        let path = format!("secrets/{}:addVersion", write.name);
        let body = Self::payload(write.value);
        let added: VersionMeta = self
            .project
            .call_json(Method::POST, &path, Some(&*body))
            .await
            .map_err(|e| e.into_failure(format_args!("adding a version to {:?}", write.name)))?;
        Ok(added.number())
    }

    /// Patches fedsync's marks naming Google version `version` over the labels
    /// and annotations of `seen`, conditional on its etag; the secret as patched.
    async fn patch_marks(
        &self,
        write: &Write<'_>,
        seen: &SecretMeta,
        version: u64,
    ) -> Result<SecretMeta, Failure> {
        let mut labels = seen.labels.clone();
        labels.insert(LABEL_MANAGED_BY.into(), MANAGER.into());
        let annotations = Self::annotations(&seen.annotations, write, version);
        self.patch(write.name, &labels, &annotations, seen.etag.as_deref())
            .await
    }

    /// Sets a secret's labels and annotations, conditional on `etag` when
    /// given; the secret as patched (with its new etag).
    async fn patch(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        etag: Option<&str>,
    ) -> Result<SecretMeta, Failure> {
        let mut body = json!({"labels": labels, "annotations": annotations});
        if let Some(etag) = etag {
            body["etag"] = json!(etag);
        }
        let path = format!("secrets/{name}?updateMask=labels,annotations");
        self.project
            .call_json(Method::PATCH, &path, Some(&body))
            .await
            .map_err(|e| match e {
                CallError::Google(g) if g.is("ABORTED") || g.is("FAILED_PRECONDITION") => Failure::new(
                    FailureClass::Unavailable,
                    format!("another writer changed {name:?} at the same time (etag mismatch); retrying will settle it"),
                ),
                e => e.into_failure(format_args!("updating the marks of {name:?}")),
            })
    }

    async fn update(&self, write: &Write<'_>, seen: Seen) -> Result<Written, Failure> {
        // fedsync's own secret whose marks do not match its latest version: an
        // earlier write may have landed its value but not its marks. If the latest
        // version holds this very value, only the marks are written.
        let unverified = matches!(write.state,
            DestinationState::Present { managed: true, marks: None, source_ref: Some(r) } if *r == write.marks.source_ref);
        if unverified
            && let Ok(Some((number, data))) = self.project.access_latest(write.name).await
            && zeroize::Zeroizing::new(data).as_slice() == write.value.expose_bytes()
        {
            return self
                .patch_marks(write, &seen.meta, number)
                .await
                .map(|_| Written::Done);
        }
        match seen.latest {
            Some(latest) if !unverified => self.add_and_mark(write, seen.meta, latest + 1).await,
            // The latest number is not known, or the marks are unverified (an
            // earlier write may be half done): the version first, then the marks
            // naming it. If the marks patch fails, the next attempt finds the
            // value already there (above) and writes only the marks.
            _ => {
                let added = self.add_version(write).await?;
                self.patch_marks(write, &seen.meta, added).await?;
                Ok(Written::Done)
            }
        }
    }

    /// The common update, in one round trip: `addVersion`, and at the same time
    /// the marks patch naming `predicted`, the number the version is expected
    /// to get (the latest `inspect` read, plus one). Adding a version leaves
    /// the secret's etag as it is (a request changes only the etag of the
    /// resource it applies to), so the patch stays conditional on the etag
    /// `inspect` saw.
    ///
    /// Marks may so, for a moment or after a failure, name a version that does
    /// not hold this value. That is safe because `inspect` trusts marks only
    /// when the version they name is the latest one: marks naming a version
    /// that does not exist, or one that a later version outdates, read as
    /// unverified, and the next attempt compares the latest value before
    /// writing (see [`Self::update`]). One case escapes: marks left naming the
    /// predicted number without fedsync's version, which another writer then
    /// adds before fedsync writes again, are trusted as naming the latest (until
    /// the source changes, or a reconcile pass checks the value hash). Marks are
    /// left so when adding fails and putting them back fails too (the put-back
    /// is refused outright when adding spent the sync's deadline), when both
    /// calls fail but the patch's lost answer hid that it landed, or when the
    /// sync is abandoned between the two answers.
    async fn add_and_mark(
        &self,
        write: &Write<'_>,
        seen: SecretMeta,
        predicted: u64,
    ) -> Result<Written, Failure> {
        let (added, marked) = tokio::join!(
            self.add_version(write),
            self.patch_marks(write, &seen, predicted)
        );
        match (added, marked) {
            (Ok(added), Ok(_)) if added == predicted => Ok(Written::Done),
            // Another writer added a version meanwhile: name the one that holds
            // this value (conditional on the etag the first patch left). If this
            // fails, the marks name an outdated version: unverified, as above.
            (Ok(added), Ok(marked)) => {
                self.patch_marks(write, &marked, added).await?;
                Ok(Written::Done)
            }
            // The value is there, the marks still name the previous version, as
            // when the sequential order's marks patch fails: the next attempt
            // finds the value (unverified) and writes only the marks.
            (Ok(_), Err(failure)) => Err(failure),
            // The marks claim a version that was not added: put the previous
            // labels and annotations back. Should that fail too, the marks name a
            // version that does not exist, unverified until one does (if the
            // `addVersion` did land and only its answer was lost, they are right).
            (Err(failure), Ok(marked)) => {
                self.restore(write.name, &seen, &marked).await;
                Err(failure)
            }
            (Err(failure), Err(_)) => Err(failure),
        }
    }

    /// Best effort: puts back the labels and annotations of `seen` over the
    /// marks patch that answered `marked`, conditional on its etag.
    async fn restore(&self, name: &str, seen: &SecretMeta, marked: &SecretMeta) {
        let restored = self
            .patch(
                name,
                &seen.labels,
                &seen.annotations,
                marked.etag.as_deref(),
            )
            .await;
        if let Err(failure) = restored {
            tracing::warn!(
                secret = name,
                error = %failure.message,
                "adding a version failed and the marks naming it could not be put back; the next sync reads them as unverified while no such version is the latest"
            );
        }
    }

    /// The secret's labels, annotations and etag, without its latest version.
    async fn fetch(&self, name: &str) -> Result<Seen, Failure> {
        let path = format!("secrets/{name}");
        let meta = self
            .project
            .call_json::<SecretMeta>(Method::GET, &path, None)
            .await;
        let meta = meta.map_err(|e| e.into_failure(format_args!("reading {name:?}")))?;
        Ok(Seen { meta, latest: None })
    }
}

/// A tag key as an annotation key: 1-63 characters, letters and digits at the
/// ends, `-_.` inside; anything else becomes `-`.
fn annotation_key(key: &str) -> String {
    let mut k: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    k.truncate(63);
    let k = k.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if k.is_empty() {
        "tag".into()
    } else {
        k.to_string()
    }
}

#[async_trait::async_trait]
impl Destination for GcpSmDestination {
    async fn inspect(&self, name: &str) -> Result<DestinationState, Failure> {
        let path = format!("secrets/{name}");
        let (meta, latest) = tokio::join!(
            self.project
                .call_json::<SecretMeta>(Method::GET, &path, None),
            self.project.latest_version(name)
        );
        let meta = match meta {
            Ok(m) => m,
            Err(CallError::Google(e)) if e.is("NOT_FOUND") => return Ok(DestinationState::Absent),
            Err(e) => return Err(e.into_failure(format_args!("reading {name:?}"))),
        };
        let latest = match latest {
            Ok(l) => l,
            Err(e) => {
                return Err(e.into_failure(format_args!("reading the latest version of {name:?}")));
            }
        };
        let managed = meta.labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGER);
        let source_ref = meta
            .annotations
            .get(ANNOTATION_SOURCE)
            .cloned()
            .filter(|_| managed);
        let held = meta
            .annotations
            .get(ANNOTATION_VERSION)
            .and_then(|v| v.parse::<u64>().ok());
        let marks = match (&source_ref, meta.annotations.get(ANNOTATION_SOURCE_VERSION)) {
            (Some(r), Some(v)) if held.is_some() && held == latest => Some(Marks {
                value_hash: meta.annotations.get(ANNOTATION_VALUE_HASH).cloned(),
                ..Marks::read(r.clone(), v)
            }),
            _ => None,
        };
        let latest = Some(latest.unwrap_or(0));
        self.remember(name, Seen { meta, latest });
        Ok(DestinationState::Present {
            managed,
            marks,
            source_ref,
        })
    }

    async fn write(&self, write: Write<'_>) -> Result<Written, Failure> {
        match write.state {
            DestinationState::Absent => self.create(&write).await,
            _ => {
                let seen = match self.recall(write.name) {
                    Some(seen) => seen,
                    None => self.fetch(write.name).await?,
                };
                self.update(&write, seen).await
            }
        }
    }

    async fn read_value(&self, name: &str) -> Result<Option<SecretValue>, Failure> {
        let accessed = self.project.access_latest(name).await;
        let accessed = accessed.map_err(|e| e.into_failure(format_args!("reading {name:?}")))?;
        Ok(accessed.map(|(_, data)| SecretValue::binary(data)))
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.project
            .call(Method::DELETE, &format!("secrets/{name}"), None)
            .await
            .map(|_| ())
            .map_err(|e| e.into_failure(format_args!("deleting {name:?}")))
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE_BYTES
    }

    fn exchanges(&self) -> u64 {
        self.project.credentials.exchanges()
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        self.project.credentials.obtain().await
    }

    async fn probe(&self, name: &str) -> Result<Probed, Failure> {
        let read = ProbeRead {
            call: format!("secrets.get {name:?}"),
            permission: "secretmanager.secrets.get",
            reader: self.project.credentials.principal(),
            grant: format!(
                "grant it a role that holds it on project {:?} (roles/secretmanager.admin does)",
                self.project.id
            ),
        };
        let path = format!("secrets/{name}");
        let got = match self
            .project
            .call_json::<Value>(Method::GET, &path, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(CallError::Google(e)) if e.is("NOT_FOUND") => Ok(false),
            Err(e) => Err(e.into_failure(&read.call)),
        };
        read.outcome(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_names_become_secret_ids() {
        assert_eq!(
            secret_id("projects/827585297303/secrets/test-secret"),
            "test-secret"
        );
        assert_eq!(secret_id("projects/p/secrets/s/versions/2"), "s");
        assert_eq!(secret_id("plain-id"), "plain-id");
    }

    #[test]
    fn version_numbers_come_from_resource_names() {
        assert_eq!(version_number("projects/1/secrets/s/versions/12"), 12);
    }

    #[test]
    fn tag_keys_become_valid_annotation_keys() {
        assert_eq!(annotation_key("team"), "team");
        assert_eq!(annotation_key("cost center/"), "cost-center");
        assert_eq!(annotation_key("---"), "tag");
        assert_eq!(annotation_key(&"k".repeat(80)).len(), 63);
    }

    #[test]
    fn payloads_carry_the_crc32c_as_a_decimal_string() {
        let body = GcpSmDestination::payload(&SecretValue::text("secret"));
        assert_eq!(body["payload"]["data"], "c2VjcmV0");
        assert_eq!(
            body["payload"]["dataCrc32c"],
            crc32c::crc32c(b"secret").to_string()
        );
    }
}
