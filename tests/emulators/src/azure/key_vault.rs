//! An emulator of one Azure Key Vault's secrets data plane (api-version 7.5; also 7.4,
//! 7.6 and 2025-07-01, all published as stable), written from the Key Vault
//! data-plane REST specification (`secrets.json`) and its examples: set, get (latest or
//! one version), list secrets, list versions, update attributes, soft delete, read a
//! deleted secret, recover it (asynchronously) and purge it.
//!
//! Every request must carry `?api-version=` and `Authorization: Bearer <token>`, where the
//! token is one the [`Entra`] emulator issued for `https://vault.azure.net` in the vault's
//! tenant and not yet expired; the token's application must hold an RBAC grant that allows
//! the operation's data action, on the vault or on the secret. Errors have Key Vault's
//! shape, `{"error":{"code","message","innererror":{"code"}}}`.
//!
//! One emulator serves one vault on its own port: its [`KeyVault::url`] is the vault URL a
//! client is configured with. Bundle ids name the vault as Azure does,
//! `https://{vault}.vault.azure.net/secrets/{name}/{version}`; `nextLink` points at the
//! emulator so that a client can follow it.
//!
//! Both lists page alike: `maxresults` 1–25 (default 25, anything else 400
//! `BadParameter`), and a `nextLink` that repeats the request with an opaque `$skiptoken`
//! naming the last item served, `null` on the last page. A page resumes after that item,
//! so secrets created or deleted between pages never make another one appear twice or go
//! missing. `GET /secrets` answers one `SecretItem` per secret (its latest version's
//! attributes, tags and content type; `id` without a version), soft-deleted secrets and
//! secrets still being recovered left out, in name order ignoring case: the order the
//! `$skiptoken` markers of the specification's `GetSecrets` example reveal (inferred).
//! `GET /secrets/{name}/versions` answers oldest first (inferred).
//!
//! Where E.2 is silent, this emulator decides (each marked "inferred" where it is made):
//! the order of checks (injected faults, authentication, api-version, name, RBAC, body,
//! state); the texts of `BadParameter` messages; the value limit, read as 25 KB = 25,600
//! bytes of UTF-8; the tag limits (15 tags, names up to 512 and values up to 256
//! characters); `GET /secrets/{name}/versions` of an unknown name answers an empty list;
//! a disabled version answers 403 `Forbidden`/`SecretDisabled` to a value read; recovery
//! removes the secret from the deleted list at once and makes it readable only after the
//! configured delay, meanwhile reads answer 404 and writes 409 `ObjectIsBeingRecovered`;
//! delete and purge complete at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use url::form_urlencoded;

use super::canonical_guid;
use super::entra::{Entra, EntraState, IssuedToken, KEY_VAULT_RESOURCE};
use super::now_secs;
use crate::server::Server;

/// The api-versions accepted.
pub const API_VERSIONS: &[&str] = &["7.4", "7.5", "7.6", "2025-07-01"];
/// The largest secret value: 25 KB of UTF-8.
pub const MAX_VALUE_BYTES: usize = 25 * 1024;
/// The longest secret name.
pub const MAX_NAME_CHARS: usize = 127;
/// The longest `contentType`.
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// The most tags on one version.
pub const MAX_TAGS: usize = 15;
/// The longest tag name.
pub const MAX_TAG_NAME_CHARS: usize = 512;
/// The longest tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// How long a deleted secret is kept (`recoverableDays`).
pub const RECOVERABLE_DAYS: u64 = 90;
/// The largest page of `GET /secrets` and `GET /secrets/{name}/versions`.
pub const MAX_RESULTS: usize = 25;

const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";
const SERVICE_VERSION: &str = "1.9.0.0";
const NOT_FOUND_HELP: &str = "If you recently deleted this secret you may be able to recover it \
                              using the correct recovery command. For help resolving this \
                              issue, please see https://go.microsoft.com/fwlink/?linkid=2125182";

/// A data-plane operation (the operation ids of `secrets.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    SetSecret,
    GetSecret,
    /// `GET /secrets`, on the whole vault.
    GetSecrets,
    GetSecretVersions,
    UpdateSecret,
    DeleteSecret,
    GetDeletedSecret,
    RecoverDeletedSecret,
    PurgeDeletedSecret,
}

impl Operation {
    /// The RBAC data action the operation needs.
    pub fn data_action(self) -> DataAction {
        match self {
            Operation::SetSecret => DataAction::SetSecret,
            Operation::GetSecret => DataAction::GetSecret,
            Operation::GetSecrets | Operation::GetSecretVersions | Operation::GetDeletedSecret => {
                DataAction::ReadMetadata
            }
            Operation::UpdateSecret => DataAction::Update,
            Operation::DeleteSecret => DataAction::Delete,
            Operation::RecoverDeletedSecret => DataAction::Recover,
            Operation::PurgeDeletedSecret => DataAction::Purge,
        }
    }
}

/// A Key Vault RBAC data action on secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataAction {
    GetSecret,
    SetSecret,
    ReadMetadata,
    Update,
    Delete,
    Recover,
    Purge,
}

impl DataAction {
    /// The action's full name, as a 403 message quotes it.
    pub fn name(self) -> &'static str {
        match self {
            DataAction::GetSecret => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            DataAction::SetSecret => "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            DataAction::ReadMetadata => "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            DataAction::Update => "Microsoft.KeyVault/vaults/secrets/update/action",
            DataAction::Delete => "Microsoft.KeyVault/vaults/secrets/delete",
            DataAction::Recover => "Microsoft.KeyVault/vaults/secrets/recover/action",
            DataAction::Purge => "Microsoft.KeyVault/vaults/secrets/purge/action",
        }
    }
}

