//! An emulator of Microsoft Entra ID for workload identity federation: the v2.0 token
//! endpoint (`POST /{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials` with a
//! `client_assertion` JWT), the tenant's OpenID discovery documents and its JWKS.
//!
//! Written from Microsoft's documentation of the client credentials flow with a
//! federated credential, and from Entra errors observed in public issue reports. The assertion is checked the way Entra checks
//! it against an application's federated identity credentials: the JWT `iss` must equal a
//! credential's `issuer` exactly; the signature is verified with the issuer's JWKS, found
//! through its discovery document (RS256 or ES256, `kid` required); `exp`, `nbf` and `iat`
//! must hold now (no clock-skew allowance); the JWT `aud` must be one of the credential's
//! `audiences`; and `sub` must equal its `subject` exactly, case-sensitively.
//!
//! Where the sources are silent, this emulator decides (each decision is marked
//! "inferred" where it is made):
//! - `invalid_client` errors answer HTTP 401 (as observed for AADSTS7002137), every other
//!   error 400;
//! - a mismatch is reported per claim by default, as Entra does today (AADSTS700211
//!   issuer, AADSTS700212 audience, AADSTS700213 subject, AADSTS7002138 subject that
//!   differs only in letter case); [`MismatchErrors::Legacy`] answers the older
//!   AADSTS70021 (`invalid_request`) naming the presented issuer, subject and audience;
//! - the order of checks is: tenant, parameters, scope format, application, client
//!   credential, assertion (issuer match, signature, lifetime, audience, subject), then
//!   the resource the scope names;
//! - access tokens are JWTs signed with the emulator's RSA key; Key Vault tokens look like
//!   Entra v1.0 tokens, whose issuer `https://sts.windows.net/{tenant}/` the emulator
//!   stands in for with `{authority}/{tenant}/`; v2.0 tokens carry
//!   `{authority}/{tenant}/v2.0`. Both issuers have discovery documents here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use url::form_urlencoded;

use super::{
    canonical_guid, entra_timestamp, iso_seven_digits, now_secs, since_epoch, stable_guid,
};
use crate::issuer::{KeyType, SigningKey};
use crate::server::Server;

/// The audience Entra recommends for federated credentials, and the only one the Azure
/// portal offers.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Key Vault's resource identifier (scope `https://vault.azure.net/.default`).
pub const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";
/// The only `client_assertion_type` Entra accepts.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// `expires_in` and `ext_expires_in` of every access token.
pub const EXPIRES_IN: u64 = 3599;
/// At most this many federated identity credentials per application (E.1).
pub const MAX_FEDERATED_CREDENTIALS: usize = 20;

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-ms-request-id");
const CLIENT_REQUEST_ID_HEADER: &str = "client-request-id";
const WIF_DOCS_OLD: &str =
    "https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation";
const WIF_DOCS: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";
const CERTIFICATE_CREDENTIALS_DOCS: &str =
    "https://learn.microsoft.com/entra/identity-platform/certificate-credentials";
const BREAKING_CHANGE_DOCS: &str = "https://learn.microsoft.com/en-us/entra/identity-platform/reference-breaking-changes#august-2024";

/// A federated identity credential of an application (Graph `federatedIdentityCredential`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    pub name: String,
    /// Compared with the JWT `iss` exactly.
    pub issuer: String,
    /// Compared with the JWT `sub` exactly, case-sensitively.
    pub subject: String,
    /// The JWT `aud` must be one of these.
    pub audiences: Vec<String>,
}

impl FederatedCredential {
    /// A credential with the recommended audience `api://AzureADTokenExchange`.
    pub fn new(name: &str, issuer: &str, subject: &str) -> Self {
        Self {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()],
        }
    }

    /// Replaces the audiences.
    pub fn with_audiences(mut self, audiences: &[&str]) -> Self {
        self.audiences = audiences.iter().map(|a| (*a).to_owned()).collect();
        self
    }
}

/// The access token version an application accepts (its manifest's
/// `accessTokenAcceptedVersion`), which decides the shape of tokens issued *for* it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenVersion {
    /// v1.0: `iss` `https://sts.windows.net/{tenant}/` (here `{authority}/{tenant}/`), `aud`
    /// as requested (client id or identifier URI), `appid`.
    V1,
    /// v2.0: `iss` `https://login.microsoftonline.com/{tenant}/v2.0` (here
    /// `{authority}/{tenant}/v2.0`), `aud` always the client id, `azp`. The emulator's
    /// default (Entra's own default, `null`, means v1.0).
    #[default]
    V2,
}

/// An application registration (or user-assigned managed identity) in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    client_id: String,
    identifier_uris: Vec<String>,
    token_version: TokenVersion,
}

impl Application {
    /// An application with this client id (a GUID).
    ///
    /// # Panics
    /// If `client_id` is not a GUID.
    pub fn new(client_id: &str) -> Self {
        let client_id = canonical_guid(client_id)
            .unwrap_or_else(|| panic!("an application's client id is a GUID: {client_id:?}"));
        Self {
            client_id,
            identifier_uris: Vec::new(),
            token_version: TokenVersion::default(),
        }
    }

