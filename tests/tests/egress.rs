//! The egress guard on the real webhook: trusted issuers whose discovery
//! documents name a `jwks_uri` on the cloud metadata address, or on plain http
//! to a public host. fedsync's requests go through a recording HTTP proxy, which
//! sees the discovery documents fetched and never a request for those keys; the
//! notices are refused, and the log names the host and why.

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use fedsync_tests::issuer::{KeyType, SigningKey, unix_now};
use fedsync_tests::notice;
use fedsync_tests::receiver::Receiver;
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

const AUDIENCE: &str = "fedsync-notify";
const SENDER: &str = "ci:deployer";
/// Where the AWS endpoints point: never called, since no notice gets through.
const NOWHERE: &str = "http://127.0.0.1:9";

/// Serves `router` on a loopback port; returns the port.
async fn serve(router: Router) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

/// An issuer at `http://localhost:PORT` whose discovery document names `jwks_uri`.
async fn issuer(jwks_uri: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let document = json!({"issuer": url, "jwks_uri": jwks_uri, "id_token_signing_alg_values_supported": ["RS256"]});
    let router = Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || async move { axum::Json(document) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// A forward proxy that records every URL it is asked for, and passes requests
/// for `localhost` on to the loopback address (anything else gets a 502).
async fn proxy(seen: Arc<Mutex<Vec<String>>>) -> u16 {
    let forward = reqwest::Client::builder().no_proxy().build().unwrap();
    let router = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let (seen, forward) = (seen.clone(), forward.clone());
        async move {
            seen.lock().unwrap().push(uri.to_string());
            if uri.host() != Some("localhost") {
                return StatusCode::BAD_GATEWAY.into_response();
            }
            let target = uri.to_string().replacen("localhost", "127.0.0.1", 1);
            let answer = forward
                .request(method, target)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let body = answer.bytes().await.unwrap();
            (status, body).into_response() as Response
        }
    });
    serve(router).await
}

fn config(issuers: &[&str]) -> String {
    let trusted: String = issuers
        .iter()
        .map(|i| format!("[[triggers.notify.issuers]]\nissuer = \"{i}\"\naudience = \"{AUDIENCE}\"\nsubjects = [\"{SENDER}\"]\n"))
        .collect();
    format!(
        r#"
[triggers.notify]
{trusted}
[identities.deploy]
kind = "signing-key"
issuer = "https://issuer.example.com/fedsync"
key = "env:FEDSYNC_SIGNING_KEY"
subject = "fedsync:test"

[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"
endpoint = "{NOWHERE}"

[destinations.dr]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "arn:aws:iam::210987654321:role/fedsync-writer"
identity = "deploy"
endpoint = "{NOWHERE}"
sts_endpoint = "{NOWHERE}"

[[rules]]
source = "main"
match = "**"
destinations = ["dr"]
"#
    )
}

#[tokio::test]
async fn a_jwks_uri_on_a_forbidden_address_is_refused_without_being_fetched() {
    let metadata = issuer("http://169.254.169.254/latest/meta-data/jwks.json").await;
    let public = issuer("http://keys.example.com/jwks.json").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let proxy = proxy(seen.clone()).await;
    let key = SigningKey::generate(KeyType::Rsa);
    let env = [
        ("FEDSYNC_CONFIG_TOML", config(&[&metadata, &public])),
        ("FEDSYNC_SIGNING_KEY", key.private_key_pem().to_string()),
        ("FEDSYNC_LOG", "debug".to_string()),
        ("HTTP_PROXY", format!("http://127.0.0.1:{proxy}")),
        ("NO_PROXY", "127.0.0.1".to_string()),
    ];
    let receiver = Receiver::start("fedsync-webhook", &env).await;
    let url = format!("{}/v1/notify", receiver.url());
    let body = json!({"source": "main", "secret": "prod/db"}).to_string();

    for issuer in [&metadata, &public] {
        let now = unix_now();
        let token = key.sign(
            &json!({"iss": issuer, "sub": SENDER, "aud": AUDIENCE, "iat": now, "exp": now + 300}),
        );
        let (status, _) = notice::post(&url, &body, &notice::bearer_headers(&token)).await;
        assert_eq!(status, 401, "{issuer}");
    }

    let seen = seen.lock().unwrap().clone();
    // fedsync's requests do go through the proxy: both discovery documents were fetched there...
    for issuer in [&metadata, &public] {
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        assert!(seen.contains(&discovery), "{discovery} not in {seen:?}");
    }
    // ...and neither key set was ever asked for.
    assert_eq!(seen.len(), 2, "only the discovery documents: {seen:?}");
    let logs = receiver.logs();
    for refusal in [
        "refused to call 169.254.169.254: link-local addresses are never called",
        "refused to call keys.example.com: plain http:// is only allowed to a loopback address",
    ] {
        assert!(logs.contains(refusal), "the log says {refusal:?}: {logs}");
    }
}
