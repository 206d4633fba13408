//! Google: the STS token exchange turns fedsync's token into a federated access
//! token for a workload identity provider; when a service account is configured,
//! IAM Credentials `generateAccessToken` then impersonates it. Refusals are
//! explained in the user's terms (audience, attribute condition, missing role).

use super::{BearerToken, CacheKey, CacheSlot, CredentialCache, Obtained};
use crate::google::{CLOUD_PLATFORM, GoogleError, IAM_CREDENTIALS, STS};
use crate::http::{self, HttpError};
use crate::identity::{Claims, IdentityToken, MetadataServer, TokenSource};
use crate::report::Failure;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the exchange presents and where: one workload identity provider, and
/// the service account to impersonate, if any.
#[derive(Debug, Clone)]
pub struct Federation {
    pub provider: String,
    pub audience: String,
    pub service_account: Option<String>,
    pub sts_endpoint: String,
    pub iamcredentials_endpoint: String,
}

/// Obtains and caches Google access tokens for one identity and federation.
pub struct GoogleExchange {
    identity_name: String,
    identity: Arc<dyn TokenSource>,
    federation: Federation,
    slot: CacheSlot<BearerToken>,
}

#[derive(Deserialize)]
struct StsToken {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpersonatedToken {
    access_token: String,
    expire_time: String,
}

impl GoogleExchange {
    pub fn new(
        identity_name: &str,
        identity: Arc<dyn TokenSource>,
        federation: Federation,
        cache: Arc<CredentialCache<BearerToken>>,
    ) -> Self {
        let key = CacheKey {
            identity: identity_name.to_string(),
            principal: federation
                .service_account
                .clone()
                .unwrap_or_else(|| federation.provider.clone()),
            audience: federation.audience.clone(),
            scope: format!(
                "{} {} {}",
                federation.provider, federation.sts_endpoint, federation.iamcredentials_endpoint
            ),
        };
        GoogleExchange {
            identity_name: identity_name.to_string(),
            identity,
            federation,
            slot: CacheSlot::new(cache, key),
        }
    }

    /// An access token from the cache, or a new exchange.
    pub async fn token(&self) -> Result<BearerToken, Failure> {
        self.slot.get(|| self.exchange()).await
    }

    /// Drops `refused` from the cache, unless a concurrent call replaced it already.
    pub async fn invalidate(&self, refused: &BearerToken) {
        self.slot.invalidate(|t| t.same_as(refused)).await;
    }

    /// Exchanges this destination started in this process.
    pub fn exchanges(&self) -> u64 {
        self.slot.exchanges()
    }

    /// An access token from the cache or a new exchange, described.
    pub async fn obtain(&self) -> Result<Obtained, Failure> {
        let token = self.token().await?;
        let provider = &self.federation.provider;
        let what = match &self.federation.service_account {
            Some(account) => format!(
                "an access token of service account {account}, impersonated through provider {provider}"
            ),
            None => format!("a federated access token from provider {provider}"),
        };
        Ok(Obtained {
            what,
            expires_at: token.expires_at,
        })
    }

    async fn exchange(&self) -> Result<BearerToken, Failure> {
        let subject = self.identity.token(&self.federation.audience).await?;
        let federated = self.sts(&subject).await.map_err(|f| subject.scrub(f))?;
        let Some(account) = &self.federation.service_account else {
            return Ok(federated);
        };
        self.impersonate(&federated, account, &subject)
            .await
            .map_err(|f| federated.scrub(subject.scrub(f)))
    }

    async fn sts(&self, subject: &IdentityToken) -> Result<BearerToken, Failure> {
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("audience", self.federation.provider.as_str()),
            ("scope", CLOUD_PLATFORM),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("subject_token", subject.expose()),
        ];
        let url = format!(
            "{}/v1/token",
            self.federation.sts_endpoint.trim_end_matches('/')
        );
        // A token exchange is harmless to repeat.
        let answer = http::client()
            .post(url)
            .form(&form)
            .idempotent()
            .send()
            .await;
        let response = answer.map_err(|e| self.explain_sts(&e, subject))?;
        let token: StsToken = http::json(response)
            .await
            .map_err(|e| self.explain_sts(&e, subject))?;
        tracing::info!(identity = %self.identity_name, provider = %self.federation.provider, "exchanged the identity token at Google STS");
        Ok(BearerToken::new(
            token.access_token,
            SystemTime::now() + Duration::from_secs(token.expires_in),
        ))
    }