    /// Adds an application ID URI, such as `api://fedsync-webhook`.
    pub fn identifier_uri(mut self, uri: &str) -> Self {
        self.identifier_uris.push(uri.to_owned());
        self
    }

    /// Sets the version of the access tokens issued for this application.
    pub fn token_version(mut self, version: TokenVersion) -> Self {
        self.token_version = version;
        self
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// How a federated credential mismatch is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MismatchErrors {
    /// AADSTS700211 (issuer), AADSTS700212 (audience), AADSTS700213 (subject),
    /// AADSTS7002138 (subject equal but for letter case); all `invalid_client`.
    #[default]
    PerClaim,
    /// AADSTS70021 (`invalid_request`) for any mismatch, naming the presented issuer,
    /// subject and audience, as Entra answered until 2023.
    Legacy,
}

/// An error as Entra's token endpoint answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    /// HTTP status.
    pub status: u16,
    /// The OAuth `error`, for example `invalid_client`.
    pub error: String,
    /// The AADSTS number, for example `700213`.
    pub code: u32,
    /// The text after `AADSTSnnnnn: ` and before ` Trace ID: …`.
    pub description: String,
    /// A `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl EntraError {
    /// An error of any shape.
    pub fn new(status: u16, error: &str, code: u32, description: &str) -> Self {
        Self {
            status,
            error: error.to_owned(),
            code,
            description: description.to_owned(),
            retry_after: None,
        }
    }

    /// HTTP 503 `temporarily_unavailable`, AADSTS90033 (a transient failure; inferred
    /// shape, the text is the error-code reference's).
    pub fn service_unavailable() -> Self {
        Self::new(
            503,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        )
    }

    /// HTTP 429 with `Retry-After` (throttling; inferred shape, AADSTS90055
    /// "TenantThrottlingThreshold").
    pub fn throttled(retry_after: Duration) -> Self {
        let mut error = Self::new(
            429,
            "temporarily_unavailable",
            90055,
            "The request has been throttled. Please retry after the period given in the \
             Retry-After header.",
        );
        error.retry_after = Some(retry_after.as_secs());
        error
    }

    /// The status Entra uses for `error`: 401 for `invalid_client`, otherwise 400.
    fn for_error(error: &str, code: u32, description: String) -> Self {
        let status = if error == "invalid_client" { 401 } else { 400 };
        Self::new(status, error, code, &description)
    }

    /// The `error_description` as sent: `AADSTSnnnnn: text Trace ID: … Correlation ID: …
    /// Timestamp: …`.
    pub fn full_description(
        &self,
        trace_id: &str,
        correlation_id: &str,
        timestamp: &str,
    ) -> String {
        format!(
            "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: \
             {timestamp}",
            self.code, self.description
        )
    }
}

/// One call to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The tenant path segment as sent.
    pub tenant: String,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// `Ok(())`, or the AADSTS number of the refusal (injected faults included).
    pub outcome: Result<(), u32>,
}

/// An access token the emulator issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    /// Canonical tenant GUID.
    pub tenant: String,
    /// Canonical client id of the application the token was issued to.
    pub client_id: String,
    /// The resource, `https://vault.azure.net` for `https://vault.azure.net/.default`.
    pub resource: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; `issued_at + 3599` for tokens from the endpoint.
    pub expires_at: u64,
}

#[derive(Debug)]
struct AppRecord {
    app: Application,
    credentials: Vec<FederatedCredential>,
}

#[derive(Debug, Default)]
struct Tenant {
    apps: HashMap<String, AppRecord>,
}

#[derive(Debug)]
struct Directory {
    tenants: HashMap<String, Tenant>,
    resources: Vec<String>,
    mismatch: MismatchErrors,
    faults: VecDeque<EntraError>,
    exchanges: Vec<Exchange>,
    tokens: HashMap<String, IssuedToken>,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            tenants: HashMap::new(),
            resources: vec![KEY_VAULT_RESOURCE.to_owned()],
            mismatch: MismatchErrors::default(),
            faults: VecDeque::new(),
            exchanges: Vec::new(),
            tokens: HashMap::new(),
        }
    }
}

/// State shared between the emulator's handle, its HTTP handlers, Key Vault emulators
/// (which look issued tokens up) and the Event Grid signer.
#[derive(Debug)]
pub(crate) struct EntraState {
    url: String,
    key: SigningKey,
    http: reqwest::Client,
    directory: Mutex<Directory>,
}

