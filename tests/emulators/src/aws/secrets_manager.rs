//! AWS Secrets Manager as its API reference describes it, in the JSON 1.1 protocol
//! (`X-Amz-Target: secretsmanager.Operation`), for the operations fedsync calls:
//! `CreateSecret`, `GetSecretValue`, `DescribeSecret`, `ListSecrets`, `PutSecretValue`,
//! `TagResource`, `UpdateSecretVersionStage`, `DeleteSecret` and `RestoreSecret`.
//!
//! Every request must carry a SigV4 signature IAM verifies, for `secretsmanager` in the
//! region whose secrets it addresses, and the caller's role must allow the action.
//! Versions carry staging labels (`AWSCURRENT`, `AWSPREVIOUS`); a `ClientRequestToken`
//! is a version's id, so repeating a write with the same token and value changes
//! nothing, and reusing a token for another value is refused. A deleted secret keeps
//! its name until its recovery window ends (here: until it is restored).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::iam::{ACCOUNT, AuthFailure, Iam, random_upper};
use crate::server::Server;
use crate::sigv4;

const TARGET_PREFIX: &str = "secretsmanager.";
const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-amzn-requestid");
const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";
/// Versions without a staging label that Secrets Manager keeps before removing the oldest.
const MAX_DEPRECATED_VERSIONS: usize = 100;
const MAX_TAGS: usize = 50;
const MAX_SECRET_BYTES: usize = 65_536;

/// A Secrets Manager error as the JSON protocol sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmError {
    pub status: u16,
    /// The `__type`, for example `ResourceNotFoundException`.
    pub code: String,
    pub message: String,
}

impl SmError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn not_found() -> Self {
        Self::new("ResourceNotFoundException", NOT_FOUND)
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", message)
    }

    fn validation(violations: &[String]) -> Self {
        let count = violations.len();
        let plural = if count == 1 { "" } else { "s" };
        Self::new(
            "ValidationException",
            format!(
                "{count} validation error{plural} detected: {}",
                violations.join("; ")
            ),
        )
    }
}

/// A secret's value: text or bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    String(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    value: SecretValue,
    stages: Vec<String>,
    created: f64,
}

#[derive(Debug, Clone)]
struct Secret {
    arn: String,
    name: String,
    description: Option<String>,
    kms_key_id: Option<String>,
    tags: Vec<(String, String)>,
    /// Oldest first.
    versions: Vec<Version>,
    created: f64,
    last_changed: f64,
    /// When it was scheduled for deletion.
    deleted: Option<f64>,
}