    async fn impersonate(
        &self,
        federated: &BearerToken,
        account: &str,
        subject: &IdentityToken,
    ) -> Result<BearerToken, Failure> {
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{account}:generateAccessToken",
            self.federation
                .iamcredentials_endpoint
                .trim_end_matches('/')
        );
        let body = serde_json::json!({"scope": [CLOUD_PLATFORM], "lifetime": "3600s"});
        let answer = http::client()
            .post(url)
            .bearer_auth(federated.expose())
            .json(&body)
            .idempotent()
            .send()
            .await;
        let explain = |e: &HttpError| self.explain_impersonation(e, account, subject);
        let response = answer.map_err(|e| explain(&e))?;
        let token: ImpersonatedToken = http::json(response).await.map_err(|e| explain(&e))?;
        let expires_at = humantime::parse_rfc3339_weak(&token.expire_time)
            .unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(3000));
        tracing::info!(identity = %self.identity_name, service_account = %account, "impersonated the service account");
        Ok(BearerToken::new(token.access_token, expires_at))
    }

    fn explain_sts(&self, e: &HttpError, subject: &IdentityToken) -> Failure {
        let presented = &subject.claims;
        let Ok(oauth) = serde_json::from_str::<OAuthError>(&e.body) else {
            return http::failure(
                e,
                format_args!(
                    "Google STS token exchange for provider {}",
                    self.federation.provider
                ),
            );
        };
        let description = oauth.error_description.unwrap_or_default();
        let description = description.trim_end_matches('.');
        let hint = sts_hint(
            &self.federation.provider,
            &oauth.error,
            description,
            presented,
        );
        let message = format!(
            "Google STS refused the token exchange for provider {} with identity {:?}: {}: {description}. Presented {}",
            self.federation.provider, self.identity_name, oauth.error, presented
        );
        super::refusal(e.class(), message, hint)
    }

    fn explain_impersonation(
        &self,
        e: &HttpError,
        account: &str,
        subject: &IdentityToken,
    ) -> Failure {
        let g = GoogleError::from_http(e);
        let failure = Failure::new(
            g.class,
            format!(
                "IAM Credentials refused to impersonate {account} for identity {:?}: {}",
                self.identity_name,
                g.describe()
            ),
        );
        if !g.is("PERMISSION_DENIED") {
            return failure;
        }
        let (pool, sub) = (
            self.pool(),
            subject.claims.sub.as_deref().unwrap_or("SUBJECT"),
        );
        failure.with_likely_cause(format!(
            "the federated principal lacks roles/iam.workloadIdentityUser on {account}; grant it to \
             principal://iam.googleapis.com/{pool}/subject/{sub} (or a principalSet that includes it)"
        ))
    }

    /// `projects/NUMBER/locations/global/workloadIdentityPools/POOL` of the provider.
    fn pool(&self) -> &str {
        let p = self
            .federation
            .provider
            .trim_start_matches("//iam.googleapis.com/");
        p.rsplit_once("/providers/").map_or(p, |(pool, _)| pool)
    }
}

/// Where a Google store's access tokens come from.
pub enum GoogleCredentials {
    /// Workload identity federation (STS, then optional impersonation).
    Federated(Arc<GoogleExchange>),
    /// The host's own service account, through the metadata server.
    Metadata {
        server: MetadataServer,
        slot: CacheSlot<BearerToken>,
    },
}

#[async_trait::async_trait]
impl crate::http::Bearer for GoogleCredentials {
    async fn token(&self) -> Result<BearerToken, Failure> {
        match self {
            GoogleCredentials::Federated(exchange) => exchange.token().await,
            GoogleCredentials::Metadata { server, slot } => {
                slot.get(|| server.access_token()).await
            }
        }
    }

    async fn invalidate(&self, refused: &BearerToken) {
        match self {
            GoogleCredentials::Federated(exchange) => exchange.invalidate(refused).await,
            GoogleCredentials::Metadata { slot, .. } => {
                slot.invalidate(|t| t.same_as(refused)).await
            }
        }
    }
}

impl GoogleCredentials {
    pub fn metadata(server: MetadataServer, cache: Arc<CredentialCache<BearerToken>>) -> Self {
        let key = CacheKey {
            identity: "gcp-metadata".into(),
            principal: "default".into(),
            audience: String::new(),
            scope: server.url().to_string(),
        };
        GoogleCredentials::Metadata {
            server,
            slot: CacheSlot::new(cache, key),
        }
    }

    /// The credentials obtained, described, when they come from an exchange;
    /// `None` for the host's own service account.
    pub async fn obtain(&self) -> Option<Result<Obtained, Failure>> {
        match self {
            GoogleCredentials::Federated(exchange) => Some(exchange.obtain().await),
            GoogleCredentials::Metadata { .. } => None,
        }
    }

    /// Whom the credentials act as, for messages.
    pub fn principal(&self) -> String {
        match self {
            GoogleCredentials::Federated(exchange) => match &exchange.federation.service_account {
                Some(account) => format!("service account {account}"),
                None => format!(
                    "the federated principal (principal://iam.googleapis.com/{}/subject/SUB, SUB being the token's sub)",
                    exchange.pool()
                ),
            },
            GoogleCredentials::Metadata { .. } => "the host's service account".into(),
        }
    }

