//! Vault event notifications (`POST /v1/vault/events`): the CloudEvents JSON of
//! Vault's `kv-v2/*` events, forwarded by a relay subscribed to
//! `sys/events/subscribe/kv-v2/*`. Writes, patches and undeletes become upserts
//! of the version they name; deletes, destroys and metadata deletes become
//! deletions (the engine reads the source and decides); other event types are
//! ignored. An event names a mount, never a server: the `vault-kv` source is the
//! one reading that mount in that namespace, or the one `?source=` names.

use super::kv_v2::{self, Section};
use super::malformed;
use crate::config::Config;
use crate::event::{ChangeKind, SecretChange};
use crate::excerpt;
use crate::report::Failure;
use serde::Deserialize;
use std::time::SystemTime;

#[derive(Deserialize)]
struct CloudEvent {
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    event_type: String,
    event: Option<Event>,
    plugin_info: Option<PluginInfo>,
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    metadata: Metadata,
}

/// Vault writes every metadata value as a string.
#[derive(Deserialize, Default)]
struct Metadata {
    data_path: Option<String>,
    path: Option<String>,
    current_version: Option<String>,
}

#[derive(Deserialize)]
struct PluginInfo {
    mount_path: String,
}

/// Parses one event; `Ok(None)` for events fedsync does not act on.
pub fn parse(
    body: &[u8],
    config: &Config,
    source: Option<&str>,
) -> Result<Option<SecretChange>, Failure> {
    let event: CloudEvent = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "expected a Vault event in CloudEvents JSON ({})",
            excerpt::serde_message(&e.to_string())
        ))
    })?;
    let data = event.data;
    let kind = match data.event_type.as_str() {
        "kv-v2/data-write" | "kv-v2/data-patch" | "kv-v2/undelete" => ChangeKind::Upsert,
        "kv-v2/delete" | "kv-v2/data-delete" | "kv-v2/destroy" | "kv-v2/metadata-delete" => {
            ChangeKind::Delete
        }
        _ => return Ok(None),
    };
    let mount = data
        .plugin_info
        .map(|p| p.mount_path.trim_matches('/').to_string())
        .ok_or_else(|| malformed("data.plugin_info.mount_path is missing"))?;
    let metadata = data.event.map(|e| e.metadata).unwrap_or_default();
    let path = metadata
        .data_path
        .or(metadata.path)
        .ok_or_else(|| malformed("data.event.metadata has neither data_path nor path"))?;
    let Some((section, secret)) = kv_v2::locate(&mount, &path) else {
        return Err(malformed(format!(
            "path {} is not a KV v2 secret path of mount {}",
            excerpt::quote(&path),
            excerpt::quote(&mount)
        )));
    };
    let namespace = data.namespace.as_deref();
    let source = choose(config, source, &mount, namespace)?;
    // Only a data write names the version it made.
    let version = match (kind, section) {
        (ChangeKind::Upsert, Section::Data) => metadata.current_version,
        _ => None,
    };
    Ok(Some(SecretChange {
        source,
        secret: secret.to_string(),
        version,
        kind,
        observed_at: SystemTime::now(),
    }))
}

