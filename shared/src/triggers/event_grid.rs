//! Azure Event Grid deliveries of Key Vault events to the webhook: the
//! subscription validation handshakes (Event Grid schema and CloudEvents), the
//! `Microsoft.KeyVault.SecretNewVersionCreated` event in both schemas (expiry
//! events are no-ops), and the authentication of deliveries: an Entra bearer
//! token for the configured application, or a shared key compared in constant time.

use super::malformed;
use crate::config::{Config, EventGridConfig, SourceConfig};
use crate::event::{ChangeKind, SecretChange};
use crate::jwks::{JwksVerifier, Refused};
use crate::reference::Reference;
use crate::report::Failure;
use secrecy::{ExposeSecret, SecretBox};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::SystemTime;
use subtle::ConstantTimeEq;

pub const SECRET_NEW_VERSION_CREATED: &str = "Microsoft.KeyVault.SecretNewVersionCreated";
const VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
/// Shared keys shorter than this are refused at start-up.
const MIN_SHARED_KEY_BYTES: usize = 32;

/// The app role Event Grid holds on a webhook's Entra application.
pub const WEBHOOK_ROLE: &str = "AzureEventGridSecureWebhookSubscriber";

/// How deliveries prove they come from the configured Event Grid subscription.
pub enum EventGridAuth {
    Entra {
        verifier: JwksVerifier,
        issuers: Vec<String>,
        audience: String,
    },
    SharedKey(SecretBox<str>),
}

#[derive(Deserialize)]
struct EntraClaims {
    #[serde(default)]
    roles: Vec<String>,
    /// The calling application (v2 tokens `azp`, v1 tokens `appid`).
    azp: Option<String>,
    appid: Option<String>,
}

/// Event Grid's own application: the only caller whose tokens are accepted.
pub const EVENT_GRID_APP_ID: &str = "4962773b-9cdb-44cf-a8bf-237846a00ab7";

impl EventGridAuth {
    pub fn new(config: &EventGridConfig) -> Result<Self, Failure> {
        if let Some(key) = &config.shared_key {
            let key = Reference::parse(key).and_then(|r| r.read()).map_err(|e| {
                Failure::new(
                    crate::report::FailureClass::BadInput,
                    format!("triggers.event_grid.shared_key: {e}"),
                )
            })?;
            let key = key.trim();
            if key.len() < MIN_SHARED_KEY_BYTES {
                return Err(Failure::new(
                    crate::report::FailureClass::BadInput,
                    format!(
                        "triggers.event_grid.shared_key: the key must be at least {MIN_SHARED_KEY_BYTES} bytes (e.g. openssl rand -hex 32)"
                    ),
                ));
            }
            return Ok(EventGridAuth::SharedKey(SecretBox::new(
                key.to_string().into_boxed_str(),
            )));
        }
        let tenant = config.tenant_id.clone().unwrap_or_default();
        let authority = crate::exchange::azure::authority(config.authority_host.as_deref());
        let authority = authority.trim_end_matches('/');
        Ok(EventGridAuth::Entra {
            verifier: JwksVerifier::new(
                &format!("{authority}/{tenant}/discovery/v2.0/keys"),
                &[jsonwebtoken::Algorithm::RS256],
            ),
            issuers: vec![
                format!("{authority}/{tenant}/v2.0"),
                format!("https://sts.windows.net/{tenant}/"),
                format!("{authority}/{tenant}/"),
            ],
            audience: config.audience.clone().unwrap_or_default(),
        })
    }