impl EntraState {
    fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn v1_issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/", self.url)
    }

    fn v2_issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.url)
    }

    /// The token the emulator issued with this exact text, if any.
    pub(crate) fn issued(&self, access_token: &str) -> Option<IssuedToken> {
        self.directory().tokens.get(access_token).cloned()
    }

    /// The object id of an application's service principal in a tenant.
    fn object_id(tenant: &str, client_id: &str) -> String {
        stable_guid(&["service-principal", tenant, client_id])
    }

    /// Mints and records a v1.0 access token for `resource`.
    fn issue(&self, tenant: &str, client_id: &str, resource: &str, expires_at: u64) -> String {
        let now = now_secs();
        let oid = Self::object_id(tenant, client_id);
        let issuer = self.v1_issuer(tenant);
        let claims = json!({
            "aud": resource,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "aio": opaque(),
            "appid": client_id,
            "appidacr": "2",
            "idp": issuer,
            "idtyp": "app",
            "oid": oid,
            "rh": opaque(),
            "sub": oid,
            "tid": tenant,
            "uti": opaque(),
            "ver": "1.0",
        });
        let access_token = self.key.sign(&claims);
        self.directory().tokens.insert(
            access_token.clone(),
            IssuedToken {
                access_token: access_token.clone(),
                tenant: tenant.to_owned(),
                client_id: client_id.to_owned(),
                resource: resource.to_owned(),
                issued_at: now,
                expires_at,
            },
        );
        access_token
    }
}

/// The Entra emulator, listening on `127.0.0.1` on an ephemeral port.
#[derive(Debug)]
pub struct Entra {
    state: Arc<EntraState>,
    _server: Server,
}

impl Entra {
    /// Generates the RSA signing key and starts serving. Knows no tenant yet; knows the
    /// resource `https://vault.azure.net`.
    pub async fn start() -> Self {
        let key = SigningKey::generate(KeyType::Rsa);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build an HTTP client");
        let mut shared = None;
        let server = Server::start_api(|url| {
            let state = Arc::new(EntraState {
                url: url.to_owned(),
                key,
                http,
                directory: Mutex::default(),
            });
            shared = Some(Arc::clone(&state));
            Router::new()
                .route(
                    "/{tenant}/oauth2/v2.0/token",
                    post(token).get(token_wrong_method),
                )
                .route(
                    "/{tenant}/v2.0/.well-known/openid-configuration",
                    get(discovery_v2),
                )
                .route(
                    "/{tenant}/.well-known/openid-configuration",
                    get(discovery_v1),
                )
                .route("/{tenant}/discovery/v2.0/keys", get(keys))
                .route("/{tenant}/discovery/keys", get(keys))
                .with_state(state)
        })
        .await;
        Self {
            state: shared.expect("the router was built"),
            _server: server,
        }
    }

    pub(crate) fn shared(&self) -> Arc<EntraState> {
        Arc::clone(&self.state)
    }

    /// `http://127.0.0.1:PORT`: the authority host (`AZURE_AUTHORITY_HOST`).
    pub fn authority_host(&self) -> &str {
        &self.state.url
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/oauth2/v2.0/token", self.state.url)
    }

    /// The v2.0 issuer of the tenant, `{authority}/{tenant}/v2.0`.
    pub fn issuer(&self, tenant_id: &str) -> String {
        self.state.v2_issuer(&tenant(tenant_id))
    }