/// A role a principal can be granted, as the built-in Key Vault roles define them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Key Vault Secrets Officer: `Microsoft.KeyVault/vaults/secrets/*`.
    SecretsOfficer,
    /// Key Vault Secrets User: `getSecret` and `readMetadata`.
    SecretsUser,
    /// Key Vault Reader: `readMetadata` only.
    Reader,
    /// Exactly these data actions.
    Custom(Vec<DataAction>),
}

impl Role {
    pub fn allows(&self, action: DataAction) -> bool {
        match self {
            Role::SecretsOfficer => true,
            Role::SecretsUser => matches!(action, DataAction::GetSecret | DataAction::ReadMetadata),
            Role::Reader => action == DataAction::ReadMetadata,
            Role::Custom(actions) => actions.contains(&action),
        }
    }
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    role: Role,
    /// `None` for the whole vault; otherwise the lowercase secret name.
    secret: Option<String>,
}

/// Where a vault lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// 3–24 characters: letters, digits and hyphens, starting with a letter.
    pub name: String,
    /// The tenant whose tokens the vault accepts.
    pub tenant_id: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
}

impl VaultConfig {
    /// A vault in `tenant_id`, in subscription `00000000-0000-0000-0000-000000000000`,
    /// resource group `fedsync-tests`, location `westeurope`.
    pub fn new(name: &str, tenant_id: &str) -> Self {
        Self {
            name: name.to_owned(),
            tenant_id: tenant_id.to_owned(),
            subscription_id: "00000000-0000-0000-0000-000000000000".to_owned(),
            resource_group: "fedsync-tests".to_owned(),
            location: "westeurope".to_owned(),
        }
    }
}

/// An error as Key Vault answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// `innererror.code`, if any.
    pub inner_code: Option<String>,
    /// A `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl KvError {
    /// An error of any shape.
    pub fn new(status: u16, code: &str, message: &str, inner_code: Option<&str>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            inner_code: inner_code.map(str::to_owned),
            retry_after: None,
        }
    }

    /// 429 `Throttled` with `Retry-After` (the message text is inferred).
    pub fn throttled(retry_after: Duration) -> Self {
        let mut error = Self::new(
            429,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: \
             VaultRequestTypeLimitReached",
            None,
        );
        error.retry_after = Some(retry_after.as_secs());
        error
    }

    /// 503 `ServiceUnavailable` (inferred text).
    pub fn service_unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please retry later.",
            None,
        )
    }

    fn bad_parameter(message: &str) -> Self {
        Self::new(400, "BadParameter", message, None)
    }

    fn unauthorized(message: &str) -> Self {
        Self::new(401, "Unauthorized", message, None)
    }

    fn secret_not_found(what: &str) -> Self {
        let message = format!(
            "A secret with (name/id) {what} was not found in this key vault. {NOT_FOUND_HELP}"
        );
        Self::new(404, "SecretNotFound", &message, None)
    }

    fn deleted_secret_not_found() -> Self {
        Self::new(404, "SecretNotFound", "Deleted Secret not found", None)
    }

    fn deleted_but_recoverable(name: &str) -> Self {
        let message = format!(
            "Secret {name} is currently in a deleted but recoverable state, and its name cannot \
             be reused; in this state, the secret can only be recovered or purged."
        );
        Self::new(
            409,
            "Conflict",
            &message,
            Some("ObjectIsDeletedButRecoverable"),
        )
    }

    fn being_recovered(name: &str) -> Self {
        let message = format!(
            "Secret {name} is currently being recovered and cannot be re-created; retry later."
        );
        Self::new(409, "Conflict", &message, Some("ObjectIsBeingRecovered"))
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(inner) = &self.inner_code {
            error["innererror"] = json!({ "code": inner });
        }
        json!({ "error": error })
    }
}

/// One request the vault answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRequest {
    pub operation: Operation,
    /// The secret name from the path, as sent (empty for [`Operation::GetSecrets`]).
    pub secret: String,
    pub api_version: Option<String>,
    /// The client id of the bearer token, when it was one the vault accepted.
    pub client_id: Option<String>,
    pub status: u16,
}

/// Where a secret is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretState {
    Active,
    /// Soft-deleted: recoverable or purgeable; the name cannot be reused.
    Deleted,
    /// Recovery was requested and has not completed.
    Recovering,
}

/// One version of a secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub enabled: bool,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    /// Unix seconds.
    pub created: u64,
    pub updated: u64,
}

/// A secret as stored: its name as first created, its state and its versions, oldest
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub name: String,
    pub state: SecretState,
    pub versions: Vec<StoredVersion>,
    /// Unix seconds, while deleted.
    pub deleted_date: Option<u64>,
}

/// A new version was created: what Event Grid's `Microsoft.KeyVault.SecretNewVersionCreated`
/// reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNewVersion {
    pub vault_name: String,
    pub secret_name: String,
    pub version: String,
    /// `https://{vault}.vault.azure.net/secrets/{name}/{version}`.
    pub id: String,
    /// The vault's ARM resource id, Event Grid's `topic`/`source`.
    pub topic: String,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
enum Lifecycle {
    Active,
    Deleted { deleted_date: u64 },
    Recovering { until: Instant },
}

#[derive(Debug, Clone)]
struct SecretRecord {
    name: String,
    versions: Vec<StoredVersion>,
    lifecycle: Lifecycle,
}

impl SecretRecord {
    fn latest(&self) -> &StoredVersion {
        self.versions.last().expect("a secret has a version")
    }

