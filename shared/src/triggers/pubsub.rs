//! Google Secret Manager notifications delivered by a Pub/Sub push
//! subscription: the push request's Google-signed JWT is verified, and the
//! message's attributes (`eventType`, `secretId`, `versionId`) become a change.

use super::malformed;
use crate::config::{Config, PubSubConfig, SourceConfig};
use crate::event::{ChangeKind, SecretChange};
use crate::jwks::{JwksVerifier, Refused};
use crate::report::Failure;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::SystemTime;

/// Authenticates push requests as Pub/Sub sends them.
pub struct PushAuth {
    verifier: JwksVerifier,
    config: PubSubConfig,
}

#[derive(Deserialize)]
struct PushClaims {
    email: Option<String>,
    email_verified: Option<bool>,
}

impl PushAuth {
    pub fn new(config: &PubSubConfig) -> Self {
        PushAuth {
            // Google signs push tokens with RS256 only.
            verifier: JwksVerifier::new(&config.jwks_url, &[jsonwebtoken::Algorithm::RS256]),
            config: config.clone(),
        }
    }

    /// Checks the `Authorization` header's value: a Google-signed JWT for the
    /// configured audience, from the configured push service account.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<(), Refused> {
        let token = crate::jwks::bearer(authorization)?;
        let claims: PushClaims = self
            .verifier
            .verify(token.trim(), &self.config.issuers, &self.config.audience)
            .await?;
        if claims.email.as_deref() != Some(self.config.service_account.as_str()) {
            return Err(Refused(format!(
                "the token's email {:?} is not the push service account {:?}",
                claims.email.unwrap_or_default(),
                self.config.service_account
            )));
        }
        if claims.email_verified != Some(true) {
            return Err(Refused("the token's email is not verified".into()));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Push {
    message: Message,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    attributes: HashMap<String, String>,
    publish_time: Option<String>,
}

/// Parses a push request's body. `Ok(None)`: not a change fedsync acts on.
pub fn parse(body: &[u8], config: &Config) -> Result<Option<SecretChange>, Failure> {
    let push: Push = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "not a Pub/Sub push request ({})",
            crate::excerpt::serde_message(&e.to_string())
        ))
    })?;
    let attributes = push.message.attributes;
    let event_type = attributes
        .get("eventType")
        .ok_or_else(|| malformed("the message has no eventType attribute"))?;
    let kind = match event_type.as_str() {
        "SECRET_VERSION_ADD"
        | "SECRET_VERSION_ENABLE"
        | "SECRET_VERSION_DISABLE"
        | "SECRET_VERSION_DESTROY" => ChangeKind::Upsert,
        "SECRET_DELETE" => ChangeKind::Delete,
        other => {
            // TOPIC_CONFIGURED (a test message), SECRET_CREATE (no value yet: the
            // version's own event follows), SECRET_UPDATE (metadata), SECRET_ROTATE (a reminder).
            tracing::info!(event_type = %other, "ignoring a Secret Manager notification that changes no value");
            return Ok(None);
        }
    };
    if let Some(format) = attributes.get("dataFormat")
        && format != "JSON_API_V1"
    {
        return Err(malformed(format!(
            "unknown dataFormat {}",
            crate::excerpt::quote(format)
        )));
    }
    let secret = attributes.get("secretId").ok_or_else(|| {
        malformed(format!(
            "the {event_type} message has no secretId attribute"
        ))
    })?;
    let project = secret
        .strip_prefix("projects/")
        .and_then(|r| r.split_once("/secrets/"))
        .map(|(p, _)| p)
        .filter(|_| !crate::stores::gcp_sm::secret_id(secret).is_empty())
        .ok_or_else(|| {
            malformed(format!(
                "secretId {} is not projects/PROJECT/secrets/ID",
                crate::excerpt::quote(secret)
            ))
        })?;
    let source = source_for(config, project).ok_or_else(|| {
        malformed(format!(
            "no gcp-secret-manager source in the configuration reads project {}",
            crate::excerpt::quote(project)
        ))
    })?;
    let version = attributes
        .get("versionId")
        .and_then(|v| v.rsplit('/').next())
        .map(str::to_string);
    let observed_at = push
        .message
        .publish_time
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .unwrap_or_else(SystemTime::now);
    Ok(Some(SecretChange {
        source,
        secret: crate::stores::gcp_sm::secret_id(secret).to_string(),
        version,
        kind,
        observed_at,
    }))
}

/// The source reading `project`, by id or number. A notification naming another
/// project is refused, never attributed to a source that does not read it; a
/// single source whose number is not configured takes the notifications it gets.
fn source_for(config: &Config, project: &str) -> Option<String> {
    let google: Vec<(&String, &crate::config::GcpSourceConfig)> = config
        .sources
        .iter()
        .filter_map(|(name, s)| match s {
            SourceConfig::GcpSecretManager(g) => Some((name, g)),
            _ => None,
        })
        .collect();
    let named = google
        .iter()
        .find(|(_, g)| g.project == project || g.project_number.as_deref() == Some(project));
    let only_unnumbered = match google.as_slice() {
        [(name, g)] if g.project_number.is_none() => Some(*name),
        _ => None,
    };
    named.map(|(name, _)| *name).or(only_unnumbered).cloned()
}