    /// The v1.0 issuer of the tenant, `{authority}/{tenant}/` (Entra's is
    /// `https://sts.windows.net/{tenant}/`).
    pub fn v1_issuer(&self, tenant_id: &str) -> String {
        self.state.v1_issuer(&tenant(tenant_id))
    }

    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn discovery_url(&self, tenant_id: &str) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer(tenant_id)
        )
    }

    /// `{authority}/{tenant}/discovery/v2.0/keys`.
    pub fn jwks_uri(&self, tenant_id: &str) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.state.url,
            tenant(tenant_id)
        )
    }

    /// The JWKS every tenant serves: the one RSA key Entra signs with.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.state.key.public_jwk()] })
    }

    /// The key access tokens are signed with (RS256).
    pub fn signing_key(&self) -> &SigningKey {
        &self.state.key
    }

    /// Creates a tenant.
    ///
    /// # Panics
    /// If `tenant_id` is not a GUID.
    pub fn add_tenant(&self, tenant_id: &str) {
        let id = tenant(tenant_id);
        self.state.directory().tenants.entry(id).or_default();
    }

    /// Registers an application in a tenant.
    ///
    /// # Panics
    /// If the tenant does not exist or already has this application.
    pub fn add_application(&self, tenant_id: &str, app: Application) {
        let mut directory = self.state.directory();
        let tenant = tenant_mut(&mut directory, tenant_id);
        let client_id = app.client_id.clone();
        let previous = tenant.apps.insert(
            client_id.clone(),
            AppRecord {
                app,
                credentials: Vec::new(),
            },
        );
        assert!(previous.is_none(), "application {client_id} already exists");
    }

    /// Adds a federated identity credential to an application.
    ///
    /// # Panics
    /// If the application does not exist, already has a credential of this name or issuer
    /// and subject, or would exceed 20 credentials.
    pub fn add_federated_credential(
        &self,
        tenant_id: &str,
        client_id: &str,
        credential: FederatedCredential,
    ) {
        let mut directory = self.state.directory();
        let app = app_mut(&mut directory, tenant_id, client_id);
        assert!(
            !app.credentials.iter().any(|c| c.name == credential.name
                || (c.issuer == credential.issuer && c.subject == credential.subject)),
            "a federated credential with this name or issuer and subject exists"
        );
        assert!(
            app.credentials.len() < MAX_FEDERATED_CREDENTIALS,
            "an application has at most {MAX_FEDERATED_CREDENTIALS} federated credentials"
        );
        assert!(
            !credential.audiences.is_empty(),
            "a federated credential has an audience"
        );
        app.credentials.push(credential);
    }

    /// Removes every federated identity credential of an application.
    pub fn clear_federated_credentials(&self, tenant_id: &str, client_id: &str) {
        let mut directory = self.state.directory();
        app_mut(&mut directory, tenant_id, client_id)
            .credentials
            .clear();
    }

    /// The object id of the application's service principal (`oid` in its tokens).
    pub fn object_id(&self, tenant_id: &str, client_id: &str) -> String {
        EntraState::object_id(&tenant(tenant_id), &client(client_id))
    }

    /// Makes `{resource}/.default` a valid scope in every tenant (for example
    /// `https://management.azure.com`, to obtain a token for the wrong resource).
    pub fn add_resource(&self, resource: &str) {
        let mut directory = self.state.directory();
        if !directory.resources.iter().any(|r| r == resource) {
            directory.resources.push(resource.to_owned());
        }
    }

    /// Chooses how federated credential mismatches are reported.
    pub fn set_mismatch_errors(&self, mode: MismatchErrors) {
        self.state.directory().mismatch = mode;
    }

    /// Answers the next `count` token requests with `error`, before looking at them.
    pub fn fail_next(&self, count: usize, error: EntraError) {
        let mut directory = self.state.directory();
        directory.faults.extend(std::iter::repeat_n(error, count));
    }

    /// Drops queued faults that have not been served.
    pub fn clear_faults(&self) {
        self.state.directory().faults.clear();
    }

    /// How many token requests arrived.
    pub fn calls(&self) -> usize {
        self.state.directory().exchanges.len()
    }

    /// Every token request answered so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.directory().exchanges.clone()
    }

    /// How many token requests for `client_id` got a token.
    pub fn successes(&self, client_id: &str) -> usize {
        self.count(client_id, true)
    }

    /// How many token requests for `client_id` were refused (injected faults included).
    pub fn failures(&self, client_id: &str) -> usize {
        self.count(client_id, false)
    }

    fn count(&self, client_id: &str, succeeded: bool) -> usize {
        let wanted = canonical_guid(client_id);
        self.state
            .directory()
            .exchanges
            .iter()
            .filter(|e| {
                e.client_id.as_deref().and_then(canonical_guid) == wanted
                    && e.outcome.is_ok() == succeeded
            })
            .count()
    }

    /// Every access token issued, oldest first by issue time.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        let mut tokens: Vec<_> = self.state.directory().tokens.values().cloned().collect();
        tokens.sort_by_key(|t| t.issued_at);
        tokens
    }

    /// What the emulator knows of an access token it issued.
    pub fn token_info(&self, access_token: &str) -> Option<IssuedToken> {
        self.state.issued(access_token)
    }

    /// Makes every access token issued so far expired (as seen by Key Vault).
    pub fn expire_tokens(&self) {
        let past = now_secs().saturating_sub(1);
        for token in self.state.directory().tokens.values_mut() {
            token.expires_at = past;
        }
    }

    /// Issues an access token without a request (for example one that expired at
    /// `expires_at`, in Unix seconds).
    pub fn mint_access_token(
        &self,
        tenant_id: &str,
        client_id: &str,
        resource: &str,
        expires_at: u64,
    ) -> String {
        self.state
            .issue(&tenant(tenant_id), &client(client_id), resource, expires_at)
    }

    /// The claims of an application-only access token that `caller_app_id`'s service
    /// principal would get for `audience` (a client id or application ID URI of an
    /// application in the tenant), carrying `roles`, valid for `ttl` from now. Its shape
    /// follows the target application's [`TokenVersion`].
    ///
    /// # Panics
    /// If no application of the tenant is known by `audience` (Entra would refuse the
    /// request with AADSTS500011).
    pub fn app_token_claims(
        &self,
        tenant_id: &str,
        caller_app_id: &str,
        audience: &str,
        roles: &[&str],
        ttl: Duration,
    ) -> Value {
        let tenant_id = tenant(tenant_id);
        let target = {
            let directory = self.state.directory();
            let tenant = directory
                .tenants
                .get(&tenant_id)
                .unwrap_or_else(|| panic!("tenant {tenant_id} does not exist"));
            tenant
                .apps
                .values()
                .map(|r| &r.app)
                .find(|app| {
                    canonical_guid(audience).as_deref() == Some(app.client_id.as_str())
                        || app.identifier_uris.iter().any(|uri| uri == audience)
                })
                .cloned()
                .unwrap_or_else(|| {
                    panic!("no application of tenant {tenant_id} is known as {audience}")
                })
        };
        let now = now_secs();
        let caller = caller_app_id.to_owned();
        let oid = EntraState::object_id(&tenant_id, &caller);
        let mut claims = json!({
            "iat": now,
            "nbf": now,
            "exp": now + ttl.as_secs(),
            "aio": opaque(),
            "idtyp": "app",
            "oid": oid,
            "rh": opaque(),
            "sub": oid,
            "tid": tenant_id,
            "uti": opaque(),
        });
        let fields = claims.as_object_mut().expect("claims are an object");
        match target.token_version {
            TokenVersion::V1 => {
                let issuer = self.state.v1_issuer(&tenant_id);
                fields.insert("aud".into(), json!(audience));
                fields.insert("iss".into(), json!(issuer));
                fields.insert("idp".into(), json!(issuer));
                fields.insert("appid".into(), json!(caller));
                fields.insert("appidacr".into(), json!("2"));
                fields.insert("ver".into(), json!("1.0"));
            }
            TokenVersion::V2 => {
                fields.insert("aud".into(), json!(target.client_id));
                fields.insert("iss".into(), json!(self.state.v2_issuer(&tenant_id)));
                fields.insert("azp".into(), json!(caller));
                fields.insert("azpacr".into(), json!("2"));
                fields.insert("ver".into(), json!("2.0"));
            }
        }
        if !roles.is_empty() {
            fields.insert("roles".into(), json!(roles));
        }
        claims
    }

    /// Signs `claims` with the emulator's key (RS256, its `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        self.state.key.sign(claims)
    }
}