    fn state(&self) -> SecretState {
        match self.lifecycle {
            Lifecycle::Active => SecretState::Active,
            Lifecycle::Deleted { .. } => SecretState::Deleted,
            Lifecycle::Recovering { .. } => SecretState::Recovering,
        }
    }
}

#[derive(Debug, Default)]
struct Vault {
    secrets: HashMap<String, SecretRecord>,
    grants: Vec<Grant>,
    faults: VecDeque<KvError>,
    requests: Vec<KvRequest>,
    recovery_delay: Duration,
    new_versions: Vec<SecretNewVersion>,
}

impl Vault {
    /// Completes recoveries whose delay has passed.
    fn settle(&mut self, now: Instant) {
        for record in self.secrets.values_mut() {
            if let Lifecycle::Recovering { until } = record.lifecycle
                && until <= now
            {
                record.lifecycle = Lifecycle::Active;
            }
        }
    }
}

#[derive(Debug)]
struct KvState {
    config: VaultConfig,
    url: String,
    entra: Arc<EntraState>,
    vault: Mutex<Vault>,
}

impl KvState {
    fn vault(&self) -> MutexGuard<'_, Vault> {
        let mut vault = self.vault.lock().unwrap_or_else(PoisonError::into_inner);
        vault.settle(Instant::now());
        vault
    }

    fn id_base(&self) -> String {
        format!("https://{}.vault.azure.net", self.config.name)
    }

    fn secret_id(&self, name: &str, version: &str) -> String {
        format!("{}/secrets/{name}/{version}", self.id_base())
    }

    fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            self.config.subscription_id, self.config.resource_group, self.config.name
        )
    }
}

/// One vault's emulator, listening on `127.0.0.1` on an ephemeral port.
#[derive(Debug)]
pub struct KeyVault {
    state: Arc<KvState>,
    _server: Server,
}

