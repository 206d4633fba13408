//! Access to one Vault / OpenBao server, shared by the KV source and the
//! `vault-oidc` identity: the API base (with the namespace), the login (JWT auth
//! with one of fedsync's identities, the Vault token kept until shortly before
//! its lease ends; or a token from a file or variable, re-read at every use),
//! authenticated reads, and Vault's error bodies turned into failures.

use crate::config::VaultLogin;
use crate::exchange::{BearerToken, CacheKey, CacheSlot, CredentialCache, Obtained};
use crate::http::{self, Bearer, BearerError, HttpError};
use crate::identity::TokenSource;
use crate::reference::Reference;
use crate::report::{Failure, FailureClass};
use reqwest::Method;
use serde::Deserialize;
use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How Vault tokens are obtained.
enum Login {
    Jwt {
        role: String,
        audience: String,
        auth_mount: String,
        identity: Arc<dyn TokenSource>,
        slot: CacheSlot<BearerToken>,
    },
    Token(Reference),
}

/// One Vault server (and namespace), logged in to as the configuration says.
pub struct VaultClient {
    /// `{address}/v1/{namespace/}`
    base: String,
    login: Login,
}

#[derive(Deserialize)]
struct LoginAnswer {
    auth: Auth,
}

#[derive(Deserialize)]
struct Auth {
    client_token: String,
    lease_duration: u64,
}

/// Vault's error body: `{"errors": ["..."]}`.
#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

/// A failed Vault call, with Vault's own explanation when it gave one.
pub fn failure(e: &HttpError, context: impl Display) -> Failure {
    match serde_json::from_str::<Errors>(&e.body)
        .ok()
        .filter(|b| !b.errors.is_empty())
    {
        Some(b) => Failure::new(
            e.class(),
            format!(
                "{context}: {} (HTTP {})",
                b.errors.join("; "),
                e.status.map_or(0, |s| s.as_u16())
            ),
        ),
        None => http::failure(e, context),
    }
}

impl VaultClient {
    /// `identity` is the login identity's token source, when `login` names one.
    pub fn new(
        address: &str,
        namespace: Option<&str>,
        login: &VaultLogin,
        identity: Option<Arc<dyn TokenSource>>,
        cache: Arc<CredentialCache<BearerToken>>,
    ) -> Self {
        let namespace = namespace
            .map(|n| format!("{}/", n.trim_matches('/')))
            .unwrap_or_default();
        let base = format!("{}/v1/{namespace}", address.trim_end_matches('/'));
        let login = match (identity, &login.role, &login.token) {
            (Some(identity), Some(role), _) => Login::Jwt {
                role: role.clone(),
                audience: login.audience.clone(),
                auth_mount: login.auth_mount.clone(),
                identity,
                slot: CacheSlot::new(
                    cache,
                    CacheKey {
                        identity: login.identity.clone().unwrap_or_default(),
                        principal: format!("{base}auth/{}/role/{role}", login.auth_mount),
                        audience: login.audience.clone(),
                        scope: String::new(),
                    },
                ),
            },
            (_, _, token) => Login::Token(
                token
                    .as_deref()
                    .and_then(|t| Reference::parse(t).ok())
                    .unwrap_or(Reference::Env("VAULT_TOKEN".into())),
            ),
        };
        VaultClient { base, login }
    }

    async fn jwt_login(
        &self,
        role: &str,
        audience: &str,
        auth_mount: &str,
        identity: &dyn TokenSource,
    ) -> Result<BearerToken, Failure> {
        let jwt = identity.token(audience).await?;
        let url = format!("{}auth/{auth_mount}/login", self.base);
        let body = serde_json::json!({"role": role, "jwt": jwt.expose()});
        // A login is harmless to repeat (an unused token expires with its lease).
        let answer = http::client()
            .post(url)
            .json(&body)
            .idempotent()
            .send()
            .await;
        let explain = |e: &HttpError| {
            let mut f = failure(e, format_args!("Vault JWT login as role {role:?}"));
            // Vault answers a refused login with 400: a trust problem, not bad input.
            if f.class == FailureClass::BadInput {
                f.class = FailureClass::Auth;
            }
            f.message.push_str(&format!(". Presented {}", jwt.claims));
            jwt.scrub(f.with_likely_cause(
                "the role's bound_audiences, bound_subject and bound_claims must accept these claims, and the auth mount must trust the issuer",
            ))
        };
        let response = answer.map_err(|e| explain(&e))?;
        let login: LoginAnswer = http::json(response).await.map_err(|e| explain(&e))?;
        tracing::info!(role, "logged in to Vault with JWT auth");
        Ok(BearerToken::new(
            login.auth.client_token,
            SystemTime::now() + Duration::from_secs(login.auth.lease_duration),
        ))
    }

    /// The Vault token of a JWT login, from the cache or a new login, described;
    /// `None` when fedsync uses a Vault token it was given (no exchange).
    pub async fn obtain(&self) -> Option<Result<Obtained, Failure>> {
        let Login::Jwt {
            role, auth_mount, ..
        } = &self.login
        else {
            return None;
        };
        Some(self.token().await.map(|token| Obtained {
            what: format!(
                "a Vault token of role {role:?} (JWT login at {}auth/{auth_mount})",
                self.base
            ),
            expires_at: token.expires_at,
        }))
    }

    /// `GET {base}{path}?{query}`: `None` when Vault answers 404.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: impl Display,
    ) -> Result<Option<reqwest::Response>, Failure> {
        let url = format!("{}{path}", self.base);
        match http::send_with_bearer(self, Method::GET, &url, query, None).await {
            Ok(r) => Ok(Some(r)),
            Err(BearerError::Http(e)) if e.is(404) => Ok(None),
            Err(BearerError::Token(f)) => Err(f),
            Err(BearerError::Http(e)) => Err(failure(&e, what)),
        }
    }
}

#[async_trait::async_trait]
impl Bearer for VaultClient {
    async fn token(&self) -> Result<BearerToken, Failure> {
        match &self.login {
            Login::Jwt {
                role,
                audience,
                auth_mount,
                identity,
                slot,
            } => {
                slot.get(|| self.jwt_login(role, audience, auth_mount, identity.as_ref()))
                    .await
            }
            Login::Token(reference) => {
                let token = reference
                    .read()
                    .map_err(|e| Failure::new(FailureClass::Auth, format!("Vault token: {e}")))?;
                Ok(BearerToken::new(
                    token.trim().to_string(),
                    SystemTime::now() + Duration::from_secs(60),
                ))
            }
        }
    }

    async fn invalidate(&self, refused: &BearerToken) {
        if let Login::Jwt { slot, .. } = &self.login {
            slot.invalidate(|t| t.same_as(refused)).await;
        }
    }
}