/// The canonical GUID of a configured tenant id.
fn tenant(tenant_id: &str) -> String {
    canonical_guid(tenant_id).unwrap_or_else(|| panic!("a tenant id is a GUID: {tenant_id:?}"))
}

fn client(client_id: &str) -> String {
    canonical_guid(client_id).unwrap_or_else(|| panic!("a client id is a GUID: {client_id:?}"))
}

fn tenant_mut<'a>(directory: &'a mut Directory, tenant_id: &str) -> &'a mut Tenant {
    let id = tenant(tenant_id);
    directory
        .tenants
        .get_mut(&id)
        .unwrap_or_else(|| panic!("tenant {id} does not exist"))
}

fn app_mut<'a>(
    directory: &'a mut Directory,
    tenant_id: &str,
    client_id: &str,
) -> &'a mut AppRecord {
    let id = client(client_id);
    tenant_mut(directory, tenant_id)
        .apps
        .get_mut(&id)
        .unwrap_or_else(|| panic!("application {id} does not exist"))
}

/// A random opaque claim value, like Entra's `aio`, `rh` and `uti`.
fn opaque() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

// ---------------------------------------------------------------------------------------
// The token endpoint.

/// What a successful exchange produced.
struct Issued {
    access_token: String,
    expires_in: u64,
}