impl KeyVault {
    /// Starts a vault that accepts tokens `entra` issues in `config.tenant_id`. It holds no
    /// secret and grants nobody anything yet; recovery completes at once until
    /// [`KeyVault::set_recovery_delay`] says otherwise.
    ///
    /// # Panics
    /// If the vault name is not 3–24 letters, digits and hyphens starting with a letter,
    /// or the tenant id is not a GUID.
    pub async fn start(entra: &Entra, config: VaultConfig) -> Self {
        let name_ok = (3..=24).contains(&config.name.len())
            && config.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && config
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        assert!(name_ok, "invalid vault name {:?}", config.name);
        let mut config = config;
        config.tenant_id = canonical_guid(&config.tenant_id)
            .unwrap_or_else(|| panic!("a tenant id is a GUID: {:?}", config.tenant_id));
        let entra = entra.shared();
        let mut shared = None;
        let server = Server::start_api(|url| {
            let state = Arc::new(KvState {
                config,
                url: url.to_owned(),
                entra,
                vault: Mutex::default(),
            });
            shared = Some(Arc::clone(&state));
            Router::new()
                .route("/secrets", get(get_secrets))
                .route(
                    "/secrets/{name}",
                    put(set_secret).get(get_latest).delete(delete_secret),
                )
                .route("/secrets/{name}/", get(get_latest).patch(update_latest))
                .route("/secrets/{name}/versions", get(get_versions))
                .route(
                    "/secrets/{name}/{version}",
                    get(get_version).patch(update_version),
                )
                .route(
                    "/deletedsecrets/{name}",
                    get(get_deleted).delete(purge_deleted),
                )
                .route("/deletedsecrets/{name}/recover", post(recover_deleted))
                .fallback(not_implemented)
                .method_not_allowed_fallback(not_implemented)
                .with_state(state)
        })
        .await;
        Self {
            state: shared.expect("the router was built"),
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`: the vault URL a client is configured with.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    pub fn name(&self) -> &str {
        &self.state.config.name
    }

    /// The canonical tenant GUID.
    pub fn tenant_id(&self) -> &str {
        &self.state.config.tenant_id
    }

    /// `https://{vault}.vault.azure.net`, the base of every id the vault answers.
    pub fn id_base(&self) -> String {
        self.state.id_base()
    }

    /// `https://{vault}.vault.azure.net/secrets/{name}/{version}`.
    pub fn secret_id(&self, name: &str, version: &str) -> String {
        self.state.secret_id(name, version)
    }

    /// The vault's ARM resource id.
    pub fn resource_id(&self) -> String {
        self.state.resource_id()
    }

    /// Grants `role` on the whole vault to the application `client_id`.
    pub fn grant(&self, client_id: &str, role: Role) {
        self.push_grant(client_id, role, None);
    }

    /// Grants `role` on one secret to the application `client_id`.
    pub fn grant_on_secret(&self, client_id: &str, secret: &str, role: Role) {
        self.push_grant(client_id, role, Some(secret.to_lowercase()));
    }

    fn push_grant(&self, client_id: &str, role: Role, secret: Option<String>) {
        let client_id = canonical_guid(client_id)
            .unwrap_or_else(|| panic!("a client id is a GUID: {client_id:?}"));
        self.state.vault().grants.push(Grant {
            client_id,
            role,
            secret,
        });
    }

    /// Removes every grant of `client_id`.
    pub fn revoke(&self, client_id: &str) {
        let client_id = canonical_guid(client_id);
        self.state
            .vault()
            .grants
            .retain(|g| Some(&g.client_id) != client_id.as_ref());
    }

    /// How long a recovery takes to complete from the recover call.
    pub fn set_recovery_delay(&self, delay: Duration) {
        self.state.vault().recovery_delay = delay;
    }

    /// Answers the next `count` requests with `error`, before looking at them.
    pub fn fail_next(&self, count: usize, error: KvError) {
        self.state
            .vault()
            .faults
            .extend(std::iter::repeat_n(error, count));
    }

    /// Drops queued faults that have not been served.
    pub fn clear_faults(&self) {
        self.state.vault().faults.clear();
    }

    /// How many requests for `operation` arrived (whatever their answer).
    pub fn calls(&self, operation: Operation) -> usize {
        self.state
            .vault()
            .requests
            .iter()
            .filter(|r| r.operation == operation)
            .count()
    }

    /// Every request answered, oldest first.
    pub fn requests(&self) -> Vec<KvRequest> {
        self.state.vault().requests.clone()
    }

    /// Every new version created so far (through HTTP or [`KeyVault::set_secret`]),
    /// oldest first.
    pub fn new_versions(&self) -> Vec<SecretNewVersion> {
        self.state.vault().new_versions.clone()
    }

    /// The newest of [`KeyVault::new_versions`], if any version was created.
    pub fn last_new_version(&self) -> Option<SecretNewVersion> {
        self.state.vault().new_versions.last().cloned()
    }

    /// Stores a new version directly (test setup) and returns its version id.
    ///
    /// # Panics
    /// If the name is invalid or the secret is deleted or being recovered.
    pub fn set_secret(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> String {
        validate_name(name).unwrap_or_else(|e| panic!("{}", e.message));
        let tags = (!tags.is_empty()).then(|| {
            tags.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        });
        let mut vault = self.state.vault();
        let attributes = Attributes::default();
        add_version(
            &self.state,
            &mut vault,
            name,
            value,
            None,
            tags,
            &attributes,
        )
        .unwrap_or_else(|e| panic!("{}", e.message))
        .version
    }

    /// The secret as stored, whatever its state.
    pub fn secret(&self, name: &str) -> Option<StoredSecret> {
        self.state
            .vault()
            .secrets
            .get(&name.to_lowercase())
            .map(|record| StoredSecret {
                name: record.name.clone(),
                state: record.state(),
                versions: record.versions.clone(),
                deleted_date: match record.lifecycle {
                    Lifecycle::Deleted { deleted_date } => Some(deleted_date),
                    _ => None,
                },
            })
    }

    /// The newest version of the secret, whatever its state.
    pub fn latest(&self, name: &str) -> Option<StoredVersion> {
        self.secret(name).and_then(|s| s.versions.last().cloned())
    }

    /// Soft-deletes an active secret (test setup).
    ///
    /// # Panics
    /// If the secret is not active.
    pub fn soft_delete(&self, name: &str) {
        let mut vault = self.state.vault();
        let record = vault
            .secrets
            .get_mut(&name.to_lowercase())
            .unwrap_or_else(|| panic!("secret {name} does not exist"));
        assert!(
            matches!(record.lifecycle, Lifecycle::Active),
            "secret {name} is not active"
        );
        record.lifecycle = Lifecycle::Deleted {
            deleted_date: now_secs(),
        };
    }

    /// Creates a secret with one version and soft-deletes it (test setup); returns the
    /// version id.
    pub fn create_soft_deleted(&self, name: &str, value: &str) -> String {
        let version = self.set_secret(name, value, &[]);
        self.soft_delete(name);
        version
    }
}

// ---------------------------------------------------------------------------------------
// Request handling.

/// What a successful operation answers.
enum Reply {
    Json(Value),
    NoContent,
}

/// The parts of a request the operations read.
struct Call<'a> {
    operation: Operation,
    name: &'a str,
    version: Option<&'a str>,
    headers: &'a HeaderMap,
    params: Vec<(String, String)>,
    body: &'a [u8],
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn set_secret(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    dispatch(
        &state,
        Operation::SetSecret,
        &name,
        None,
        &headers,
        query,
        &body,
    )
}

async fn get_latest(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    dispatch(
        &state,
        Operation::GetSecret,
        &name,
        None,
        &headers,
        query,
        &[],
    )
}

async fn get_version(
    State(state): State<Arc<KvState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    dispatch(
        &state,
        Operation::GetSecret,
        &name,
        Some(&version),
        &headers,
        query,
        &[],
    )
}

async fn get_secrets(
    State(state): State<Arc<KvState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let operation = Operation::GetSecrets;
    dispatch(&state, operation, "", None, &headers, query, &[])
}

async fn get_versions(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    dispatch(
        &state,
        Operation::GetSecretVersions,
        &name,
        None,
        &headers,
        query,
        &[],
    )
}

async fn update_latest(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    dispatch(
        &state,
        Operation::UpdateSecret,
        &name,
        None,
        &headers,
        query,
        &body,
    )
}

async fn update_version(
    State(state): State<Arc<KvState>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let operation = Operation::UpdateSecret;
    dispatch(
        &state,
        operation,
        &name,
        Some(&version),
        &headers,
        query,
        &body,
    )
}

async fn delete_secret(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    dispatch(
        &state,
        Operation::DeleteSecret,
        &name,
        None,
        &headers,
        query,
        &[],
    )
}

async fn get_deleted(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    dispatch(
        &state,
        Operation::GetDeletedSecret,
        &name,
        None,
        &headers,
        query,
        &[],
    )
}

async fn recover_deleted(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let operation = Operation::RecoverDeletedSecret;
    dispatch(&state, operation, &name, None, &headers, query, &[])
}

async fn purge_deleted(
    State(state): State<Arc<KvState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let operation = Operation::PurgeDeletedSecret;
    dispatch(&state, operation, &name, None, &headers, query, &[])
}

/// Anything this emulator does not implement: 501, so that a test sees at once that the
/// client used an operation the emulator lacks (an emulator-only answer).
async fn not_implemented(method: Method, uri: Uri) -> Response {
    let error = KvError::new(
        501,
        "NotImplemented",
        &format!(
            "The Key Vault emulator does not implement {method} {}",
            uri.path()
        ),
        None,
    );
    (StatusCode::NOT_IMPLEMENTED, axum::Json(error.body())).into_response()
}

fn dispatch(
    state: &KvState,
    operation: Operation,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    query: Option<String>,
    body: &[u8],
) -> Response {
    let params = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let call = Call {
        operation,
        name,
        version,
        headers,
        params,
        body,
    };
    let mut vault = state.vault();
    let mut request = KvRequest {
        operation,
        secret: name.to_owned(),
        api_version: call.param("api-version").map(str::to_owned),
        client_id: None,
        status: 0,
    };
    let outcome = serve(state, &mut vault, &call, &mut request);
    let mut response = match outcome {
        Ok(Reply::Json(body)) => json_response(StatusCode::OK, &body),
        Ok(Reply::NoContent) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(state, &error),
    };
    request.status = response.status().as_u16();
    vault.requests.push(request);
    drop(vault);
    let out = response.headers_mut();
    let request_id = uuid::Uuid::new_v4().to_string();
    out.insert(
        HeaderName::from_static("x-ms-request-id"),
        HeaderValue::from_str(&request_id).expect("a GUID is a header value"),
    );
    out.insert(
        HeaderName::from_static("x-ms-keyvault-service-version"),
        HeaderValue::from_static(SERVICE_VERSION),
    );
    if let Ok(region) = HeaderValue::from_str(&state.config.location) {
        out.insert(HeaderName::from_static("x-ms-keyvault-region"), region);
    }
    if let Some(client_request_id) = headers.get("x-ms-client-request-id") {
        out.insert(
            HeaderName::from_static("x-ms-client-request-id"),
            client_request_id.clone(),
        );
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    out.insert(header::EXPIRES, HeaderValue::from_static("-1"));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error_response(state: &KvState, error: &KvError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &error.body());
    let headers = response.headers_mut();
    if let Ok(code) = HeaderValue::from_str(&error.code) {
        headers.insert(HeaderName::from_static("x-ms-error-code"), code);
    }
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!(
            "Bearer authorization=\"https://login.windows.net/{}\", resource=\"{KEY_VAULT_RESOURCE}\"",
            state.config.tenant_id
        );
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge).expect("the challenge is a header value"),
        );
    }
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The checks every request goes through, then the operation.
fn serve(
    state: &KvState,
    vault: &mut Vault,
    call: &Call<'_>,
    request: &mut KvRequest,
) -> Result<Reply, KvError> {
    if let Some(fault) = vault.faults.pop_front() {
        return Err(fault);
    }
    let token = authenticate(state, call.headers)?;
    request.client_id = Some(token.client_id.clone());
    check_api_version(call.param("api-version"))?;
    if call.operation != Operation::GetSecrets {
        validate_name(call.name)?;
    }
    authorize(state, vault, &token, call)?;
    match call.operation {
        Operation::SetSecret => set(state, vault, call),
        Operation::GetSecret => read(state, vault, call),
        Operation::GetSecrets => list_secrets(state, vault, call),
        Operation::GetSecretVersions => list_versions(state, vault, call),
        Operation::UpdateSecret => update(state, vault, call),
        Operation::DeleteSecret => delete(state, vault, call),
        Operation::GetDeletedSecret => read_deleted(state, vault, call),
        Operation::RecoverDeletedSecret => recover(state, vault, call),
        Operation::PurgeDeletedSecret => purge(vault, call),
    }
}

/// The bearer token, which must be one Entra issued, unexpired, for Key Vault, in the
/// vault's tenant (checked in that order, as the token handler validates lifetime, then
/// audience, then issuer).
fn authenticate(state: &KvState, headers: &HeaderMap) -> Result<IssuedToken, KvError> {
    let missing = || KvError::unauthorized("AKV10000: Request is missing a Bearer or PoP token.");
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    let issued = state.entra.issued(token).ok_or_else(|| {
        KvError::unauthorized("AKV10046: Unable to resolve the key used for signature validation.")
    })?;
    if issued.expires_at <= now_secs() {
        return Err(KvError::unauthorized(
            "[TokenExpired] Error validating token: 'S2S12086'.",
        ));
    }
    if issued.resource != KEY_VAULT_RESOURCE {
        return Err(KvError::unauthorized(&format!(
            "AKV10022: Invalid audience. Expected {KEY_VAULT_RESOURCE}, found: {}.",
            issued.resource
        )));
    }
    if issued.tenant != state.config.tenant_id {
        return Err(KvError::unauthorized(&format!(
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{}/, found \
             https://sts.windows.net/{}/.",
            state.config.tenant_id, issued.tenant
        )));
    }
    Ok(issued)
}

fn check_api_version(version: Option<&str>) -> Result<(), KvError> {
    match version {
        Some(v) if API_VERSIONS.contains(&v) => Ok(()),
        None | Some("") => Err(KvError::bad_parameter(
            "The api-version query parameter is missing. Supported versions: 7.4, 7.5, 7.6, \
             2025-07-01.",
        )),
        Some(v) => Err(KvError::bad_parameter(&format!(
            "The specified version ({v}) is not recognized. Consider using the latest \
             supported version (2025-07-01)."
        ))),
    }
}

/// `^[0-9a-zA-Z-]{1,127}$`.
fn validate_name(name: &str) -> Result<(), KvError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(KvError::bad_parameter(&format!(
            "The request URI contains an invalid name: {name}"
        )))
    }
}

