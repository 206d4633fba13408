//! Secret Manager v1 (reference D.3 and D.5): global secrets and their versions, behind
//! bearer tokens and IAM.
//!
//! Methods: `secrets.create`, `.list`, `.get`, `.patch` (`labels`, `annotations`),
//! `.delete`, `.addVersion`, and `versions.get`, `.list`, `.access`, `.enable`, `.disable`,
//! `.destroy`. Projects are known by ID and number; requests may use either, answers name
//! resources `projects/{NUMBER}/…`. The list methods page as the `paging` module
//! describes and answer newest first (`ListSecretsResponse.secrets` and
//! `ListSecretVersionsResponse.versions` are "sorted in reverse by create_time"); secrets
//! created in the same instant follow in ID order (inferred). Features a call could use
//! but this emulator does not emulate (regional secrets, topics, rotation, expiry, aliases,
//! CMEK on the secret, tags, IAM policy methods, and the `filter` of the list methods: any
//! non-empty filter) answer 501 `UNIMPLEMENTED`, so a test depending on them fails instead
//! of passing against a fake.
//!
//! Every call goes through, in order: injected races (another writer's version added
//! just before); injected faults; the bearer token (401
//! `UNAUTHENTICATED` unless it is one of ours and unexpired, 403 without the
//! `cloud-platform` scope); query parameters and JSON shape (400, unknown names refused);
//! resource-name format (400); IAM (403 `PERMISSION_DENIED`, `Permission '…' denied for
//! resource '…' (or it may not exist).` — also when the secret does not exist, which is why
//! a caller without a grant never sees 404); request semantics (400); existence and state
//! (404, 409 `ALREADY_EXISTS`, 400 `FAILED_PRECONDITION`); the etag precondition.
//!
//! Decisions where the reference is silent:
//! - An etag that does not match (patch body `etag`, delete `?etag=`, version
//!   enable/disable/destroy body `etag`) is 409 `ABORTED`, as AIP-154 requires (the
//!   reference lists FAILED_PRECONDITION or ABORTED as unverified).
//! - A secret's etag changes on every patch; adding a version does not change it (the
//!   version is a separate resource with its own etag).
//! - An empty payload (`payload.data` absent or empty) is refused, 400 `INVALID_ARGUMENT`.
//! - `latest` is the highest version number whatever its state.
//! - Grants are made per project or per secret (a secret's grants die with it).

mod paging;
mod rules;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::auth::{AccessTokens, CLOUD_PLATFORM, Principal};
use super::proto_json::{Field, Fields, parse_body, percent_decode, query_params, rfc3339};
use super::status::{GoogleError, json_ok};
use crate::server::Server;

pub use paging::MAX_PAGE_SIZE;
pub use rules::{MAX_ANNOTATIONS_BYTES, MAX_LABELS, MAX_PAYLOAD_BYTES};

const SERVICE: &str = "secretmanager.googleapis.com";

/// A Secret Manager API method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretManagerMethod {
    CreateSecret,
    /// `secrets.list`, on the project.
    ListSecrets,
    GetSecret,
    UpdateSecret,
    DeleteSecret,
    AddSecretVersion,
    GetSecretVersion,
    ListSecretVersions,
    AccessSecretVersion,
    EnableSecretVersion,
    DisableSecretVersion,
    DestroySecretVersion,
}

impl SecretManagerMethod {
    /// The IAM permission the method needs.
    pub fn permission(self) -> &'static str {
        match self {
            Self::CreateSecret => "secretmanager.secrets.create",
            Self::ListSecrets => "secretmanager.secrets.list",
            Self::GetSecret => "secretmanager.secrets.get",
            Self::UpdateSecret => "secretmanager.secrets.update",
            Self::DeleteSecret => "secretmanager.secrets.delete",
            Self::AddSecretVersion => "secretmanager.versions.add",
            Self::GetSecretVersion => "secretmanager.versions.get",
            Self::ListSecretVersions => "secretmanager.versions.list",
            Self::AccessSecretVersion => "secretmanager.versions.access",
            Self::EnableSecretVersion => "secretmanager.versions.enable",
            Self::DisableSecretVersion => "secretmanager.versions.disable",
            Self::DestroySecretVersion => "secretmanager.versions.destroy",
        }
    }

    /// The request message's fields bound from the query string.
    fn query_fields(self) -> &'static [Field] {
        match self {
            Self::CreateSecret => &[("secretId", "secret_id")],
            Self::UpdateSecret => &[("updateMask", "update_mask")],
            Self::DeleteSecret => &[("etag", "etag")],
            Self::ListSecrets | Self::ListSecretVersions => &[
                ("pageSize", "page_size"),
                ("pageToken", "page_token"),
                ("filter", "filter"),
            ],
            _ => &[],
        }
    }

    fn has_body(self) -> bool {
        matches!(
            self,
            Self::CreateSecret
                | Self::UpdateSecret
                | Self::AddSecretVersion
                | Self::EnableSecretVersion
                | Self::DisableSecretVersion
                | Self::DestroySecretVersion
        )
    }
}

/// A predefined Secret Manager role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretManagerRole {
    /// `roles/secretmanager.admin`: everything.
    Admin,
    /// `roles/secretmanager.secretAccessor`: `versions.access`.
    SecretAccessor,
    /// `roles/secretmanager.viewer`: `secrets.list`, `secrets.get`, `versions.get`,
    /// `versions.list`.
    Viewer,
    /// `roles/secretmanager.secretVersionAdder`: `versions.add`.
    SecretVersionAdder,
    /// `roles/secretmanager.secretVersionManager`: `versions.add`, `.get`, `.list`,
    /// `.enable`, `.disable`, `.destroy`.
    SecretVersionManager,
}

