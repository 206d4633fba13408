//! Azure: the Entra v2 token endpoint turns fedsync's token, presented as a
//! federated credential (`client_assertion`, jwt-bearer), into an access token
//! for Key Vault. Refusals are explained with the AADSTS code and what was
//! presented, since Entra matches issuer, subject and audience exactly.

use super::{BearerToken, CacheKey, CacheSlot, CredentialCache, Obtained};
use crate::http::{self, HttpError};
use crate::identity::{Claims, IdentityToken, TokenSource};
use crate::report::Failure;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The default authority, and the conventional environment overrides (Entra Workload ID).
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";
pub const AUTHORITY_ENV: &str = "AZURE_AUTHORITY_HOST";
pub const TENANT_ENV: &str = "AZURE_TENANT_ID";
pub const CLIENT_ENV: &str = "AZURE_CLIENT_ID";
/// The scope of Key Vault's data plane.
pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// Where and as whom to ask Entra for a token.
#[derive(Debug, Clone)]
pub struct Application {
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub audience: String,
    pub scope: String,
}

/// The configured authority, else `AZURE_AUTHORITY_HOST`, else Entra's public one.
pub fn authority(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| std::env::var(AUTHORITY_ENV).ok())
        .unwrap_or_else(|| DEFAULT_AUTHORITY.into())
}

