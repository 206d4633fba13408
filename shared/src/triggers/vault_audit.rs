//! OpenBao/Vault audit entries as changes. OpenBao has no event API, but a
//! `socket` audit device streams one JSON entry per request and per response.
//! Only successful responses to KV v2 requests on the source's mount and
//! namespace count: a write or patch of `{mount}/data/{name}` is an upsert of the
//! version it made; a delete of the data or metadata, or a delete, destroy or
//! undelete of versions, makes the engine read the source and decide. Everything
//! else (logins, reads, other mounts, failed requests) is ignored. Values in
//! audit entries are HMAC-hashed by the server, and fedsync never logs an entry.

use super::kv_v2::{self, Section};
use super::malformed;
use crate::config::VaultKvConfig;
use crate::event::{ChangeKind, SecretChange};
use crate::report::Failure;
use serde::Deserialize;
use std::time::SystemTime;

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    error: Option<String>,
    request: Option<Request>,
    response: Option<Response>,
}

#[derive(Deserialize)]
struct Request {
    operation: String,
    path: String,
    mount_type: Option<String>,
    namespace: Option<Namespace>,
}

#[derive(Deserialize)]
struct Namespace {
    path: Option<String>,
}

#[derive(Deserialize)]
struct Response {
    data: Option<ResponseData>,
}

#[derive(Deserialize)]
struct ResponseData {
    version: Option<serde_json::Value>,
}

/// Parses one audit line for the source `source_name`; `Ok(None)` for entries
/// that are not a change of one of its secrets.
pub fn parse(
    line: &str,
    source_name: &str,
    source: &VaultKvConfig,
) -> Result<Option<SecretChange>, Failure> {
    let entry: Entry = serde_json::from_str(line).map_err(|e| {
        malformed(format!(
            "an audit line that is not an audit entry ({})",
            crate::excerpt::serde_message(&e.to_string())
        ))
    })?;
    let Some(request) = entry.request else {
        return Ok(None);
    };
    let failed = entry.error.as_deref().is_some_and(|e| !e.is_empty());
    let kv = request.mount_type.as_deref().is_none_or(|t| t == "kv");
    let namespace = request.namespace.and_then(|n| n.path);
    if entry.kind != "response"
        || failed
        || !kv
        || !kv_v2::same_namespace(namespace.as_deref(), source.namespace.as_deref())
    {
        return Ok(None);
    }
    let Some((section, secret)) = kv_v2::locate(kv_v2::mount(source), &request.path) else {
        return Ok(None);
    };
    let operation = request.operation.as_str();
    let (kind, version) = match (section, operation) {
        (Section::Data, "create" | "update" | "patch") => {
            let version = entry
                .response
                .and_then(|r| r.data)
                .and_then(|d| d.version)
                .and_then(|v| v.as_u64())
                .map(|v| v.to_string());
            (ChangeKind::Upsert, version)
        }
        (Section::Undelete, "create" | "update") => (ChangeKind::Upsert, None),
        (Section::Delete | Section::Destroy, "create" | "update")
        | (Section::Data | Section::Metadata, "delete") => (ChangeKind::Delete, None),
        _ => return Ok(None),
    };
    Ok(Some(SecretChange {
        source: source_name.to_string(),
        secret: secret.to_string(),
        version,
        kind,
        observed_at: SystemTime::now(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(namespace: Option<&str>) -> VaultKvConfig {
        VaultKvConfig {
            address: "https://bao.example.com".into(),
            mount: "secret".into(),
            namespace: namespace.map(String::from),
            login: Default::default(),
        }
    }

    /// The shape OpenBao 2.7 writes (abridged: auth and hashed request data).
    fn entry(kind: &str, operation: &str, path: &str, version: Option<u64>) -> String {
        json!({
            "time": "2026-11-22T22:18:00.241534169Z",
            "type": kind,
            "auth": {"client_token": "hmac-sha256:d1f6", "policies": ["root"]},
            "request": {
                "id": "56561821-6af7-93c9-e190-7535dac33370",
                "operation": operation,
                "mount_point": "secret/",
                "mount_type": "kv",
                "mount_class": "secret",
                "namespace": {"id": "root"},
                "path": path,
                "data": {"data": {"a": "hmac-sha256:fe35"}},
                "remote_address": "127.0.0.1"
            },
            "response": {"mount_point": "secret/", "mount_type": "kv",
                         "data": {"created_time": "2026-11-22T22:18:00.241000919Z", "version": version}}
        })
        .to_string()
    }

    #[test]
    fn a_write_response_is_an_upsert_of_its_version() {
        let line = entry("response", "create", "secret/data/app/db", Some(4));
        let change = parse(&line, "vault", &source(None)).unwrap().unwrap();
        assert_eq!(
            (change.source.as_str(), change.secret.as_str()),
            ("vault", "app/db")
        );
        assert_eq!(
            (change.kind, change.version.as_deref()),
            (ChangeKind::Upsert, Some("4"))
        );
    }

    #[test]
    fn requests_reads_failures_and_other_mounts_are_ignored() {
        let s = source(None);
        let ignored = [
            entry("request", "create", "secret/data/app/db", None),
            entry("response", "read", "secret/data/app/db", Some(4)),
            entry("response", "update", "secret/config", None),
            entry("response", "update", "auth/jwt/login", None),
            entry("response", "update", "other/data/app/db", Some(1)),
        ];
        for line in ignored {
            assert_eq!(parse(&line, "vault", &s).unwrap(), None, "{line}");
        }
        let mut failed: serde_json::Value =
            serde_json::from_str(&entry("response", "create", "secret/data/x", None)).unwrap();
        failed["error"] = json!("check-and-set parameter did not match");
        assert_eq!(parse(&failed.to_string(), "vault", &s).unwrap(), None);
        let elsewhere = entry("response", "create", "secret/data/x", Some(1));
        assert_eq!(
            parse(&elsewhere, "vault", &source(Some("team"))).unwrap(),
            None
        );
    }

    #[test]
    fn deletions_and_undeletes_send_the_engine_to_the_source() {
        let s = source(None);
        for (operation, path, kind) in [
            ("delete", "secret/data/app/db", ChangeKind::Delete),
            ("update", "secret/delete/app/db", ChangeKind::Delete),
            ("update", "secret/destroy/app/db", ChangeKind::Delete),
            ("delete", "secret/metadata/app/db", ChangeKind::Delete),
            ("update", "secret/undelete/app/db", ChangeKind::Upsert),
        ] {
            let change = parse(&entry("response", operation, path, None), "vault", &s)
                .unwrap()
                .unwrap();
            assert_eq!(
                (change.secret.as_str(), change.kind, change.version),
                ("app/db", kind, None)
            );
        }
    }

    #[test]
    fn a_line_that_is_not_json_is_malformed_without_echoing_it() {
        let err = parse("password=hunter2", "vault", &source(None)).unwrap_err();
        assert!(err.message.contains("not an audit entry"));
        assert!(!err.message.contains("hunter2"));
    }

    #[test]
    fn a_value_where_a_request_belongs_is_not_echoed() {
        let pasted = "pasted-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
        let line = json!({"type": "response", "request": pasted}).to_string();
        let err = parse(&line, "vault", &source(None)).unwrap_err();
        assert!(
            err.message.contains("invalid type: string"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("pasted-secret"), "{}", err.message);
    }
}