impl Secret {
    fn with_stage(&self, stage: &str) -> Option<&Version> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    fn version(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    fn live(&self) -> Result<(), SmError> {
        match self.deleted {
            Some(_) => Err(SmError::invalid_request(MARKED_FOR_DELETION)),
            None => Ok(()),
        }
    }

    /// Attaches `stage` to version `to`, detaching it from wherever it was; moving
    /// `AWSCURRENT` gives the version that held it `AWSPREVIOUS`.
    fn move_stage(&mut self, stage: &str, to: &str) {
        let from = self.with_stage(stage).map(|v| v.id.clone());
        if from.as_deref() == Some(to) {
            return;
        }
        for v in &mut self.versions {
            v.stages.retain(|s| s != stage);
        }
        if stage == CURRENT
            && let Some(from) = from
        {
            for v in &mut self.versions {
                v.stages.retain(|s| s != PREVIOUS);
            }
            if let Some(v) = self.versions.iter_mut().find(|v| v.id == from) {
                v.stages.push(PREVIOUS.to_owned());
            }
        }
        if let Some(v) = self.versions.iter_mut().find(|v| v.id == to) {
            v.stages.push(stage.to_owned());
        }
    }

    /// Removes the oldest versions without a label beyond the ones Secrets Manager keeps.
    fn prune(&mut self) {
        let deprecated = self.versions.iter().filter(|v| v.stages.is_empty()).count();
        let mut excess = deprecated.saturating_sub(MAX_DEPRECATED_VERSIONS);
        self.versions.retain(|v| {
            let drop = excess > 0 && v.stages.is_empty();
            if drop {
                excess -= 1;
            }
            !drop
        });
    }

    fn versions_to_stages(&self) -> Value {
        let map: Map<String, Value> = self
            .versions
            .iter()
            .filter(|v| !v.stages.is_empty())
            .map(|v| (v.id.clone(), json!(v.stages)))
            .collect();
        Value::Object(map)
    }

    fn tags_json(&self) -> Value {
        json!(
            self.tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect::<Vec<_>>()
        )
    }

    /// The fields `DescribeSecret` and a `ListSecrets` entry share.
    fn description_json(&self, versions_key: &str) -> Value {
        let mut out = json!({
            "ARN": self.arn,
            "Name": self.name,
            "CreatedDate": self.created,
            "LastChangedDate": self.last_changed,
            versions_key: self.versions_to_stages(),
        });
        if let Some(d) = &self.description {
            out["Description"] = json!(d);
        }
        if let Some(k) = &self.kms_key_id {
            out["KmsKeyId"] = json!(k);
        }
        if !self.tags.is_empty() {
            out["Tags"] = self.tags_json();
        }
        if let Some(d) = self.deleted {
            out["DeletedDate"] = json!(d);
        }
        out
    }
}

#[derive(Debug, Default)]
struct Store {
    /// Region -> name -> secret.
    regions: HashMap<String, BTreeMap<String, Secret>>,
    /// Calls answered, by operation.
    calls: BTreeMap<String, usize>,
}

struct ServiceState {
    iam: Arc<Iam>,
    store: Mutex<Store>,
}

impl ServiceState {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Secrets Manager, every region on one `127.0.0.1` port (the signature's credential
/// scope names the region).
pub struct SecretsManager {
    state: Arc<ServiceState>,
    server: Server,
}

impl SecretsManager {
    /// Starts the service; it accepts requests signed with keys `iam` knows.
    pub async fn start(iam: Arc<Iam>) -> Self {
        let state = Arc::new(ServiceState {
            iam,
            store: Mutex::default(),
        });
        let router_state = Arc::clone(&state);
        let server = Server::start_api(|_| {
            Router::new()
                .route("/", post(handle))
                .with_state(router_state)
        })
        .await;
        Self { state, server }
    }

    /// `http://127.0.0.1:PORT`, for an SDK's `endpoint_url`.
    pub fn endpoint(&self) -> String {
        self.server.base_url()
    }

    /// Creates (or gives a new current version to) `name` in `region`, as an
    /// administrator would; the new version's id.
    pub fn put(&self, region: &str, name: &str, value: SecretValue) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut store = self.state.store();
        let secrets = store.regions.entry(region.to_owned()).or_default();
        let now = now();
        let secret = secrets
            .entry(name.to_owned())
            .or_insert_with(|| new_secret(region, name, now));
        secret.versions.push(Version {
            id: id.clone(),
            value,
            stages: Vec::new(),
            created: now,
        });
        secret.move_stage(CURRENT, &id);
        secret.last_changed = now;
        id
    }

    /// The `AWSCURRENT` value of `name` in `region`, if it exists and is not deleted.
    pub fn current(&self, region: &str, name: &str) -> Option<SecretValue> {
        let store = self.state.store();
        let secret = store.regions.get(region)?.get(name)?;
        if secret.deleted.is_some() {
            return None;
        }
        secret.with_stage(CURRENT).map(|v| v.value.clone())
    }

    /// Schedules `name` in `region` for deletion, as an administrator would.
    pub fn delete(&self, region: &str, name: &str) {
        let mut store = self.state.store();
        let secret = store.regions.get_mut(region).and_then(|r| r.get_mut(name));
        if let Some(secret) = secret {
            secret.deleted.get_or_insert_with(now);
        }
    }

    /// Cancels the scheduled deletion of `name` in `region`.
    pub fn restore(&self, region: &str, name: &str) {
        let mut store = self.state.store();
        let secret = store.regions.get_mut(region).and_then(|r| r.get_mut(name));
        if let Some(secret) = secret {
            secret.deleted = None;
        }
    }

    /// The tags of `name` in `region`.
    pub fn tags(&self, region: &str, name: &str) -> Vec<(String, String)> {
        let store = self.state.store();
        let secret = store.regions.get(region).and_then(|r| r.get(name));
        secret.map(|s| s.tags.clone()).unwrap_or_default()
    }

    /// How many calls of `operation` (for example `PutSecretValue`) were answered.
    pub fn calls(&self, operation: &str) -> usize {
        self.state
            .store()
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

fn new_secret(region: &str, name: &str, now: f64) -> Secret {
    // AWS appends a hyphen and six random characters to the name in the ARN.
    let suffix: String = random_upper(6);
    Secret {
        arn: format!("arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{name}-{suffix}"),
        name: name.to_owned(),
        description: None,
        kms_key_id: None,
        tags: Vec::new(),
        versions: Vec::new(),
        created: now,
        last_changed: now,
        deleted: None,
    }
}

fn now() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Milliseconds, as the service reports its dates.
    (since.as_millis() as f64) / 1000.0
}

async fn handle(
    State(state): State<Arc<ServiceState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
    };
    let outcome = answer(&state, &request, &headers, &body);
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({"__type": e.code, "Message": e.message}),
        ),
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                "application/x-amz-json-1.1".to_owned(),
            ),
            (REQUEST_ID_HEADER, request_id),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Authentication, the operation, its authorization, then the operation itself.
fn answer(
    state: &ServiceState,
    request: &sigv4::Request<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, SmError> {
    let who = state
        .iam
        .authenticate(request, "secretsmanager")
        .map_err(auth_error)?;
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix(TARGET_PREFIX) else {
        return Err(SmError::new(
            "UnknownOperationException",
            format!("Unknown operation {target}"),
        ));
    };
    let operation = operation.to_owned();
    let input: Value = serde_json::from_slice(body).map_err(|_| {
        SmError::new(
            "SerializationException",
            "The request body is not a JSON object.",
        )
    })?;
    if !input.is_object() {
        return Err(SmError::new(
            "SerializationException",
            "The request body is not a JSON object.",
        ));
    }
    let action = format!("secretsmanager:{operation}");
    if !state.iam.allows(&who.caller, &action) {
        let resource = input["SecretId"].as_str().or(input["Name"].as_str());
        return Err(SmError::new(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: {action} on resource: {} because no \
                 identity-based policy allows the {action} action",
                who.caller.caller_arn,
                resource.unwrap_or("*"),
            ),
        ));
    }
    let mut store = state.store();
    *store.calls.entry(operation.clone()).or_default() += 1;
    let secrets = store.regions.entry(who.region.clone()).or_default();
    let input = Input(&input);
    match operation.as_str() {
        "CreateSecret" => create_secret(secrets, &who.region, input),
        "GetSecretValue" => get_secret_value(secrets, input),
        "DescribeSecret" => describe_secret(secrets, input),
        "ListSecrets" => list_secrets(secrets, input),
        "PutSecretValue" => put_secret_value(secrets, input),
        "TagResource" => tag_resource(secrets, input),
        "UpdateSecretVersionStage" => update_secret_version_stage(secrets, input),
        "DeleteSecret" => delete_secret(secrets, input),
        "RestoreSecret" => restore_secret(secrets, input),
        other => Err(SmError::new(
            "UnknownOperationException",
            format!("Unknown operation {TARGET_PREFIX}{other}"),
        )),
    }
}

/// A refused signature in the JSON protocol's words.
fn auth_error(failure: AuthFailure) -> SmError {
    match failure {
        AuthFailure::Missing => SmError {
            status: 400,
            code: "MissingAuthenticationTokenException".into(),
            message: "Missing Authentication Token".into(),
        },
        AuthFailure::Incomplete(m) => SmError::new("IncompleteSignatureException", m),
        AuthFailure::SignatureMismatch(m) => SmError::new("InvalidSignatureException", m),
        AuthFailure::UnknownKey => SmError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        AuthFailure::Expired => SmError::new(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
    }
}

/// A request's members, checked against the model's constraints.
#[derive(Clone, Copy)]
struct Input<'a>(&'a Value);

impl Input<'_> {
    fn string(
        &self,
        member: &str,
        min: usize,
        max: usize,
        violations: &mut Vec<String>,
    ) -> Option<String> {
        let value = &self.0[member];
        if value.is_null() {
            return None;
        }
        let Some(text) = value.as_str() else {
            violations.push(format!(
                "Value at '{}' failed to satisfy constraint: Member must be a string",
                lower_first(member)
            ));
            return None;
        };
        let length = text.chars().count();
        if length < min || length > max {
            violations.push(format!(
                "Value at '{}' failed to satisfy constraint: Member must have length between \
                 {min} and {max}",
                lower_first(member)
            ));
        }
        Some(text.to_owned())
    }

