//! AWS: STS `AssumeRoleWithWebIdentity` (an unsigned call) turns fedsync's token
//! into temporary role credentials. Refusals are explained in the user's terms.

use super::{CacheKey, CacheSlot, CredentialCache, Expiring, Obtained};
use crate::aws::{AwsError, EgressGuard, timeouts};
use crate::config::AwsDestinationConfig;
use crate::identity::{Claims, IdentityToken, TokenSource};
use crate::report::{Failure, FailureClass};
use crate::retry::Idempotency;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};
use aws_sdk_sts::config::{BehaviorVersion, Region};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Temporary role credentials.
#[derive(Clone)]
pub struct AwsCredentials {
    pub credentials: Credentials,
    pub expires_at: SystemTime,
}

impl Expiring for AwsCredentials {
    fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// Obtains and caches the credentials of one role for one identity.
pub struct AwsExchange {
    identity_name: String,
    identity: Arc<dyn TokenSource>,
    role_arn: String,
    audience: String,
    session_name: String,
    duration: Duration,
    sts: aws_sdk_sts::Client,
    slot: CacheSlot<AwsCredentials>,
}

impl fmt::Debug for AwsExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsExchange")
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl AwsExchange {
    pub fn new(
        identity_name: &str,
        identity: Arc<dyn TokenSource>,
        config: &AwsDestinationConfig,
        cache: Arc<CredentialCache<AwsCredentials>>,
    ) -> Self {
        let mut sts = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts())
            .retry_config(crate::aws::no_retries())
            .interceptor(EgressGuard);
        if let Some(endpoint) = &config.sts_endpoint {
            sts = sts.endpoint_url(endpoint);
        }
        let key = CacheKey {
            identity: identity_name.to_string(),
            principal: config.role_arn.clone(),
            audience: config.audience.clone(),
            scope: format!(
                "{} {} {}s",
                config.sts_endpoint.as_deref().unwrap_or(&config.region),
                config.session_name,
                config.session_duration.as_secs()
            ),
        };
        AwsExchange {
            identity_name: identity_name.to_string(),
            identity,
            role_arn: config.role_arn.clone(),
            audience: config.audience.clone(),
            session_name: config.session_name.clone(),
            duration: config.session_duration,
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            slot: CacheSlot::new(cache, key),
        }
    }

    /// Role credentials from the cache, or a new exchange.
    pub async fn credentials(&self) -> Result<AwsCredentials, Failure> {
        self.slot.get(|| self.exchange()).await
    }

    /// Drops `refused` from the cache (AWS said they expired or were revoked),
    /// unless a concurrent call has already replaced them.
    pub async fn invalidate(&self, refused: &AwsCredentials) {
        let refused = refused.credentials.access_key_id();
        self.slot
            .invalidate(|c| c.credentials.access_key_id() == refused)
            .await;
    }

    async fn exchange(&self) -> Result<AwsCredentials, Failure> {
        let token = self.identity.token(&self.audience).await?;
        // A token exchange is harmless to repeat.
        let result = crate::aws::send("AssumeRoleWithWebIdentity", Idempotency::Idempotent, || {
            self.sts
                .assume_role_with_web_identity()
                .role_arn(&self.role_arn)
                .role_session_name(&self.session_name)
                .duration_seconds(self.duration.as_secs() as i32)
                .web_identity_token(token.expose())
                .send()
        })
        .await;
        let output = match result {
            Ok(o) => o,
            Err(e) => return Err(token.scrub(self.explain(&e, &token))),
        };
        let c = output.credentials.ok_or_else(|| {
            Failure::new(
                FailureClass::Unavailable,
                "AWS STS answered without credentials",
            )
        })?;
        let expires_at = SystemTime::try_from(c.expiration).unwrap_or_else(|_| SystemTime::now());
        tracing::info!(
            identity = %self.identity_name,
            role_arn = %self.role_arn,
            subject = output.subject_from_web_identity_token.as_deref().unwrap_or_default(),
            expires_in_s = expires_at.duration_since(SystemTime::now()).unwrap_or_default().as_secs(),
            "exchanged the identity token for AWS role credentials"
        );
        Ok(AwsCredentials {
            credentials: Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                Some(expires_at),
                "fedsync-sts",
            ),
            expires_at,
        })
    }

    /// Turns an STS refusal into what to check, naming what was presented.
    fn explain(&self, err: &AwsError, token: &IdentityToken) -> Failure {
        let message = format!(
            "AWS STS refused AssumeRoleWithWebIdentity for role {} with identity {:?}: {}. Presented {}",
            self.role_arn,
            self.identity_name,
            err.describe(),
            token.claims
        );
        super::refusal(err.class, message, hint(err, &token.claims, &self.audience))
    }
}