fn authorize(
    state: &KvState,
    vault: &Vault,
    token: &IssuedToken,
    call: &Call<'_>,
) -> Result<(), KvError> {
    let action = call.operation.data_action();
    // Listing acts on the vault: only grants on the whole vault allow it.
    let secret = (call.operation != Operation::GetSecrets).then(|| call.name.to_lowercase());
    let allowed = vault.grants.iter().any(|g| {
        g.client_id == token.client_id
            && g.role.allows(action)
            && (g.secret.is_none() || g.secret == secret)
    });
    if allowed {
        return Ok(());
    }
    let resource = match &secret {
        Some(secret) => format!("/secrets/{secret}"),
        None => "/secrets".to_owned(),
    };
    let config = &state.config;
    let message = format!(
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny \
         assignments or role definitions were changed recently, please observe propagation \
         time.\r\nCaller: appid={};oid={};iss=https://sts.windows.net/{}/\r\nAction: \
         '{}'\r\nResource: '{}{resource}'\r\nAssignment: (not found)\r\n\
         DenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {};location={}\r\n",
        token.client_id,
        state_object_id(token),
        token.tenant,
        action.name(),
        state.resource_id().to_lowercase(),
        config.name,
        config.location,
    );
    Err(KvError::new(
        403,
        "Forbidden",
        &message,
        Some("ForbiddenByRbac"),
    ))
}