/// Parses and syncs one push request's body (already authenticated).
pub async fn handle(engine: &crate::sync::Engine, body: &[u8]) -> super::Handled {
    super::handle(engine, parse(body, engine.config())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn config() -> Config {
        Config::parse(
            "[sources.gsm]\nkind = \"gcp-secret-manager\"\nproject = \"my-project\"\n",
            "t",
        )
        .unwrap()
    }

    fn push(attributes: serde_json::Value) -> Vec<u8> {
        let data = base64::engine::general_purpose::STANDARD
            .encode(r#"{"name":"projects/827585297303/secrets/test-secret/versions/2"}"#);
        serde_json::to_vec(&serde_json::json!({
            "message": {"attributes": attributes, "data": data, "messageId": "1", "message_id": "1",
                        "publishTime": "2022-03-27T21:31:38.1Z", "publish_time": "2022-03-27T21:31:38.1Z"},
            "subscription": "projects/my-project/subscriptions/fedsync"
        }))
        .unwrap()
    }

    #[test]
    fn a_version_add_is_an_upsert_of_the_secret_id() {
        let body = push(
            serde_json::json!({"dataFormat": "JSON_API_V1", "eventType": "SECRET_VERSION_ADD",
            "secretId": "projects/827585297303/secrets/test-secret", "timestamp": "2022-03-27T14:31:37.964139-07:00",
            "versionId": "projects/827585297303/secrets/test-secret/versions/2"}),
        );
        let c = parse(&body, &config()).unwrap().unwrap();
        assert_eq!(
            (
                c.source.as_str(),
                c.secret.as_str(),
                c.version.as_deref(),
                c.kind
            ),
            ("gsm", "test-secret", Some("2"), ChangeKind::Upsert)
        );
    }

    #[test]
    fn a_notification_for_another_project_is_refused() {
        let numbered = Config::parse(
            "[sources.gsm]\nkind = \"gcp-secret-manager\"\nproject = \"my-project\"\nproject_number = \"111\"\n",
            "t",
        )
        .unwrap();
        let attributes = |project: &str| serde_json::json!({"eventType": "SECRET_VERSION_ADD", "secretId": format!("projects/{project}/secrets/s")});
        assert_eq!(
            parse(&push(attributes("111")), &numbered)
                .unwrap()
                .unwrap()
                .source,
            "gsm"
        );
        assert_eq!(
            parse(&push(attributes("my-project")), &numbered)
                .unwrap()
                .unwrap()
                .source,
            "gsm"
        );
        let err = parse(&push(attributes("999")), &numbered).unwrap_err();
        assert!(err.message.contains("\"999\""), "{}", err.message);
    }

    #[test]
    fn topic_configured_and_metadata_events_are_no_ops() {
        assert_eq!(
            parse(
                &push(serde_json::json!({"eventType": "TOPIC_CONFIGURED"})),
                &config()
            )
            .unwrap(),
            None
        );
        let update = serde_json::json!({"eventType": "SECRET_UPDATE", "dataFormat": "JSON_API_V1", "secretId": "projects/p/secrets/s"});
        assert_eq!(parse(&push(update), &config()).unwrap(), None);
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        for (body, expected) in [
            (b"not json".to_vec(), "not a Pub/Sub push request"),
            (push(serde_json::json!({})), "no eventType"),
            (
                push(serde_json::json!({"eventType": "SECRET_VERSION_ADD"})),
                "no secretId",
            ),
            (
                push(serde_json::json!({"eventType": "SECRET_VERSION_ADD", "secretId": "bogus"})),
                "is not projects/PROJECT/secrets/ID",
            ),
            (
                push(
                    serde_json::json!({"eventType": "SECRET_VERSION_ADD", "secretId": "projects/p/secrets/"}),
                ),
                "is not projects/PROJECT/secrets/ID",
            ),
        ] {
            let err = parse(&body, &config()).unwrap_err();
            assert!(
                err.message.contains(expected),
                "{} should say {expected}",
                err.message
            );
        }
    }

    #[test]
    fn refusals_never_repeat_a_value_of_the_body() {
        let pasted = "pasted-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
        for body in [
            serde_json::to_vec(&serde_json::json!({"message": pasted})).unwrap(),
            push(serde_json::json!({"eventType": "SECRET_VERSION_ADD", "secretId": pasted})),
            push(serde_json::json!({"eventType": "SECRET_DELETE", "dataFormat": pasted})),
        ] {
            let err = parse(&body, &config()).unwrap_err();
            assert!(!err.message.contains(&pasted[..40]), "{}", err.message);
        }
    }
}
