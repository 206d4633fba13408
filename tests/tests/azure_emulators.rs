//! Tests of the Azure emulators themselves, over real HTTP: they must refuse what Entra ID
//! and Key Vault refuse, in the clouds' own error shapes, or the end-to-end tests built on
//! them prove nothing.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fedsync_tests::azure::entra::{
    Application, Entra, EntraError, FederatedCredential, JWT_BEARER, KEY_VAULT_RESOURCE,
    MismatchErrors, TOKEN_EXCHANGE_AUDIENCE, TokenVersion,
};
use fedsync_tests::azure::event_grid::{
    EVENT_GRID_APP_ID, EVENT_GRID_ORIGIN, EventGrid, SECRET_NEW_VERSION_CREATED,
    SECURE_WEBHOOK_ROLE, SUBSCRIPTION_VALIDATION_EVENT, Schema, cloudevents_validation_accepted,
    validation_accepted,
};
use fedsync_tests::azure::key_vault::{
    DataAction, KeyVault, KvError, MAX_VALUE_BYTES, Operation, Role, SecretState, VaultConfig,
};
use fedsync_tests::issuer::{Issuer, KeyType, SigningKey, discover_jwks, unix_now};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::form_urlencoded;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TENANT: &str = "33e01921-4d64-4f8c-a055-5bdaffd5e33d";
/// The writer application: a federated credential and Secrets Officer on the vault.
const WRITER: &str = "11111111-1111-4111-8111-111111111111";
/// An application with a federated credential and no grant on the vault.
const STRANGER: &str = "22222222-2222-4222-8222-222222222222";
/// An application in the other tenant.
const FOREIGNER: &str = "44444444-4444-4444-8444-444444444444";
/// The webhook's application (Event Grid's audience).
const WEBHOOK_APP: &str = "55555555-5555-4555-8555-555555555555";
const WEBHOOK_URI: &str = "api://fedsync-webhook";
const SUBJECT: &str = "system:serviceaccount:fedsync:writer";
const VAULT: &str = "fedsync-kv";
const SCOPE: &str = "https://vault.azure.net/.default";
const HOUR: Duration = Duration::from_secs(3600);
const API: &str = "api-version=7.5";

struct World {
    issuer: Issuer,
    entra: Entra,
    vault: KeyVault,
    http: reqwest::Client,
}

/// An issuer, Entra with two tenants and their applications, and a vault in `TENANT`
/// where the writer is Secrets Officer.
async fn world() -> World {
    let issuer = Issuer::start().await;
    let entra = Entra::start().await;
    entra.add_tenant(TENANT);
    entra.add_tenant(OTHER_TENANT);
    for (tenant, client) in [
        (TENANT, WRITER),
        (TENANT, STRANGER),
        (OTHER_TENANT, FOREIGNER),
    ] {
        entra.add_application(tenant, Application::new(client));
        entra.add_federated_credential(
            tenant,
            client,
            FederatedCredential::new("fedsync", issuer.url(), SUBJECT),
        );
    }
    let vault = KeyVault::start(&entra, VaultConfig::new(VAULT, TENANT)).await;
    vault.grant(WRITER, Role::SecretsOfficer);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    World {
        issuer,
        entra,
        vault,
        http,
    }
}

fn form(params: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// A valid assertion from the world's issuer for `subject`.
fn assertion(w: &World, subject: &str) -> String {
    w.issuer
        .mint(&w.issuer.claims(subject, TOKEN_EXCHANGE_AUDIENCE, HOUR))
}

/// POSTs a client-credentials request with an assertion; answers status and JSON body.
async fn exchange(
    w: &World,
    tenant: &str,
    client_id: &str,
    scope: &str,
    assertion: &str,
) -> (u16, Value) {
    let body = form(&[
        ("client_id", client_id),
        ("scope", scope),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("grant_type", "client_credentials"),
    ]);
    post_form(w, tenant, body).await
}

async fn post_form(w: &World, tenant: &str, body: String) -> (u16, Value) {
    let response = w
        .http
        .post(w.entra.token_endpoint(tenant))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A Key Vault token for `client_id` in `tenant`.
async fn token(w: &World, tenant: &str, client_id: &str) -> String {
    let (status, body) = exchange(w, tenant, client_id, SCOPE, &assertion(w, SUBJECT)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Checks Entra's error shape and answers the description.
#[track_caller]
fn assert_entra_error(
    status: u16,
    body: &Value,
    want_status: u16,
    error: &str,
    code: u32,
) -> String {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap().to_owned();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        let value = body[field].as_str().unwrap();
        assert!(!value.is_empty(), "{field}");
        assert!(description.contains(value), "{description} lacks {field}");
    }
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
    // `2022-10-27 23:39:22Z`, now.
    let timestamp = body["timestamp"].as_str().unwrap();
    let at = unix_from_iso(&timestamp.replace(' ', "T"));
    assert!(at.abs_diff(unix_now() as i64) <= 5, "{timestamp}");
    assert!(
        description.ends_with(&format!("Timestamp: {timestamp}")),
        "{description}"
    );
    description
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (Howard Hinnant's
/// `days_from_civil`), to check the emulators' date formatting against the clock.
fn unix_from_iso(text: &str) -> i64 {
    let text = text.strip_suffix('Z').unwrap();
    let (date, time) = text.split_once('T').unwrap();
    let time = time.split('.').next().unwrap();
    let date: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let time: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (date[0], date[1], date[2]);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + time[0] * 3600 + time[1] * 60 + time[2]
}

/// Sends a Key Vault request; answers status, headers and JSON body (`Null` if empty).
async fn kv(
    w: &World,
    method: Method,
    path_and_query: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let mut request = w
        .http
        .request(method, format!("{}{path_and_query}", w.vault.url()));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, body)
}

#[track_caller]
fn assert_kv_error(status: u16, body: &Value, want_status: u16, code: &str, inner: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    match inner {
        Some(inner) => assert_eq!(body["error"]["innererror"]["code"], inner, "{body}"),
        None => assert!(body["error"].get("innererror").is_none(), "{body}"),
    }
}

fn is_version_id(version: &str) -> bool {
    version.len() == 32
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

// ---------------------------------------------------------------------------------------
// Entra ID.

#[tokio::test]
async fn entra_issues_a_token_for_a_matching_federated_credential() {
    let w = world().await;
    for key in [w.issuer.rsa(), w.issuer.ec()] {
        let assertion = key.sign(&w.issuer.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR));
        let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &assertion).await;
        assert_eq!(status, 200, "{body}");
        let fields: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["access_token", "expires_in", "ext_expires_in", "token_type"]
        );
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(body["ext_expires_in"], 3599);
        let access_token = body["access_token"].as_str().unwrap();
        let info = w.entra.token_info(access_token).unwrap();
        assert_eq!(info.tenant, TENANT);
        assert_eq!(info.client_id, WRITER);
        assert_eq!(info.resource, KEY_VAULT_RESOURCE);
        assert_eq!(info.expires_at, info.issued_at + 3599);
    }
    // Tenant and client ids are GUIDs: their letter case does not matter.
    let (status, body) = exchange(
        &w,
        &TENANT.to_uppercase(),
        &WRITER.to_uppercase(),
        SCOPE,
        &assertion(&w, SUBJECT),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.entra.calls(), 3);
    assert_eq!(w.entra.successes(WRITER), 3);
    assert_eq!(w.entra.issued_tokens().len(), 3);
}

#[tokio::test]
async fn entra_refuses_a_wrong_subject_per_claim_and_case_sensitively() {
    let w = world().await;
    let wrong = "system:serviceaccount:fedsync:other";
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &assertion(&w, wrong)).await;
    let description = assert_entra_error(status, &body, 401, "invalid_client", 700_213);
    assert!(
        description.contains(&format!(
            "No matching federated identity record found for presented assertion subject \
             '{wrong}'."
        )),
        "{description}"
    );
    let shouting = SUBJECT.to_uppercase();
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &assertion(&w, &shouting)).await;
    let description = assert_entra_error(status, &body, 401, "invalid_client", 7_002_138);
    assert!(
        description.contains(&format!(
            "presented assertion subject '{shouting}'. The subject matches with \
             case-insensitive comparison, but not with case-sensitive comparison."
        )),
        "{description}"
    );
    assert_eq!(w.entra.failures(WRITER), 2);
    assert!(w.entra.issued_tokens().is_empty());
}

