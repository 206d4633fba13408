//! The part of AWS IAM every emulated AWS service shares: the access keys it knows
//! (with their secret, session token, expiry and principal), roles with the actions
//! their permission policy allows, temporary sessions issued for a role, and SigV4
//! authentication of a request, checked the way AWS checks it.
//!
//! Each service maps an [`AuthFailure`] to its own protocol's error code.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};

use crate::sigv4::{self, Authorization};

/// The account every emulated resource lives in (moto's default account too).
pub const ACCOUNT: &str = "123456789012";
/// How far a request's `X-Amz-Date` may be from the service's clock.
const MAX_SKEW: Duration = Duration::from_secs(300);
/// The provider name the SDK shows for keys issued here.
const PROVIDER: &str = "fedsync-emulators";

/// What IAM knows of one access key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires_at: Option<SystemTime>,
    /// The IAM principal whose policy applies: for a session, the role's ARN.
    pub principal_arn: String,
    /// The session's own ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), which
    /// AWS names in its refusals; the principal's ARN for long-lived keys.
    pub caller_arn: String,
}

/// Why a request's signature did not authenticate it, in AWS's order of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// The header, its signed headers or `X-Amz-Date` are malformed or missing.
    Incomplete(String),
    /// The signature, its date or its scope do not match.
    SignatureMismatch(String),
    /// The access key (or its session token) is not one IAM knows.
    UnknownKey,
    /// The session has expired.
    Expired,
}

/// A request that authenticated: who signed it and for which region.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub access_key_id: String,
    pub caller: Caller,
    pub region: String,
}