impl SecretManagerRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "roles/secretmanager.admin",
            Self::SecretAccessor => "roles/secretmanager.secretAccessor",
            Self::Viewer => "roles/secretmanager.viewer",
            Self::SecretVersionAdder => "roles/secretmanager.secretVersionAdder",
            Self::SecretVersionManager => "roles/secretmanager.secretVersionManager",
        }
    }

    pub fn allows(self, method: SecretManagerMethod) -> bool {
        use SecretManagerMethod as M;
        match self {
            Self::Admin => true,
            Self::SecretAccessor => method == M::AccessSecretVersion,
            Self::Viewer => matches!(
                method,
                M::ListSecrets | M::GetSecret | M::GetSecretVersion | M::ListSecretVersions
            ),
            Self::SecretVersionAdder => method == M::AddSecretVersion,
            Self::SecretVersionManager => matches!(
                method,
                M::AddSecretVersion
                    | M::GetSecretVersion
                    | M::ListSecretVersions
                    | M::EnableSecretVersion
                    | M::DisableSecretVersion
                    | M::DestroySecretVersion
            ),
        }
    }
}

/// The state of a secret version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    Enabled,
    Disabled,
    Destroyed,
}

impl VersionState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::Destroyed => "DESTROYED",
        }
    }
}

/// One call the emulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretManagerCall {
    pub method: SecretManagerMethod,
    /// The HTTP status answered.
    pub status: u16,
}

/// A secret as stored, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretSnapshot {
    /// `projects/{NUMBER}/secrets/{ID}`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The etag, quotes included.
    pub etag: String,
    /// The `replication` as the API answers it.
    pub replication: Value,
    /// Oldest first.
    pub versions: Vec<VersionSnapshot>,
}

impl SecretSnapshot {
    /// The highest-numbered version.
    pub fn latest(&self) -> Option<&VersionSnapshot> {
        self.versions.last()
    }
}