async fn token(
    State(state): State<Arc<EntraState>>,
    Path(tenant_segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation_id = correlation_id(&headers);
    // A body of another content type is not read at all, so every parameter is missing.
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let mut params: HashMap<String, String> = HashMap::new();
    if is_form {
        for (name, value) in form_urlencoded::parse(&body) {
            // The first occurrence of a repeated parameter wins.
            params
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    let outcome = exchange(&state, &tenant_segment, &params).await;
    state.directory().exchanges.push(Exchange {
        tenant: tenant_segment,
        client_id: params.get("client_id").cloned(),
        scope: params.get("scope").cloned(),
        outcome: outcome.as_ref().map(|_| ()).map_err(|e| e.code),
    });
    match outcome {
        Ok(issued) => {
            let body = json!({
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "ext_expires_in": issued.expires_in,
                "access_token": issued.access_token,
            });
            json_response(StatusCode::OK, &body, &correlation_id)
        }
        Err(error) => error_response(&error, &correlation_id),
    }
}

async fn token_wrong_method(headers: HeaderMap) -> Response {
    let error = EntraError::for_error(
        "invalid_request",
        900_561,
        "The endpoint only accepts POST, OPTIONS requests. Received a GET request.".to_owned(),
    );
    error_response(&error, &correlation_id(&headers))
}

/// The `client-request-id` the client sent (MSAL does), which Entra reports as the
/// correlation id; otherwise a fresh one.
fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CLIENT_REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(canonical_guid)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn json_response(status: StatusCode, body: &Value, correlation_id: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        headers.insert(HeaderName::from_static(CLIENT_REQUEST_ID_HEADER), value);
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    headers.insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id).expect("a GUID is a header value"),
    );
    response
}

/// Entra's error body: `error`, `error_description`, `error_codes`, `timestamp`,
/// `trace_id`, `correlation_id`, `error_uri`.
fn error_response(error: &EntraError, correlation_id: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let timestamp = entra_timestamp(now_secs() as i64);
    let body = json!({
        "error": error.error,
        "error_description": error.full_description(&trace_id, correlation_id, &timestamp),
        "error_codes": [error.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={}", error.code),
    });
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json_response(status, &body, correlation_id);
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The whole exchange, in the order described in the module documentation.
async fn exchange(
    state: &EntraState,
    tenant_segment: &str,
    params: &HashMap<String, String>,
) -> Result<Issued, EntraError> {
    if let Some(fault) = state.directory().faults.pop_front() {
        return Err(fault);
    }
    let tenant_id = resolve_tenant(state, tenant_segment)?;
    let grant_type = required(params, "grant_type")?;
    if grant_type != "client_credentials" {
        return Err(EntraError::for_error(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id_param = required(params, "client_id")?;
    let scope = required(params, "scope")?;
    let resource = parse_scope(scope)?;
    let (client_id, credentials) = {
        let directory = state.directory();
        let record = canonical_guid(client_id_param).and_then(|id| {
            directory
                .tenants
                .get(&tenant_id)
                .and_then(|t| t.apps.get(&id))
        });
        let Some(record) = record else {
            return Err(EntraError::for_error(
                "unauthorized_client",
                700_016,
                format!(
                    "Application with identifier '{client_id_param}' was not found in the \
                     directory '{tenant_id}'. This can happen if the application has not been \
                     installed by the administrator of the tenant or consented to by any user \
                     in the tenant. You may have sent your authentication request to the wrong \
                     tenant."
                ),
            ));
        };
        (record.app.client_id.clone(), record.credentials.clone())
    };
    let assertion = client_assertion(params, &client_id)?;
    let mismatch = state.directory().mismatch;
    verify_assertion(state, &credentials, assertion, mismatch).await?;
    if !state.directory().resources.contains(&resource) {
        return Err(EntraError::for_error(
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named \
                 {tenant_id}. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You \
                 might have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    let expires_in = crate::conditions::lifetime(Duration::from_secs(EXPIRES_IN)).as_secs();
    let access_token = state.issue(&tenant_id, &client_id, &resource, now_secs() + expires_in);
    Ok(Issued {
        access_token,
        expires_in,
    })
}

/// The tenant GUID the path names: AADSTS50059 for the multi-tenant aliases (client
/// credentials need a tenant), AADSTS900023 for a malformed identifier, AADSTS90002 for
/// an unknown tenant (domain names are not configured here, so they are unknown).
fn resolve_tenant(state: &EntraState, segment: &str) -> Result<String, EntraError> {
    if ["common", "organizations", "consumers"].contains(&segment.to_ascii_lowercase().as_str()) {
        return Err(EntraError::for_error(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any \
             provided credentials."
                .to_owned(),
        ));
    }
    let guid = canonical_guid(segment);
    if guid.is_none() && !segment.contains('.') {
        return Err(EntraError::for_error(
            "invalid_request",
            900_023,
            format!(
                "Specified tenant identifier '{segment}' is neither a valid DNS name, nor a \
                 valid external domain."
            ),
        ));
    }
    match guid {
        Some(id) if state.directory().tenants.contains_key(&id) => Ok(id),
        _ => Err(tenant_not_found("invalid_request", segment)),
    }
}

fn tenant_not_found(error: &str, segment: &str) -> EntraError {
    EntraError::for_error(
        error,
        90002,
        format!(
            "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID \
             and are signing into the correct cloud. Check with your subscription \
             administrator, this may happen if there are no active subscriptions for the \
             tenant."
        ),
    )
}

/// AADSTS900144 for a missing or empty parameter.
fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, EntraError> {
    match params.get(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(EntraError::for_error(
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )),
    }
}

/// The resource of a client-credentials scope: exactly one `{resource}/.default`.
fn parse_scope(scope: &str) -> Result<String, EntraError> {
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if scopes.len() != 1 {
        return Err(EntraError::for_error(
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided \
                 value for the input parameter 'scope' is not valid. The scope {scope} is not \
                 valid."
            ),
        ));
    }
    match scopes[0].strip_suffix("/.default") {
        Some(resource) if !resource.is_empty() && !resource.ends_with('/') => {
            Ok(resource.to_owned())
        }
        _ => Err(EntraError::for_error(
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        )),
    }
}

/// The `client_assertion`, after checking that the client authenticates with one and
/// nothing else. The applications here have no secrets, so a `client_secret` is wrong
/// (AADSTS7000215); an assertion of another type is not a client credential Entra knows,
/// which leaves the request without one (AADSTS7000218; inferred).
fn client_assertion<'a>(
    params: &'a HashMap<String, String>,
    client_id: &str,
) -> Result<&'a str, EntraError> {
    if params.contains_key("client_secret") {
        return Err(EntraError::for_error(
            "invalid_client",
            7_000_215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{client_id}'."
            ),
        ));
    }
    let no_credential = || {
        EntraError::for_error(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'."
                .to_owned(),
        )
    };
    let assertion = params
        .get("client_assertion")
        .filter(|a| !a.is_empty())
        .ok_or_else(no_credential)?;
    match params.get("client_assertion_type").map(String::as_str) {
        None | Some("") => Err(EntraError::for_error(
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'client_assertion_type'."
                .to_owned(),
        )),
        Some(JWT_BEARER) => Ok(assertion),
        Some(_) => Err(no_credential()),
    }
}

fn malformed() -> EntraError {
    EntraError::for_error(
        "invalid_request",
        50027,
        "JWT token is invalid or malformed.".to_owned(),
    )
}

/// Which claim failed to match any federated credential.
enum Mismatch {
    Issuer,
    Audience,
    Subject,
    SubjectCase,
}

/// The presented claims, for mismatch messages.
struct Presented<'a> {
    issuer: &'a str,
    subject: &'a str,
    audiences: &'a [String],
}

fn mismatch_error(mode: MismatchErrors, which: Mismatch, presented: &Presented<'_>) -> EntraError {
    let audience = presented.audiences.join(", ");
    if mode == MismatchErrors::Legacy {
        return EntraError::for_error(
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. \
                 Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: \
                 '{audience}'. {WIF_DOCS_OLD}",
                presented.issuer, presented.subject
            ),
        );
    }
    let (code, text) = match which {
        Mismatch::Issuer => (
            700_211,
            format!(
                "No matching federated identity record found for presented assertion issuer \
                 '{}'. Please check your federated identity credential Subject, Audience and \
                 Issuer against the presented assertion. {WIF_DOCS_OLD}",
                presented.issuer
            ),
        ),
        Mismatch::Audience => (
            700_212,
            format!(
                "No matching federated identity record found for presented assertion audience \
                 '{audience}'. Please check your federated identity credential Subject, \
                 Audience and Issuer against the presented assertion. {WIF_DOCS_OLD}"
            ),
        ),
        Mismatch::Subject => (
            700_213,
            format!(
                "No matching federated identity record found for presented assertion subject \
                 '{}'. Check your federated identity credential Subject, Audience and Issuer \
                 against the presented assertion. {WIF_DOCS}",
                presented.subject
            ),
        ),
        Mismatch::SubjectCase => (
            7_002_138,
            format!(
                "No matching federated identity record found for presented assertion subject \
                 '{}'. The subject matches with case-insensitive comparison, but not with \
                 case-sensitive comparison. Check your federated identity credential Subject, \
                 Audience and Issuer against the presented assertion. See documentation at: \
                 {WIF_DOCS}. See breaking change notification and remediation at: \
                 {BREAKING_CHANGE_DOCS}.",
                presented.subject
            ),
        ),
    };
    EntraError::for_error("invalid_client", code, text)
}

/// Verifies the client assertion against the application's federated credentials.
async fn verify_assertion(
    state: &EntraState,
    credentials: &[FederatedCredential],
    assertion: &str,
    mode: MismatchErrors,
) -> Result<(), EntraError> {
    // An unknown `alg` (including `none`) fails to parse here.
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(EntraError::for_error(
            "invalid_request",
            5_002_730,
            "Invalid JWT token. Unsupported key for the signing algorithm.".to_owned(),
        ));
    }
    let kid = header.kid.clone().ok_or_else(malformed)?;
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| malformed())?;
    let issuer = claims["iss"].as_str().ok_or_else(malformed)?;
    let subject = claims["sub"].as_str().ok_or_else(malformed)?;
    let audiences: Vec<String> = match &claims["aud"] {
        Value::String(audience) => vec![audience.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|a| a.as_str().map(str::to_owned).ok_or_else(malformed))
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed()),
    };
    let presented = Presented {
        issuer,
        subject,
        audiences: &audiences,
    };
    // Only a configured issuer is ever contacted.
    let by_issuer: Vec<&FederatedCredential> =
        credentials.iter().filter(|c| c.issuer == issuer).collect();
    if by_issuer.is_empty() {
        return Err(mismatch_error(mode, Mismatch::Issuer, &presented));
    }
    let jwks = fetch_jwks(state, issuer).await?;
    let jwk = jwks.find(&kid).ok_or_else(malformed)?;
    if let Some(declared) = jwk.common.key_algorithm
        && declared.to_string().parse::<Algorithm>().ok() != Some(header.alg)
    {
        return Err(malformed());
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| malformed())?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(assertion, &key, &validation).map_err(|_| malformed())?;
    check_lifetime(&claims)?;
    let by_audience: Vec<&FederatedCredential> = by_issuer
        .into_iter()
        .filter(|c| audiences.iter().any(|a| c.audiences.contains(a)))
        .collect();
    if by_audience.is_empty() {
        return Err(mismatch_error(mode, Mismatch::Audience, &presented));
    }
    if by_audience.iter().any(|c| c.subject == subject) {
        return Ok(());
    }
    let which = if by_audience
        .iter()
        .any(|c| c.subject.to_lowercase() == subject.to_lowercase())
    {
        Mismatch::SubjectCase
    } else {
        Mismatch::Subject
    };
    Err(mismatch_error(mode, which, &presented))
}