/// A session issued for a role.
#[derive(Debug, Clone)]
pub struct Session {
    pub credentials: Credentials,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`
    pub arn: String,
    /// `ROLEID:SESSION`
    pub assumed_role_id: String,
}

#[derive(Debug, Default)]
struct State {
    callers: HashMap<String, Caller>,
    /// Role ARN -> (role id, the actions its permission policy allows).
    roles: HashMap<String, (String, Vec<String>)>,
}

/// The account's IAM: keys, roles and their permissions.
#[derive(Debug, Default)]
pub struct Iam {
    state: Mutex<State>,
}

impl Iam {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the role `name` whose permission policy allows `actions` on every
    /// resource (`service:Action`, or `service:*`); its ARN.
    pub fn create_role(&self, name: &str, actions: &[&str]) -> String {
        let arn = format!("arn:aws:iam::{ACCOUNT}:role/{name}");
        let id = format!("AROA{}", random_upper(17));
        let actions = actions.iter().map(|a| a.to_string()).collect();
        self.state().roles.insert(arn.clone(), (id, actions));
        arn
    }

    /// Whether `role_arn` exists.
    pub fn has_role(&self, role_arn: &str) -> bool {
        self.state().roles.contains_key(role_arn)
    }

    /// Issues temporary credentials for a session of `role_arn`, valid for `duration`.
    /// `None` when the role does not exist.
    pub fn issue_session(
        &self,
        role_arn: &str,
        session_name: &str,
        duration: Duration,
    ) -> Option<Session> {
        let mut state = self.state();
        let (role_id, _) = state.roles.get(role_arn)?;
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        let arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session_name}");
        let assumed_role_id = format!("{role_id}:{session_name}");
        let expires_at = SystemTime::now() + crate::conditions::lifetime(duration);
        // Whole seconds, as STS reports the expiry.
        let expires_at = UNIX_EPOCH
            + Duration::from_secs(
                expires_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            );
        let credentials = Credentials::new(
            format!("ASIA{}", random_upper(16)),
            random_text(40),
            Some(random_text(356)),
            Some(expires_at),
            PROVIDER,
        );
        let caller = Caller {
            secret_access_key: credentials.secret_access_key().to_owned(),
            session_token: credentials.session_token().map(str::to_owned),
            expires_at: Some(expires_at),
            principal_arn: role_arn.to_owned(),
            caller_arn: arn.clone(),
        };
        state
            .callers
            .insert(credentials.access_key_id().to_owned(), caller);
        Some(Session {
            credentials,
            arn,
            assumed_role_id,
        })
    }

    /// Lets `credentials` sign calls as the IAM principal `principal_arn` (for
    /// temporary credentials, the role they are a session of).
    pub fn register_credentials(&self, credentials: &Credentials, principal_arn: &str) {
        let caller = Caller {
            secret_access_key: credentials.secret_access_key().to_owned(),
            session_token: credentials.session_token().map(str::to_owned),
            expires_at: credentials.expiry(),
            principal_arn: principal_arn.to_owned(),
            caller_arn: principal_arn.to_owned(),
        };
        self.state()
            .callers
            .insert(credentials.access_key_id().to_owned(), caller);
    }

    /// Whether `caller`'s principal may perform `action` (`service:Action`).
    pub fn allows(&self, caller: &Caller, action: &str) -> bool {
        let state = self.state();
        let Some((_, actions)) = state.roles.get(&caller.principal_arn) else {
            return false;
        };
        let service = action.split(':').next().unwrap_or_default();
        actions
            .iter()
            .any(|a| a == action || a == "*" || *a == format!("{service}:*"))
    }

    /// SigV4 as AWS checks it: a well-formed `Authorization` scoped to `service`, a
    /// fresh `X-Amz-Date`, a known access key with its session token, then the
    /// signature itself.
    pub fn authenticate(
        &self,
        request: &sigv4::Request<'_>,
        service: &str,
    ) -> Result<Authenticated, AuthFailure> {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let value = header("authorization").ok_or(AuthFailure::Missing)?;
        let authorization = Authorization::parse(&value).map_err(AuthFailure::Incomplete)?;
        if !authorization.signed_headers.iter().any(|h| h == "host") {
            return Err(AuthFailure::Incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned(),
            ));
        }
        let Some(amz_date) = header("x-amz-date") else {
            return Err(AuthFailure::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a \
                 'Date' header."
                    .to_owned(),
            ));
        };
        let mismatch = AuthFailure::SignatureMismatch;
        let signed_at = parse_amz_date(&amz_date)
            .ok_or_else(|| mismatch(format!("Invalid X-Amz-Date: {amz_date}")))?;
        check_skew(&amz_date, signed_at).map_err(mismatch)?;
        if !amz_date.starts_with(&authorization.date) {
            return Err(mismatch(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of \
                 date from HTTP: '{}' != '{}'",
                authorization.date,
                &amz_date[..8.min(amz_date.len())]
            )));
        }
        if authorization.service != service {
            return Err(mismatch(format!(
                "Credential should be scoped to correct service: '{service}'. ({})",
                authorization.service
            )));
        }
        let caller = self
            .state()
            .callers
            .get(&authorization.access_key_id)
            .cloned()
            .ok_or(AuthFailure::UnknownKey)?;
        if header("x-amz-security-token") != caller.session_token {
            return Err(AuthFailure::UnknownKey);
        }
        if caller.expires_at.is_some_and(|e| e <= SystemTime::now()) {
            return Err(AuthFailure::Expired);
        }
        if !sigv4::verify(
            &caller.secret_access_key,
            request,
            &authorization,
            &amz_date,
        ) {
            return Err(mismatch(
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method. Consult the \
                 service documentation for details."
                    .to_owned(),
            ));
        }
        Ok(Authenticated {
            access_key_id: authorization.access_key_id,
            caller,
            region: authorization.region,
        })
    }
}

/// `YYYYMMDDTHHMMSSZ` as seconds since the epoch.
fn parse_amz_date(amz_date: &str) -> Option<i64> {
    let b = amz_date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &amz_date[0..4],
        &amz_date[4..6],
        &amz_date[6..8],
        &amz_date[9..11],
        &amz_date[11..13],
        &amz_date[13..15]
    );
    DateTime::from_str(&rfc3339, DateTimeFormat::DateTime)
        .ok()
        .map(|t| t.secs())
}

/// AWS's refusal of a request signed too long ago or too far ahead.
fn check_skew(amz_date: &str, signed_at: i64) -> Result<(), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let skew = MAX_SKEW.as_secs() as i64;
    let stamp = |secs: i64| {
        DateTime::from_secs(secs)
            .fmt(DateTimeFormat::DateTime)
            .unwrap_or_default()
            .replace(['-', ':'], "")
    };
    if signed_at < now - skew {
        return Err(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            stamp(now - skew),
            stamp(now)
        ));
    }
    if signed_at > now + skew {
        return Err(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            stamp(now + skew),
            stamp(now)
        ));
    }
    Ok(())
}

/// `len` random characters of `alphabet`, from the system's secure generator.
fn random_of(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system's random generator works");
    bytes
        .iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

/// Upper-case letters and digits, as access key ids are made of.
pub(crate) fn random_upper(len: usize) -> String {
    random_of(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", len)
}

/// Letters and digits, as secret keys and session tokens are made of.
fn random_text(len: usize) -> String {
    random_of(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        len,
    )
}
