//! What Azure Event Grid sends a webhook subscribed to a Key Vault's events: the
//! `Microsoft.KeyVault.SecretNewVersionCreated` event in the Event Grid schema and in the
//! CloudEvents 1.0 schema, the subscription validation handshakes of both schemas, and the
//! Entra bearer token Event Grid presents when the subscription uses Microsoft Entra
//! authentication.
//!
//! These shapes are written from Microsoft's documentation ("Azure Key Vault as Event Grid source",
//! "Event Grid event schema", "Endpoint validation with Event Grid events" and "with
//! CloudEvents schema", "Deliver events to Microsoft Entra protected endpoints") and from
//! the Event Grid system-event models of the Azure SDKs:
//!
//! - the event `data` members are PascalCase: `Id`, `VaultName`, `ObjectType` (`Secret`),
//!   `ObjectName`, `Version`, `NBF`, `EXP`, the last two numbers (Unix seconds; the
//!   documentation's sample shows strings with stray spaces, the models say numbers);
//!   they are `null` when the version has no `nbf`/`exp` (inferred);
//! - Event Grid schema deliveries are a JSON array, `Content-Type: application/json;
//!   charset=utf-8`, with headers `aeg-event-type: Notification` (or
//!   `SubscriptionValidation`), `aeg-subscription-name` (upper case), `aeg-delivery-count`,
//!   `aeg-data-version` and `aeg-metadata-version`; the webhook answers a validation event
//!   with `{"validationResponse": "<validationCode>"}`;
//! - CloudEvents deliveries are structured mode, one event per request
//!   (`application/cloudevents+json; charset=utf-8`) or a batch
//!   (`application/cloudevents-batch+json; charset=utf-8`); the handshake is an HTTP
//!   `OPTIONS` with `WebHook-Request-Origin: eventgrid.azure.net`, which the webhook
//!   answers with `WebHook-Allowed-Origin` (that origin or `*`);
//! - the bearer token is an Entra access token issued to Event Grid's first-party
//!   application (`4962773b-9cdb-44cf-a8bf-237846a00ab7`) for the webhook's application
//!   (its client id or application ID URI), carrying the app role
//!   `AzureEventGridSecureWebhookSubscriber`; its issuer, audience and version follow the
//!   webhook application's [`TokenVersion`](super::entra::TokenVersion).

use std::time::Duration;

use serde_json::{Value, json};

use super::entra::{EXPIRES_IN, Entra};
use super::key_vault::SecretNewVersion;
use super::{iso_seven_digits, since_epoch};

/// Event Grid's first-party application id (the `azp`/`appid` of its tokens).
pub const EVENT_GRID_APP_ID: &str = "4962773b-9cdb-44cf-a8bf-237846a00ab7";
/// The app role a webhook application defines and assigns to Event Grid.
pub const SECURE_WEBHOOK_ROLE: &str = "AzureEventGridSecureWebhookSubscriber";
/// The event type of a new secret version.
pub const SECRET_NEW_VERSION_CREATED: &str = "Microsoft.KeyVault.SecretNewVersionCreated";
/// The event type of an Event Grid schema validation event.
pub const SUBSCRIPTION_VALIDATION_EVENT: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
/// The origin Event Grid names in the CloudEvents validation handshake.
pub const EVENT_GRID_ORIGIN: &str = "eventgrid.azure.net";

/// The event schema of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    EventGrid,
    CloudEvents,
}

/// One HTTP request as Event Grid would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `POST`, or `OPTIONS` for the CloudEvents handshake.
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// `None` for the CloudEvents handshake.
    pub body: Option<String>,
}

impl Delivery {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If there is no body.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.body.as_deref().expect("the delivery has a body"))
            .expect("deliveries are JSON")
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.headers
            .push(("Authorization".to_owned(), format!("Bearer {token}")));
        self
    }

    /// Sends the request to `url`.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .expect("the delivery's method is valid");
        let mut request = client.request(method, url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        request.send().await
    }
}

/// An Event Grid subscription delivering to a webhook, optionally with Entra
/// authentication.
#[derive(Debug)]
pub struct EventGrid<'a> {
    entra: &'a Entra,
    tenant_id: String,
    subscription_name: String,
}

impl<'a> EventGrid<'a> {
    /// A subscription named `subscription_name`, whose Entra tokens come from `tenant_id`
    /// (the webhook application's tenant).
    pub fn new(entra: &'a Entra, tenant_id: &str, subscription_name: &str) -> Self {
        Self {
            entra,
            tenant_id: tenant_id.to_owned(),
            subscription_name: subscription_name.to_owned(),
        }
    }

    /// A `Microsoft.KeyVault.SecretNewVersionCreated` event for `version`.
    pub fn secret_new_version_created(&self, version: &SecretNewVersion, schema: Schema) -> Value {
        let data = json!({
            "Id": version.id,
            "VaultName": version.vault_name,
            "ObjectType": "Secret",
            "ObjectName": version.secret_name,
            "Version": version.version,
            "NBF": version.nbf,
            "EXP": version.exp,
        });
        let id = uuid::Uuid::new_v4().to_string();
        match schema {
            Schema::EventGrid => json!({
                "id": id,
                "topic": version.topic,
                "subject": version.secret_name,
                "eventType": SECRET_NEW_VERSION_CREATED,
                "eventTime": event_time(),
                "data": data,
                "dataVersion": "1",
                "metadataVersion": "1",
            }),
            Schema::CloudEvents => json!({
                "id": id,
                "source": version.topic,
                "subject": version.secret_name,
                "type": SECRET_NEW_VERSION_CREATED,
                "time": event_time(),
                "data": data,
                "specversion": "1.0",
            }),
        }
    }