/// AADSTS700024 unless `nbf` (if any) and `iat` (if any) are not after now and `exp` is
/// after now; AADSTS50027 without a numeric `exp`.
fn check_lifetime(claims: &Value) -> Result<(), EntraError> {
    let numeric = |name: &str| -> Result<Option<i64>, EntraError> {
        match &claims[name] {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(malformed),
            _ => Err(malformed()),
        }
    };
    let exp = numeric("exp")?.ok_or_else(malformed)?;
    let nbf = numeric("nbf")?;
    let iat = numeric("iat")?;
    let now = since_epoch();
    let now_secs = now.as_secs() as i64;
    let valid = exp > now_secs
        && nbf.is_none_or(|nbf| nbf <= now_secs)
        && iat.is_none_or(|iat| iat <= now_secs);
    if valid {
        return Ok(());
    }
    Err(EntraError::for_error(
        "invalid_client",
        700_024,
        format!(
            "Client assertion is not within its valid time range. Current time: {}, assertion \
             valid from {}, expiry time of assertion {}. Review the documentation at \
             {CERTIFICATE_CREDENTIALS_DOCS} .",
            iso_seven_digits(now_secs, now.subsec_nanos()),
            iso_seven_digits(nbf.unwrap_or(0), 0),
            iso_seven_digits(exp, 0),
        ),
    ))
}