    fn required(
        &self,
        member: &str,
        min: usize,
        max: usize,
        violations: &mut Vec<String>,
    ) -> String {
        let value = self.string(member, min, max, violations);
        if value.is_none() && self.0[member].is_null() {
            violations.push(format!(
                "Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(member)
            ));
        }
        value.unwrap_or_default()
    }

    /// `SecretString` or `SecretBinary` (base64), at most one and within the size limit
    /// (counted in bytes, as AWS counts it).
    fn value(&self, violations: &mut Vec<String>) -> Result<Option<SecretValue>, SmError> {
        let text = self.string("SecretString", 0, usize::MAX, violations);
        if text.as_ref().is_some_and(|t| t.len() > MAX_SECRET_BYTES) {
            violations.push(format!(
                "Value at 'secretString' failed to satisfy constraint: Member must have length \
                 less than or equal to {MAX_SECRET_BYTES}"
            ));
        }
        let binary = match &self.0["SecretBinary"] {
            Value::Null => None,
            Value::String(b) => {
                let bytes = BASE64.decode(b).map_err(|_| {
                    SmError::new("SerializationException", "SecretBinary is not base64.")
                })?;
                if bytes.len() > MAX_SECRET_BYTES {
                    violations.push(format!(
                        "Value at 'secretBinary' failed to satisfy constraint: Member must \
                         have length less than or equal to {MAX_SECRET_BYTES}"
                    ));
                }
                Some(bytes)
            }
            _ => {
                return Err(SmError::new(
                    "SerializationException",
                    "SecretBinary is not base64.",
                ));
            }
        };
        match (text, binary) {
            (Some(_), Some(_)) => Err(SmError::invalid_parameter(
                "You can't specify both a binary secret value and a string secret value in \
                 the same secret.",
            )),
            (Some(t), None) => Ok(Some(SecretValue::String(t))),
            (None, Some(b)) => Ok(Some(SecretValue::Binary(b))),
            (None, None) => Ok(None),
        }
    }