/// The `vault-kv` source that reads `mount` in `namespace`.
fn choose(
    config: &Config,
    named: Option<&str>,
    mount: &str,
    namespace: Option<&str>,
) -> Result<String, Failure> {
    let reads = |v: &crate::config::VaultKvConfig| {
        kv_v2::mount(v) == mount && kv_v2::same_namespace(namespace, v.namespace.as_deref())
    };
    if let Some(named) = named {
        return match config.vault_kv_sources().find(|(n, _)| n.as_str() == named) {
            None => Err(malformed(format!(
                "unknown source {} (not a vault-kv source)",
                excerpt::quote(named)
            ))),
            Some((_, v)) if !reads(v) => Err(malformed(format!(
                "source {} does not read mount {} in this namespace",
                excerpt::quote(named),
                excerpt::quote(mount)
            ))),
            Some((n, _)) => Ok(n.clone()),
        };
    }
    let matching: Vec<&String> = config
        .vault_kv_sources()
        .filter(|(_, v)| reads(v))
        .map(|(n, _)| n)
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(malformed(format!(
            "no vault-kv source reads mount {} in namespace {}",
            excerpt::quote(mount),
            excerpt::quote(namespace.unwrap_or("root"))
        ))),
        several => Err(malformed(format!(
            "sources {} all read mount {}: name one with ?source=NAME",
            several
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            excerpt::quote(mount)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[sources.vault]\nkind = \"vault-kv\"\naddress = \"https://vault.example.com\"\n{extra}\n[sources.aws]\nkind = \"aws-secrets-manager\"\n"
        );
        Config::parse(&text, "test.toml").unwrap()
    }

    fn event(event_type: &str, path: &str) -> Vec<u8> {
        // The shape Vault documents for event notifications.
        json!({
            "id": "a3be9fb1-b514-519f-5b25-b6f144a8c1ce",
            "source": "https://vaultproject.io/",
            "specversion": "1.0",
            "type": "*",
            "data": {
                "event": {"id": "a3be9fb1-b514-519f-5b25-b6f144a8c1ce", "metadata": {
                    "current_version": "3", "data_path": path, "modified": "true",
                    "oldest_version": "0", "operation": "data-write", "path": path}},
                "event_type": event_type,
                "plugin_info": {"mount_class": "secret", "mount_accessor": "kv_5dc4d18e",
                                "mount_path": "secret/", "plugin": "kv"}
            },
            "datacontentype": "application/cloudevents",
            "time": "2023-09-12T15:19:49.394915-07:00"
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_data_write_names_the_secret_and_its_version() {
        let change = parse(
            &event("kv-v2/data-write", "secret/data/app/db"),
            &config(""),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (change.source.as_str(), change.secret.as_str()),
            ("vault", "app/db")
        );
        assert_eq!(
            (change.version.as_deref(), change.kind),
            (Some("3"), ChangeKind::Upsert)
        );
    }

    #[test]
    fn deletions_carry_no_version_and_metadata_edits_are_ignored() {
        for kind in ["kv-v2/delete", "kv-v2/destroy", "kv-v2/metadata-delete"] {
            let change = parse(&event(kind, "secret/data/app/db"), &config(""), None)
                .unwrap()
                .unwrap();
            assert_eq!((change.kind, change.version), (ChangeKind::Delete, None));
        }
        for kind in ["kv-v2/metadata-write", "kv-v2/config-write", "kv-v1/write"] {
            assert!(
                parse(&event(kind, "secret/data/app/db"), &config(""), None)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn unknown_mounts_namespaces_and_sources_are_refused_with_the_reason() {
        let wrong_mount = parse(
            &event("kv-v2/data-write", "secret/data/x"),
            &config("mount = \"kv\""),
            None,
        )
        .unwrap_err();
        assert!(
            wrong_mount
                .message
                .contains("no vault-kv source reads mount \"secret\""),
            "{}",
            wrong_mount.message
        );
        let not_vault = parse(
            &event("kv-v2/data-write", "secret/data/x"),
            &config(""),
            Some("aws"),
        )
        .unwrap_err();
        assert!(not_vault.message.contains("not a vault-kv source"));
        let in_namespace = parse(
            &event("kv-v2/data-write", "secret/data/x"),
            &config("namespace = \"team\""),
            None,
        )
        .unwrap_err();
        assert!(in_namespace.message.contains("namespace \"root\""));
        let garbage = parse(b"{\"data\": 1}", &config(""), None).unwrap_err();
        assert!(garbage.message.contains("expected a Vault event"));
    }

    #[test]
    fn refusals_never_repeat_a_value_of_the_event() {
        let pasted = "pasted-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
        let not_an_event = json!({"data": pasted}).to_string().into_bytes();
        let err = parse(&not_an_event, &config(""), None).unwrap_err();
        assert!(!err.message.contains(&pasted[..40]), "{}", err.message);
        let path = format!("secret/{pasted}");
        let write = |path: &str| event("kv-v2/data-write", path);
        for (body, source) in [(write(&path), None), (write("secret/data/a"), Some(pasted))] {
            let err = parse(&body, &config(""), source).unwrap_err();
            assert!(!err.message.contains(&pasted[..40]), "{}", err.message);
        }
    }
}