/// The audience AWS documents for `AssumeRoleWithWebIdentity`.
const USUAL_AUDIENCE: &str = "sts.amazonaws.com";

/// What most likely does not match, from STS's error code and message and the
/// token's claims against the configured `audience`; `None` when the error says
/// nothing about trust.
fn hint(err: &AwsError, presented: &Claims, audience: &str) -> Option<String> {
    let issuer = presented.iss.as_deref().unwrap_or("<issuer>");
    // IAM names an OIDC provider, and its condition keys, by the issuer without its scheme.
    let host = issuer
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let aud = presented.aud.join(" ");
    let sub = presented.sub.as_deref().unwrap_or("");
    let message = err.message.as_deref().unwrap_or_default();
    Some(match err.code.as_deref() {
        Some("AccessDenied") => {
            let unusual = if audience == USUAL_AUDIENCE {
                String::new()
            } else {
                format!(
                    "; this audience is not the usual {USUAL_AUDIENCE:?}, so the IAM OIDC provider's client IDs must list it too, or set `audience` back to {USUAL_AUDIENCE:?}"
                )
            };
            format!(
                "the role's trust policy does not accept this token: its condition on \"{host}:aud\" must equal \
                 the token's aud \"{aud}\" (the destination's `audience` setting{unusual}), its condition on \
                 \"{host}:sub\" must equal the token's sub \"{sub}\", and it must trust the IAM OIDC provider for \
                 {host} with sts:AssumeRoleWithWebIdentity"
            )
        }
        Some("InvalidIdentityToken") if message.contains("No OpenIDConnect provider found") => format!(
            "the role's account has no IAM OIDC provider for {issuer}: register the issuer as one \
             (aws iam create-open-id-connect-provider --url {issuer} --client-id-list {audience}) and trust it in the role"
        ),
        Some("InvalidIdentityToken") => format!(
            "STS could not validate the token: check that an IAM OIDC provider exists for {host}, \
             that the issuer's discovery document and JWKS are reachable, and that the JWKS holds key id {:?}",
            presented.kid.as_deref().unwrap_or("(none)")
        ),
        Some("ExpiredTokenException" | "ExpiredToken") => {
            "the token was already expired when STS saw it: check this host's clock and the token's lifetime".into()
        }
        Some("IDPRejectedClaim") => "the identity provider rejected a claim of the token".into(),
        Some("IDPCommunicationError") => format!(
            "STS could not fetch the discovery document or the JWKS of {issuer}: they must answer from the internet; otherwise this is usually transient"
        ),
        _ if err.class == FailureClass::Auth => {
            "check the role's trust policy against the token's issuer, audience and subject".into()
        }
        _ => return None,
    })
}

/// Lets the AWS SDK take role credentials straight from fedsync's cache.
#[derive(Debug, Clone)]
pub struct CachedRoleCredentials(pub Arc<AwsExchange>);

impl ProvideCredentials for CachedRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map(|c| c.credentials)
                .map_err(CredentialsError::provider_error)
        })
    }
}

impl AwsExchange {
    /// Exchanges this destination started in this process.
    pub fn exchanges(&self) -> u64 {
        self.slot.exchanges()
    }

    /// Role credentials from the cache or a new exchange, described.
    pub async fn obtain(&self) -> Result<Obtained, Failure> {
        let credentials = self.credentials().await?;
        Ok(Obtained {
            what: format!(
                "temporary credentials of role {} (session {:?})",
                self.role_arn, self.session_name
            ),
            expires_at: credentials.expires_at,
        })
    }
}
