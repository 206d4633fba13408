//! Google OAuth 2.0 access tokens, shared by the emulated services like Google's own token
//! infrastructure: STS, IAM Credentials and the metadata server issue opaque bearer tokens
//! into one [`AccessTokens`] registry, each remembered with the principal it acts as, its
//! scopes and its expiry; Secret Manager and IAM Credentials accept only a token found
//! there, unexpired and carrying an accepted scope.
//!
//! Principals are named as IAM members: `principal://iam.googleapis.com/projects/{NUMBER}/
//! locations/global/workloadIdentityPools/{POOL}/subject/{SUB}` for a federated identity,
//! `serviceAccount:{EMAIL}` for a service account. A grant to
//! `principalSet://iam.googleapis.com/projects/{NUMBER}/locations/global/
//! workloadIdentityPools/{POOL}/*` covers every identity of that pool.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest::{SHA256, digest};
use axum::http::{HeaderMap, header};
use serde_json::json;

use super::status::GoogleError;

/// The scope every Google Cloud API accepts.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The IAM scope, accepted by IAM Credentials besides [`CLOUD_PLATFORM`].
pub const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";

const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. \
     Expected OAuth 2 access token, login cookie or other valid authentication credential. \
     See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected \
     OAuth 2 access token, login cookie or other valid authentication credential. See \
     https://developers.google.com/identity/sign-in/web/devconsole-project.";
const INSUFFICIENT_SCOPES: &str = "Request had insufficient authentication scopes.";

/// Who an access token acts as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// An identity federated through a workload identity pool (STS).
    Federated {
        project_number: String,
        pool: String,
        subject: String,
    },
    /// A service account, by email.
    ServiceAccount { email: String },
}

impl Principal {
    pub fn federated(project_number: &str, pool: &str, subject: &str) -> Self {
        Self::Federated {
            project_number: project_number.to_owned(),
            pool: pool.to_owned(),
            subject: subject.to_owned(),
        }
    }

    pub fn service_account(email: &str) -> Self {
        Self::ServiceAccount {
            email: email.to_owned(),
        }
    }

    /// The IAM member naming exactly this principal.
    pub fn member(&self) -> String {
        match self {
            Self::Federated {
                project_number,
                pool,
                subject,
            } => format!("{}/subject/{subject}", pool_name(project_number, pool)),
            Self::ServiceAccount { email } => format!("serviceAccount:{email}"),
        }
    }

    /// Whether a grant to `member` applies to this principal: the exact member, or for a
    /// federated identity its pool's `principalSet://…/*`.
    pub fn is_member(&self, member: &str) -> bool {
        if member == self.member() {
            return true;
        }
        match self {
            Self::Federated {
                project_number,
                pool,
                ..
            } => {
                let set =
                    pool_name(project_number, pool).replacen("principal://", "principalSet://", 1);
                member == format!("{set}/*")
            }
            Self::ServiceAccount { .. } => false,
        }
    }
}

fn pool_name(project_number: &str, pool: &str) -> String {
    format!(
        "principal://iam.googleapis.com/projects/{project_number}/locations/global/\
         workloadIdentityPools/{pool}"
    )
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.member())
    }
}

/// Which service issued a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// A federated token from STS `/v1/token`.
    Sts,
    /// A service account token from IAM Credentials `generateAccessToken`.
    IamCredentials,
    /// The instance's service account token from the metadata server.
    Metadata,
    /// Minted directly by a test through [`AccessTokens::issue`].
    Test,
}

/// What an issued access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub principal: Principal,
    pub scopes: Vec<String>,
    pub expires_at: SystemTime,
    pub source: TokenSource,
}

impl AccessToken {
    pub fn is_expired(&self) -> bool {
        SystemTime::now() >= self.expires_at
    }
}

/// The registry of issued access tokens, shared by the emulated services (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct AccessTokens {
    tokens: Arc<Mutex<HashMap<String, AccessToken>>>,
}

impl AccessTokens {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, AccessToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Issues a fresh opaque token for `principal`, valid for `lifetime` (zero gives a
    /// token that is already expired).
    pub fn issue(
        &self,
        principal: Principal,
        scopes: &[&str],
        lifetime: Duration,
        source: TokenSource,
    ) -> String {
        let token = format!(
            "ya29.emu-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.lock().insert(
            token.clone(),
            AccessToken {
                principal,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                expires_at: SystemTime::now() + lifetime,
                source,
            },
        );
        token
    }

    /// What `token` stands for, expired or not.
    pub fn get(&self, token: &str) -> Option<AccessToken> {
        self.lock().get(token).cloned()
    }

    /// Makes `token` expire now; false if it was never issued.
    pub fn expire(&self, token: &str) -> bool {
        match self.lock().get_mut(token) {
            Some(issued) => {
                issued.expires_at = SystemTime::now();
                true
            }
            None => false,
        }
    }

    /// Makes every issued token expire now.
    pub fn expire_all(&self) {
        let now = SystemTime::now();
        for issued in self.lock().values_mut() {
            issued.expires_at = now;
        }
    }

    /// How many tokens `source` has issued.
    pub fn issued_by(&self, source: TokenSource) -> usize {
        self.lock().values().filter(|t| t.source == source).count()
    }

    /// The caller of a request to `service`: its `Authorization: Bearer` token must be one
    /// of ours, unexpired, with one of `accepted_scopes`. 401 `UNAUTHENTICATED` otherwise
    /// (403 for a token lacking the scope), in Google's words.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        service: &str,
        accepted_scopes: &[&str],
    ) -> Result<AccessToken, GoogleError> {
        let metadata = json!({ "service": service });
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(
                GoogleError::new(401, "UNAUTHENTICATED", MISSING_CREDENTIALS).with_error_info(
                    "CREDENTIALS_MISSING",
                    "googleapis.com",
                    metadata,
                ),
            );
        };
        let invalid = |reason: &str| {
            GoogleError::new(401, "UNAUTHENTICATED", INVALID_CREDENTIALS).with_error_info(
                reason,
                "googleapis.com",
                metadata.clone(),
            )
        };
        let value = value
            .to_str()
            .map_err(|_| invalid("ACCESS_TOKEN_TYPE_UNSUPPORTED"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
                token
            }
            _ => return Err(invalid("ACCESS_TOKEN_TYPE_UNSUPPORTED")),
        };
        let issued = self
            .get(token)
            .ok_or_else(|| invalid("ACCESS_TOKEN_TYPE_UNSUPPORTED"))?;
        if issued.is_expired() {
            return Err(invalid("ACCESS_TOKEN_EXPIRED"));
        }
        if !issued
            .scopes
            .iter()
            .any(|s| accepted_scopes.contains(&s.as_str()))
        {
            return Err(
                GoogleError::new(403, "PERMISSION_DENIED", INSUFFICIENT_SCOPES).with_error_info(
                    "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "googleapis.com",
                    metadata,
                ),
            );
        }
        Ok(issued)
    }
}

/// A stable 21-digit unique ID for a service account, as Google gives each one (the `sub`
/// and `azp` of its ID tokens).
pub fn service_account_unique_id(email: &str) -> String {
    let hash = digest(&SHA256, email.as_bytes());
    let mut number = [0u8; 8];
    number.copy_from_slice(&hash.as_ref()[..8]);
    // 1 followed by 20 digits, like real unique IDs (e.g. 113774264463038321964).
    format!("1{:020}", u64::from_be_bytes(number))
}