#[tokio::test]
async fn entra_legacy_mismatch_names_issuer_subject_and_audience() {
    let w = world().await;
    w.entra.set_mismatch_errors(MismatchErrors::Legacy);
    let presented_subject = "system:serviceaccount:Fedsync:writer";
    let (status, body) =
        exchange(&w, TENANT, WRITER, SCOPE, &assertion(&w, presented_subject)).await;
    let description = assert_entra_error(status, &body, 400, "invalid_request", 70021);
    assert!(
        description.contains(&format!(
            "AADSTS70021: No matching federated identity record found for presented assertion. \
             Assertion Issuer: '{}'. Assertion Subject: '{presented_subject}'. Assertion \
             Audience: '{TOKEN_EXCHANGE_AUDIENCE}'.",
            w.issuer.url()
        )),
        "{description}"
    );
}

#[tokio::test]
async fn entra_refuses_a_wrong_audience() {
    let w = world().await;
    let assertion = w
        .issuer
        .mint(&w.issuer.claims(SUBJECT, "sts.amazonaws.com", HOUR));
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &assertion).await;
    let description = assert_entra_error(status, &body, 401, "invalid_client", 700_212);
    assert!(description.contains("presented assertion audience 'sts.amazonaws.com'"));
}

#[tokio::test]
async fn entra_refuses_a_wrong_issuer() {
    let w = world().await;
    // A real issuer with a valid JWKS, but not the one the credential names.
    let other = Issuer::start().await;
    let assertion = other.mint(&other.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR));
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &assertion).await;
    let description = assert_entra_error(status, &body, 401, "invalid_client", 700_211);
    assert!(description.contains(&format!("presented assertion issuer '{}'", other.url())));
    // The issuer with a trailing slash is another issuer.
    let mut claims = w.issuer.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR);
    claims["iss"] = json!(format!("{}/", w.issuer.url()));
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &w.issuer.mint(&claims)).await;
    assert_entra_error(status, &body, 401, "invalid_client", 700_211);
}

#[tokio::test]
async fn entra_refuses_an_assertion_outside_its_time_range() {
    let w = world().await;
    let now = unix_now();
    let mut expired = w.issuer.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR);
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 1);
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &w.issuer.mint(&expired)).await;
    let description = assert_entra_error(status, &body, 401, "invalid_client", 700_024);
    assert!(
        description.contains("Client assertion is not within its valid time range. Current time: "),
        "{description}"
    );
    let expiry = description
        .split("expiry time of assertion ")
        .nth(1)
        .unwrap()
        .split(". ")
        .next()
        .unwrap();
    assert!(expiry.ends_with(".0000000Z"), "{expiry}");
    assert_eq!(unix_from_iso(expiry), (now - 1) as i64, "{expiry}");
    let valid_from = description.split("valid from ").nth(1).unwrap();
    assert_eq!(
        unix_from_iso(valid_from.split(',').next().unwrap()),
        (now - 7200) as i64
    );
    let mut early = w.issuer.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR);
    early["nbf"] = json!(now + 600);
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &w.issuer.mint(&early)).await;
    assert_entra_error(status, &body, 401, "invalid_client", 700_024);
    let mut no_exp = w.issuer.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR);
    no_exp.as_object_mut().unwrap().remove("exp");
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &w.issuer.mint(&no_exp)).await;
    assert_entra_error(status, &body, 400, "invalid_request", 50027);
}

#[tokio::test]
async fn entra_refuses_unknown_tenants_and_applications() {
    let w = world().await;
    let unknown = "0b1d5d6c-2a7e-4c55-9c8e-3f4a5b6c7d8e";
    let (status, body) = exchange(&w, unknown, WRITER, SCOPE, &assertion(&w, SUBJECT)).await;
    let description = assert_entra_error(status, &body, 400, "invalid_request", 90002);
    assert!(description.contains(&format!("Tenant '{unknown}' not found.")));
    let (status, body) = exchange(&w, "contoso", WRITER, SCOPE, &assertion(&w, SUBJECT)).await;
    assert_entra_error(status, &body, 400, "invalid_request", 900_023);
    let (status, body) = exchange(&w, "common", WRITER, SCOPE, &assertion(&w, SUBJECT)).await;
    assert_entra_error(status, &body, 400, "invalid_request", 50059);
    // The application exists, but in the other tenant.
    let (status, body) = exchange(&w, TENANT, FOREIGNER, SCOPE, &assertion(&w, SUBJECT)).await;
    let description = assert_entra_error(status, &body, 400, "unauthorized_client", 700_016);
    assert!(description.contains(&format!(
        "Application with identifier '{FOREIGNER}' was not found in the directory '{TENANT}'."
    )));
    // Discovery of an unknown tenant.
    let response = w
        .http
        .get(w.entra.discovery_url(unknown))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_tenant");
    assert_eq!(body["error_codes"], json!([90002]));
}