    fn tags(&self, violations: &mut Vec<String>) -> Result<Vec<(String, String)>, SmError> {
        let Some(list) = self.0["Tags"].as_array() else {
            return Ok(Vec::new());
        };
        let mut tags = Vec::new();
        for (i, tag) in list.iter().enumerate() {
            let tag = Input(tag);
            let member = |m: &str| format!("tags.{}.member.{m}", i + 1);
            let key = tag.string("Key", 1, 128, violations);
            let value = tag.string("Value", 0, 256, violations);
            let Some(key) = key else {
                violations.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    member("key")
                ));
                continue;
            };
            if key.starts_with("aws:") {
                return Err(SmError::invalid_parameter(
                    "The tag key can't start with aws:, which is reserved for AWS use.",
                ));
            }
            tags.push((key, value.unwrap_or_default()));
        }
        Ok(tags)
    }

    fn check(&self, violations: Vec<String>) -> Result<(), SmError> {
        if violations.is_empty() {
            Ok(())
        } else {
            Err(SmError::validation(&violations))
        }
    }
}

fn lower_first(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The secret a `SecretId` names: its name, its ARN, or its ARN without the random suffix.
fn find<'a>(
    secrets: &'a mut BTreeMap<String, Secret>,
    id: &str,
) -> Result<&'a mut Secret, SmError> {
    let key = if secrets.contains_key(id) {
        Some(id.to_owned())
    } else {
        secrets
            .values()
            .find(|s| {
                s.arn == id
                    || s.arn
                        .rsplit_once('-')
                        .is_some_and(|(partial, _)| partial == id)
            })
            .map(|s| s.name.clone())
    };
    key.and_then(|k| secrets.get_mut(&k))
        .ok_or_else(SmError::not_found)
}

