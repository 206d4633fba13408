//! EventBridge events about AWS Secrets Manager: CloudTrail API calls
//! (CreateSecret, PutSecretValue, UpdateSecret, RestoreSecret, DeleteSecret, ...),
//! CloudTrail service events (RotationSucceeded), and the native
//! "Secret Label Updated" event.

use super::malformed;
use crate::config::{Config, SourceConfig};
use crate::event::{ChangeKind, SecretChange};
use crate::report::Failure;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::Value;
use std::time::SystemTime;

const SOURCE: &str = "aws.secretsmanager";
const API_CALL: &str = "AWS API Call via CloudTrail";
const SERVICE_EVENT: &str = "AWS Service Event via CloudTrail";
const LABEL_UPDATED: &str = "Secret Label Updated";

/// What one EventBridge event says changed, before a source is chosen for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub kind: ChangeKind,
    /// The secret's name (read off a full ARN when the event has one), or a
    /// partial ARN as the caller sent it.
    pub secret: String,
    pub version: Option<String>,
    pub region: Option<String>,
    /// EventBridge's id of the event (the same on every delivery of it).
    pub id: Option<String>,
    pub observed_at: SystemTime,
}

/// Parses one EventBridge event. `Ok(None)`: not a change fedsync acts on.
pub fn parse(event: &Value, config: &Config) -> Result<Option<SecretChange>, Failure> {
    let Some(observed) = observe(event)? else {
        return Ok(None);
    };
    let region = observed.region.as_deref();
    let source = source_for(config, region).ok_or_else(|| {
        malformed(format!(
            "no aws-secrets-manager source in the configuration covers region {}",
            region.map_or_else(|| "(none)".into(), crate::excerpt::quote)
        ))
    })?;
    Ok(Some(SecretChange {
        source,
        secret: observed.secret,
        version: observed.version,
        kind: observed.kind,
        observed_at: observed.observed_at,
    }))
}

/// Reads what one EventBridge event says changed. `Ok(None)`: not a change
/// fedsync acts on.
pub fn observe(event: &Value) -> Result<Option<Observed>, Failure> {
    let event: EventBridgeEvent<Value> = serde_json::from_value(event.clone()).map_err(|e| {
        malformed(format!(
            "not an EventBridge event ({})",
            crate::excerpt::serde_message(&e.to_string())
        ))
    })?;
    if event.source != SOURCE {
        tracing::info!(source = %event.source, detail_type = %event.detail_type, "ignoring an event that is not from Secrets Manager");
        return Ok(None);
    }
    let detail = event
        .detail
        .as_object()
        .ok_or_else(|| malformed("\"detail\" is not an object"))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let at = |path: &[&str]| {
        let mut v = detail.get(path[0]);
        for p in &path[1..] {
            v = v.and_then(|v| v.get(p));
        }
        text(v)
    };

    let (kind, secret, version) = match event.detail_type.as_str() {
        API_CALL | SERVICE_EVENT => {
            let name =
                at(&["eventName"]).ok_or_else(|| malformed("\"detail.eventName\" is missing"))?;
            if let Some(code) = at(&["errorCode"]) {
                tracing::info!(event_name = %name, error_code = %code, "ignoring a failed API call");
                return Ok(None);
            }
            let kind = match name.as_str() {
                "CreateSecret"
                | "PutSecretValue"
                | "UpdateSecret"
                | "RestoreSecret"
                | "UpdateSecretVersionStage"
                | "RotationSucceeded"
                | "ReplicateSecretToRegions" => ChangeKind::Upsert,
                "DeleteSecret" => ChangeKind::Delete,
                other => {
                    tracing::info!(event_name = %other, "ignoring a Secrets Manager event that changes no value");
                    return Ok(None);
                }
            };
            // AWS writes full ARNs in these fields, so the name can be read off them.
            let full_arn = at(&["responseElements", "arn"])
                .or_else(|| at(&["responseElements", "aRN"]))
                .or_else(|| at(&["additionalEventData", "SecretId"]))
                .or_else(|| event.resources.as_ref().and_then(|r| r.first().cloned()));
            // What the caller sent: a name, or a full or partial ARN, kept as it is
            // (the source resolves an ARN it cannot route).
            let as_sent = || {
                at(&["requestParameters", "secretId"])
                    .or_else(|| at(&["requestParameters", "name"]))
            };
            let secret = full_arn.map(|arn| secret_name(&arn).to_string()).or_else(as_sent).ok_or_else(|| {
                malformed(format!(
                    "the {name} event names no secret (detail.responseElements.arn, detail.requestParameters.secretId)"
                ))
            })?;
            let version = at(&["responseElements", "versionId"])
                .or_else(|| at(&["requestParameters", "clientRequestToken"]));
            (kind, secret, version)
        }
        LABEL_UPDATED => {
            let label = at(&["labelUpdated"])
                .ok_or_else(|| malformed("\"detail.labelUpdated\" is missing"))?;
            if label != "AWSCURRENT" {
                tracing::info!(label = %label, "ignoring a label move that does not change the current value");
                return Ok(None);
            }
            let secret = at(&["name"])
                .or_else(|| {
                    event
                        .resources
                        .as_ref()
                        .and_then(|r| r.first())
                        .map(|arn| secret_name(arn).to_string())
                })
                .ok_or_else(|| {
                    malformed(
                        "the Secret Label Updated event names no secret (resources, detail.name)",
                    )
                })?;
            (ChangeKind::Upsert, secret, at(&["versionId"]))
        }
        other => {
            tracing::info!(detail_type = %other, "ignoring a Secrets Manager event of a type fedsync does not act on");
            return Ok(None);
        }
    };
    // An empty name (`"secretId": ""`, or an ARN of a nameless secret) is no secret.
    if secret.is_empty() {
        return Err(malformed("the event names an empty secret"));
    }

    Ok(Some(Observed {
        kind,
        secret,
        version,
        region: event.region,
        id: event.id,
        observed_at: event
            .time
            .map(SystemTime::from)
            .unwrap_or_else(SystemTime::now),
    }))
}

/// The configured Secrets Manager source for a region: the one whose region is
/// that region, else the one without a region (the host's own). The
/// configuration holds at most one of each.
fn source_for(config: &Config, region: Option<&str>) -> Option<String> {
    let host_region = std::env::var("AWS_REGION").ok();
    let mut fallback = None;
    for (name, source) in &config.sources {
        let SourceConfig::AwsSecretsManager {
            region: configured, ..
        } = source
        else {
            continue;
        };
        match configured.as_deref().or(host_region.as_deref()) {
            Some(r) if Some(r) == region => return Some(name.clone()),
            None => fallback = fallback.or(Some(name.clone())),
            _ => {}
        }
    }
    fallback
}

/// A secret's name from a full ARN (`arn:…:secret:NAME-AbCdEf`), or the name as given.
pub fn secret_name(id: &str) -> &str {
    let Some((_, resource)) = id.split_once(":secret:").filter(|_| id.starts_with("arn:")) else {
        return id;
    };
    // AWS appends '-' and six random characters to the name in every full ARN.
    match resource.len().checked_sub(7) {
        Some(cut)
            if resource.as_bytes()[cut] == b'-'
                && resource[cut + 1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric()) =>
        {
            &resource[..cut]
        }
        _ => resource,
    }
}

/// Parses and syncs one EventBridge event.
pub async fn handle(engine: &crate::sync::Engine, event: &Value) -> super::Handled {
    super::handle(engine, parse(event, engine.config())).await
}

#[cfg(test)]
mod tests;