#[tokio::test]
async fn entra_refuses_forged_and_malformed_assertions() {
    let w = world().await;
    let claims = w.issuer.claims(SUBJECT, TOKEN_EXCHANGE_AUDIENCE, HOUR);
    // Another key that claims the issuer's kid.
    let forger = SigningKey::generate(KeyType::Rsa);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(w.issuer.rsa().kid().to_owned());
    let forged = forger.sign_with_header(&header, &claims);
    // The right key, but no kid.
    let no_kid = w
        .issuer
        .rsa()
        .sign_with_header(&Header::new(Algorithm::RS256), &claims);
    // An unknown kid.
    let mut unknown = Header::new(Algorithm::RS256);
    unknown.kid = Some("not-a-key".to_owned());
    let unknown_kid = w.issuer.rsa().sign_with_header(&unknown, &claims);
    for assertion in [
        forged.as_str(),
        &no_kid,
        &unknown_kid,
        "not.a.jwt",
        "garbage",
    ] {
        let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, assertion).await;
        let description = assert_entra_error(status, &body, 400, "invalid_request", 50027);
        assert!(description.contains("JWT token is invalid or malformed."));
    }
    // A symmetric algorithm.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(w.issuer.rsa().kid().to_owned());
    let symmetric =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(b"shared")).unwrap();
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &symmetric).await;
    assert_entra_error(status, &body, 400, "invalid_request", 5_002_730);
    // alg none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &none).await;
    assert_entra_error(status, &body, 400, "invalid_request", 50027);
}

#[tokio::test]
async fn entra_checks_the_request_parameters() {
    let w = world().await;
    let good = assertion(&w, SUBJECT);
    let base = [
        ("client_id", WRITER),
        ("scope", SCOPE),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", good.as_str()),
        ("grant_type", "client_credentials"),
    ];
    let without = |name: &str| -> String {
        form(
            &base
                .iter()
                .copied()
                .filter(|(n, _)| *n != name)
                .collect::<Vec<_>>(),
        )
    };
    let replaced = |name: &str, value: &str| -> String {
        form(
            &base
                .iter()
                .map(|(n, v)| if *n == name { (*n, value) } else { (*n, *v) })
                .collect::<Vec<_>>(),
        )
    };
    let cases = [
        (without("grant_type"), 400, "invalid_request", 900_144),
        (without("client_id"), 400, "invalid_request", 900_144),
        (without("scope"), 400, "invalid_request", 900_144),
        (
            without("client_assertion"),
            401,
            "invalid_client",
            7_000_218,
        ),
        (
            without("client_assertion_type"),
            400,
            "invalid_request",
            900_144,
        ),
        (
            replaced(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            401,
            "invalid_client",
            7_000_218,
        ),
        (
            replaced("grant_type", "password"),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            replaced("scope", KEY_VAULT_RESOURCE),
            400,
            "invalid_scope",
            1_002_012,
        ),
        (
            replaced("scope", "https://vault.azure.net/.default openid"),
            400,
            "invalid_scope",
            70011,
        ),
        (
            replaced("scope", "https://storage.azure.com/.default"),
            400,
            "invalid_resource",
            500_011,
        ),
        (
            format!("{}&client_secret=s3cret", form(&base)),
            401,
            "invalid_client",
            7_000_215,
        ),
    ];
    for (body, status, error, code) in cases {
        let (got_status, got) = post_form(&w, TENANT, body.clone()).await;
        assert_entra_error(got_status, &got, status, error, code);
    }
    // A JSON body is not read: grant_type is missing.
    let response = w
        .http
        .post(w.entra.token_endpoint(TENANT))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_entra_error(
        status,
        &response.json().await.unwrap(),
        400,
        "invalid_request",
        900_144,
    );
    // GET is not accepted.
    let response = w
        .http
        .get(w.entra.token_endpoint(TENANT))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_entra_error(
        status,
        &response.json().await.unwrap(),
        400,
        "invalid_request",
        900_561,
    );
    // The client-request-id becomes the correlation id.
    let correlation = "0f0e0d0c-0b0a-4909-8807-060504030201";
    let response = w
        .http
        .post(w.entra.token_endpoint(TENANT))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("client-request-id", correlation)
        .body(without("scope"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["correlation_id"], correlation);
}

#[tokio::test]
async fn entra_fails_on_demand_and_counts_calls() {
    let w = world().await;
    w.entra.fail_next(2, EntraError::service_unavailable());
    for _ in 0..2 {
        let (status, body) = exchange(&w, TENANT, WRITER, SCOPE, &assertion(&w, SUBJECT)).await;
        assert_entra_error(status, &body, 503, "temporarily_unavailable", 90033);
    }
    token(&w, TENANT, WRITER).await;
    assert_eq!(w.entra.calls(), 3);
    assert_eq!(w.entra.failures(WRITER), 2);
    assert_eq!(w.entra.successes(WRITER), 1);
    let outcomes: Vec<_> = w.entra.exchanges().into_iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Err(90033), Err(90033), Ok(())]);
    w.entra
        .fail_next(1, EntraError::throttled(Duration::from_secs(3)));
    let response = w
        .http
        .post(w.entra.token_endpoint(TENANT))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
}

#[tokio::test]
async fn entra_serves_discovery_and_jwks() {
    let w = world().await;
    let discovery: Value = w
        .http
        .get(w.entra.discovery_url(TENANT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], w.entra.issuer(TENANT));
    assert_eq!(
        discovery["issuer"],
        format!("{}/{TENANT}/v2.0", w.entra.authority_host())
    );
    assert_eq!(discovery["token_endpoint"], w.entra.token_endpoint(TENANT));
    assert_eq!(discovery["jwks_uri"], w.entra.jwks_uri(TENANT));
    let jwks: JwkSet = w
        .http
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks.find(w.entra.signing_key().kid()).is_some());
    // The v1.0 issuer has its own discovery document.
    let v1: Value = w
        .http
        .get(format!(
            "{}.well-known/openid-configuration",
            w.entra.v1_issuer(TENANT)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v1["issuer"], w.entra.v1_issuer(TENANT));
}

// ---------------------------------------------------------------------------------------
// Key Vault.

