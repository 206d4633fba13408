//! Vault / OpenBao KV v2 as a source: the latest version of a secret
//! (`GET /v1/{mount}/data/{path}`: `data.data` as one JSON object, version
//! `data.metadata.version`). fedsync logs in with JWT auth, presenting one of
//! its identities' tokens, and keeps the Vault token until shortly before its
//! lease ends; or it uses a token from a file that it re-reads.

use super::{Listing, Source, SourceSecret};
use crate::config::VaultKvConfig;
use crate::exchange::{BearerToken, CredentialCache, Obtained};
use crate::http;
use crate::identity::TokenSource;
use crate::report::{Failure, FailureClass};
use crate::secret::SecretValue;
use crate::vault::VaultClient;
use serde::Deserialize;
use std::sync::Arc;

/// A Vault/OpenBao KV v2 engine.
pub struct VaultKvSource {
    vault: VaultClient,
    mount: String,
}

#[derive(Deserialize)]
struct Read {
    data: ReadData,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<serde_json::Map<String, serde_json::Value>>,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    version: u64,
}

/// `LIST {mount}/metadata/{folder}`: names, folders ending in `/`.
#[derive(Deserialize)]
struct Keys {
    data: KeysData,
}

#[derive(Deserialize)]
struct KeysData {
    keys: Vec<String>,
}

impl VaultKvSource {
    pub fn new(
        config: &VaultKvConfig,
        identity: Option<Arc<dyn TokenSource>>,
        cache: Arc<CredentialCache<BearerToken>>,
    ) -> Self {
        VaultKvSource {
            vault: VaultClient::new(
                &config.address,
                config.namespace.as_deref(),
                &config.login,
                identity,
                cache,
            ),
            mount: config.mount.trim_matches('/').to_string(),
        }
    }
}

impl VaultKvSource {
    /// `data/{secret}`, at `version` or the latest.
    async fn read_at(
        &self,
        secret: &str,
        version: Option<&str>,
    ) -> Result<Option<SourceSecret>, Failure> {
        let path = format!("{}/data/{secret}", self.mount);
        let what = format!("reading {secret:?} from Vault");
        let query: Vec<(&str, &str)> = version.map(|v| ("version", v)).into_iter().collect();
        let Some(response) = self.vault.get(&path, &query, &what).await? else {
            return Ok(None);
        };
        let read: Read = http::json(response)
            .await
            .map_err(|e| http::failure(&e, &what))?;
        // A deleted or destroyed version has no data.
        let Some(data) = read.data.data else {
            return Ok(None);
        };
        let value = serde_json::Value::Object(data).to_string();
        Ok(Some(SourceSecret {
            name: secret.to_string(),
            version: read.data.metadata.version.to_string(),
            created: None,
            value: SecretValue::text(value),
        }))
    }
}

#[async_trait::async_trait]
impl Source for VaultKvSource {
    async fn read(&self, secret: &str) -> Result<Option<SourceSecret>, Failure> {
        self.read_at(secret, None).await
    }

    async fn read_version(
        &self,
        secret: &str,
        version: &str,
    ) -> Result<Option<SourceSecret>, Failure> {
        if version.parse::<u64>().is_err() {
            return Ok(None);
        }
        self.read_at(secret, Some(version)).await
    }

    /// Vault lists one folder at a time, unpaged: each page is one folder, and
    /// the page token is the list of folders still to visit.
    async fn list(&self, page: Option<&str>) -> Result<Listing, Failure> {
        let mut folders: Vec<String> = match page {
            None => vec![String::new()],
            Some(token) => serde_json::from_str(token).map_err(|_| {
                Failure::new(FailureClass::BadInput, "not a Vault listing page token")
            })?,
        };
        let mut names = Vec::new();
        if let Some(folder) = folders.pop() {
            let path = format!("{}/metadata/{folder}", self.mount);
            let what = format!("listing {:?} in Vault", self.mount);
            // An empty folder (or mount) answers 404.
            if let Some(response) = self.vault.get(&path, &[("list", "true")], &what).await? {
                let keys: Keys = http::json(response)
                    .await
                    .map_err(|e| http::failure(&e, &what))?;
                for key in keys.data.keys {
                    match key.ends_with('/') {
                        true => folders.push(format!("{folder}{key}")),
                        false => names.push(format!("{folder}{key}")),
                    }
                }
            }
        }
        let next = (!folders.is_empty())
            .then(|| serde_json::to_string(&folders).expect("strings serialize"));
        Ok(Listing { names, next })
    }

    async fn current_version(&self, secret: &str) -> Result<Option<String>, Failure> {
        // The data read, not the metadata: a deleted latest version has a version
        // number in the metadata but is gone, and both answers must agree.
        Ok(self.read(secret).await?.map(|s| s.version))
    }

    async fn exchange(&self) -> Option<Result<Obtained, Failure>> {
        self.vault.obtain().await
    }
}