/// AADSTS50166 when the issuer's metadata cannot be read (inferred shape).
fn oidc_unreachable() -> EntraError {
    EntraError::for_error(
        "invalid_request",
        50166,
        "Request to External OIDC endpoint failed.".to_owned(),
    )
}

/// The issuer's JWKS through `{iss}/.well-known/openid-configuration`, whose `issuer`
/// must be `iss` itself.
async fn fetch_jwks(state: &EntraState, issuer: &str) -> Result<JwkSet, EntraError> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Value = get_json(&state.http, &discovery_url).await?;
    if discovery["issuer"].as_str() != Some(issuer) {
        return Err(oidc_unreachable());
    }
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or_else(oidc_unreachable)?;
    get_json(&state.http, jwks_uri).await
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, EntraError> {
    let response = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|_| oidc_unreachable())?;
    response.json().await.map_err(|_| oidc_unreachable())
}

// ---------------------------------------------------------------------------------------
// Discovery and keys.

/// The tenant of a discovery or keys path, or Entra's `invalid_tenant` answer.
fn known_tenant(state: &EntraState, segment: &str) -> Result<String, Box<Response>> {
    match canonical_guid(segment) {
        Some(id) if state.directory().tenants.contains_key(&id) => Ok(id),
        _ => {
            let error = tenant_not_found("invalid_tenant", segment);
            let correlation = uuid::Uuid::new_v4().to_string();
            Err(Box::new(error_response(&error, &correlation)))
        }
    }
}

/// The v2.0 discovery document, shaped like Entra's.
async fn discovery_v2(
    State(state): State<Arc<EntraState>>,
    Path(segment): Path<String>,
) -> Response {
    let tenant = match known_tenant(&state, &segment) {
        Ok(tenant) => tenant,
        Err(response) => return *response,
    };
    let base = format!("{}/{tenant}", state.url);
    let body = json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": state.v2_issuer(&tenant),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
            "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
            "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    json_response(StatusCode::OK, &body, &uuid::Uuid::new_v4().to_string())
}

/// The v1.0 discovery document, whose issuer is the v1.0 issuer.
async fn discovery_v1(
    State(state): State<Arc<EntraState>>,
    Path(segment): Path<String>,
) -> Response {
    let tenant = match known_tenant(&state, &segment) {
        Ok(tenant) => tenant,
        Err(response) => return *response,
    };
    let base = format!("{}/{tenant}", state.url);
    let body = json!({
        "token_endpoint": format!("{base}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": state.v1_issuer(&tenant),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
            "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
            "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        "check_session_iframe": format!("{base}/oauth2/checksession"),
        "userinfo_endpoint": format!("{base}/openid/userinfo"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    json_response(StatusCode::OK, &body, &uuid::Uuid::new_v4().to_string())
}

async fn keys(State(state): State<Arc<EntraState>>, Path(segment): Path<String>) -> Response {
    if let Err(response) = known_tenant(&state, &segment) {
        return *response;
    }
    let body = json!({ "keys": [state.key.public_jwk()] });
    json_response(StatusCode::OK, &body, &uuid::Uuid::new_v4().to_string())
}