fn secret_id(input: Input<'_>, violations: &mut Vec<String>) -> String {
    input.required("SecretId", 1, 2048, violations)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)
}

fn create_secret(
    secrets: &mut BTreeMap<String, Secret>,
    region: &str,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let name = input.required("Name", 1, 512, &mut violations);
    let token = input.string("ClientRequestToken", 32, 64, &mut violations);
    let description = input.string("Description", 0, 2048, &mut violations);
    let kms_key_id = input.string("KmsKeyId", 0, 2048, &mut violations);
    let value = input.value(&mut violations)?;
    let tags = input.tags(&mut violations)?;
    input.check(violations)?;
    if !name.chars().all(is_name_char) {
        return Err(SmError::invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of \
             the following: -/_+=.@!",
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(SmError::invalid_parameter(format!(
            "A secret can have at most {MAX_TAGS} tags."
        )));
    }
    if let Some(existing) = secrets.get(&name) {
        if existing.deleted.is_some() {
            return Err(SmError::invalid_request(
                "You can't create this secret because a secret with this name is already \
                 scheduled for deletion.",
            ));
        }
        // A repeat of the request that created the version is ignored.
        if let Some(version) = token.as_deref().and_then(|t| existing.version(t)) {
            if Some(&version.value) != value.as_ref() {
                return Err(token_in_use(&version.id, &existing.arn));
            }
            return Ok(json!({"ARN": existing.arn, "Name": name, "VersionId": version.id}));
        }
        return Err(SmError::new(
            "ResourceExistsException",
            format!("The operation failed because the secret {name} already exists."),
        ));
    }
    let now = now();
    let mut secret = new_secret(region, &name, now);
    secret.description = description;
    secret.kms_key_id = kms_key_id;
    secret.tags = tags;
    let mut out = json!({"ARN": secret.arn, "Name": name});
    if let Some(value) = value {
        let id = token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        secret.versions.push(Version {
            id: id.clone(),
            value,
            stages: vec![CURRENT.to_owned()],
            created: now,
        });
        out["VersionId"] = json!(id);
    }
    secrets.insert(name, secret);
    Ok(out)
}

/// A `ClientRequestToken` reused for another value: versions cannot be modified.
fn token_in_use(token: &str, arn: &str) -> SmError {
    SmError::new(
        "ResourceExistsException",
        format!(
            "You can't use ClientRequestToken {token} because that value is already in use for \
             a version of secret {arn}."
        ),
    )
}

fn get_secret_value(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    let version_id = input.string("VersionId", 32, 64, &mut violations);
    let stage = input.string("VersionStage", 1, 256, &mut violations);
    input.check(violations)?;
    let secret = find(secrets, &id)?;
    secret.live()?;
    let version = match (&version_id, &stage) {
        (Some(v), _) => secret.version(v).filter(|version| {
            stage
                .as_ref()
                .is_none_or(|s| version.stages.iter().any(|x| x == s))
        }),
        (None, Some(s)) => secret.with_stage(s),
        (None, None) => secret.with_stage(CURRENT),
    };
    let Some(version) = version else {
        let what = match (version_id, stage) {
            (Some(v), _) => format!("VersionId: {v}"),
            (None, s) => format!("staging label: {}", s.as_deref().unwrap_or(CURRENT)),
        };
        return Err(SmError::new(
            "ResourceNotFoundException",
            format!("Secrets Manager can't find the specified secret value for {what}"),
        ));
    };
    let mut out = json!({
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": version.id,
        "VersionStages": version.stages,
        "CreatedDate": version.created,
    });
    match &version.value {
        SecretValue::String(s) => out["SecretString"] = json!(s),
        SecretValue::Binary(b) => out["SecretBinary"] = json!(BASE64.encode(b)),
    }
    Ok(out)
}

fn describe_secret(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    input.check(violations)?;
    let secret = find(secrets, &id)?;
    Ok(secret.description_json("VersionIdsToStages"))
}

fn list_secrets(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let max = match &input.0["MaxResults"] {
        Value::Null => 100,
        v => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => {
                violations.push(
                    "Value at 'maxResults' failed to satisfy constraint: Member must have value \
                     between 1 and 100"
                        .to_owned(),
                );
                0
            }
        },
    };
    let next = input.string("NextToken", 1, 4096, &mut violations);
    input.check(violations)?;
    if !input.0["Filters"].is_null() {
        return Err(SmError::invalid_parameter(
            "Filters are not supported by this emulator.",
        ));
    }
    let include_deleted = input.0["IncludePlannedDeletion"].as_bool().unwrap_or(false);
    // The token is the name the next page starts at, encoded so it stays opaque.
    let start = match next {
        None => None,
        Some(t) => Some(
            BASE64
                .decode(&t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SmError::invalid_parameter("The NextToken is not valid."))?,
        ),
    };
    let mut listed = secrets
        .values()
        .filter(|s| include_deleted || s.deleted.is_none())
        .filter(|s| start.as_ref().is_none_or(|start| &s.name >= start));
    let page: Vec<Value> = listed
        .by_ref()
        .take(max)
        .map(|s| s.description_json("SecretVersionsToStages"))
        .collect();
    let mut out = json!({"SecretList": page});
    if let Some(following) = listed.next() {
        out["NextToken"] = json!(BASE64.encode(&following.name));
    }
    Ok(out)
}

