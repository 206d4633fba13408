//! Services that echo the request in their error answers: a failed write's
//! report names the failure without the value, in any form the value travelled in.

use super::*;
use crate::config::DestinationConfig;
use crate::exchange::azure::{Application, EntraExchange};
use crate::exchange::google::GoogleCredentials;
use crate::identity::{IdentityToken, MetadataServer, TokenSource};
use crate::stores::{SourceSecret, azure_kv, gcp_sm};
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use std::sync::Mutex;

/// A value with characters JSON escapes, so that its echo differs from it.
const VALUE: &str = "s3cr3t \"quoted\"\nline-two-0123456789";

/// The source: one secret, one version.
struct OneSecret;

#[async_trait::async_trait]
impl Source for OneSecret {
    async fn read(&self, _: &str) -> Result<Option<SourceSecret>, Failure> {
        Ok(Some(SourceSecret {
            name: "app-db".into(),
            version: "1".into(),
            created: None,
            value: SecretValue::text(VALUE),
        }))
    }
    async fn current_version(&self, _: &str) -> Result<Option<String>, Failure> {
        Ok(Some("1".into()))
    }
    async fn list(&self, _: Option<&str>) -> Result<crate::stores::Listing, Failure> {
        unreachable!("a change never lists")
    }
}

/// An identity whose token the echoing Entra endpoint takes as it is.
struct AnyToken;

#[async_trait::async_trait]
impl TokenSource for AnyToken {
    async fn token(&self, _: &str) -> Result<IdentityToken, Failure> {
        Ok(IdentityToken::new("e30.e30.sig".into()))
    }
}

/// The request bodies the server received.
static RECEIVED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A Google metadata server, Entra ID, Secret Manager and Key Vault in one:
/// tokens for anyone, no secret exists, and every write fails with an error
/// that quotes the request body (Google with a 500, Key Vault with a 400).
async fn echoing_cloud(method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path();
    let echo = String::from_utf8_lossy(&body).into_owned();
    if !echo.is_empty() {
        RECEIVED.lock().unwrap().push(echo.clone());
    }
    let token = || axum::Json(json!({"access_token": "at", "expires_in": 3600})).into_response();
    let google = |status: StatusCode, name: &str, message: String| {
        let error = json!({"error": {"code": status.as_u16(), "status": name, "message": message}});
        (status, axum::Json(error)).into_response()
    };
    match method {
        Method::GET if path.starts_with("/computeMetadata/") => token(),
        Method::POST if path.ends_with("/oauth2/v2.0/token") => token(),
        Method::GET if path.starts_with("/v1/projects/") => {
            google(StatusCode::NOT_FOUND, "NOT_FOUND", "no such secret".into())
        }
        Method::POST if path.ends_with(":addVersion") => google(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("could not store {echo}"),
        ),
        Method::POST if path.starts_with("/v1/projects/") => {
            axum::Json(json!({"name": "projects/p/secrets/app-db"})).into_response()
        }
        Method::GET => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "SecretNotFound", "message": "not found"}})),
        )
            .into_response(),
        _ => (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": {"code": "BadParameter", "message": format!("invalid request {echo}")}}),
            ),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn an_echoed_value_never_reaches_the_report() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let router = axum::Router::new().fallback(echoing_cloud);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let base = format!("http://{host}");
    let config = Config::parse(
        &format!(
            r#"
[identities.ci]
kind = "github-actions"

[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"

[destinations.google]
kind = "gcp-secret-manager"
project = "p"
identity = "ci"
workload_identity_provider = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
secretmanager_endpoint = "{base}"

[destinations.azure]
kind = "azure-key-vault"
vault_url = "{base}"
identity = "ci"
tenant_id = "t"
client_id = "c"
authority_host = "{base}"

[[rules]]
source = "main"
match = "**"
destinations = ["google", "azure"]
"#
        ),
        "test.toml",
    )
    .unwrap();
    let caches = Caches::default();
    let DestinationConfig::GcpSecretManager(google) = &config.destinations["google"] else {
        panic!("google is a Google destination")
    };
    let DestinationConfig::AzureKeyVault(azure) = &config.destinations["azure"] else {
        panic!("azure is a Key Vault destination")
    };
    let metadata = MetadataServer::new(Some(&host));
    let google = gcp_sm::GcpSmDestination::new(
        GoogleCredentials::metadata(metadata, caches.bearer.clone()),
        google,
    );
    let entra = EntraExchange::new(
        "ci",
        Arc::new(AnyToken),
        Application::from_config(azure),
        caches.bearer.clone(),
    );
    let azure = azure_kv::AzureKvDestination::new(azure, Arc::new(entra));
    let destinations: HashMap<String, Arc<dyn Destination>> = HashMap::from([
        (
            "google".to_string(),
            Arc::new(google) as Arc<dyn Destination>,
        ),
        ("azure".to_string(), Arc::new(azure) as Arc<dyn Destination>),
    ]);
    let sources = HashMap::from([("main".to_string(), Arc::new(OneSecret) as Arc<dyn Source>)]);
    let engine = Engine::with_stores(config, sources, destinations);
    let report = engine
        .sync(&SecretChange {
            source: "main".into(),
            secret: "app-db".into(),
            version: None,
            kind: ChangeKind::Upsert,
            observed_at: std::time::SystemTime::now(),
        })
        .await;

    // The services did receive the value, and did quote it back.
    let received = RECEIVED.lock().unwrap().join("\n");
    let base64 = base64::engine::general_purpose::STANDARD.encode(VALUE);
    let escaped = serde_json::to_string(VALUE).unwrap();
    assert!(received.contains(&base64) && received.contains(escaped.trim_matches('"')));

    let shown = format!("{} {report:?}", serde_json::to_string(&report).unwrap());
    assert_eq!(report.outcomes.len(), 2, "{shown}");
    for outcome in &report.outcomes {
        let Status::Failed { message, .. } = &outcome.status else {
            panic!("{} did not fail: {shown}", outcome.destination)
        };
        assert!(message.contains("[redacted]"), "{message}");
    }
    for leak in [
        "s3cr3t",
        "line-two",
        &base64[..16],
        &base64[base64.len() - 16..],
    ] {
        assert!(!shown.contains(leak), "{leak:?} leaked: {shown}");
    }
}