    /// Exchanges started for this store (metadata tokens are not exchanges).
    pub fn exchanges(&self) -> u64 {
        match self {
            GoogleCredentials::Federated(exchange) => exchange.exchanges(),
            GoogleCredentials::Metadata { .. } => 0,
        }
    }
}

/// The federation settings of a Google store, with the clouds' default endpoints.
pub fn federation(
    provider: &str,
    audience: Option<&str>,
    service_account: Option<&str>,
    sts_endpoint: Option<&str>,
    iamcredentials_endpoint: Option<&str>,
) -> Federation {
    Federation {
        provider: provider.to_string(),
        audience: audience.map_or_else(
            || crate::config::google_default_audience(provider),
            str::to_string,
        ),
        service_account: service_account.map(str::to_string),
        sts_endpoint: sts_endpoint.unwrap_or(STS).to_string(),
        iamcredentials_endpoint: iamcredentials_endpoint
            .unwrap_or(IAM_CREDENTIALS)
            .to_string(),
    }
}

/// What most likely does not match, from the OAuth error and the phrases of
/// its documented descriptions, and the token's claims against the provider.
fn sts_hint(provider: &str, error: &str, description: &str, presented: &Claims) -> Option<String> {
    let iss = presented.iss.as_deref().unwrap_or("");
    let aud = presented.aud.join(" ");
    let sub = presented.sub.as_deref().unwrap_or("");
    // Google quotes the token's values in brackets (`ID Token [https://…]`): match
    // its own words only, not an issuer URL that happens to hold "key".
    let words = unquoted(description).to_ascii_lowercase();
    let said = |phrase: &str| words.contains(phrase);
    Some(match error {
        "invalid_grant" if said("attribute condition") => format!(
            "the provider's attribute condition rejected these claims (sub {sub:?}, aud {aud:?}, iss {iss:?}): \
             make the condition accept sub {sub:?}, or give the identity the subject the condition expects"
        ),
        "invalid_grant" if said("audience") => format!(
            "the provider's allowed audiences must hold the token's aud {aud:?} (the store's `audience` setting): \
             add it to the provider's allowed audiences, or, for a provider that lists none, set `audience` to \
             {:?} (or leave it out, which means the same)",
            crate::config::google_default_audience(provider)
        ),
        "invalid_grant" if said("issuer") && !said("key") => format!(
            "the provider's issuer URI must be exactly the token's iss {iss:?} (scheme, host, path and trailing slash)"
        ),
        "invalid_grant" if said("kid") || said("key") || said("signature") => format!(
            "Google could not verify the token with the keys {iss:?} publishes: its discovery document and JWKS \
             must answer from the internet and hold key id {:?}",
            presented.kid.as_deref().unwrap_or("(none)")
        ),
        "invalid_grant" if said("expired") || said("iat") || said("lifetime") => {
            "the token is outside its valid time (or lives 48 hours or more): check this host's clock and the token's lifetime".into()
        }
        "invalid_grant" => format!(
            "the provider does not accept this token: check that its issuer URI is {iss:?}, that its allowed audiences \
             include {aud:?} (or are empty and the audience is \"https:\" + the provider's name), and that its attribute \
             condition holds for these claims"
        ),
        "invalid_target" => "the workload identity provider does not exist or is disabled: check the project number, pool and provider in workload_identity_provider".into(),
        "invalid_request" => "the request was malformed: workload_identity_provider must be the provider's full resource name".into(),
        _ => return None,
    })
}

/// `text` without its bracketed quotations (`[…]`).
fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/p";

    fn claims(iss: &str) -> Claims {
        Claims {
            iss: Some(iss.into()),
            sub: Some("fedsync:prod".into()),
            aud: vec![format!("https:{PROVIDER}")],
            ..Claims::default()
        }
    }

    #[test]
    fn an_issuer_mismatch_is_named_whatever_the_issuer_url_holds() {
        let iss = "https://keycloak.example.com/realms/signing-keys";
        let description = format!(
            "The issuer in ID Token [{iss}] does not match the expected ones: \
             [https://issuer.example.com]"
        );
        let hint = sts_hint(PROVIDER, "invalid_grant", &description, &claims(iss)).unwrap();
        assert!(
            hint.starts_with("the provider's issuer URI must be exactly"),
            "{hint}"
        );
    }

    #[test]
    fn a_key_that_cannot_be_found_is_named() {
        let iss = "https://issuer.example.com";
        let description = "Failed to verify the signature of the ID token: no key matches [kid-1]";
        let hint = sts_hint(PROVIDER, "invalid_grant", description, &claims(iss)).unwrap();
        assert!(
            hint.starts_with("Google could not verify the token"),
            "{hint}"
        );
    }
}