fn put_secret_value(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    let token = input.string("ClientRequestToken", 32, 64, &mut violations);
    let value = input.value(&mut violations)?;
    let stages: Option<Vec<String>> = input.0["VersionStages"].as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    input.check(violations)?;
    let secret = find(secrets, &id)?;
    secret.live()?;
    let Some(value) = value else {
        return Err(SmError::invalid_parameter(
            "You must provide either SecretString or SecretBinary.",
        ));
    };
    let token = token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Some(existing) = secret.version(&token) {
        if existing.value != value {
            return Err(token_in_use(&existing.id, &secret.arn));
        }
        return Ok(json!({
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": existing.id,
            "VersionStages": existing.stages,
        }));
    }
    let now = now();
    secret.versions.push(Version {
        id: token.clone(),
        value,
        stages: Vec::new(),
        created: now,
    });
    for stage in stages.unwrap_or_else(|| vec![CURRENT.to_owned()]) {
        secret.move_stage(&stage, &token);
    }
    secret.last_changed = now;
    secret.prune();
    let version = secret.version(&token).map(|v| v.stages.clone());
    Ok(json!({
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": token,
        "VersionStages": version.unwrap_or_default(),
    }))
}

fn tag_resource(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    if input.0["Tags"].is_null() {
        violations.push(
            "Value null at 'tags' failed to satisfy constraint: Member must not be null".into(),
        );
    }
    let tags = input.tags(&mut violations)?;
    input.check(violations)?;
    let secret = find(secrets, &id)?;
    secret.live()?;
    let mut merged = secret.tags.clone();
    for (key, value) in tags {
        match merged.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => merged.push((key, value)),
        }
    }
    if merged.len() > MAX_TAGS {
        return Err(SmError::invalid_parameter(format!(
            "A secret can have at most {MAX_TAGS} tags."
        )));
    }
    secret.tags = merged;
    secret.last_changed = now();
    Ok(json!({}))
}