#[tokio::test]
async fn key_vault_requires_a_bearer_token() {
    let w = world().await;
    let path = format!("/secrets/db?{API}");
    let challenge = format!(
        "Bearer authorization=\"https://login.windows.net/{TENANT}\", resource=\"https://vault.azure.net\""
    );
    let (status, headers, body) = kv(&w, Method::GET, &path, None, None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
    assert_eq!(
        body["error"]["message"],
        "AKV10000: Request is missing a Bearer or PoP token."
    );
    assert_eq!(headers["www-authenticate"], challenge.as_str());
    // Another scheme is no bearer token either.
    let response = w
        .http
        .get(format!("{}{path}", w.vault.url()))
        .basic_auth("user", Some("pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A token Entra never issued.
    let forged = w
        .entra
        .sign(&json!({"aud": KEY_VAULT_RESOURCE, "tid": TENANT, "appid": WRITER}));
    let (status, headers, body) = kv(&w, Method::GET, &path, Some(&forged), None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
    assert_eq!(headers["www-authenticate"], challenge.as_str());
    assert_eq!(w.vault.calls(Operation::GetSecret), 3);
}

#[tokio::test]
async fn key_vault_refuses_expired_tokens() {
    let w = world().await;
    let path = format!("/secrets/db?{API}");
    let expired = w
        .entra
        .mint_access_token(TENANT, WRITER, KEY_VAULT_RESOURCE, unix_now() - 1);
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&expired), None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
    assert_eq!(
        body["error"]["message"],
        "[TokenExpired] Error validating token: 'S2S12086'."
    );
    let fresh = token(&w, TENANT, WRITER).await;
    w.vault.set_secret("db", "v", &[]);
    let (status, _, _) = kv(&w, Method::GET, &path, Some(&fresh), None).await;
    assert_eq!(status, 200);
    w.entra.expire_tokens();
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&fresh), None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
}

#[tokio::test]
async fn key_vault_refuses_tokens_for_another_resource_or_tenant() {
    let w = world().await;
    let path = format!("/secrets/db?{API}");
    w.entra.add_resource("https://management.azure.com");
    let (status, body) = exchange(
        &w,
        TENANT,
        WRITER,
        "https://management.azure.com/.default",
        &assertion(&w, SUBJECT),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let arm = body["access_token"].as_str().unwrap();
    let (status, _, body) = kv(&w, Method::GET, &path, Some(arm), None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
    assert_eq!(
        body["error"]["message"],
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com."
    );
    let foreign = token(&w, OTHER_TENANT, FOREIGNER).await;
    w.vault.grant(FOREIGNER, Role::SecretsOfficer);
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&foreign), None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("AKV10032: Invalid issuer.")
    );
}

#[tokio::test]
async fn key_vault_enforces_rbac_grants() {
    let w = world().await;
    w.vault.set_secret("db", "v", &[]);
    let stranger = token(&w, TENANT, STRANGER).await;
    let path = format!("/secrets/db?{API}");
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    assert_kv_error(status, &body, 403, "Forbidden", Some("ForbiddenByRbac"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Caller is not authorized to perform action on resource."));
    assert!(message.contains(&format!("Caller: appid={STRANGER};")));
    assert!(message.contains("Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"));
    // Secrets User reads but does not write.
    w.vault.grant(STRANGER, Role::SecretsUser);
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = kv(
        &w,
        Method::PUT,
        &path,
        Some(&stranger),
        Some(json!({"value": "x"})),
    )
    .await;
    assert_kv_error(status, &body, 403, "Forbidden", Some("ForbiddenByRbac"));
    // Reader sees metadata, not values.
    w.vault.revoke(STRANGER);
    w.vault.grant(STRANGER, Role::Reader);
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    assert_kv_error(status, &body, 403, "Forbidden", Some("ForbiddenByRbac"));
    let versions = format!("/secrets/db/versions?{API}");
    let (status, _, body) = kv(&w, Method::GET, &versions, Some(&stranger), None).await;
    assert_eq!(status, 200, "{body}");
    // A grant on one secret covers only that secret.
    w.vault.revoke(STRANGER);
    w.vault
        .grant_on_secret(STRANGER, "app", Role::Custom(vec![DataAction::SetSecret]));
    let (status, _, body) = kv(
        &w,
        Method::PUT,
        &format!("/secrets/app?{API}"),
        Some(&stranger),
        Some(json!({"value": "x"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = kv(
        &w,
        Method::PUT,
        &path,
        Some(&stranger),
        Some(json!({"value": "x"})),
    )
    .await;
    assert_kv_error(status, &body, 403, "Forbidden", Some("ForbiddenByRbac"));
}

#[tokio::test]
async fn key_vault_validates_api_version_names_values_and_tags() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    let put = |path: String, body: Value| {
        let w = &w;
        let writer = writer.clone();
        async move { kv(w, Method::PUT, &path, Some(&writer), Some(body)).await }
    };
    let value = json!({"value": "v"});
    // api-version is required and must be a published one.
    for query in [
        "",
        "?api-version=",
        "?api-version=7.9",
        "?api-version=2016-10-01",
    ] {
        let (status, _, body) = put(format!("/secrets/db{query}"), value.clone()).await;
        assert_kv_error(status, &body, 400, "BadParameter", None);
    }
    for version in ["7.5", "2025-07-01"] {
        let (status, _, body) =
            put(format!("/secrets/db?api-version={version}"), value.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    // Names: ^[0-9a-zA-Z-]{1,127}$.
    for name in [
        "under_score",
        "dot.ted",
        "sp%20ace",
        "%C3%A9t%C3%A9",
        &"a".repeat(128),
    ] {
        let (status, _, body) = put(format!("/secrets/{name}?{API}"), value.clone()).await;
        assert_kv_error(status, &body, 400, "BadParameter", None);
    }
    for name in ["a".repeat(127), "0-starts-with-a-digit".to_owned()] {
        let (status, _, body) = put(format!("/secrets/{name}?{API}"), value.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    // Values: at most 25 KB.
    let (status, _, _) = put(
        format!("/secrets/big?{API}"),
        json!({"value": "x".repeat(MAX_VALUE_BYTES)}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = put(
        format!("/secrets/big?{API}"),
        json!({"value": "x".repeat(MAX_VALUE_BYTES + 1)}),
    )
    .await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
    // Multi-byte characters count as their UTF-8 bytes.
    let (status, _, body) = put(
        format!("/secrets/big?{API}"),
        json!({"value": "é".repeat(MAX_VALUE_BYTES / 2 + 1)}),
    )
    .await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
    // Tags: at most 15, names up to 512 and values up to 256 characters.
    let tags = |count: usize| -> Value {
        (0..count)
            .map(|i| (format!("t{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let (status, _, body) = put(
        format!("/secrets/db?{API}"),
        json!({"value": "v", "tags": tags(15)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = put(
        format!("/secrets/db?{API}"),
        json!({"value": "v", "tags": tags(16)}),
    )
    .await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
    let long_name = json!({"value": "v", "tags": {"k".repeat(513): "v"}});
    let (status, _, body) = put(format!("/secrets/db?{API}"), long_name).await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
    let long_value = json!({"value": "v", "tags": {"k": "v".repeat(257)}});
    let (status, _, body) = put(format!("/secrets/db?{API}"), long_value).await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
    let edge = json!({"value": "v", "tags": {"k".repeat(512): "v".repeat(256)}});
    let (status, _, body) = put(format!("/secrets/db?{API}"), edge).await;
    assert_eq!(status, 200, "{body}");
    // Bodies: value required and a string; contentType up to 255 characters.
    for bad in [
        json!({}),
        json!({"value": 1}),
        json!({"value": "v", "contentType": "c".repeat(256)}),
        json!({"value": "v", "tags": {"k": 1}}),
        json!({"value": "v", "attributes": {"exp": "tomorrow"}}),
        json!(["v"]),
    ] {
        let (status, _, body) = put(format!("/secrets/db?{API}"), bad).await;
        assert_kv_error(status, &body, 400, "BadParameter", None);
    }
    // A body that is not JSON.
    let response = w
        .http
        .put(format!("{}/secrets/db?{API}", w.vault.url()))
        .bearer_auth(&writer)
        .header("Content-Type", "text/plain")
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn key_vault_keeps_versions_and_answers_bundles() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    let auth = Some(writer.as_str());
    let (status, _, first) = kv(
        &w,
        Method::PUT,
        &format!("/secrets/Prod-Db?{API}"),
        auth,
        Some(json!({
            "value": "one", "contentType": "text/plain", "tags": {"source": "aws"},
            "attributes": {"enabled": true, "exp": 1_900_000_000}
        })),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["value"], "one");
    assert_eq!(first["contentType"], "text/plain");
    assert_eq!(first["tags"], json!({"source": "aws"}));
    let id = first["id"].as_str().unwrap();
    let prefix = format!("https://{VAULT}.vault.azure.net/secrets/Prod-Db/");
    assert!(id.starts_with(&prefix), "{id}");
    let v1 = id.strip_prefix(&prefix).unwrap().to_owned();
    assert!(is_version_id(&v1), "{v1}");
    let attributes = &first["attributes"];
    assert_eq!(attributes["enabled"], true);
    assert_eq!(attributes["exp"], 1_900_000_000);
    assert_eq!(attributes["recoveryLevel"], "Recoverable+Purgeable");
    assert_eq!(attributes["recoverableDays"], 90);
    assert!(attributes["created"].as_u64().unwrap() >= unix_now() - 5);
    assert_eq!(attributes["created"], attributes["updated"]);
    // Each PUT is a new version; tags belong to the version.
    let (_, _, second) = kv(
        &w,
        Method::PUT,
        &format!("/secrets/prod-db?{API}"),
        auth,
        Some(json!({"value": "two"})),
    )
    .await;
    let v2 = second["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(v1, v2);
    assert!(second.get("tags").is_none(), "{second}");
    // The name keeps its first spelling; lookups ignore case.
    assert!(second["id"].as_str().unwrap().contains("/secrets/Prod-Db/"));
    for path in [
        format!("/secrets/prod-db?{API}"),
        format!("/secrets/PROD-DB/?{API}"),
    ] {
        let (status, _, latest) = kv(&w, Method::GET, &path, auth, None).await;
        assert_eq!(status, 200, "{latest}");
        assert_eq!(latest["value"], "two");
    }
    let (_, _, old) = kv(
        &w,
        Method::GET,
        &format!("/secrets/prod-db/{v1}?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(old["value"], "one");
    assert_eq!(old["tags"], json!({"source": "aws"}));
    // Versions, one per page, following nextLink.
    let mut next = Some(format!(
        "{}/secrets/prod-db/versions?{API}&maxresults=1",
        w.vault.url()
    ));
    let mut listed = Vec::new();
    while let Some(url) = next {
        let page: Value = w
            .http
            .get(&url)
            .bearer_auth(&writer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["value"].as_array().unwrap() {
            assert!(item.get("value").is_none(), "{item}");
            listed.push(
                item["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(listed, [v1.clone(), v2.clone()]);
    let (status, _, body) = kv(
        &w,
        Method::GET,
        &format!("/secrets/prod-db/versions?{API}&maxresults=26"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
    // PATCH changes tags and attributes of one version, never the value.
    let (status, _, patched) = kv(
        &w,
        Method::PATCH,
        &format!("/secrets/prod-db/{v1}?{API}"),
        auth,
        Some(json!({"value": "hijack", "tags": {"fedsync": "managed"}, "attributes": {"enabled": false}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert!(patched.get("value").is_none());
    assert_eq!(patched["tags"], json!({"fedsync": "managed"}));
    let stored = w.vault.secret("prod-db").unwrap();
    assert_eq!(stored.versions[0].value, "one");
    assert_eq!(
        stored.versions[0].tags.as_ref().unwrap()["fedsync"],
        "managed"
    );
    assert!(!stored.versions[0].enabled);
    // A disabled version is not readable.
    let (status, _, body) = kv(
        &w,
        Method::GET,
        &format!("/secrets/prod-db/{v1}?{API}"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 403, "Forbidden", Some("SecretDisabled"));
    // Unknown names and versions.
    let (status, _, body) = kv(&w, Method::GET, &format!("/secrets/nope?{API}"), auth, None).await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("A secret with (name/id) nope was not found in this key vault.")
    );
    let missing = "0".repeat(32);
    let (status, _, body) = kv(
        &w,
        Method::GET,
        &format!("/secrets/prod-db/{missing}?{API}"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
    let (status, _, body) = kv(
        &w,
        Method::GET,
        &format!("/secrets/nope/versions?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], json!([]));
    // Unsupported operations are reported as such.
    let (status, _, body) = kv(
        &w,
        Method::POST,
        &format!("/secrets/prod-db?{API}"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 501, "NotImplemented", None);
    assert_eq!(w.vault.calls(Operation::SetSecret), 2);
    assert_eq!(w.vault.calls(Operation::UpdateSecret), 1);
    assert!(
        w.vault
            .requests()
            .iter()
            .all(|r| r.api_version.as_deref() == Some("7.5")
                && r.client_id.as_deref() == Some(WRITER))
    );
}

#[tokio::test]
async fn key_vault_soft_deleted_name_conflicts_then_recovers_after_the_delay() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    let auth = Some(writer.as_str());
    let version = w.vault.create_soft_deleted("db", "old");
    let path = format!("/secrets/db?{API}");
    let (status, _, body) = kv(&w, Method::PUT, &path, auth, Some(json!({"value": "new"}))).await;
    assert_kv_error(
        status,
        &body,
        409,
        "Conflict",
        Some("ObjectIsDeletedButRecoverable"),
    );
    assert_eq!(
        body["error"]["message"],
        "Secret db is currently in a deleted but recoverable state, and its name cannot be \
         reused; in this state, the secret can only be recovered or purged."
    );
    let (status, _, body) = kv(&w, Method::GET, &path, auth, None).await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
    let (status, _, deleted) = kv(
        &w,
        Method::GET,
        &format!("/deletedsecrets/db?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted["recoveryId"],
        format!("https://{VAULT}.vault.azure.net/deletedsecrets/db")
    );
    assert_eq!(deleted["id"], w.vault.secret_id("db", &version));
    assert!(deleted.get("value").is_none());
    let deleted_date = deleted["deletedDate"].as_u64().unwrap();
    assert_eq!(deleted["scheduledPurgeDate"], deleted_date + 90 * 86_400);
    // Recovery completes only after the delay.
    w.vault.set_recovery_delay(Duration::from_millis(800));
    let (status, _, body) = kv(
        &w,
        Method::POST,
        &format!("/deletedsecrets/db/recover?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], w.vault.secret_id("db", &version));
    assert_eq!(w.vault.secret("db").unwrap().state, SecretState::Recovering);
    let (status, _, body) = kv(&w, Method::GET, &path, auth, None).await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
    let (status, _, body) = kv(&w, Method::PUT, &path, auth, Some(json!({"value": "new"}))).await;
    assert_kv_error(
        status,
        &body,
        409,
        "Conflict",
        Some("ObjectIsBeingRecovered"),
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (status, _, body) = kv(&w, Method::GET, &path, auth, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "old");
    assert_eq!(w.vault.secret("db").unwrap().state, SecretState::Active);
    let (status, _, body) = kv(&w, Method::PUT, &path, auth, Some(json!({"value": "new"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.vault.secret("db").unwrap().versions.len(), 2);
}

#[tokio::test]
async fn key_vault_deletes_and_purges() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    let auth = Some(writer.as_str());
    w.vault.set_secret("db", "v", &[("source", "aws")]);
    let (status, _, deleted) = kv(
        &w,
        Method::DELETE,
        &format!("/secrets/db?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert!(deleted.get("value").is_none());
    assert_eq!(deleted["tags"], json!({"source": "aws"}));
    assert!(deleted["recoveryId"].is_string());
    assert_eq!(w.vault.secret("db").unwrap().state, SecretState::Deleted);
    let (status, _, body) = kv(
        &w,
        Method::DELETE,
        &format!("/secrets/db?{API}"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
    let (status, _, body) = kv(
        &w,
        Method::DELETE,
        &format!("/deletedsecrets/db?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert!(w.vault.secret("db").is_none());
    let (status, _, body) = kv(
        &w,
        Method::DELETE,
        &format!("/deletedsecrets/db?{API}"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
    let (status, _, body) = kv(
        &w,
        Method::PUT,
        &format!("/secrets/db?{API}"),
        auth,
        Some(json!({"value": "fresh"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.vault.secret("db").unwrap().versions.len(), 1);
    // Recovering a name that is not deleted.
    let (status, _, body) = kv(
        &w,
        Method::POST,
        &format!("/deletedsecrets/db/recover?{API}"),
        auth,
        None,
    )
    .await;
    assert_kv_error(status, &body, 404, "SecretNotFound", None);
}

#[tokio::test]
async fn key_vault_throttles_on_demand() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    w.vault
        .fail_next(1, KvError::throttled(Duration::from_secs(7)));
    let path = format!("/secrets/db?{API}");
    let body = Some(json!({"value": "v"}));
    let (status, headers, error) = kv(&w, Method::PUT, &path, Some(&writer), body.clone()).await;
    assert_kv_error(status, &error, 429, "Throttled", None);
    assert_eq!(headers["retry-after"], "7");
    let (status, _, _) = kv(&w, Method::PUT, &path, Some(&writer), body).await;
    assert_eq!(status, 200);
    assert_eq!(w.vault.calls(Operation::SetSecret), 2);
    let statuses: Vec<u16> = w.vault.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
    assert_eq!(w.vault.secret("db").unwrap().versions.len(), 1);
}

/// Follows `nextLink` from `first` (a path and query on the vault) to the last page;
/// answers the pages.
async fn all_pages(w: &World, bearer: &str, first: &str) -> Vec<Value> {
    let mut next = Some(format!("{}{first}", w.vault.url()));
    let mut pages = Vec::new();
    while let Some(url) = next {
        let response = w.http.get(&url).bearer_auth(bearer).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.unwrap();
        let mut fields: Vec<&str> = page
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, ["nextLink", "value"], "{page}");
        next = page["nextLink"].as_str().map(str::to_owned);
        pages.push(page);
    }
    pages
}

/// The secret names of a `GET /secrets` page, from the item ids.
fn listed_names(page: &Value) -> Vec<String> {
    let prefix = format!("https://{VAULT}.vault.azure.net/secrets/");
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let id = item["id"].as_str().unwrap();
            id.strip_prefix(&prefix).unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn key_vault_lists_secrets_in_pages() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    let auth = Some(writer.as_str());

    // An empty vault: no items, no next page.
    let (status, _, body) = kv(&w, Method::GET, &format!("/secrets?{API}"), auth, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"value": [], "nextLink": null}));

    // 30 secrets with mixed-case names, created out of name order; two soft-deleted, one
    // being recovered.
    let mut active: Vec<String> = (0..30)
        .map(|i| {
            let n = (i * 11) % 30;
            if n % 2 == 0 {
                format!("App-{n:02}")
            } else {
                format!("app-{n:02}")
            }
        })
        .collect();
    for name in &active {
        w.vault.set_secret(name, "first", &[]);
    }
    let (status, _, _) = kv(
        &w,
        Method::PUT,
        &format!("/secrets/app-01?{API}"),
        auth,
        Some(json!({"value": "second", "contentType": "text/plain", "tags": {"source": "aws"}})),
    )
    .await;
    assert_eq!(status, 200);
    w.vault.create_soft_deleted("App-15x", "gone");
    w.vault.create_soft_deleted("a-deleted", "gone");
    w.vault.create_soft_deleted("app-recovering", "back soon");
    w.vault.set_recovery_delay(Duration::from_secs(60));
    let (status, _, _) = kv(
        &w,
        Method::POST,
        &format!("/deletedsecrets/app-recovering/recover?{API}"),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 200);
    active.sort_by_key(|name| name.to_lowercase());

    // Pages of 7 cover every active secret exactly once, in name order ignoring case.
    let pages = all_pages(&w, &writer, &format!("/secrets?{API}&maxresults=7")).await;
    assert_eq!(
        pages
            .iter()
            .map(|p| p["value"].as_array().unwrap().len())
            .collect::<Vec<_>>(),
        [7, 7, 7, 7, 2]
    );
    let listed: Vec<String> = pages.iter().flat_map(listed_names).collect();
    assert_eq!(listed, active);
    for page in &pages[..4] {
        let next = page["nextLink"].as_str().unwrap();
        let prefix = format!("{}/secrets?{API}&$skiptoken=", w.vault.url());
        assert!(next.starts_with(&prefix), "{next}");
        assert!(next.ends_with("&maxresults=7"), "{next}");
    }
    // Items carry the latest version's metadata, never a value or a version.
    let items: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    let app01 = items
        .iter()
        .find(|i| i["id"].as_str().unwrap().ends_with("/app-01"))
        .unwrap();
    let latest = w.vault.latest("app-01").unwrap();
    assert_eq!(app01["contentType"], "text/plain");
    assert_eq!(app01["tags"], json!({"source": "aws"}));
    assert_eq!(app01["attributes"]["enabled"], true);
    assert_eq!(app01["attributes"]["created"], latest.created);
    assert_eq!(
        app01["attributes"]["recoveryLevel"],
        "Recoverable+Purgeable"
    );
    for item in &items {
        let mut fields: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let allowed = ["attributes", "contentType", "id", "tags"];
        assert!(fields.iter().all(|f| allowed.contains(f)), "{item}");
        assert!(
            fields.contains(&"attributes") && fields.contains(&"id"),
            "{item}"
        );
    }

    // Without maxresults a page holds 25.
    let pages = all_pages(&w, &writer, &format!("/secrets?{API}")).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(listed_names(&pages[0]), active[..25]);
    assert!(
        pages[0]["nextLink"]
            .as_str()
            .unwrap()
            .ends_with("&maxresults=25")
    );
    assert_eq!(listed_names(&pages[1]), active[25..]);

    // A page resumes after the last secret served: a secret created meanwhile before that
    // point and one deleted before it was served make no other secret appear twice or go
    // missing.
    let (_, _, first) = kv(
        &w,
        Method::GET,
        &format!("/secrets?{API}&maxresults=10"),
        auth,
        None,
    )
    .await;
    assert_eq!(listed_names(&first), active[..10]);
    let next = first["nextLink"].as_str().unwrap().to_owned();
    w.vault.set_secret("aaa-early", "new", &[]);
    w.vault.soft_delete(&active[12]);
    let rest: Vec<String> = all_pages(&w, &writer, next.strip_prefix(w.vault.url()).unwrap())
        .await
        .iter()
        .flat_map(listed_names)
        .collect();
    let mut expected = active[10..].to_vec();
    expected.remove(2);
    assert_eq!(rest, expected);

    // maxresults outside 1..=25 and tokens this list did not issue are refused.
    for max in ["0", "26", "-1", "ten", ""] {
        let path = format!("/secrets?{API}&maxresults={max}");
        let (status, _, body) = kv(&w, Method::GET, &path, auth, None).await;
        assert_kv_error(status, &body, 400, "BadParameter", None);
    }
    let token = next
        .split("$skiptoken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let (_, _, versions) = kv(
        &w,
        Method::GET,
        &format!("/secrets/app-01/versions?{API}&maxresults=1"),
        auth,
        None,
    )
    .await;
    let versions_link = versions["nextLink"].as_str().unwrap();
    let versions_token = versions_link
        .split("$skiptoken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    for bad in ["10", "garbled", &token[..token.len() - 1], versions_token] {
        let path = format!("/secrets?{API}&$skiptoken={bad}");
        let (status, _, body) = kv(&w, Method::GET, &path, auth, None).await;
        assert_kv_error(status, &body, 400, "BadParameter", None);
    }
    let (status, _, body) = kv(&w, Method::GET, "/secrets", auth, None).await;
    assert_kv_error(status, &body, 400, "BadParameter", None);
}

#[tokio::test]
async fn key_vault_listing_needs_read_metadata_on_the_vault() {
    let w = world().await;
    w.vault.set_secret("db", "v", &[]);
    let stranger = token(&w, TENANT, STRANGER).await;
    let path = format!("/secrets?{API}");
    let resource = format!(
        "Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/fedsync-tests/providers/microsoft.keyvault/vaults/{VAULT}/secrets'"
    );
    let refused = |status: u16, body: &Value| {
        assert_kv_error(status, body, 403, "Forbidden", Some("ForbiddenByRbac"));
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'"),
            "{message}"
        );
        assert!(message.contains(&resource), "{message}");
    };
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    refused(status, &body);
    // A grant on one secret does not reach the vault-wide list, whatever its role.
    w.vault
        .grant_on_secret(STRANGER, "db", Role::SecretsOfficer);
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    refused(status, &body);
    // Reading values is not reading metadata.
    w.vault.revoke(STRANGER);
    w.vault
        .grant(STRANGER, Role::Custom(vec![DataAction::GetSecret]));
    let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    refused(status, &body);
    // Reader, Secrets User and Secrets Officer on the vault all list.
    for role in [Role::Reader, Role::SecretsUser, Role::SecretsOfficer] {
        w.vault.revoke(STRANGER);
        w.vault.grant(STRANGER, role.clone());
        let (status, _, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
        assert_eq!(status, 200, "{role:?}: {body}");
        assert_eq!(listed_names(&body), ["db"]);
    }
    // Unauthenticated and throttled calls are counted too.
    let (status, _, body) = kv(&w, Method::GET, &path, None, None).await;
    assert_kv_error(status, &body, 401, "Unauthorized", None);
    w.vault
        .fail_next(1, KvError::throttled(Duration::from_secs(2)));
    let (status, headers, body) = kv(&w, Method::GET, &path, Some(&stranger), None).await;
    assert_kv_error(status, &body, 429, "Throttled", None);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(w.vault.calls(Operation::GetSecrets), 8);
    let requests = w.vault.requests();
    let statuses: Vec<u16> = requests
        .iter()
        .filter(|r| r.operation == Operation::GetSecrets)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [403, 403, 403, 200, 200, 200, 401, 429]);
    assert!(
        requests
            .iter()
            .filter(|r| r.operation == Operation::GetSecrets)
            .all(|r| r.secret.is_empty())
    );
}

// ---------------------------------------------------------------------------------------
// Event Grid.

#[tokio::test]
async fn event_grid_events_have_both_schemas_shapes() {
    let w = world().await;
    let writer = token(&w, TENANT, WRITER).await;
    let (status, _, bundle) = kv(
        &w,
        Method::PUT,
        &format!("/secrets/db?{API}"),
        Some(&writer),
        Some(json!({"value": "v", "attributes": {"exp": 1_900_000_000}})),
    )
    .await;
    assert_eq!(status, 200);
    let created = w.vault.new_versions();
    assert_eq!(created.len(), 1);
    let created = &created[0];
    assert_eq!(created.id, bundle["id"].as_str().unwrap());
    let grid = EventGrid::new(&w.entra, TENANT, "fedsync-sub");
    let topic = format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/fedsync-tests/providers/Microsoft.KeyVault/vaults/{VAULT}"
    );
    let data = json!({
        "Id": created.id, "VaultName": VAULT, "ObjectType": "Secret", "ObjectName": "db",
        "Version": created.version, "NBF": null, "EXP": 1_900_000_000,
    });

    let event = grid.secret_new_version_created(created, Schema::EventGrid);
    assert_eq!(event["topic"], topic);
    assert_eq!(event["subject"], "db");
    assert_eq!(event["eventType"], SECRET_NEW_VERSION_CREATED);
    assert_eq!(event["dataVersion"], "1");
    assert_eq!(event["metadataVersion"], "1");
    assert_eq!(event["data"], data);
    let time = event["eventTime"].as_str().unwrap();
    assert_eq!(time.len(), "2019-07-25T01:08:33.1036736Z".len(), "{time}");
    assert!(
        unix_from_iso(time).abs_diff(unix_now() as i64) <= 5,
        "{time}"
    );
    let delivery = grid.notification(std::slice::from_ref(&event), Schema::EventGrid);
    assert_eq!(delivery.method, "POST");
    assert_eq!(delivery.header("aeg-event-type"), Some("Notification"));
    assert_eq!(
        delivery.header("aeg-subscription-name"),
        Some("FEDSYNC-SUB")
    );
    assert_eq!(
        delivery.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(delivery.json(), json!([event]));

    let cloud = grid.secret_new_version_created(created, Schema::CloudEvents);
    assert_eq!(cloud["specversion"], "1.0");
    assert_eq!(cloud["source"], topic);
    assert_eq!(cloud["type"], SECRET_NEW_VERSION_CREATED);
    assert_eq!(cloud["subject"], "db");
    assert_eq!(cloud["data"], data);
    assert!(cloud["time"].is_string() && cloud["id"].is_string());
    let single = grid.notification(std::slice::from_ref(&cloud), Schema::CloudEvents);
    assert_eq!(
        single.header("content-type"),
        Some("application/cloudevents+json; charset=utf-8")
    );
    assert_eq!(single.json(), cloud);
    let batch = grid.notification(&[cloud.clone(), cloud.clone()], Schema::CloudEvents);
    assert_eq!(
        batch.header("content-type"),
        Some("application/cloudevents-batch+json; charset=utf-8")
    );

    let (validation, code) = grid.subscription_validation(&topic);
    assert_eq!(
        validation.header("aeg-event-type"),
        Some("SubscriptionValidation")
    );
    let events = validation.json();
    assert_eq!(events[0]["eventType"], SUBSCRIPTION_VALIDATION_EVENT);
    assert_eq!(events[0]["data"]["validationCode"], code.as_str());
    assert!(events[0]["data"]["validationUrl"].is_string());
    assert!(validation_accepted(
        200,
        &json!({"validationResponse": code}),
        &code
    ));
    assert!(!validation_accepted(
        200,
        &json!({"validationResponse": "other"}),
        &code
    ));

    let handshake = grid.cloudevents_validation();
    assert_eq!(handshake.method, "OPTIONS");
    assert_eq!(
        handshake.header("WebHook-Request-Origin"),
        Some(EVENT_GRID_ORIGIN)
    );
    assert!(handshake.body.is_none());
    assert!(cloudevents_validation_accepted(200, Some("*")));
    assert!(!cloudevents_validation_accepted(200, None));
}

/// Verifies `token` as a webhook would: discovery from `{iss}/.well-known/…`, then JWKS.
async fn verify_through_discovery(http: &reqwest::Client, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap();
    let jwks = discover_jwks(http, claims["iss"].as_str().unwrap()).await;
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn event_grid_bearer_tokens_verify_through_entra_discovery() {
    let w = world().await;
    w.entra.add_application(
        TENANT,
        Application::new(WEBHOOK_APP).identifier_uri(WEBHOOK_URI),
    );
    let grid = EventGrid::new(&w.entra, TENANT, "fedsync-sub");
    // A v2.0 application: aud is its client id whatever it was requested as.
    let token = grid.bearer_token(WEBHOOK_URI);
    let claims = verify_through_discovery(&w.http, &token).await;
    assert_eq!(claims["iss"], w.entra.issuer(TENANT));
    assert_eq!(claims["aud"], WEBHOOK_APP);
    assert_eq!(claims["azp"], EVENT_GRID_APP_ID);
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["roles"], json!([SECURE_WEBHOOK_ROLE]));
    assert!(claims["exp"].as_u64().unwrap() > unix_now());
    let delivery = grid
        .notification(&[json!({"id": "1"})], Schema::EventGrid)
        .with_bearer(&token);
    assert_eq!(
        delivery.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // A v1.0 application: aud as requested, the v1.0 issuer.
    let v1_app = "66666666-6666-4666-8666-666666666666";
    w.entra.add_application(
        TENANT,
        Application::new(v1_app)
            .identifier_uri("api://fedsync-v1")
            .token_version(TokenVersion::V1),
    );
    let claims = verify_through_discovery(&w.http, &grid.bearer_token("api://fedsync-v1")).await;
    assert_eq!(claims["iss"], w.entra.v1_issuer(TENANT));
    assert_eq!(claims["aud"], "api://fedsync-v1");
    assert_eq!(claims["appid"], EVENT_GRID_APP_ID);
    assert_eq!(claims["ver"], "1.0");
    // Claims can be edited to forge bad tokens, still signed by Entra's key.
    let expired = grid.bearer_token_with(WEBHOOK_URI, |claims| {
        claims["exp"] = json!(unix_now() - 10);
    });
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&expired).unwrap();
    assert!(claims["exp"].as_u64().unwrap() < unix_now());
}