    /// The delivery of `events` (all of the same schema): for the Event Grid schema one
    /// request with the array; for CloudEvents one event in structured mode, or a batch
    /// when there are several.
    ///
    /// # Panics
    /// If `events` is empty.
    pub fn notification(&self, events: &[Value], schema: Schema) -> Delivery {
        assert!(!events.is_empty(), "a delivery carries at least one event");
        match schema {
            Schema::EventGrid => self.event_grid_post("Notification", &json!(events)),
            Schema::CloudEvents => {
                let (content_type, body) = if let [event] = events {
                    ("application/cloudevents+json; charset=utf-8", event.clone())
                } else {
                    (
                        "application/cloudevents-batch+json; charset=utf-8",
                        json!(events),
                    )
                };
                Delivery {
                    method: "POST".to_owned(),
                    headers: vec![
                        ("Content-Type".to_owned(), content_type.to_owned()),
                        ("aeg-event-type".to_owned(), "Notification".to_owned()),
                        (
                            "aeg-subscription-name".to_owned(),
                            self.subscription_header(),
                        ),
                        ("aeg-delivery-count".to_owned(), "0".to_owned()),
                    ],
                    body: Some(body.to_string()),
                }
            }
        }
    }

    /// The Event Grid schema validation request for a subscription on `topic`, and the
    /// `validationCode` the webhook must echo as `{"validationResponse": …}`.
    pub fn subscription_validation(&self, topic: &str) -> (Delivery, String) {
        let code = uuid::Uuid::new_v4().to_string();
        let event = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "topic": topic,
            "subject": "",
            "data": {
                "validationCode": code,
                "validationUrl": format!(
                    "https://rp-westeurope.eventgrid.azure.net:553/eventsubscriptions/{}/validate?id={}&t={}&apiVersion=2018-05-01-preview&token={}",
                    self.subscription_name.to_lowercase(),
                    code.to_uppercase(),
                    event_time(),
                    uuid::Uuid::new_v4().simple(),
                ),
            },
            "eventType": SUBSCRIPTION_VALIDATION_EVENT,
            "eventTime": event_time(),
            "metadataVersion": "1",
            "dataVersion": "1",
        });
        (
            self.event_grid_post("SubscriptionValidation", &json!([event])),
            code,
        )
    }

    /// The CloudEvents 1.0 abuse-protection handshake: `OPTIONS` with
    /// `WebHook-Request-Origin: eventgrid.azure.net`.
    pub fn cloudevents_validation(&self) -> Delivery {
        Delivery {
            method: "OPTIONS".to_owned(),
            headers: vec![(
                "WebHook-Request-Origin".to_owned(),
                EVENT_GRID_ORIGIN.to_owned(),
            )],
            body: None,
        }
    }

    /// The bearer token Event Grid presents to a webhook whose Entra application is known
    /// as `audience` (client id or application ID URI).
    pub fn bearer_token(&self, audience: &str) -> String {
        self.bearer_token_with(audience, |_| {})
    }

    /// [`EventGrid::bearer_token`] with its claims edited before signing (to forge wrong
    /// audiences, expired tokens, missing roles…).
    pub fn bearer_token_with(&self, audience: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.entra.app_token_claims(
            &self.tenant_id,
            EVENT_GRID_APP_ID,
            audience,
            &[SECURE_WEBHOOK_ROLE],
            Duration::from_secs(EXPIRES_IN),
        );
        edit(&mut claims);
        self.entra.sign(&claims)
    }

    fn subscription_header(&self) -> String {
        self.subscription_name.to_uppercase()
    }

    fn event_grid_post(&self, event_type: &str, body: &Value) -> Delivery {
        Delivery {
            method: "POST".to_owned(),
            headers: vec![
                (
                    "Content-Type".to_owned(),
                    "application/json; charset=utf-8".to_owned(),
                ),
                ("aeg-event-type".to_owned(), event_type.to_owned()),
                (
                    "aeg-subscription-name".to_owned(),
                    self.subscription_header(),
                ),
                ("aeg-delivery-count".to_owned(), "0".to_owned()),
                ("aeg-data-version".to_owned(), "1".to_owned()),
                ("aeg-metadata-version".to_owned(), "1".to_owned()),
            ],
            body: Some(body.to_string()),
        }
    }
}

/// Whether a webhook's answer completes the Event Grid schema validation for `code`.
pub fn validation_accepted(status: u16, body: &Value, code: &str) -> bool {
    status == 200 && body["validationResponse"].as_str() == Some(code)
}

/// Whether a webhook's answer to the CloudEvents handshake allows Event Grid to deliver.
pub fn cloudevents_validation_accepted(status: u16, allowed_origin: Option<&str>) -> bool {
    status == 200 && matches!(allowed_origin, Some(EVENT_GRID_ORIGIN | "*"))
}

/// Now, as `eventTime`/`time` (seven fractional digits).
fn event_time() -> String {
    let now = since_epoch();
    iso_seven_digits(now.as_secs() as i64, now.subsec_nanos())
}