fn update_secret_version_stage(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    let stage = input.required("VersionStage", 1, 256, &mut violations);
    let move_to = input.string("MoveToVersionId", 32, 64, &mut violations);
    let remove_from = input.string("RemoveFromVersionId", 32, 64, &mut violations);
    input.check(violations)?;
    let secret = find(secrets, &id)?;
    secret.live()?;
    for version in [&move_to, &remove_from].into_iter().flatten() {
        if secret.version(version).is_none() {
            return Err(SmError::invalid_parameter(format!(
                "The parameter VersionId {version} does not identify a version of the secret."
            )));
        }
    }
    let holder = secret.with_stage(&stage).map(|v| v.id.clone());
    match (&move_to, &remove_from, &holder) {
        (Some(to), _, Some(held)) if to == held => {}
        (_, Some(from), Some(held)) if from == held => {}
        (_, _, Some(held)) => {
            return Err(SmError::invalid_parameter(format!(
                "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is \
                 currently attached to version {held}, so you must explicitly reference that \
                 version in RemoveFromVersionId."
            )));
        }
        (_, Some(from), None) => {
            return Err(SmError::invalid_parameter(format!(
                "The staging label {stage} is not attached to version {from}."
            )));
        }
        (_, None, None) => {}
    }
    match move_to {
        Some(to) => secret.move_stage(&stage, &to),
        None if stage == CURRENT => {
            return Err(SmError::invalid_parameter(
                "You can't remove the staging label AWSCURRENT without moving it to another \
                 version.",
            ));
        }
        None => {
            for v in &mut secret.versions {
                v.stages.retain(|s| *s != stage);
            }
        }
    }
    secret.last_changed = now();
    Ok(json!({"ARN": secret.arn, "Name": secret.name}))
}

fn delete_secret(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    input.check(violations)?;
    let window = input.0["RecoveryWindowInDays"].as_i64();
    let force = input.0["ForceDeleteWithoutRecovery"]
        .as_bool()
        .unwrap_or(false);
    if force && window.is_some() {
        return Err(SmError::invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    if window.is_some_and(|w| !(7..=30).contains(&w)) {
        return Err(SmError::invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    let secret = find(secrets, &id)?;
    if secret.deleted.is_some() && !force {
        return Err(SmError::invalid_request(
            "You can't perform this operation on the secret because it was already scheduled \
             for deletion.",
        ));
    }
    let now = now();
    let deletion_date = if force {
        now
    } else {
        now + (window.unwrap_or(30) * 86_400) as f64
    };
    let out = json!({"ARN": secret.arn, "Name": secret.name, "DeletionDate": deletion_date});
    if force {
        let name = secret.name.clone();
        secrets.remove(&name);
    } else {
        secret.deleted = Some(now);
    }
    Ok(out)
}

fn restore_secret(
    secrets: &mut BTreeMap<String, Secret>,
    input: Input<'_>,
) -> Result<Value, SmError> {
    let mut violations = Vec::new();
    let id = secret_id(input, &mut violations);
    input.check(violations)?;
    let secret = find(secrets, &id)?;
    secret.deleted = None;
    secret.last_changed = now();
    Ok(json!({"ARN": secret.arn, "Name": secret.name}))
}