/// The service principal object id Entra puts in the token's `oid`.
fn state_object_id(token: &IssuedToken) -> String {
    super::stable_guid(&["service-principal", &token.tenant, &token.client_id])
}

/// Secret attributes a request may set.
#[derive(Debug, Default)]
struct Attributes {
    enabled: Option<bool>,
    nbf: Option<Option<i64>>,
    exp: Option<Option<i64>>,
}

/// The JSON object body of a PUT or PATCH.
fn json_body(call: &Call<'_>) -> Result<Map<String, Value>, KvError> {
    let is_json = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(KvError::bad_parameter(
            "The request content type is not supported. Use application/json.",
        ));
    }
    match serde_json::from_slice::<Value>(call.body) {
        Ok(Value::Object(body)) => Ok(body),
        _ => Err(KvError::bad_parameter(
            "The request body is not a valid JSON object.",
        )),
    }
}

fn content_type(body: &Map<String, Value>) -> Result<Option<String>, KvError> {
    match body.get("contentType") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(ct)) if ct.chars().count() <= MAX_CONTENT_TYPE_CHARS => {
            Ok(Some(ct.clone()))
        }
        Some(Value::String(_)) => Err(KvError::bad_parameter(&format!(
            "Property contentType is too long. The maximum length is {MAX_CONTENT_TYPE_CHARS} \
             characters."
        ))),
        Some(_) => Err(KvError::bad_parameter(
            "Property contentType must be a string.",
        )),
    }
}