    /// Checks a delivery's `Authorization` header, or its `key` (query) / `X-Fedsync-Key` (header).
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        key: Option<&str>,
    ) -> Result<(), Refused> {
        match self {
            EventGridAuth::SharedKey(expected) => {
                let given = key.ok_or_else(|| Refused("no key".into()))?;
                // Digests of equal length: neither the key nor its length leaks through timing.
                let (given, expected) = (
                    Sha256::digest(given),
                    Sha256::digest(expected.expose_secret()),
                );
                if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
                    Ok(())
                } else {
                    Err(Refused("wrong key".into()))
                }
            }
            EventGridAuth::Entra {
                verifier,
                issuers,
                audience,
            } => {
                let token = crate::jwks::bearer(authorization)?;
                let claims: EntraClaims = verifier.verify(token.trim(), issuers, audience).await?;
                if claims.azp.as_deref().or(claims.appid.as_deref()) != Some(EVENT_GRID_APP_ID) {
                    return Err(Refused("the token was not issued to Event Grid".into()));
                }
                if !claims.roles.iter().any(|r| r == WEBHOOK_ROLE) {
                    return Err(Refused(format!(
                        "the token does not carry the {WEBHOOK_ROLE} role"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// What one delivery asks of the webhook.
#[derive(Debug)]
pub enum Delivery {
    /// The Event Grid schema handshake: answer `{"validationResponse": code}`.
    Validation(String),
    /// Events, each a change, a no-op, or unusable.
    Events(Vec<Result<Option<SecretChange>, Failure>>),
}

/// Parses a delivery's body: an Event Grid schema array, one CloudEvent, or a CloudEvents batch.
pub fn parse(body: &[u8], config: &Config) -> Result<Delivery, Failure> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the delivery is not JSON"))?;
    let events = match value {
        Value::Array(events) => events,
        event @ Value::Object(_) => vec![event],
        _ => {
            return Err(malformed(
                "the delivery is neither an event nor an array of events",
            ));
        }
    };
    if let [only] = events.as_slice()
        && only.get("eventType").and_then(Value::as_str) == Some(VALIDATION)
    {
        let code = only["data"]["validationCode"]
            .as_str()
            .ok_or_else(|| malformed("the validation event has no data.validationCode"))?;
        return Ok(Delivery::Validation(code.to_string()));
    }
    Ok(Delivery::Events(
        events.iter().map(|e| change(e, config)).collect(),
    ))
}

fn change(event: &Value, config: &Config) -> Result<Option<SecretChange>, Failure> {
    let kind = event
        .get("eventType")
        .or_else(|| event.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("an event has neither eventType nor type"))?;
    if kind != SECRET_NEW_VERSION_CREATED {
        // Near-expiry and expiry events, and anything else: nothing to copy.
        tracing::info!(event_type = %kind, "ignoring an Event Grid event that adds no secret version");
        return Ok(None);
    }
    let data = event
        .get("data")
        .ok_or_else(|| malformed("the event has no data"))?;
    let name = data
        .get("ObjectName")
        .and_then(Value::as_str)
        .or_else(|| event.get("subject").and_then(Value::as_str));
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| malformed("the event names no secret (data.ObjectName)"))?;
    let vault = data
        .get("VaultName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let source = source_for(config, vault).ok_or_else(|| {
        malformed(format!(
            "no azure-key-vault source in the configuration reads vault {}",
            crate::excerpt::quote(vault)
        ))
    })?;
    let time = event
        .get("eventTime")
        .or_else(|| event.get("time"))
        .and_then(Value::as_str);
    Ok(Some(SecretChange {
        source,
        secret: name.to_string(),
        version: data
            .get("Version")
            .and_then(Value::as_str)
            .map(str::to_string),
        kind: ChangeKind::Upsert,
        observed_at: time
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .unwrap_or_else(SystemTime::now),
    }))
}

/// The Key Vault source for a vault name: its `vault_name`, or its URL's first label.
fn source_for(config: &Config, vault: &str) -> Option<String> {
    let host = |url: &str| {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    };
    config.sources.iter().find_map(|(name, s)| match s {
        SourceConfig::AzureKeyVault(kv) => {
            let configured = kv.vault_name.clone().or_else(|| {
                host(&kv.vault_url).and_then(|h| h.split('.').next().map(str::to_string))
            });
            configured
                .filter(|v| v.eq_ignore_ascii_case(vault))
                .map(|_| name.clone())
        }
        _ => None,
    })
}

/// The webhook's answer to one delivery.
pub enum Answer {
    /// Echo the validation code.
    Validation(String),
    /// One outcome per event.
    Handled(Vec<super::Handled>),
    /// The delivery itself is unusable (acknowledged, logged).
    Rejected(Failure),
}

impl Answer {
    /// Whether Event Grid should deliver again (a destination failed transiently).
    pub fn needs_retry(&self) -> bool {
        matches!(self, Answer::Handled(all) if all.iter().any(super::Handled::needs_retry))
    }

    pub fn to_json(&self) -> Value {
        match self {
            Answer::Validation(code) => serde_json::json!({"validationResponse": code}),
            Answer::Handled(all) => Value::Array(all.iter().map(super::Handled::to_json).collect()),
            Answer::Rejected(f) => serde_json::json!({"status": "rejected", "error": f}),
        }
    }
}

/// Parses and syncs one (authenticated) delivery.
pub async fn handle(engine: &crate::sync::Engine, body: &[u8]) -> Answer {
    match parse(body, engine.config()) {
        Ok(Delivery::Validation(code)) => {
            tracing::info!("answered the Event Grid subscription validation");
            Answer::Validation(code)
        }
        Ok(Delivery::Events(events)) => {
            let mut handled = Vec::with_capacity(events.len());
            for parsed in events {
                handled.push(super::handle(engine, parsed).await);
            }
            Answer::Handled(handled)
        }
        Err(f) => {
            tracing::error!(error = %f, "rejected an Event Grid delivery that cannot be processed");
            Answer::Rejected(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "[identities.i]\nkind = \"file\"\npath = \"/t\"\n[sources.kv]\nkind = \"azure-key-vault\"\nvault_url = \"https://prod-kv.vault.azure.net\"\ntenant_id = \"t\"\nclient_id = \"c\"\nidentity = \"i\"\n",
            "t",
        )
        .unwrap()
    }

    fn new_version(schema_type_key: &str) -> Value {
        serde_json::json!({"id": "1", "subject": "db-password", schema_type_key: SECRET_NEW_VERSION_CREATED,
            "data": {"Id": "https://prod-kv.vault.azure.net/secrets/db-password/abc", "VaultName": "prod-kv",
                     "ObjectType": "Secret", "ObjectName": "db-password", "Version": "abc", "NBF": null, "EXP": null}})
    }

    #[test]
    fn both_schemas_name_the_secret_and_its_vault() {
        for (body, key) in [
            (serde_json::json!([new_version("eventType")]), "eventType"),
            (new_version("type"), "type"),
        ] {
            let Delivery::Events(events) = parse(body.to_string().as_bytes(), &config()).unwrap()
            else {
                panic!("{key}")
            };
            let c = events[0].as_ref().unwrap().as_ref().unwrap();
            assert_eq!(
                (c.source.as_str(), c.secret.as_str(), c.version.as_deref()),
                ("kv", "db-password", Some("abc"))
            );
        }
    }

    #[test]
    fn the_validation_handshake_yields_its_code() {
        let body = serde_json::json!([{"id": "v", "eventType": VALIDATION, "data": {"validationCode": "512d38b6"}}]);
        assert!(
            matches!(parse(body.to_string().as_bytes(), &config()).unwrap(), Delivery::Validation(c) if c == "512d38b6")
        );
    }

    #[test]
    fn expiry_events_are_no_ops_and_garbage_is_refused() {
        let mut expiring = new_version("eventType");
        expiring["eventType"] = "Microsoft.KeyVault.SecretNearExpiry".into();
        let Delivery::Events(events) = parse(
            serde_json::json!([expiring]).to_string().as_bytes(),
            &config(),
        )
        .unwrap() else {
            panic!()
        };
        assert!(events[0].as_ref().unwrap().is_none());
        assert!(
            parse(b"[1", &config())
                .unwrap_err()
                .message
                .contains("not JSON")
        );
    }

    #[test]
    fn an_unknown_vault_is_named_by_an_excerpt() {
        let mut event = new_version("eventType");
        event["data"]["VaultName"] = "v".repeat(100).into();
        let Delivery::Events(events) =
            parse(serde_json::json!([event]).to_string().as_bytes(), &config()).unwrap()
        else {
            panic!()
        };
        let err = events[0].as_ref().unwrap_err();
        assert!(
            err.message.contains(&format!("\"{}\"…", "v".repeat(32))),
            "{}",
            err.message
        );
        assert!(!err.message.contains(&"v".repeat(33)), "{}", err.message);
    }
}
