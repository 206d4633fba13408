//! Token endpoints that echo the request in their refusals: the failure names
//! the refusal and what was presented, never the token fedsync presented (nor
//! the federated token it presented for impersonation).

use super::aws::AwsExchange;
use super::azure::{Application, EntraExchange};
use super::google::{GoogleExchange, federation};
use super::{BearerToken, Caches};
use crate::config::{AwsDestinationConfig, VaultLogin};
use crate::identity::{IdentityToken, TokenSource};
use crate::report::Failure;
use crate::vault::VaultClient;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// A token shaped like a real one: header, claims and a long signature.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.\
eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoicmVwbzpvL3IiLCJhdWQiOiJzdHMifQ.\
c2lnbmF0dXJlLXRoYXQtaXMtbG9uZy1lbm91Z2gtdG8tbWF0dGVyLWluLWFuLWVjaG8";
/// The federated token Google STS hands out, which impersonation presents.
const FEDERATED: &str = "ya29.federated-access-token-0123456789abcdef";

struct FixedToken;

#[async_trait::async_trait]
impl TokenSource for FixedToken {
    async fn token(&self, _: &str) -> Result<IdentityToken, Failure> {
        Ok(IdentityToken::new(TOKEN.into()))
    }
}

/// Every token endpoint at once, each refusing with its own error shape and
/// quoting what it received (the body, or the Authorization header).
async fn echoing_endpoints(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let echo = String::from_utf8_lossy(&body).into_owned();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bad = |body: serde_json::Value| (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    match uri.path() {
        "/aws/" => (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/xml")],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
                 <Message>could not parse {}</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                echo.replace('&', "&amp;").replace('<', "&lt;")
            ),
        )
            .into_response(),
        "/refusing-sts/v1/token" => bad(json!({
            "error": "invalid_grant",
            "error_description": format!("the token in {echo} is not valid"),
        })),
        "/accepting-sts/v1/token" => {
            axum::Json(json!({"access_token": FEDERATED, "expires_in": 3600})).into_response()
        }
        p if p.ends_with(":generateAccessToken") => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": {
                "code": 403,
                "status": "PERMISSION_DENIED",
                "message": format!("caller {auth} may not impersonate"),
            }})),
        )
            .into_response(),
        "/t/oauth2/v2.0/token" => bad(json!({
            "error": "invalid_client",
            "error_description": format!(
                "AADSTS700213: No matching federated identity record found for {echo}. Trace ID: x"
            ),
            "error_codes": [700213],
        })),
        "/v1/auth/jwt/login" => bad(json!({"errors": [format!("error validating {echo}")]})),
        other => (StatusCode::NOT_FOUND, format!("no route {other}")).into_response(),
    }
}

/// Asserts that `failure` is the refusal, explained, with no part of a token in it.
fn assert_scrubbed(what: &str, failure: Failure, explained: &str) {
    let shown = format!("{failure:?} {failure}");
    assert!(shown.contains(explained), "{what}: {shown}");
    assert!(shown.contains(crate::secret::REDACTED), "{what}: {shown}");
    for secret in [TOKEN, FEDERATED] {
        for part in secret.split('.').filter(|p| p.len() >= 12) {
            for window in part.as_bytes().windows(12) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!shown.contains(window), "{what} leaked {window:?}: {shown}");
            }
        }
    }
}

#[tokio::test]
async fn a_token_echoed_by_an_endpoint_never_reaches_the_failure() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(echoing_endpoints);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let caches = Caches::default();
    let identity: Arc<dyn TokenSource> = Arc::new(FixedToken);

    let aws: AwsDestinationConfig = serde_json::from_value(json!({
        "region": "us-east-1",
        "role_arn": "arn:aws:iam::123456789012:role/writer",
        "identity": "ci",
        "sts_endpoint": format!("{base}/aws/"),
    }))
    .unwrap();
    let aws = AwsExchange::new("ci", identity.clone(), &aws, caches.aws.clone());
    let failure = aws.credentials().await.err().expect("STS refuses");
    assert_scrubbed("AWS STS", failure, "InvalidIdentityToken");

    let provider =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q";
    let google = |sts: &str, account: Option<&str>| {
        let federation = federation(
            provider,
            None,
            account,
            Some(&format!("{base}/{sts}")),
            Some(&base),
        );
        GoogleExchange::new("ci", identity.clone(), federation, caches.bearer.clone())
    };
    let failure = google("refusing-sts", None).token().await.unwrap_err();
    assert_scrubbed("Google STS", failure, "invalid_grant");
    let account = Some("writer@p.iam.gserviceaccount.com");
    let failure = google("accepting-sts", account).token().await.unwrap_err();
    assert_scrubbed("IAM Credentials", failure, "PERMISSION_DENIED");

    let app = Application {
        authority: base.clone(),
        tenant_id: "t".into(),
        client_id: "c".into(),
        audience: "api://AzureADTokenExchange".into(),
        scope: super::azure::KEY_VAULT_SCOPE.into(),
    };
    let entra = EntraExchange::new("ci", identity.clone(), app, caches.bearer.clone());
    let failure = entra.token().await.unwrap_err();
    assert_scrubbed("Entra ID", failure, "AADSTS700213");

    let login = VaultLogin {
        role: Some("fedsync".into()),
        identity: Some("ci".into()),
        ..VaultLogin::default()
    };
    let vault = VaultClient::new(&base, None, &login, Some(identity), caches.bearer.clone());
    let failure = crate::http::Bearer::token(&vault).await.unwrap_err();
    assert_scrubbed("Vault login", failure, "error validating");
}

#[test]
fn scrubbing_leaves_a_failure_without_the_token_untouched() {
    let token = BearerToken::new(FEDERATED.into(), std::time::SystemTime::now());
    let failure = Failure::new(
        crate::report::FailureClass::Auth,
        "refused: audience mismatch",
    );
    assert_eq!(token.scrub(failure).message, "refused: audience mismatch");
}