fn tags(body: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, KvError> {
    let tags = match body.get("tags") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(tags)) => tags,
        Some(_) => {
            return Err(KvError::bad_parameter(
                "Property tags must be an object of strings.",
            ));
        }
    };
    if tags.len() > MAX_TAGS {
        return Err(KvError::bad_parameter(&format!(
            "Too many tags: {}. A secret can have at most {MAX_TAGS} tags.",
            tags.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, value) in tags {
        let Value::String(value) = value else {
            return Err(KvError::bad_parameter(&format!(
                "The value of tag {name} must be a string."
            )));
        };
        if name.is_empty() || name.chars().count() > MAX_TAG_NAME_CHARS {
            return Err(KvError::bad_parameter(&format!(
                "Tag names must be 1 to {MAX_TAG_NAME_CHARS} characters long."
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(KvError::bad_parameter(&format!(
                "The value of tag {name} is too long. The maximum length is \
                 {MAX_TAG_VALUE_CHARS} characters."
            )));
        }
        out.insert(name.clone(), value.clone());
    }
    Ok(Some(out))
}

/// `attributes`: `enabled` (boolean), `nbf` and `exp` (Unix seconds); read-only members
/// (`created`, `updated`, `recoveryLevel`, `recoverableDays`) are ignored.
fn attributes(body: &Map<String, Value>) -> Result<Attributes, KvError> {
    let attributes = match body.get("attributes") {
        None | Some(Value::Null) => return Ok(Attributes::default()),
        Some(Value::Object(a)) => a,
        Some(_) => {
            return Err(KvError::bad_parameter(
                "Property attributes must be an object.",
            ));
        }
    };
    let enabled = match attributes.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(KvError::bad_parameter(
                "Property attributes.enabled must be a boolean.",
            ));
        }
    };
    let time = |name: &str| -> Result<Option<Option<i64>>, KvError> {
        match attributes.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::Number(n)) if n.is_i64() => Ok(Some(n.as_i64())),
            Some(_) => Err(KvError::bad_parameter(&format!(
                "Property attributes.{name} must be a Unix time in seconds."
            ))),
        }
    };
    Ok(Attributes {
        enabled,
        nbf: time("nbf")?,
        exp: time("exp")?,
    })
}

fn attributes_json(version: &StoredVersion) -> Value {
    let mut attributes = json!({
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": RECOVERY_LEVEL,
        "recoverableDays": RECOVERABLE_DAYS,
    });
    if let Some(nbf) = version.nbf {
        attributes["nbf"] = json!(nbf);
    }
    if let Some(exp) = version.exp {
        attributes["exp"] = json!(exp);
    }
    attributes
}

/// A `SecretBundle` (with the value) or `SecretItem`/update answer (without it).
fn bundle(state: &KvState, record: &SecretRecord, version: &StoredVersion, value: bool) -> Value {
    let mut bundle = json!({
        "id": state.secret_id(&record.name, &version.version),
        "attributes": attributes_json(version),
    });
    if value {
        bundle["value"] = json!(version.value);
    }
    if let Some(ct) = &version.content_type {
        bundle["contentType"] = json!(ct);
    }
    if let Some(tags) = &version.tags {
        bundle["tags"] = json!(tags);
    }
    bundle
}

/// A `DeletedSecretBundle`: the latest version's bundle without its value, plus
/// `recoveryId`, `deletedDate` and `scheduledPurgeDate`.
fn deleted_bundle(state: &KvState, record: &SecretRecord, deleted_date: u64) -> Value {
    let mut bundle = bundle(state, record, record.latest(), false);
    bundle["recoveryId"] = json!(format!(
        "{}/deletedsecrets/{}",
        state.id_base(),
        record.name
    ));
    bundle["deletedDate"] = json!(deleted_date);
    bundle["scheduledPurgeDate"] = json!(deleted_date + RECOVERABLE_DAYS * 86_400);
    bundle
}

fn add_version(
    state: &KvState,
    vault: &mut Vault,
    name: &str,
    value: &str,
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: &Attributes,
) -> Result<StoredVersion, KvError> {
    let key = name.to_lowercase();
    if let Some(record) = vault.secrets.get(&key) {
        match record.lifecycle {
            Lifecycle::Active => {}
            Lifecycle::Deleted { .. } => {
                return Err(KvError::deleted_but_recoverable(&record.name));
            }
            Lifecycle::Recovering { .. } => return Err(KvError::being_recovered(&record.name)),
        }
    }
    let now = now_secs();
    let version = StoredVersion {
        version: uuid::Uuid::new_v4().simple().to_string(),
        value: value.to_owned(),
        content_type,
        tags,
        enabled: attributes.enabled.unwrap_or(true),
        nbf: attributes.nbf.flatten(),
        exp: attributes.exp.flatten(),
        created: now,
        updated: now,
    };
    let record = vault.secrets.entry(key).or_insert_with(|| SecretRecord {
        name: name.to_owned(),
        versions: Vec::new(),
        lifecycle: Lifecycle::Active,
    });
    record.versions.push(version.clone());
    let display = record.name.clone();
    vault.new_versions.push(SecretNewVersion {
        vault_name: state.config.name.clone(),
        secret_name: display.clone(),
        version: version.version.clone(),
        id: state.secret_id(&display, &version.version),
        topic: state.resource_id(),
        nbf: version.nbf,
        exp: version.exp,
    });
    Ok(version)
}

fn set(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let body = json_body(call)?;
    let value = match body.get("value") {
        Some(Value::String(value)) => value,
        Some(_) => return Err(KvError::bad_parameter("Property value must be a string.")),
        None => return Err(KvError::bad_parameter("Property value is required.")),
    };
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::bad_parameter(&format!(
            "Property value is too large: {} bytes. The maximum size of a secret value is \
             {MAX_VALUE_BYTES} bytes.",
            value.len()
        )));
    }
    let content_type = content_type(&body)?;
    let tags = tags(&body)?;
    let attributes = attributes(&body)?;
    let version = add_version(
        state,
        vault,
        call.name,
        value,
        content_type,
        tags,
        &attributes,
    )?;
    let record = &vault.secrets[&call.name.to_lowercase()];
    Ok(Reply::Json(bundle(state, record, &version, true)))
}

/// The active secret the call names, or 404 `SecretNotFound`.
fn active<'a>(vault: &'a mut Vault, call: &Call<'_>) -> Result<&'a mut SecretRecord, KvError> {
    vault
        .secrets
        .get_mut(&call.name.to_lowercase())
        .filter(|r| matches!(r.lifecycle, Lifecycle::Active))
        .ok_or_else(|| KvError::secret_not_found(call.name))
}

/// The index of the version the call names (the latest when none), or 404.
fn version_index(record: &SecretRecord, call: &Call<'_>) -> Result<usize, KvError> {
    match call.version {
        None | Some("") => Ok(record.versions.len() - 1),
        Some(wanted) => record
            .versions
            .iter()
            .position(|v| v.version.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| KvError::secret_not_found(&format!("{}/{wanted}", call.name))),
    }
}

fn read(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let record = active(vault, call)?;
    let version = &record.versions[version_index(record, call)?];
    if !version.enabled {
        return Err(KvError::new(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        ));
    }
    Ok(Reply::Json(bundle(state, record, version, true)))
}

/// `GET /secrets`: every secret that is neither deleted nor being recovered.
fn list_secrets(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let items: Vec<(String, Value)> = vault
        .secrets
        .iter()
        .filter(|(_, record)| matches!(record.lifecycle, Lifecycle::Active))
        .map(|(key, record)| {
            let mut item = bundle(state, record, record.latest(), false);
            item["id"] = json!(format!("{}/secrets/{}", state.id_base(), record.name));
            (key.clone(), item)
        })
        .collect();
    page(state, call, "/secrets", items)
}

fn list_versions(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let items: Vec<(String, Value)> = match active(vault, call) {
        Ok(record) => record
            .versions
            .iter()
            .enumerate()
            .map(|(index, v)| (format!("{index:010}"), bundle(state, record, v, false)))
            .collect(),
        Err(_) => Vec::new(),
    };
    page(
        state,
        call,
        &format!("/secrets/{}/versions", call.name),
        items,
    )
}