/// A version as stored, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSnapshot {
    pub number: u64,
    pub state: VersionState,
    /// `None` once destroyed.
    pub data: Option<Vec<u8>>,
    pub crc32c: u32,
    pub client_specified_payload_checksum: bool,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Replica {
    location: String,
    kms_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Replication {
    Automatic { kms_key: Option<String> },
    UserManaged(Vec<Replica>),
}

impl Replication {
    fn to_json(&self) -> Value {
        let cmek = |key: &Option<String>| match key {
            Some(key) => json!({ "customerManagedEncryption": { "kmsKeyName": key } }),
            None => json!({}),
        };
        match self {
            Self::Automatic { kms_key } => json!({ "automatic": cmek(kms_key) }),
            Self::UserManaged(replicas) => {
                let replicas: Vec<Value> = replicas
                    .iter()
                    .map(|r| {
                        let mut replica = cmek(&r.kms_key);
                        replica["location"] = json!(r.location);
                        replica
                    })
                    .collect();
                json!({ "userManaged": { "replicas": replicas } })
            }
        }
    }

    fn status_json(&self) -> Value {
        let cmek = |key: &Option<String>| match key {
            Some(key) => json!({ "customerManagedEncryption": {
                "kmsKeyVersionName": format!("{key}/cryptoKeyVersions/1") } }),
            None => json!({}),
        };
        match self {
            Self::Automatic { kms_key } => json!({ "automatic": cmek(kms_key) }),
            Self::UserManaged(replicas) => {
                let replicas: Vec<Value> = replicas
                    .iter()
                    .map(|r| {
                        let mut replica = cmek(&r.kms_key);
                        replica["location"] = json!(r.location);
                        replica
                    })
                    .collect();
                json!({ "userManaged": { "replicas": replicas } })
            }
        }
    }
}

#[derive(Debug, Clone)]
struct StoredVersion {
    number: u64,
    create_time: SystemTime,
    destroy_time: Option<SystemTime>,
    state: VersionState,
    data: Vec<u8>,
    crc32c: u32,
    client_checksum: bool,
    etag: String,
}

#[derive(Debug, Clone)]
struct StoredSecret {
    create_time: SystemTime,
    replication: Replication,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    etag: String,
    versions: Vec<StoredVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    project_number: String,
    /// `None` for a project-level grant.
    secret: Option<String>,
    member: String,
    role: SecretManagerRole,
}

#[derive(Debug, Default)]
struct Store {
    /// `(id, number)`.
    projects: Vec<(String, String)>,
    grants: Vec<Grant>,
    /// Keyed by `(project number, secret id)`.
    secrets: BTreeMap<(String, String), StoredSecret>,
    /// `None`: a call let through before the faults that follow.
    faults: HashMap<SecretManagerMethod, VecDeque<Option<GoogleError>>>,
    /// Versions another writer adds just before a call: `(project number, secret, data)`.
    races: HashMap<SecretManagerMethod, VecDeque<(String, String, Vec<u8>)>>,
    calls: Vec<SecretManagerCall>,
    last_etag: u64,
}

impl Store {
    /// The number of a project named by ID or number.
    fn project_number(&self, project: &str) -> Option<String> {
        self.projects
            .iter()
            .find(|(id, number)| id == project || number == project)
            .map(|(_, number)| number.clone())
    }

    /// A fresh etag, quoted like Google's (`"\"16151a2f0e8b3f\""` in JSON): microseconds
    /// since the epoch in hex, strictly increasing.
    fn next_etag(&mut self) -> String {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default();
        self.last_etag = micros.max(self.last_etag + 1);
        format!("\"{:x}\"", self.last_etag)
    }

    fn is_allowed(
        &self,
        principal: &Principal,
        number: &str,
        secret: Option<&str>,
        method: SecretManagerMethod,
    ) -> bool {
        self.grants.iter().any(|grant| {
            grant.project_number == number
                && (grant.secret.is_none() || grant.secret.as_deref() == secret)
                && grant.role.allows(method)
                && principal.is_member(&grant.member)
        })
    }
}

#[derive(Debug)]
struct SmState {
    tokens: AccessTokens,
    store: Mutex<Store>,
}

impl SmState {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The Secret Manager emulator on `127.0.0.1`.
#[derive(Debug)]
pub struct SecretManager {
    state: Arc<SmState>,
    server: Server,
}

impl SecretManager {
    /// Starts with no project; accepts the tokens in `tokens`.
    pub async fn start(tokens: &AccessTokens) -> Self {
        let state = Arc::new(SmState {
            tokens: tokens.clone(),
            store: Mutex::default(),
        });
        let router_state = Arc::clone(&state);
        let server =
            Server::start_api(|_| Router::new().fallback(handle).with_state(router_state)).await;
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT` (in place of `https://secretmanager.googleapis.com`).
    pub fn endpoint(&self) -> String {
        self.server.base_url()
    }

    /// Makes a project known by `id` and `number`.
    pub fn add_project(&self, id: &str, number: &str) {
        assert!(
            rules::is_project(id) && number.bytes().all(|b| b.is_ascii_digit()),
            "invalid project {id} / {number}"
        );
        self.state
            .store()
            .projects
            .push((id.to_owned(), number.to_owned()));
    }

    fn number(&self, project: &str) -> String {
        self.state
            .store()
            .project_number(project)
            .unwrap_or_else(|| panic!("unknown project {project}: call add_project first"))
    }

    /// Grants `role` on the whole project to `member` (`principal://…`,
    /// `principalSet://…/*` or `serviceAccount:…`).
    pub fn grant(&self, project: &str, member: &str, role: SecretManagerRole) {
        self.add_grant(project, None, member, role);
    }

    /// Grants `role` on one secret to `member`; the grant is dropped with the secret.
    pub fn grant_on_secret(
        &self,
        project: &str,
        secret: &str,
        member: &str,
        role: SecretManagerRole,
    ) {
        self.add_grant(project, Some(secret), member, role);
    }

    fn add_grant(
        &self,
        project: &str,
        secret: Option<&str>,
        member: &str,
        role: SecretManagerRole,
    ) {
        let grant = Grant {
            project_number: self.number(project),
            secret: secret.map(str::to_owned),
            member: member.to_owned(),
            role,
        };
        self.state.store().grants.push(grant);
    }

    /// Removes every grant of `role` to `member` in the project (its secrets included).
    pub fn revoke(&self, project: &str, member: &str, role: SecretManagerRole) {
        let number = self.number(project);
        self.state
            .store()
            .grants
            .retain(|g| !(g.project_number == number && g.member == member && g.role == role));
    }

    /// Creates a secret directly (automatic replication), without HTTP or IAM.
    ///
    /// # Panics
    /// If it exists or its ID, labels or annotations break the API's rules.
    pub fn create_secret(
        &self,
        project: &str,
        secret: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) {
        let number = self.number(project);
        let to_map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (labels, annotations) = (to_map(labels), to_map(annotations));
        assert!(rules::is_secret_id(secret), "invalid secret id {secret}");
        rules::check_labels(&labels).expect("valid labels");
        rules::check_annotations(&annotations).expect("valid annotations");
        let mut store = self.state.store();
        let etag = store.next_etag();
        let previous = store.secrets.insert(
            (number, secret.to_owned()),
            StoredSecret {
                create_time: SystemTime::now(),
                replication: Replication::Automatic { kms_key: None },
                labels,
                annotations,
                etag,
                versions: Vec::new(),
            },
        );
        assert!(previous.is_none(), "secret {secret} already exists");
    }

    /// Adds an enabled version directly; returns its number.
    ///
    /// # Panics
    /// If the secret does not exist.
    pub fn add_version(&self, project: &str, secret: &str, data: &[u8]) -> u64 {
        let number = self.number(project);
        push_version(&mut self.state.store(), &number, secret, data)
            .unwrap_or_else(|| panic!("no secret {secret}"))
    }

    /// Before serving the next call to `method`, adds an enabled version holding
    /// `data` to `secret` directly, as another writer racing the caller would (the
    /// race is spent even if the secret is gone by then).
    pub fn add_version_before_next(
        &self,
        method: SecretManagerMethod,
        project: &str,
        secret: &str,
        data: &[u8],
    ) {
        let number = self.number(project);
        self.state
            .store()
            .races
            .entry(method)
            .or_default()
            .push_back((number, secret.to_owned(), data.to_vec()));
    }

    /// Sets a version's state directly (destroying drops its data).
    ///
    /// # Panics
    /// If the secret or version does not exist.
    pub fn set_version_state(
        &self,
        project: &str,
        secret: &str,
        version: u64,
        state: VersionState,
    ) {
        let number = self.number(project);
        let mut store = self.state.store();
        let etag = store.next_etag();
        let stored = store
            .secrets
            .get_mut(&(number, secret.to_owned()))
            .unwrap_or_else(|| panic!("no secret {secret}"));
        let version = stored
            .versions
            .iter_mut()
            .find(|v| v.number == version)
            .unwrap_or_else(|| panic!("no version {version}"));
        set_state(version, state, etag);
    }

    /// Deletes a secret directly; false if it did not exist.
    pub fn delete_secret(&self, project: &str, secret: &str) -> bool {
        let number = self.number(project);
        let mut store = self.state.store();
        remove_secret(&mut store, &number, secret)
    }

    /// A secret as stored, if it exists.
    pub fn secret(&self, project: &str, secret: &str) -> Option<SecretSnapshot> {
        let number = self.number(project);
        let store = self.state.store();
        let stored = store.secrets.get(&(number.clone(), secret.to_owned()))?;
        Some(SecretSnapshot {
            name: format!("projects/{number}/secrets/{secret}"),
            labels: stored.labels.clone(),
            annotations: stored.annotations.clone(),
            etag: stored.etag.clone(),
            replication: stored.replication.to_json(),
            versions: stored
                .versions
                .iter()
                .map(|v| VersionSnapshot {
                    number: v.number,
                    state: v.state,
                    data: (v.state != VersionState::Destroyed).then(|| v.data.clone()),
                    crc32c: v.crc32c,
                    client_specified_payload_checksum: v.client_checksum,
                    etag: v.etag.clone(),
                })
                .collect(),
        })
    }

    /// The IDs of the project's secrets, sorted.
    pub fn secret_ids(&self, project: &str) -> Vec<String> {
        let number = self.number(project);
        self.state
            .store()
            .secrets
            .keys()
            .filter(|(n, _)| *n == number)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Answers the next `count` calls to `method` with `error`, before authenticating them.
    pub fn fail_next(&self, method: SecretManagerMethod, count: usize, error: GoogleError) {
        self.state
            .store()
            .faults
            .entry(method)
            .or_default()
            .extend(std::iter::repeat_n(Some(error), count));
    }

    /// Lets the next `passed` calls to `method` through (after the faults already
    /// queued), then answers one more with `error`, before authenticating it.
    pub fn fail_after(&self, method: SecretManagerMethod, passed: usize, error: GoogleError) {
        let mut store = self.state.store();
        let faults = store.faults.entry(method).or_default();
        faults.extend(std::iter::repeat_n(None, passed));
        faults.push_back(Some(error));
    }

    /// Drops the faults and races not served yet.
    pub fn clear_faults(&self) {
        let mut store = self.state.store();
        store.faults.clear();
        store.races.clear();
    }

    /// How many calls to `method` were answered (refusals included).
    pub fn calls(&self, method: SecretManagerMethod) -> usize {
        self.state
            .store()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Every call answered so far, oldest first.
    pub fn call_log(&self) -> Vec<SecretManagerCall> {
        self.state.store().calls.clone()
    }
}

/// Adds an enabled version holding `data`, without a client checksum; its number, or
/// `None` if the secret does not exist.
fn push_version(store: &mut Store, number: &str, secret: &str, data: &[u8]) -> Option<u64> {
    let etag = store.next_etag();
    let stored = store
        .secrets
        .get_mut(&(number.to_owned(), secret.to_owned()))?;
    let version = stored.versions.last().map_or(1, |v| v.number + 1);
    stored.versions.push(StoredVersion {
        number: version,
        create_time: SystemTime::now(),
        destroy_time: None,
        state: VersionState::Enabled,
        data: data.to_vec(),
        crc32c: crc32c::crc32c(data),
        client_checksum: false,
        etag,
    });
    Some(version)
}

fn set_state(version: &mut StoredVersion, state: VersionState, etag: String) {
    version.state = state;
    version.etag = etag;
    if state == VersionState::Destroyed {
        version.data.clear();
        version.destroy_time = Some(SystemTime::now());
    }
}

fn remove_secret(store: &mut Store, number: &str, secret: &str) -> bool {
    store
        .grants
        .retain(|g| !(g.project_number == number && g.secret.as_deref() == Some(secret)));
    store
        .secrets
        .remove(&(number.to_owned(), secret.to_owned()))
        .is_some()
}

/// A request bound to a method and the resource names in its URL (as given, decoded).
#[derive(Debug)]
struct Route {
    method: SecretManagerMethod,
    project: String,
    secret: Option<String>,
    version: Option<String>,
}

impl Route {
    fn parse(http_method: &Method, path: &str) -> Result<Self, GoogleError> {
        let rest = path
            .strip_prefix("/v1/")
            .ok_or_else(GoogleError::method_not_found)?;
        let mut segments: Vec<&str> = rest.split('/').collect();
        let last = segments.pop().unwrap_or_default();
        let (last, verb) = match last.split_once(':') {
            Some((last, verb)) => (last, Some(verb)),
            None => (last, None),
        };
        segments.push(last);
        let decoded: Vec<String> = segments
            .iter()
            .map(|s| percent_decode(s))
            .collect::<Option<_>>()
            .ok_or_else(GoogleError::method_not_found)?;
        let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
        use SecretManagerMethod as M;
        let get = *http_method == Method::GET;
        let post = *http_method == Method::POST;
        let (method, project, secret, version) = match (parts.as_slice(), verb) {
            (["projects", p, "secrets"], None) if post => (M::CreateSecret, p, None, None),
            (["projects", p, "secrets"], None) if get => (M::ListSecrets, p, None, None),
            (["projects", p, "secrets", s], None) if get => (M::GetSecret, p, Some(s), None),
            (["projects", p, "secrets", s], None) if *http_method == Method::PATCH => {
                (M::UpdateSecret, p, Some(s), None)
            }
            (["projects", p, "secrets", s], None) if *http_method == Method::DELETE => {
                (M::DeleteSecret, p, Some(s), None)
            }
            (["projects", p, "secrets", s], Some("addVersion")) if post => {
                (M::AddSecretVersion, p, Some(s), None)
            }
            (
                ["projects", _, "secrets", _],
                Some("getIamPolicy" | "setIamPolicy" | "testIamPermissions"),
            ) => {
                return Err(GoogleError::unimplemented(
                    "The IAM policy methods are not emulated: grant roles through the test \
                     harness.",
                ));
            }
            (["projects", p, "secrets", s, "versions"], None) if get => {
                (M::ListSecretVersions, p, Some(s), None)
            }
            (["projects", p, "secrets", s, "versions", v], None) if get => {
                (M::GetSecretVersion, p, Some(s), Some(v))
            }
            (["projects", p, "secrets", s, "versions", v], Some("access")) if get => {
                (M::AccessSecretVersion, p, Some(s), Some(v))
            }
            (["projects", p, "secrets", s, "versions", v], Some(verb)) if post => {
                let method = match verb {
                    "enable" => M::EnableSecretVersion,
                    "disable" => M::DisableSecretVersion,
                    "destroy" => M::DestroySecretVersion,
                    _ => return Err(GoogleError::method_not_found()),
                };
                (method, p, Some(s), Some(v))
            }
            (["projects", _, "locations", ..], _) => {
                return Err(GoogleError::unimplemented(
                    "Regional secrets (projects/*/locations/*) are not emulated.",
                ));
            }
            _ => return Err(GoogleError::method_not_found()),
        };
        Ok(Self {
            method,
            project: (*project).to_owned(),
            secret: secret.map(|s| (*s).to_owned()),
            version: version.map(|v| (*v).to_owned()),
        })
    }

    /// The resource the permission is checked on, as the request named it.
    fn resource(&self) -> String {
        let mut resource = format!("projects/{}", self.project);
        if let Some(secret) = &self.secret {
            resource.push_str(&format!("/secrets/{secret}"));
        }
        if let Some(version) = &self.version {
            resource.push_str(&format!("/versions/{version}"));
        }
        resource
    }

    fn check_names(&self) -> Result<(), GoogleError> {
        let valid = rules::is_project(&self.project)
            && self.secret.as_deref().is_none_or(rules::is_secret_id)
            && self.version.as_deref().is_none_or(rules::is_version_id);
        if valid {
            Ok(())
        } else {
            Err(GoogleError::invalid_argument(format!(
                "Resource ID [{}] is not in a valid format.",
                self.resource()
            )))
        }
    }
}

async fn handle(
    State(state): State<Arc<SmState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = match Route::parse(&method, uri.path()) {
        Ok(route) => route,
        Err(error) => return error.into_response(),
    };
    let fault = {
        let mut store = state.store();
        let race = store
            .races
            .get_mut(&route.method)
            .and_then(VecDeque::pop_front);
        if let Some((number, secret, data)) = race {
            push_version(&mut store, &number, &secret, &data);
        }
        store
            .faults
            .get_mut(&route.method)
            .and_then(VecDeque::pop_front)
            .flatten()
    };
    let outcome = match fault {
        Some(fault) => Err(fault),
        None => serve(&state, &route, uri.query(), &headers, &body),
    };
    let status = match &outcome {
        Ok(_) => 200,
        Err(error) => error.code,
    };
    state.store().calls.push(SecretManagerCall {
        method: route.method,
        status,
    });
    match outcome {
        Ok(body) => json_ok(&body),
        Err(error) => error.into_response(),
    }
}

const SECRET_FIELDS: &[Field] = &[
    ("name", "name"),
    ("replication", "replication"),
    ("createTime", "create_time"),
    ("labels", "labels"),
    ("topics", "topics"),
    ("expireTime", "expire_time"),
    ("ttl", "ttl"),
    ("etag", "etag"),
    ("rotation", "rotation"),
    ("versionAliases", "version_aliases"),
    ("annotations", "annotations"),
    ("versionDestroyTtl", "version_destroy_ttl"),
    ("customerManagedEncryption", "customer_managed_encryption"),
    ("tags", "tags"),
];
/// Real `Secret` fields whose behaviour is not emulated.
const UNEMULATED_SECRET_FIELDS: &[&str] = &[
    "topics",
    "expireTime",
    "ttl",
    "rotation",
    "versionAliases",
    "versionDestroyTtl",
    "customerManagedEncryption",
    "tags",
];

fn serve(
    state: &SmState,
    route: &Route,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, GoogleError> {
    let caller = state
        .tokens
        .authenticate(headers, SERVICE, &[CLOUD_PLATFORM])?;
    let params = query_params(query, route.method.query_fields())?;
    let body = if route.method.has_body() {
        parse_body(body)?
    } else {
        json!({})
    };
    route.check_names()?;
    let secret_id = match route.method {
        SecretManagerMethod::ListSecrets => None,
        SecretManagerMethod::CreateSecret => {
            let id = params
                .get("secretId")
                .filter(|id| !id.is_empty())
                .ok_or_else(|| GoogleError::invalid_argument("Field [secret_id] is required."))?;
            if !rules::is_secret_id(id) {
                return Err(GoogleError::invalid_argument(format!(
                    "Resource ID [projects/{}/secrets/{id}] is not in a valid format: a secret ID \
                     must be 1 to 255 characters from [A-Za-z0-9_-].",
                    route.project
                )));
            }
            Some(id.clone())
        }
        _ => route.secret.clone(),
    };
    let mut store = state.store();
    let number = store.project_number(&route.project);
    let secret_scope = secret_id
        .as_deref()
        .filter(|_| route.method != SecretManagerMethod::CreateSecret);
    let allowed = number
        .as_deref()
        .is_some_and(|n| store.is_allowed(&caller.principal, n, secret_scope, route.method));
    if !allowed {
        let resource = route.resource();
        return Err(GoogleError::iam_permission_denied(
            format!(
                "Permission '{}' denied for resource '{resource}' (or it may not exist).",
                route.method.permission()
            ),
            SERVICE,
            route.method.permission(),
            Some(&resource),
        ));
    }
    let number = number.expect("allowed implies a known project");
    use SecretManagerMethod as M;
    if route.method == M::ListSecrets {
        return list_secrets(&store, &number, &params);
    }
    let call = Call {
        store: &mut store,
        number,
        secret: secret_id.expect("every other method names a secret"),
        version: route.version.clone(),
    };
    match route.method {
        M::ListSecrets => unreachable!("answered above"),
        M::CreateSecret => call.create(&body),
        M::GetSecret => call.get(),
        M::UpdateSecret => call.update(&body, params.get("updateMask").map(String::as_str)),
        M::DeleteSecret => call.delete(params.get("etag").map(String::as_str)),
        M::AddSecretVersion => call.add_version(&body),
        M::ListSecretVersions => call.list_versions(&params),
        M::GetSecretVersion => call.get_version(),
        M::AccessSecretVersion => call.access(),
        M::EnableSecretVersion => call.change_state(&body, VersionState::Enabled),
        M::DisableSecretVersion => call.change_state(&body, VersionState::Disabled),
        M::DestroySecretVersion => call.change_state(&body, VersionState::Destroyed),
    }
}

/// `secrets.list`, authorized, on a known project.
fn list_secrets(
    store: &Store,
    number: &str,
    params: &HashMap<String, String>,
) -> Result<Value, GoogleError> {
    refuse_filter(params)?;
    let secrets: Vec<(String, Value)> = store
        .secrets
        .iter()
        .filter(|((n, _), _)| n == number)
        .map(|((_, id), stored)| {
            let key = paging::newest_first_key(since_epoch_nanos(stored.create_time), id);
            (key, secret_json(number, id, stored))
        })
        .collect();
    let page = paging::page(secrets, &format!("projects/{number}/secrets"), params)?;
    Ok(list_response("secrets", page))
}

/// A list response as proto3 JSON writes it: empty fields omitted.
fn list_response(field: &str, page: paging::Page<Value>) -> Value {
    let mut answer = json!({});
    if !page.items.is_empty() {
        answer[field] = json!(page.items);
    }
    if let Some(token) = page.next_page_token {
        answer["nextPageToken"] = json!(token);
    }
    if page.total_size > 0 {
        answer["totalSize"] = json!(page.total_size);
    }
    answer
}

/// The list methods' `filter` language is not emulated: a non-empty filter is refused
/// rather than ignored.
fn refuse_filter(params: &HashMap<String, String>) -> Result<(), GoogleError> {
    if params.get("filter").is_some_and(|f| !f.is_empty()) {
        return Err(GoogleError::unimplemented("List filters are not emulated."));
    }
    Ok(())
}

fn since_epoch_nanos(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A `Secret` as the API answers it.
fn secret_json(number: &str, id: &str, stored: &StoredSecret) -> Value {
    let mut secret = json!({
        "name": format!("projects/{number}/secrets/{id}"),
        "replication": stored.replication.to_json(),
        "createTime": rfc3339(stored.create_time),
        "etag": stored.etag,
    });
    if !stored.labels.is_empty() {
        secret["labels"] = json!(stored.labels);
    }
    if !stored.annotations.is_empty() {
        secret["annotations"] = json!(stored.annotations);
    }
    secret
}

/// An authorized call on one secret of a known project.
struct Call<'a> {
    store: &'a mut Store,
    number: String,
    secret: String,
    version: Option<String>,
}

impl Call<'_> {
    fn name(&self) -> String {
        format!("projects/{}/secrets/{}", self.number, self.secret)
    }

    fn key(&self) -> (String, String) {
        (self.number.clone(), self.secret.clone())
    }

    fn stored(&self) -> Result<&StoredSecret, GoogleError> {
        self.store
            .secrets
            .get(&self.key())
            .ok_or_else(|| GoogleError::not_found(format!("Secret [{}] not found.", self.name())))
    }

    fn secret_json(&self, stored: &StoredSecret) -> Value {
        secret_json(&self.number, &self.secret, stored)
    }

    fn version_json(&self, stored: &StoredSecret, version: &StoredVersion) -> Value {
        let mut json = json!({
            "name": format!("{}/versions/{}", self.name(), version.number),
            "createTime": rfc3339(version.create_time),
            "state": version.state.name(),
            "replicationStatus": stored.replication.status_json(),
            "etag": version.etag,
        });
        if let Some(destroyed) = version.destroy_time {
            json["destroyTime"] = json!(rfc3339(destroyed));
        }
        if version.client_checksum {
            json["clientSpecifiedPayloadChecksum"] = json!(true);
        }
        json
    }

    fn create(self, body: &Value) -> Result<Value, GoogleError> {
        let fields = Fields::parse(body, "", SECRET_FIELDS)?;
        refuse_unemulated(&fields, UNEMULATED_SECRET_FIELDS.iter().copied())?;
        let replication = match fields.message(
            "replication",
            &[("automatic", "automatic"), ("userManaged", "user_managed")],
        )? {
            Some(replication) => parse_replication(&replication)?,
            None => {
                return Err(GoogleError::invalid_argument(
                    "Field [replication] is required.",
                ));
            }
        };
        let labels = fields.string_map("labels")?.unwrap_or_default();
        let annotations = fields.string_map("annotations")?.unwrap_or_default();
        rules::check_labels(&labels)?;
        rules::check_annotations(&annotations)?;
        if self.store.secrets.contains_key(&self.key()) {
            return Err(GoogleError::already_exists(format!(
                "Secret [{}] already exists.",
                self.name()
            )));
        }
        let etag = self.store.next_etag();
        let stored = StoredSecret {
            create_time: SystemTime::now(),
            replication,
            labels,
            annotations,
            etag,
            versions: Vec::new(),
        };
        let answer = self.secret_json(&stored);
        self.store.secrets.insert(self.key(), stored);
        Ok(answer)
    }

    fn get(self) -> Result<Value, GoogleError> {
        let stored = self.stored()?;
        Ok(self.secret_json(stored))
    }

    fn update(self, body: &Value, mask: Option<&str>) -> Result<Value, GoogleError> {
        let fields = Fields::parse(body, "secret", SECRET_FIELDS)?;
        let paths: Vec<&str> = mask
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if paths.is_empty() {
            return Err(GoogleError::invalid_argument(
                "Field [update_mask] is required.",
            ));
        }
        let (mut labels, mut annotations) = (None, None);
        for path in paths {
            match path {
                "labels" => {
                    let value = fields.string_map("labels")?.unwrap_or_default();
                    rules::check_labels(&value)?;
                    labels = Some(value);
                }
                "annotations" => {
                    let value = fields.string_map("annotations")?.unwrap_or_default();
                    rules::check_annotations(&value)?;
                    annotations = Some(value);
                }
                "replication" => {
                    return Err(GoogleError::invalid_argument(
                        "The replication policy of a secret is immutable: update_mask cannot \
                         name \"replication\".",
                    ));
                }
                "name" | "createTime" | "create_time" | "etag" => {
                    return Err(GoogleError::invalid_argument(format!(
                        "The update_mask path \"{path}\" names an output-only field."
                    )));
                }
                other => {
                    let known = SECRET_FIELDS
                        .iter()
                        .find(|(json, proto)| other == *json || other == *proto);
                    return Err(match known {
                        Some((json, _)) => GoogleError::unimplemented(format!(
                            "Updating \"{json}\" is not emulated."
                        )),
                        None => GoogleError::invalid_argument(format!(
                            "Invalid update_mask path \"{other}\": the Secret has no such field."
                        )),
                    });
                }
            }
        }
        let given_etag = fields.string("etag")?.filter(|e| !e.is_empty());
        let name = self.name();
        let key = self.key();
        let etag = self.store.next_etag();
        let stored = self
            .store
            .secrets
            .get_mut(&key)
            .ok_or_else(|| GoogleError::not_found(format!("Secret [{name}] not found.")))?;
        if let Some(given) = given_etag
            && given != stored.etag
        {
            return Err(etag_mismatch(&format!("Secret [{name}]")));
        }
        if let Some(labels) = labels {
            stored.labels = labels;
        }
        if let Some(annotations) = annotations {
            stored.annotations = annotations;
        }
        stored.etag = etag;
        let stored = stored.clone();
        Ok(self.secret_json(&stored))
    }

    fn delete(self, etag: Option<&str>) -> Result<Value, GoogleError> {
        let stored = self.stored()?;
        if let Some(given) = etag.filter(|e| !e.is_empty())
            && given != stored.etag
        {
            return Err(etag_mismatch(&format!("Secret [{}]", self.name())));
        }
        remove_secret(self.store, &self.number, &self.secret);
        Ok(json!({}))
    }

    fn add_version(self, body: &Value) -> Result<Value, GoogleError> {
        let fields = Fields::parse(body, "", &[("parent", "parent"), ("payload", "payload")])?;
        let payload = fields
            .message(
                "payload",
                &[("data", "data"), ("dataCrc32c", "data_crc32c")],
            )?
            .ok_or_else(|| GoogleError::invalid_argument("Field [payload] is required."))?;
        let data = payload.bytes("data")?.unwrap_or_default();
        if data.is_empty() {
            return Err(GoogleError::invalid_argument(
                "Field [payload.data] is required.",
            ));
        }
        if data.len() > MAX_PAYLOAD_BYTES {
            return Err(GoogleError::invalid_argument(format!(
                "Secret payload data must be no larger than 64KiB ({MAX_PAYLOAD_BYTES} bytes); \
                 it is {} bytes.",
                data.len()
            )));
        }
        let crc32c = crc32c::crc32c(&data);
        let given = payload.int64("dataCrc32c")?;
        if let Some(given) = given
            && given != i64::from(crc32c)
        {
            return Err(GoogleError::invalid_argument(
                "Checksum mismatch: payload.data_crc32c is not the CRC32C of payload.data; the \
                 data may have been corrupted in transit.",
            ));
        }
        let etag = self.store.next_etag();
        let name = self.name();
        let stored = self
            .store
            .secrets
            .get_mut(&self.key())
            .ok_or_else(|| GoogleError::not_found(format!("Secret [{name}] not found.")))?;
        let version = StoredVersion {
            number: stored.versions.last().map_or(1, |v| v.number + 1),
            create_time: SystemTime::now(),
            destroy_time: None,
            state: VersionState::Enabled,
            data,
            crc32c,
            client_checksum: given.is_some(),
            etag,
        };
        stored.versions.push(version.clone());
        let stored = stored.clone();
        Ok(self.version_json(&stored, &version))
    }

    /// The version the URL names: a number or `latest` (aliases are not emulated, so none
    /// exists).
    fn find_version(&self) -> Result<(&StoredSecret, &StoredVersion), GoogleError> {
        let requested = self.version.as_deref().expect("a version route");
        let version_name = format!("{}/versions/{requested}", self.name());
        let no_versions = || {
            GoogleError::not_found(format!(
                "Secret [{}] not found or has no versions.",
                self.name()
            ))
        };
        let missing =
            || GoogleError::not_found(format!("Secret Version [{version_name}] not found."));
        let Some(stored) = self.store.secrets.get(&self.key()) else {
            return Err(if requested == "latest" {
                no_versions()
            } else {
                missing()
            });
        };
        let version = if requested == "latest" {
            stored.versions.last().ok_or_else(no_versions)?
        } else {
            let number: u64 = requested.parse().map_err(|_| missing())?;
            stored
                .versions
                .iter()
                .find(|v| v.number == number)
                .ok_or_else(missing)?
        };
        Ok((stored, version))
    }

    fn get_version(self) -> Result<Value, GoogleError> {
        let (stored, version) = self.find_version()?;
        Ok(self.version_json(stored, version))
    }

    fn access(self) -> Result<Value, GoogleError> {
        let (_, version) = self.find_version()?;
        let name = format!("{}/versions/{}", self.name(), version.number);
        if version.state != VersionState::Enabled {
            return Err(GoogleError::failed_precondition(format!(
                "Secret Version [{name}] is in {} state.",
                version.state.name()
            )));
        }
        Ok(json!({
            "name": name,
            "payload": {
                "data": STANDARD.encode(&version.data),
                "dataCrc32c": version.crc32c.to_string(),
            },
        }))
    }

    fn change_state(self, body: &Value, target: VersionState) -> Result<Value, GoogleError> {
        let fields = Fields::parse(body, "", &[("name", "name"), ("etag", "etag")])?;
        let given_etag = fields.string("etag")?.filter(|e| !e.is_empty());
        let (_, version) = self.find_version()?;
        let (number, current, current_etag) = (version.number, version.state, version.etag.clone());
        let name = format!("{}/versions/{number}", self.name());
        if let Some(given) = given_etag
            && given != current_etag
        {
            return Err(etag_mismatch(&format!("Secret Version [{name}]")));
        }
        if current == VersionState::Destroyed {
            return Err(GoogleError::failed_precondition(format!(
                "Secret Version [{name}] is in DESTROYED state."
            )));
        }
        let etag = self.store.next_etag();
        let stored = self
            .store
            .secrets
            .get_mut(&self.key())
            .expect("found above");
        let version = stored
            .versions
            .iter_mut()
            .find(|v| v.number == number)
            .expect("found above");
        set_state(version, target, etag);
        let version = version.clone();
        let stored = stored.clone();
        Ok(self.version_json(&stored, &version))
    }

    fn list_versions(self, params: &HashMap<String, String>) -> Result<Value, GoogleError> {
        refuse_filter(params)?;
        let stored = self.stored()?;
        let versions: Vec<(String, Value)> = stored
            .versions
            .iter()
            .map(|v| {
                let key = paging::newest_first_key(u128::from(v.number), "");
                (key, self.version_json(stored, v))
            })
            .collect();
        let collection = format!("{}/versions", self.name());
        let page = paging::page(versions, &collection, params)?;
        Ok(list_response("versions", page))
    }
}

fn etag_mismatch(resource: &str) -> GoogleError {
    GoogleError::aborted(format!(
        "The etag provided does not match the current etag of {resource}: it was modified \
         since it was read."
    ))
}

fn refuse_unemulated<'a>(
    fields: &Fields<'_>,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), GoogleError> {
    for name in names {
        if fields.has(name) {
            return Err(GoogleError::unimplemented(format!(
                "The Secret field \"{name}\" is not emulated."
            )));
        }
    }
    Ok(())
}

const CMEK_FIELDS: &[Field] = &[("kmsKeyName", "kms_key_name")];

/// A `customerManagedEncryption` whose key must live in `location`.
fn parse_cmek(fields: &Fields<'_>, location: &str) -> Result<Option<String>, GoogleError> {
    let Some(cmek) = fields.message("customerManagedEncryption", CMEK_FIELDS)? else {
        return Ok(None);
    };
    let path = cmek.path("kmsKeyName");
    let key = cmek
        .string("kmsKeyName")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| GoogleError::invalid_argument(format!("Field [{path}] is required.")))?;
    match rules::kms_key_location(key) {
        Some(key_location) if key_location == location => Ok(Some(key.to_owned())),
        Some(_) => Err(GoogleError::invalid_argument(format!(
            "The Cloud KMS key [{key}] must be in location [{location}]."
        ))),
        None => Err(GoogleError::invalid_argument(format!(
            "Invalid value for [{path}]: expected projects/*/locations/*/keyRings/*/cryptoKeys/*."
        ))),
    }
}

fn parse_replication(fields: &Fields<'_>) -> Result<Replication, GoogleError> {
    let automatic = fields.message(
        "automatic",
        &[("customerManagedEncryption", "customer_managed_encryption")],
    )?;
    let user_managed = fields.message("userManaged", &[("replicas", "replicas")])?;
    match (automatic, user_managed) {
        (Some(automatic), None) => Ok(Replication::Automatic {
            kms_key: parse_cmek(&automatic, "global")?,
        }),
        (None, Some(user_managed)) => {
            let replicas = user_managed
                .messages(
                    "replicas",
                    &[
                        ("location", "location"),
                        ("customerManagedEncryption", "customer_managed_encryption"),
                    ],
                )?
                .unwrap_or_default();
            if replicas.is_empty() {
                return Err(GoogleError::invalid_argument(
                    "Field [replication.user_managed.replicas] is required: it cannot be empty.",
                ));
            }
            let mut parsed: Vec<Replica> = Vec::new();
            for replica in &replicas {
                let location = replica.string("location")?.unwrap_or_default();
                if !rules::is_location(location) {
                    return Err(GoogleError::invalid_argument(format!(
                        "Invalid replica location [{location}]: expected a region such as \
                         us-east1."
                    )));
                }
                if parsed.iter().any(|r| r.location == location) {
                    return Err(GoogleError::invalid_argument(format!(
                        "The replica location [{location}] is given more than once."
                    )));
                }
                parsed.push(Replica {
                    location: location.to_owned(),
                    kms_key: parse_cmek(replica, location)?,
                });
            }
            Ok(Replication::UserManaged(parsed))
        }
        _ => Err(GoogleError::invalid_argument(
            "Exactly one of [replication.automatic] and [replication.user_managed] must be set.",
        )),
    }
}