impl Application {
    /// Fills what the configuration leaves out from the Workload ID environment.
    pub fn from_config(c: &crate::config::AzureKeyVaultConfig) -> Self {
        let env = |name| std::env::var(name).unwrap_or_default();
        Application {
            authority: c
                .authority_host
                .clone()
                .or_else(|| std::env::var(AUTHORITY_ENV).ok())
                .unwrap_or_else(|| DEFAULT_AUTHORITY.into()),
            tenant_id: c.tenant_id.clone().unwrap_or_else(|| env(TENANT_ENV)),
            client_id: c.client_id.clone().unwrap_or_else(|| env(CLIENT_ENV)),
            audience: c.audience.clone(),
            scope: KEY_VAULT_SCOPE.into(),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct EntraError {
    error: String,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// Obtains and caches Entra access tokens for one identity and application.
pub struct EntraExchange {
    identity_name: String,
    identity: Arc<dyn TokenSource>,
    app: Application,
    slot: CacheSlot<BearerToken>,
}

impl EntraExchange {
    pub fn new(
        identity_name: &str,
        identity: Arc<dyn TokenSource>,
        app: Application,
        cache: Arc<CredentialCache<BearerToken>>,
    ) -> Self {
        let key = CacheKey {
            identity: identity_name.to_string(),
            principal: format!("{}/{}", app.tenant_id, app.client_id),
            audience: app.audience.clone(),
            scope: format!("{} {}", app.scope, app.authority),
        };
        EntraExchange {
            identity_name: identity_name.to_string(),
            identity,
            app,
            slot: CacheSlot::new(cache, key),
        }
    }

    pub async fn token(&self) -> Result<BearerToken, Failure> {
        self.slot.get(|| self.exchange()).await
    }

    pub async fn invalidate(&self, refused: &BearerToken) {
        self.slot.invalidate(|t| t.same_as(refused)).await;
    }

    pub fn exchanges(&self) -> u64 {
        self.slot.exchanges()
    }

    /// The application (and tenant) the tokens are for.
    pub fn application(&self) -> &Application {
        &self.app
    }

    async fn exchange(&self) -> Result<BearerToken, Failure> {
        let assertion = self.identity.token(&self.app.audience).await?;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.app.authority.trim_end_matches('/'),
            self.app.tenant_id
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app.client_id.as_str()),
            ("scope", self.app.scope.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.expose()),
        ];
        // A token request is harmless to repeat.
        let answer = http::client()
            .post(url)
            .form(&form)
            .idempotent()
            .send()
            .await;
        let explain = |e: &HttpError| assertion.scrub(self.explain(e, &assertion));
        let response = answer.map_err(|e| explain(&e))?;
        let token: TokenResponse = http::json(response).await.map_err(|e| explain(&e))?;
        tracing::info!(identity = %self.identity_name, client_id = %self.app.client_id, "exchanged the identity token at Entra ID");
        Ok(BearerToken::new(
            token.access_token,
            SystemTime::now() + Duration::from_secs(token.expires_in),
        ))
    }

    fn explain(&self, e: &HttpError, assertion: &IdentityToken) -> Failure {
        let Ok(entra) = serde_json::from_str::<EntraError>(&e.body) else {
            return http::failure(
                e,
                format_args!("Entra ID token request for client {}", self.app.client_id),
            );
        };
        let code = entra.error_codes.first().copied().unwrap_or_default();
        let presented = &assertion.claims;
        let description = entra.error_description.unwrap_or_default();
        let description = description
            .split(" Trace ID:")
            .next()
            .unwrap_or_default()
            .trim()
            .trim_end_matches('.');
        let message = format!(
            "Entra ID refused the federated credential of identity {:?} for client {} in tenant {}: {}: {description}. Presented {presented}",
            self.identity_name, self.app.client_id, self.app.tenant_id, entra.error
        );
        super::refusal(e.class(), message, self.hint(code, presented))
    }

    /// What most likely does not match, from the AADSTS code and the token's
    /// claims against the application's federated identity credentials.
    fn hint(&self, code: u64, presented: &Claims) -> Option<String> {
        let app = &self.app.client_id;
        let iss = presented.iss.as_deref().unwrap_or("");
        let sub = presented.sub.as_deref().unwrap_or("");
        let aud = presented.aud.join(" ");
        Some(match code {
            700211 => format!(
                "no federated identity credential of application {app} has the token's issuer: add one whose issuer is exactly {iss:?}"
            ),
            700212 => format!(
                "no federated identity credential of application {app} for this issuer lists the token's aud {aud:?} \
                 (the store's `audience` setting): add it to the credential's audiences, or set `audience` to one they \
                 list (usually \"api://AzureADTokenExchange\", the default)"
            ),
            700213 => format!(
                "no federated identity credential of application {app} for this issuer and audience has the token's \
                 subject: set the credential's subject to exactly {sub:?} (matching is case-sensitive)"
            ),
            7002138 => format!(
                "a federated identity credential of application {app} has the token's subject in other letter case: \
                 matching is case-sensitive, so set the credential's subject to exactly {sub:?}"
            ),
            70021 | 7002137 => format!(
                "no federated identity credential of application {app} matches: its issuer, subject and audience must \
                 equal the token's iss {iss:?}, sub {sub:?} and aud {aud:?} exactly, and matching is case-sensitive"
            ),
            700024 => "the token is outside its valid time range: check this host's clock and the token's lifetime (a stale token file?)".into(),
            90002 | 900023 => format!("tenant {:?} does not exist (check tenant_id)", self.app.tenant_id),
            700016 => format!("application {app:?} is not in tenant {:?} (check client_id and tenant_id)", self.app.tenant_id),
            50027 => "Entra could not validate the token: check the issuer's discovery document and JWKS, and that the JWKS holds the token's key id".into(),
            50166 => format!("Entra could not fetch the discovery document or the JWKS of {iss:?}: they must answer from the internet"),
            _ => return None,
        })
    }

    /// An access token from the cache or a new exchange, described.
    pub async fn obtain(&self) -> Result<Obtained, Failure> {
        let token = self.token().await?;
        Ok(Obtained {
            what: format!(
                "an access token for {} of application {} in tenant {}",
                self.app.scope.trim_end_matches("/.default"),
                self.app.client_id,
                self.app.tenant_id
            ),
            expires_at: token.expires_at,
        })
    }
}

#[async_trait::async_trait]
impl crate::http::Bearer for EntraExchange {
    async fn token(&self) -> Result<BearerToken, Failure> {
        EntraExchange::token(self).await
    }

    async fn invalidate(&self, refused: &BearerToken) {
        EntraExchange::invalidate(self, refused).await
    }
}
