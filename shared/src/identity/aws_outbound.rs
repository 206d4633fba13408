//! The `aws-outbound` identity: AWS outbound identity federation. STS
//! `GetWebIdentityToken`, signed with the host's own AWS credentials, returns a
//! JWT for the host's IAM principal, issued by the account's AWS issuer, so an
//! AWS workload reaches Google and Azure with no issuer of its own.

use super::{IdentityToken, TokenSource};
use crate::aws::{AwsError, EgressGuard, ambient_config};
use crate::config::AwsOutboundConfig;
use crate::report::{Failure, FailureClass};
use crate::retry::Idempotency;
use aws_sdk_sts::types::Tag;
use tokio::sync::OnceCell;

/// Asks STS, in the configured region, for a token for each audience.
pub struct AwsOutbound {
    name: String,
    config: AwsOutboundConfig,
    sts: OnceCell<aws_sdk_sts::Client>,
}

impl AwsOutbound {
    /// The STS client is made at first use: loading the ambient configuration is async.
    pub fn new(name: &str, config: &AwsOutboundConfig) -> Self {
        AwsOutbound {
            name: name.to_string(),
            config: config.clone(),
            sts: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&aws_sdk_sts::Client, Failure> {
        let client = self
            .sts
            .get_or_init(|| async {
                let sdk = ambient_config(self.config.region.as_deref(), None).await;
                let config = aws_sdk_sts::config::Builder::from(&sdk).interceptor(EgressGuard);
                aws_sdk_sts::Client::from_conf(config.build())
            })
            .await;
        if client.config().region().is_none() {
            return Err(Failure::new(
                FailureClass::BadInput,
                format!(
                    "identity {:?} has no AWS region: set identities.{}.region, or AWS_REGION \
                     (GetWebIdentityToken is served by regional STS endpoints only)",
                    self.name, self.name
                ),
            ));
        }
        Ok(client)
    }

    fn tags(&self) -> Result<Vec<Tag>, Failure> {
        self.config
            .tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                Failure::new(
                    FailureClass::BadInput,
                    format!("identities.{}.tags: {e}", self.name),
                )
            })
    }

    /// Turns an STS refusal into what to do about it (the answer never holds a token).
    fn explain(&self, err: &AwsError, audience: &str) -> Failure {
        let name = &self.name;
        let hint = match err.code.as_deref() {
            Some("OutboundWebIdentityFederationDisabledException") => {
                "Outbound identity federation is not enabled for this account: run \
                 `aws iam enable-outbound-web-identity-federation` once, then trust the issuer \
                 URL it returns at each destination"
                    .to_string()
            }
            Some("SessionDurationEscalationException") => format!(
                "The token would outlive the session of the host's own AWS credentials: lower \
                 identities.{name}.ttl (now {})",
                humantime::format_duration(self.config.ttl)
            ),
            Some("JWTPayloadSizeExceededException") => {
                format!("The token would be too large: use fewer or shorter identities.{name}.tags")
            }
            Some("AccessDenied" | "AccessDeniedException") => format!(
                "The host's IAM principal needs sts:GetWebIdentityToken, and the conditions \
                 of its policy (sts:IdentityTokenAudience, sts:DurationSeconds) must allow \
                 audience {audience:?} and {} seconds (identities.{name}.ttl)",
                self.config.ttl.as_secs()
            ),
            Some(
                "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "ExpiredToken"
                | "ExpiredTokenException",
            ) => "STS did not accept the host's own AWS credentials: check the credentials \
                  the host provides (AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, role)"
                .to_string(),
            _ => String::new(),
        };
        let region = self.config.region.as_deref().unwrap_or("the host's region");
        let mut message = format!(
            "AWS STS ({region}) refused GetWebIdentityToken for identity {name:?}, audience \
             {audience:?}: {}",
            err.describe()
        );
        if !hint.is_empty() {
            message.push_str(". ");
            message.push_str(&hint);
        }
        Failure::new(err.class, message)
    }
}

#[async_trait::async_trait]
impl TokenSource for AwsOutbound {
    async fn token(&self, audience: &str) -> Result<IdentityToken, Failure> {
        let tags = self.tags()?;
        let client = self.client().await?;
        // Issuing a token is harmless to repeat.
        let sent = crate::aws::send("GetWebIdentityToken", Idempotency::Idempotent, || {
            client
                .get_web_identity_token()
                .audience(audience)
                .signing_algorithm(&self.config.signing_algorithm)
                .duration_seconds(self.config.ttl.as_secs() as i32)
                .set_tags((!tags.is_empty()).then_some(tags.clone()))
                .send()
        })
        .await;
        let output = sent.map_err(|e| self.explain(&e, audience))?;
        let jwt = output.web_identity_token.ok_or_else(|| {
            Failure::new(
                FailureClass::Unavailable,
                "AWS STS answered GetWebIdentityToken without a token",
            )
        })?;
        let token = IdentityToken::new(jwt);
        tracing::debug!(
            identity = %self.name,
            claims = %token.claims,
            "AWS STS issued an outbound identity token"
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn outbound(tags: &[(&str, &str)]) -> AwsOutbound {
        let config = AwsOutboundConfig {
            region: Some("eu-west-1".into()),
            signing_algorithm: "ES384".into(),
            ttl: Duration::from_secs(600),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        AwsOutbound::new("lambda", &config)
    }

    fn refusal(code: &str, status: u16) -> AwsError {
        AwsError {
            code: Some(code.into()),
            message: Some("refused".into()),
            status: Some(status),
            class: if status == 403 {
                FailureClass::Auth
            } else {
                FailureClass::BadInput
            },
        }
    }

    #[test]
    fn a_disabled_account_is_told_the_command_that_enables_it() {
        let f = outbound(&[]).explain(
            &refusal("OutboundWebIdentityFederationDisabledException", 403),
            "api://AzureADTokenExchange",
        );
        assert_eq!(f.class, FailureClass::Auth);
        assert!(
            f.message
                .contains("run `aws iam enable-outbound-web-identity-federation`"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("identity \"lambda\"")
                && f.message.contains("AWS STS (eu-west-1)")
                && f.message.contains("api://AzureADTokenExchange"),
            "{}",
            f.message
        );
    }

    #[test]
    fn refusals_name_the_key_to_change() {
        let o = outbound(&[]);
        let escalation = o.explain(&refusal("SessionDurationEscalationException", 403), "a");
        assert!(
            escalation
                .message
                .contains("lower identities.lambda.ttl (now 10m)"),
            "{}",
            escalation.message
        );
        let size = o.explain(&refusal("JWTPayloadSizeExceededException", 400), "a");
        assert_eq!(size.class, FailureClass::BadInput);
        assert!(
            size.message.contains("identities.lambda.tags"),
            "{}",
            size.message
        );
        let denied = o.explain(&refusal("AccessDenied", 403), "aud-x");
        assert!(
            denied.message.contains("sts:GetWebIdentityToken")
                && denied.message.contains("\"aud-x\" and 600 seconds"),
            "{}",
            denied.message
        );
    }

    #[test]
    fn tags_become_sts_tags() {
        let tags = outbound(&[("team", "platform"), ("env", "prod")])
            .tags()
            .unwrap();
        let pairs: Vec<_> = tags.iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(pairs, vec![("env", "prod"), ("team", "platform")]);
    }
}
