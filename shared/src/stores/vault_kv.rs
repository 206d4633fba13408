//! Vault / OpenBao KV v2 as a source: the latest version of a secret
//! (`GET /v1/{mount}/data/{path}`: `data.data` as one JSON object, version
//! `data.metadata.version`). fedsync logs in with JWT auth, presenting one of
//! its identities' tokens, and keeps the Vault token until shortly before its
//! lease ends; or it uses a token from a file that it re-reads.

use super::{Source, SourceSecret};
use crate::config::VaultKvConfig;
use crate::exchange::{BearerToken, CacheKey, CacheSlot, CredentialCache};
use crate::http::{self, Bearer, BearerError, HttpError};
use crate::identity::TokenSource;
use crate::reference::Reference;
use crate::report::{Failure, FailureClass};
use crate::secret::SecretValue;
use reqwest::Method;
use serde::Deserialize;
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

/// A Vault/OpenBao KV v2 engine.
pub struct VaultKvSource {
    /// `{address}/v1/{namespace/}`
    base: String,
    mount: String,
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

#[derive(Deserialize)]
struct Read {
    data: ReadData,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<serde_json::Map<String, serde_json::Value>>,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    version: u64,
}

/// Vault's error body: `{"errors": ["..."]}`.
#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

fn vault_failure(e: &HttpError, context: impl std::fmt::Display) -> Failure {
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

impl VaultKvSource {
    pub fn new(
        config: &VaultKvConfig,
        identity: Option<Arc<dyn TokenSource>>,
        cache: Arc<CredentialCache<BearerToken>>,
    ) -> Self {
        let namespace = config
            .namespace
            .as_deref()
            .map(|n| format!("{}/", n.trim_matches('/')))
            .unwrap_or_default();
        let base = format!("{}/v1/{namespace}", config.address.trim_end_matches('/'));
        let login = match (identity, &config.role, &config.token) {
            (Some(identity), Some(role), _) => Login::Jwt {
                role: role.clone(),
                audience: config.audience.clone(),
                auth_mount: config.auth_mount.clone(),
                identity,
                slot: CacheSlot::new(
                    cache,
                    CacheKey {
                        identity: config.identity.clone().unwrap_or_default(),
                        principal: format!("{base}auth/{}/role/{role}", config.auth_mount),
                        audience: config.audience.clone(),
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
        VaultKvSource {
            base,
            mount: config.mount.trim_matches('/').to_string(),
            login,
        }
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
        let sent = http::client().post(url).json(&body).send().await;
        let answer = match sent {
            Ok(r) => http::check(r).await,
            Err(e) => Err(HttpError::from(e)),
        };
        let explain = |e: &HttpError| {
            let mut f = vault_failure(e, format_args!("Vault JWT login as role {role:?}"));
            // Vault answers a refused login with 400: a trust problem, not bad input.
            if f.class == FailureClass::BadInput {
                f.class = FailureClass::Auth;
            }
            f.message.push_str(&format!(
                ". Presented {}; the role's bound_audiences, bound_subject and bound_claims must accept them, and the auth mount must trust the issuer",
                jwt.claims
            ));
            f
        };
        let response = answer.map_err(|e| explain(&e))?;
        let login: LoginAnswer = http::json(response).await.map_err(|e| explain(&e))?;
        tracing::info!(role, "logged in to Vault with JWT auth");
        Ok(BearerToken::new(
            login.auth.client_token,
            SystemTime::now() + Duration::from_secs(login.auth.lease_duration),
        ))
    }

    async fn get(&self, path: &str) -> Result<Option<reqwest::Response>, Failure> {
        let url = format!("{}{}/{path}", self.base, self.mount);
        match http::send_with_bearer(self, Method::GET, &url, &[], None).await {
            Ok(r) => Ok(Some(r)),
            Err(BearerError::Http(e)) if e.is(404) => Ok(None),
            Err(BearerError::Token(f)) => Err(f),
            Err(BearerError::Http(e)) => Err(vault_failure(
                &e,
                format_args!("reading {path:?} from Vault"),
            )),
        }
    }
}

#[async_trait::async_trait]
impl Bearer for VaultKvSource {
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

#[async_trait::async_trait]
impl Source for VaultKvSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        let Some(response) = self.get(&format!("data/{secret}")).await? else {
            return Ok(None);
        };
        let read: Read = http::json(response)
            .await
            .map_err(|e| http::failure(&e, format_args!("reading {secret:?} from Vault")))?;
        // A deleted or destroyed latest version has no data.
        let Some(data) = read.data.data else {
            return Ok(None);
        };
        let value = serde_json::Value::Object(data).to_string();
        Ok(Some(SourceSecret {
            name: secret.to_string(),
            version: read.data.metadata.version.to_string(),
            value: SecretValue::text(value),
        }))
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        // The data read, not the metadata: a deleted latest version has a version
        // number in the metadata but is gone, and both answers must agree.
        Ok(self.read(secret).await?.map(|s| s.version))
    }
}