/// One page of a list: `items` keyed by strings whose order is the list's order, those
/// after the `$skiptoken`'s key, at most `maxresults` of them; `nextLink` repeats the
/// request at `path` from the last item served.
fn page(
    state: &KvState,
    call: &Call<'_>,
    path: &str,
    mut items: Vec<(String, Value)>,
) -> Result<Reply, KvError> {
    let max_results = match call.param("maxresults") {
        None => MAX_RESULTS,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return Err(KvError::bad_parameter(&format!(
                    "Invalid maxresults: {text}. The value must be between 1 and {MAX_RESULTS}."
                )));
            }
        },
    };
    let after = call
        .param("$skiptoken")
        .map(|token| {
            skiptoken_key(path, token).ok_or_else(|| KvError::bad_parameter("Invalid $skiptoken."))
        })
        .transpose()?;
    items.sort_by(|(a, _), (b, _)| a.cmp(b));
    let mut rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    let more = rest.len() > max_results;
    rest.truncate(max_results);
    let next_link = match rest.last() {
        Some((last, _)) if more => {
            let api_version = call.param("api-version").unwrap_or_default();
            let token = skiptoken(path, last);
            json!(format!(
                "{}{path}?api-version={api_version}&$skiptoken={token}&maxresults={max_results}",
                state.url
            ))
        }
        _ => Value::Null,
    };
    let page: Vec<Value> = rest.into_iter().map(|(_, item)| item).collect();
    Ok(Reply::Json(json!({ "value": page, "nextLink": next_link })))
}

/// An opaque `$skiptoken`: `base64url(path \n key \n crc32c)`, the path in lowercase
/// (names ignore case), the checksum catching a token altered in transit or by hand.
fn skiptoken(path: &str, last_key: &str) -> String {
    let payload = format!("{}\n{last_key}", path.to_ascii_lowercase());
    let checksum = crc32c::crc32c(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(format!("{payload}\n{checksum:08x}"))
}

/// The key a `$skiptoken` issued for the list at `path` resumes after.
fn skiptoken_key(path: &str, token: &str) -> Option<String> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (payload, checksum) = text.rsplit_once('\n')?;
    if format!("{:08x}", crc32c::crc32c(payload.as_bytes())) != checksum {
        return None;
    }
    let (list, key) = payload.split_once('\n')?;
    (list == path.to_ascii_lowercase() && !key.is_empty()).then(|| key.to_owned())
}

fn update(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let body = json_body(call)?;
    let content_type = content_type(&body)?;
    let tags = tags(&body)?;
    let attributes = attributes(&body)?;
    let record = active(vault, call)?;
    let index = version_index(record, call)?;
    let version = &mut record.versions[index];
    if body.contains_key("contentType") {
        version.content_type = content_type;
    }
    if body.contains_key("tags") {
        version.tags = tags;
    }
    if let Some(enabled) = attributes.enabled {
        version.enabled = enabled;
    }
    if let Some(nbf) = attributes.nbf {
        version.nbf = nbf;
    }
    if let Some(exp) = attributes.exp {
        version.exp = exp;
    }
    version.updated = now_secs();
    let version = version.clone();
    Ok(Reply::Json(bundle(state, record, &version, false)))
}

fn delete(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    if let Some(record) = vault.secrets.get(&call.name.to_lowercase())
        && matches!(record.lifecycle, Lifecycle::Recovering { .. })
    {
        return Err(KvError::being_recovered(&record.name));
    }
    let record = active(vault, call)?;
    let deleted_date = now_secs();
    record.lifecycle = Lifecycle::Deleted { deleted_date };
    Ok(Reply::Json(deleted_bundle(state, record, deleted_date)))
}

fn read_deleted(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    match vault.secrets.get(&call.name.to_lowercase()) {
        Some(record) => match record.lifecycle {
            Lifecycle::Deleted { deleted_date } => {
                Ok(Reply::Json(deleted_bundle(state, record, deleted_date)))
            }
            _ => Err(KvError::deleted_secret_not_found()),
        },
        None => Err(KvError::deleted_secret_not_found()),
    }
}

fn recover(state: &KvState, vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let delay = vault.recovery_delay;
    let record = vault
        .secrets
        .get_mut(&call.name.to_lowercase())
        .ok_or_else(KvError::deleted_secret_not_found)?;
    match record.lifecycle {
        Lifecycle::Deleted { .. } => {}
        Lifecycle::Recovering { .. } => return Err(KvError::being_recovered(&record.name)),
        Lifecycle::Active => return Err(KvError::deleted_secret_not_found()),
    }
    record.lifecycle = if delay.is_zero() {
        Lifecycle::Active
    } else {
        Lifecycle::Recovering {
            until: Instant::now() + delay,
        }
    };
    Ok(Reply::Json(bundle(state, record, record.latest(), false)))
}

fn purge(vault: &mut Vault, call: &Call<'_>) -> Result<Reply, KvError> {
    let key = call.name.to_lowercase();
    let record = vault
        .secrets
        .get(&key)
        .ok_or_else(KvError::deleted_secret_not_found)?;
    match record.lifecycle {
        Lifecycle::Deleted { .. } => {
            vault.secrets.remove(&key);
            Ok(Reply::NoContent)
        }
        Lifecycle::Recovering { .. } => Err(KvError::being_recovered(&record.name)),
        Lifecycle::Active => Err(KvError::deleted_secret_not_found()),
    }
}
