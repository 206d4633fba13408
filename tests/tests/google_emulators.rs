//! Strictness tests of the Google emulators, over real HTTP: the refusals a real Google
//! API makes must be made here too, or the end-to-end tests built on them prove nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fedsync_tests::google::issuer::GOOGLE_ACCOUNTS;
use fedsync_tests::google::{
    AttributeCondition, CLOUD_PLATFORM, GoogleCloud, GoogleError, INSTANCE_SERVICE_ACCOUNT,
    MetadataEndpoint, OauthError, Principal, SecretManagerMethod, SecretManagerRole,
    ServiceAccountRole, TokenSource, VersionState, WorkloadIdentityProvider,
    service_account_unique_id,
};
use fedsync_tests::issuer::{Issuer, KeyType, SigningKey, unix_now};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

const PROJECT: &str = "fedsync-proj";
const NUMBER: &str = "123456789012";
const POOL: &str = "ci-pool";
const PROVIDER: &str = "github";
const SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";
const WRITER_SA: &str = "writer@fedsync-proj.iam.gserviceaccount.com";
const HOUR: Duration = Duration::from_secs(3600);
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Every Google emulator, an external OIDC issuer (a CI system) trusted by one provider
/// whose condition requires `repository == 'acme/app'`, and one project.
struct World {
    cloud: GoogleCloud,
    ci: Issuer,
    audience: String,
    http: reqwest::Client,
}

async fn world() -> World {
    let cloud = GoogleCloud::start().await;
    let ci = Issuer::start().await;
    let audience = cloud.sts.add_provider(
        WorkloadIdentityProvider::new(NUMBER, POOL, PROVIDER, ci.url())
            .condition("assertion.repository == 'acme/app'"),
    );
    cloud.secret_manager.add_project(PROJECT, NUMBER);
    World {
        cloud,
        ci,
        audience,
        http: reqwest::Client::new(),
    }
}

fn federated_member() -> String {
    Principal::federated(NUMBER, POOL, SUBJECT).member()
}

impl World {
    /// CI claims the provider accepts.
    fn ci_claims(&self) -> Value {
        let mut claims = self
            .ci
            .claims(SUBJECT, &format!("https:{}", self.audience), HOUR);
        claims["repository"] = json!("acme/app");
        claims
    }

    fn ci_token(&self) -> String {
        self.ci.mint(&self.ci_claims())
    }

    fn form(&self, subject_token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", TOKEN_EXCHANGE.to_owned()),
            ("audience", self.audience.clone()),
            ("scope", CLOUD_PLATFORM.to_owned()),
            ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
            ("subject_token", subject_token.to_owned()),
            ("subject_token_type", JWT_TYPE.to_owned()),
        ]
    }

    /// `POST /v1/token`, form-encoded.
    async fn exchange_form(&self, params: &[(&str, String)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let request = self
            .http
            .post(self.cloud.sts.token_url())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        send(request).await
    }

    /// `POST /v1/token` with the JSON encoding.
    async fn exchange_json(&self, body: &Value) -> (u16, Value) {
        let request = self
            .http
            .post(self.cloud.sts.token_url())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        send(request).await
    }

    /// The OAuth error code and description of a refused exchange of `subject_token`.
    async fn refusal(&self, subject_token: &str) -> (String, String) {
        let (status, body) = self.exchange_form(&self.form(subject_token)).await;
        assert_eq!(status, 400, "{body}");
        (
            body["error"].as_str().unwrap().to_owned(),
            body["error_description"].as_str().unwrap().to_owned(),
        )
    }

    async fn federated_token(&self) -> String {
        let (status, body) = self.exchange_form(&self.form(&self.ci_token())).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A call to Secret Manager: `path` after `/v1/`.
    async fn sm(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.cloud.secret_manager.endpoint());
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        send(request).await
    }

    async fn generate_access_token(
        &self,
        account: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{account}:generateAccessToken",
            self.cloud.iam.endpoint()
        );
        let mut request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        send(request).await
    }

    async fn metadata(&self, path: &str, flavor: bool) -> reqwest::Response {
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/{path}",
            self.cloud.metadata.endpoint()
        );
        let mut request = self.http.get(url);
        if flavor {
            request = request.header("Metadata-Flavor", "Google");
        }
        request.send().await.unwrap()
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!(text));
    (status, body)
}

/// Asserts a google.rpc.Status envelope with exactly `code`, `status` and `message`.
fn assert_status(answer: &(u16, Value), code: u16, status: &str, message: &str) {
    let (http, body) = answer;
    assert_eq!(*http, code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
}

/// Asserts a google.rpc.Status envelope whose message contains `fragment`.
fn assert_status_like(answer: &(u16, Value), code: u16, status: &str, fragment: &str) {
    let (http, body) = answer;
    assert_eq!(*http, code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

use reqwest::Method as M;

#[tokio::test]
async fn sts_exchanges_a_trusted_token_in_both_encodings() {
    let w = world().await;
    let (status, body) = w.exchange_form(&w.form(&w.ci_token())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys(&body),
        BTreeSet::from([
            "access_token",
            "issued_token_type",
            "token_type",
            "expires_in"
        ])
    );
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let issued = w
        .cloud
        .tokens
        .get(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(issued.principal.member(), federated_member());
    assert_eq!(
        issued.principal.member(),
        format!(
            "principal://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/{POOL}/subject/{SUBJECT}"
        )
    );
    assert_eq!(issued.scopes, [CLOUD_PLATFORM]);
    assert_eq!(issued.source, TokenSource::Sts);

    // JSON, camelCase as in the discovery document; the audience without `https:`.
    let mut claims = w.ci_claims();
    claims["aud"] = json!(w.audience);
    let (status, body) = w
        .exchange_json(&json!({
            "grantType": TOKEN_EXCHANGE,
            "audience": w.audience,
            "scope": CLOUD_PLATFORM,
            "requestedTokenType": ACCESS_TOKEN_TYPE,
            "subjectToken": w.ci.mint(&claims),
            "subjectTokenType": "urn:ietf:params:oauth:token-type:id_token",
        }))
        .await;
    assert_eq!(status, 200, "{body}");

    // ES256 is accepted too.
    let es256 = w.ci.ec().sign(&w.ci_claims());
    let (status, body) = w.exchange_form(&w.form(&es256)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.cloud.sts.successes(), 3);
    assert_eq!(w.cloud.tokens.issued_by(TokenSource::Sts), 3);
}

#[tokio::test]
async fn sts_honours_allowed_audiences() {
    let w = world().await;
    let audience = w.cloud.sts.add_provider(
        WorkloadIdentityProvider::new(NUMBER, POOL, "aud-list", w.ci.url())
            .allowed_audiences(&["fedsync", "other"]),
    );
    let mut params = w.form(&w.ci.mint(&w.ci.claims(SUBJECT, "fedsync", HOUR)));
    params[1].1 = audience.clone();
    let (status, body) = w.exchange_form(&params).await;
    assert_eq!(status, 200, "{body}");
    // With a list, the provider's own name is no longer an accepted audience.
    params[4].1 =
        w.ci.mint(&w.ci.claims(SUBJECT, &format!("https:{audience}"), HOUR));
    let (status, body) = w.exchange_form(&params).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn sts_refuses_tokens_that_break_the_provider_trust() {
    let w = world().await;
    let now = unix_now();
    let claims = w.ci_claims();
    let with = |name: &str, value: Value| {
        let mut changed = claims.clone();
        changed[name] = value;
        changed
    };

    let wrong_aud = w.ci.mint(&with("aud", json!("sts.amazonaws.com")));
    let (error, description) = w.refusal(&wrong_aud).await;
    assert_eq!(error, "invalid_grant");
    assert_eq!(
        description,
        "The audience in ID Token [sts.amazonaws.com] does not match the expected audience."
    );

    let wrong_repo = w.ci.mint(&with("repository", json!("acme/other")));
    assert_eq!(
        w.refusal(&wrong_repo).await,
        (
            "invalid_grant".to_owned(),
            "The given credential is rejected by the attribute condition.".to_owned()
        )
    );
    let mut no_repo = claims.clone();
    no_repo.as_object_mut().unwrap().remove("repository");
    let (error, description) = w.refusal(&w.ci.mint(&no_repo)).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("attribute condition"), "{description}");

    // A token from an issuer the provider does not trust, even one with valid keys.
    let stranger = Issuer::start().await;
    let mut foreign = stranger.claims(SUBJECT, &format!("https:{}", w.audience), HOUR);
    foreign["repository"] = json!("acme/app");
    let (error, description) = w.refusal(&stranger.mint(&foreign)).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("issuer"), "{description}");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            w.ci.mint(&with("iat", json!(now - 7200)).tap_set("exp", json!(now - 1))),
            "expired",
        ),
        (
            "lifetime of 48 hours",
            w.ci.mint(&with("exp", json!(now + 48 * 3600))),
            "48 hours",
        ),
        (
            "issued in the future",
            w.ci.mint(&with("iat", json!(now + 600))),
            "future",
        ),
        (
            "signed by another key under the issuer's kid",
            {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some(w.ci.rsa().kid().to_owned());
                SigningKey::generate(KeyType::Rsa).sign_with_header(&header, &claims)
            },
            "signature",
        ),
        (
            "an unknown kid",
            SigningKey::generate(KeyType::Rsa).sign(&claims),
            "kid",
        ),
        (
            "no kid",
            w.ci.rsa()
                .sign_with_header(&Header::new(Algorithm::RS256), &claims),
            "kid",
        ),
        (
            "HS256",
            {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some(w.ci.rsa().kid().to_owned());
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"shared"))
                    .unwrap()
            },
            "algorithm",
        ),
        (
            "RS384",
            {
                let mut header = Header::new(Algorithm::RS384);
                header.kid = Some(w.ci.rsa().kid().to_owned());
                w.ci.rsa().sign_with_header(&header, &claims)
            },
            "algorithm",
        ),
        (
            "a subject over 127 bytes",
            w.ci.mint(&with("sub", json!("s".repeat(128)))),
            "127 bytes",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "parse"),
    ];
    for (case, token, fragment) in cases {
        let (error, description) = w.refusal(&token).await;
        assert_eq!(error, "invalid_grant", "{case}: {description}");
        assert!(description.contains(fragment), "{case}: {description:?}");
    }
    assert_eq!(w.cloud.sts.successes(), 0);
    assert!(
        w.cloud
            .sts
            .exchanges()
            .iter()
            .all(|e| e.outcome == Err("invalid_grant".to_owned()))
    );
}

/// `Value::tap_set` for building claims inline.
trait TapSet {
    fn tap_set(self, name: &str, value: Value) -> Value;
}

impl TapSet for Value {
    fn tap_set(mut self, name: &str, value: Value) -> Value {
        self[name] = value;
        self
    }
}

#[tokio::test]
async fn sts_refuses_malformed_requests_and_unknown_providers() {
    let w = world().await;
    let token = w.ci_token();

    // No Authorization header may be sent.
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(w.form(&token))
        .finish();
    let request = w
        .http
        .post(w.cloud.sts.token_url())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(AUTHORIZATION, "Bearer something")
        .body(body);
    let (status, body) = send(request).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let with = |index: usize, value: &str| {
        let mut params = w.form(&token);
        params[index].1 = value.to_owned();
        params
    };
    // The audience must be the provider's full name with the project number.
    let by_project_id = w.audience.replace(NUMBER, PROJECT);
    let https_form = w.audience.replacen("//", "https://", 1);
    for audience in [
        by_project_id.as_str(),
        https_form.as_str(),
        "sts.googleapis.com",
        "",
    ] {
        let (status, body) = w.exchange_form(&with(1, audience)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_request", "{audience}");
        assert!(
            body["error_description"].as_str().unwrap().starts_with(
                "Invalid value for \"audience\". This value should be the full resource name"
            ),
            "{body}"
        );
    }
    let unknown = w.audience.replace(PROVIDER, "gitlab");
    let (status, body) = w.exchange_form(&with(1, &unknown)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_target");
    w.cloud.sts.set_provider_disabled(&w.audience, true);
    let (_, body) = w.exchange_form(&w.form(&token)).await;
    assert_eq!(body["error"], "invalid_target");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    w.cloud.sts.set_provider_disabled(&w.audience, false);

    let (_, body) = w.exchange_form(&with(0, "client_credentials")).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    for (index, name) in [
        (2, "scope"),
        (3, "requested_token_type"),
        (5, "subject_token_type"),
    ] {
        let (status, body) = w.exchange_form(&with(index, "")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{name}"
        );
    }
    let (_, body) = w
        .exchange_form(&with(5, "urn:ietf:params:aws:token-type:aws4_request"))
        .await;
    assert_eq!(body["error"], "invalid_request");
    let (_, body) = w
        .exchange_form(&with(3, "urn:ietf:params:oauth:token-type:id_token"))
        .await;
    assert_eq!(body["error"], "invalid_request");

    // JSON bodies are proto-checked: unknown names are refused.
    let (status, body) = w
        .exchange_json(&json!({
            "grantType": TOKEN_EXCHANGE, "audience": w.audience, "scope": CLOUD_PLATFORM,
            "requestedTokenType": ACCESS_TOKEN_TYPE, "subjectToken": token,
            "subjectTokenType": JWT_TYPE, "subjectTokenKind": "jwt",
        }))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Neither encoding: refused.
    let request = w
        .http
        .post(w.cloud.sts.token_url())
        .header(CONTENT_TYPE, "text/plain")
        .body("grant_type=x");
    assert_eq!(send(request).await.1["error"], "invalid_request");
    assert_eq!(w.cloud.sts.successes(), 0);
}

#[tokio::test]
async fn sts_counts_exchanges_and_injects_failures() {
    let w = world().await;
    w.cloud.sts.fail_next(2, OauthError::unavailable());
    for _ in 0..2 {
        let (status, body) = w.exchange_form(&w.form(&w.ci_token())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
    }
    w.federated_token().await;
    assert_eq!((w.cloud.sts.successes(), w.cloud.sts.failures()), (1, 2));
    assert_eq!(
        w.cloud.sts.exchanges().last().unwrap().outcome,
        Ok(federated_member())
    );
}

#[test]
fn attribute_conditions_outside_the_subset_are_configuration_errors() {
    assert!(AttributeCondition::parse("assertion.repository.startsWith('acme/')").is_err());
    assert!(AttributeCondition::parse("assertion.a == 'x' || assertion.b == 'y'").is_err());
    let result = std::panic::catch_unwind(|| {
        WorkloadIdentityProvider::new(NUMBER, POOL, PROVIDER, "https://issuer")
            .condition("assertion.sub in ['a']")
    });
    assert!(result.is_err());
}

#[tokio::test]
async fn impersonation_needs_a_binding_on_the_service_account() {
    let w = world().await;
    let federated = w.federated_token().await;
    let request = json!({ "scope": [CLOUD_PLATFORM], "lifetime": "3600s" });
    let denied =
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).";

    assert_status(
        &w.generate_access_token(WRITER_SA, Some(&federated), &request)
            .await,
        403,
        "PERMISSION_DENIED",
        denied,
    );
    // `serviceAccountUser` (actAs) does not include getAccessToken.
    w.cloud.iam.grant(
        WRITER_SA,
        ServiceAccountRole::ServiceAccountUser,
        &federated_member(),
    );
    let refused = w
        .generate_access_token(WRITER_SA, Some(&federated), &request)
        .await;
    assert_status(&refused, 403, "PERMISSION_DENIED", denied);
    assert_eq!(
        refused.1["error"]["details"][0]["reason"],
        "IAM_PERMISSION_DENIED"
    );
    // A binding for another subject does not help.
    let other = Principal::federated(NUMBER, POOL, "repo:acme/other").member();
    w.cloud
        .iam
        .grant(WRITER_SA, ServiceAccountRole::WorkloadIdentityUser, &other);
    assert_eq!(
        w.generate_access_token(WRITER_SA, Some(&federated), &request)
            .await
            .0,
        403
    );

    assert_status(
        &w.generate_access_token(WRITER_SA, None, &request).await,
        401,
        "UNAUTHENTICATED",
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    );

    w.cloud.iam.grant(
        WRITER_SA,
        ServiceAccountRole::WorkloadIdentityUser,
        &federated_member(),
    );
    let (status, body) = w
        .generate_access_token(WRITER_SA, Some(&federated), &request)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), BTreeSet::from(["accessToken", "expireTime"]));
    let expire_time = body["expireTime"].as_str().unwrap();
    assert!(
        expire_time.ends_with('Z') && expire_time.contains('T'),
        "{expire_time}"
    );
    let sa_token = body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        w.cloud.tokens.get(&sa_token).unwrap().principal,
        Principal::service_account(WRITER_SA)
    );
    // By unique ID too.
    let by_id = w
        .generate_access_token(
            &service_account_unique_id(WRITER_SA),
            Some(&federated),
            &request,
        )
        .await;
    assert_eq!(by_id.0, 200, "{}", by_id.1);

    // Request validation.
    assert_status_like(
        &w.generate_access_token(
            WRITER_SA,
            Some(&federated),
            &json!({"scope": [CLOUD_PLATFORM], "lifetime": "3601s"}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "lifetime",
    );
    assert_status_like(
        &w.generate_access_token(
            WRITER_SA,
            Some(&federated),
            &json!({"scope": [CLOUD_PLATFORM], "lifetime": "3600"}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Illegal duration format",
    );
    assert_status(
        &w.generate_access_token(WRITER_SA, Some(&federated), &json!({"lifetime": "600s"}))
            .await,
        400,
        "INVALID_ARGUMENT",
        "Field [scope] is required.",
    );
    assert_status(
        &w.generate_access_token(
            WRITER_SA,
            Some(&federated),
            &json!({"scopes": [CLOUD_PLATFORM]}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unknown name \"scopes\": Cannot find field.",
    );
    let url = format!(
        "{}/v1/projects/{PROJECT}/serviceAccounts/{WRITER_SA}:generateAccessToken",
        w.cloud.iam.endpoint()
    );
    let request_with_project = w
        .http
        .post(url)
        .header(AUTHORIZATION, format!("Bearer {federated}"))
        .body(request.to_string());
    assert_eq!(send(request_with_project).await.0, 400);

    // The service account token acts as the service account at Secret Manager.
    w.cloud.secret_manager.grant(
        PROJECT,
        &format!("serviceAccount:{WRITER_SA}"),
        SecretManagerRole::Admin,
    );
    let path = format!("projects/{PROJECT}/secrets/missing");
    assert_eq!(w.sm(M::GET, &path, Some(&sa_token), None).await.0, 404);
    assert_eq!(w.sm(M::GET, &path, Some(&federated), None).await.0, 403);
    assert_eq!(w.cloud.iam.successes(), 2);
    assert_eq!(
        w.cloud.iam.calls()[0].caller.as_deref(),
        Some(federated_member().as_str())
    );
}

#[tokio::test]
async fn pool_wide_grants_and_delegation_chains() {
    let w = world().await;
    let federated = w.federated_token().await;
    let request = json!({ "scope": [CLOUD_PLATFORM] });
    let pool_set = format!(
        "principalSet://iam.googleapis.com/projects/{NUMBER}/locations/global/workloadIdentityPools/{POOL}/*"
    );
    let hop = "hop@fedsync-proj.iam.gserviceaccount.com";
    w.cloud
        .iam
        .grant(hop, ServiceAccountRole::WorkloadIdentityUser, &pool_set);
    assert_eq!(
        w.generate_access_token(hop, Some(&federated), &request)
            .await
            .0,
        200
    );

    let delegated = json!({
        "scope": [CLOUD_PLATFORM],
        "delegates": [format!("projects/-/serviceAccounts/{hop}")],
    });
    assert_eq!(
        w.generate_access_token(WRITER_SA, Some(&federated), &delegated)
            .await
            .0,
        403
    );
    w.cloud.iam.grant(
        WRITER_SA,
        ServiceAccountRole::ServiceAccountTokenCreator,
        &format!("serviceAccount:{hop}"),
    );
    let (status, body) = w
        .generate_access_token(WRITER_SA, Some(&federated), &delegated)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn secret_manager_requires_an_unexpired_bearer_it_issued() {
    let w = world().await;
    w.cloud
        .secret_manager
        .grant(PROJECT, &federated_member(), SecretManagerRole::Admin);
    w.cloud
        .secret_manager
        .create_secret(PROJECT, "db", &[], &[]);
    let path = format!("projects/{PROJECT}/secrets/db");

    let missing = w.sm(M::GET, &path, None, None).await;
    assert_status_like(
        &missing,
        401,
        "UNAUTHENTICATED",
        "missing required authentication credential",
    );
    assert_eq!(
        missing.1["error"]["details"][0]["reason"],
        "CREDENTIALS_MISSING"
    );
    let response = w
        .http
        .get(format!("{}/v1/{path}", w.cloud.secret_manager.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"https://accounts.google.com/\""
    );

    let invalid = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
    assert_status(
        &w.sm(M::GET, &path, Some("ya29.forged"), None).await,
        401,
        "UNAUTHENTICATED",
        invalid,
    );
    // A CI token is not a Google access token.
    assert_status(
        &w.sm(M::GET, &path, Some(&w.ci_token()), None).await,
        401,
        "UNAUTHENTICATED",
        invalid,
    );
    let request = w
        .http
        .get(format!("{}/v1/{path}", w.cloud.secret_manager.endpoint()))
        .header(AUTHORIZATION, "Basic dXNlcjpwYXNz");
    assert_eq!(send(request).await.0, 401);

    let token = w.federated_token().await;
    assert_eq!(w.sm(M::GET, &path, Some(&token), None).await.0, 200);
    assert!(w.cloud.tokens.expire(&token));
    let expired = w.sm(M::GET, &path, Some(&token), None).await;
    assert_status(&expired, 401, "UNAUTHENTICATED", invalid);
    assert_eq!(
        expired.1["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );

    // Tokens without the cloud-platform scope are refused.
    let narrow = w.cloud.tokens.issue(
        Principal::federated(NUMBER, POOL, SUBJECT),
        &["https://www.googleapis.com/auth/devstorage.read_only"],
        HOUR,
        TokenSource::Test,
    );
    assert_status(
        &w.sm(M::GET, &path, Some(&narrow), None).await,
        403,
        "PERMISSION_DENIED",
        "Request had insufficient authentication scopes.",
    );
    // Credentials only in the header.
    let token = w.federated_token().await;
    let query = w
        .sm(M::GET, &format!("{path}?access_token={token}"), None, None)
        .await;
    assert_ne!(query.0, 200);
}

#[tokio::test]
async fn secret_manager_answers_403_not_404_without_a_grant() {
    let w = world().await;
    let token = w.federated_token().await;
    let sm = &w.cloud.secret_manager;

    assert_status(
        &w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/absent"),
            Some(&token),
            None,
        )
        .await,
        403,
        "PERMISSION_DENIED",
        &format!(
            "Permission 'secretmanager.secrets.get' denied for resource 'projects/{PROJECT}/secrets/absent' (or it may not exist)."
        ),
    );
    let access = w
        .sm(
            M::GET,
            &format!("projects/{NUMBER}/secrets/absent/versions/latest:access"),
            Some(&token),
            None,
        )
        .await;
    assert_status(
        &access,
        403,
        "PERMISSION_DENIED",
        &format!(
            "Permission 'secretmanager.versions.access' denied for resource 'projects/{NUMBER}/secrets/absent/versions/latest' (or it may not exist)."
        ),
    );
    assert_eq!(
        access.1["error"]["details"][0]["reason"],
        "IAM_PERMISSION_DENIED"
    );
    assert_eq!(
        access.1["error"]["details"][0]["metadata"]["permission"],
        "secretmanager.versions.access"
    );
    // An unknown project is the same refusal.
    assert_eq!(
        w.sm(
            M::GET,
            "projects/other-proj/secrets/absent",
            Some(&token),
            None
        )
        .await
        .0,
        403
    );

    // A reader can access but not create, and with the grant it sees 404.
    sm.grant(
        PROJECT,
        &federated_member(),
        SecretManagerRole::SecretAccessor,
    );
    let create = w
        .sm(
            M::POST,
            &format!("projects/{PROJECT}/secrets?secretId=new"),
            Some(&token),
            Some(&json!({"replication": {"automatic": {}}})),
        )
        .await;
    assert_status_like(
        &create,
        403,
        "PERMISSION_DENIED",
        "'secretmanager.secrets.create'",
    );
    assert_status(
        &w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/absent/versions/latest:access"),
            Some(&token),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
        &format!("Secret [projects/{NUMBER}/secrets/absent] not found or has no versions."),
    );
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/absent"),
            Some(&token),
            None
        )
        .await
        .0,
        403
    );

    // Grants on one secret apply to it only.
    sm.create_secret(PROJECT, "one", &[], &[]);
    sm.create_secret(PROJECT, "two", &[], &[]);
    sm.grant_on_secret(
        PROJECT,
        "one",
        &federated_member(),
        SecretManagerRole::Viewer,
    );
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/one"),
            Some(&token),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/two"),
            Some(&token),
            None
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn secret_manager_create_validates_like_google() {
    let w = world().await;
    w.cloud
        .secret_manager
        .grant(PROJECT, &federated_member(), SecretManagerRole::Admin);
    let token = w.federated_token().await;
    let create = |id: &str, body: Value| {
        let path = format!("projects/{PROJECT}/secrets?secretId={id}");
        let token = token.clone();
        let w = &w;
        async move { w.sm(M::POST, &path, Some(&token), Some(&body)).await }
    };
    let automatic = json!({"automatic": {}});

    assert_status(
        &create("db", json!({})).await,
        400,
        "INVALID_ARGUMENT",
        "Field [replication] is required.",
    );
    assert_status_like(
        &create("db", json!({"replication": {"automatic": {}, "userManaged": {"replicas": [{"location": "us-east1"}]}}}))
            .await,
        400,
        "INVALID_ARGUMENT",
        "Exactly one",
    );
    assert_status_like(
        &create(
            "db",
            json!({"replication": {"userManaged": {"replicas": []}}}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "replicas",
    );
    assert_status_like(
        &create(
            "db",
            json!({"replication": {"userManaged": {"replicas": [{"location": "mars"}]}}}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "location",
    );
    assert_status_like(
        &create("db.prod", json!({"replication": automatic})).await,
        400,
        "INVALID_ARGUMENT",
        "not in a valid format",
    );
    assert_status_like(
        &create(&"a".repeat(256), json!({"replication": automatic})).await,
        400,
        "INVALID_ARGUMENT",
        "not in a valid format",
    );
    let missing_id = w
        .sm(
            M::POST,
            &format!("projects/{PROJECT}/secrets"),
            Some(&token),
            Some(&json!({"replication": automatic})),
        )
        .await;
    assert_status(
        &missing_id,
        400,
        "INVALID_ARGUMENT",
        "Field [secret_id] is required.",
    );

    for labels in [
        json!({"Owner": "sync"}),
        json!({"owner": "Sync"}),
        json!({"1owner": "sync"}),
        json!({"owner": "a.b"}),
        json!({"fedsync/source": "x"}),
        json!({"owner": 1}),
    ] {
        let answer = create("db", json!({"replication": automatic, "labels": labels})).await;
        assert_eq!(answer.0, 400, "{labels}: {}", answer.1);
        assert_eq!(answer.1["error"]["status"], "INVALID_ARGUMENT");
    }
    let too_many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_status_like(
        &create("db", json!({"replication": automatic, "labels": too_many})).await,
        400,
        "INVALID_ARGUMENT",
        "at most 64 labels",
    );
    // Annotation keys allow no slash; keys and values together stay under 16 KiB.
    assert_status_like(
        &create(
            "db",
            json!({"replication": automatic, "annotations": {"sync.example.com/source": "x"}}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "annotation key",
    );
    assert_status_like(
        &create(
            "db",
            json!({"replication": automatic, "annotations": {"k": "v".repeat(16 * 1024)}}),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "16KiB",
    );
    assert_status(
        &create("db", json!({"replication": automatic, "label": {}})).await,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unknown name \"label\": Cannot find field.",
    );
    assert_eq!(
        create(
            "db",
            json!({"replication": automatic, "topics": [{"name": "projects/p/topics/t"}]})
        )
        .await
        .0,
        501
    );
    assert!(w.cloud.secret_manager.secret_ids(PROJECT).is_empty());

    let (status, body) = create(
        "app-db_1",
        json!({
            "replication": {"userManaged": {"replicas": [{"location": "us-east1"}, {"location": "europe-west4"}]}},
            "labels": {"owner": "fedsync", "env": "", "é-ü_9": "x-1"},
            "annotations": {"fedsync.source": "aws:arn:aws:secretsmanager:eu-west-1:1:secret:x/y"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], format!("projects/{NUMBER}/secrets/app-db_1"));
    assert_eq!(
        body["replication"]["userManaged"]["replicas"][1]["location"],
        "europe-west4"
    );
    let etag = body["etag"].as_str().unwrap();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    assert!(body["createTime"].as_str().unwrap().ends_with('Z'));
    let stored = w.cloud.secret_manager.secret(PROJECT, "app-db_1").unwrap();
    assert_eq!(stored.labels["owner"], "fedsync");
    assert_eq!(stored.etag, etag);

    assert_status(
        &create("app-db_1", json!({"replication": automatic})).await,
        409,
        "ALREADY_EXISTS",
        &format!("Secret [projects/{NUMBER}/secrets/app-db_1] already exists."),
    );
    // No labels: the field is omitted, as proto3 JSON omits empty maps.
    let (_, body) = create("bare", json!({"replication": automatic})).await;
    assert!(
        body.get("labels").is_none() && body.get("annotations").is_none(),
        "{body}"
    );
}

fn payload(data: &[u8], crc: Option<Value>) -> Value {
    let mut payload = json!({ "data": STANDARD.encode(data) });
    if let Some(crc) = crc {
        payload["dataCrc32c"] = crc;
    }
    json!({ "payload": payload })
}

#[tokio::test]
async fn secret_manager_versions_checksums_and_sizes() {
    let w = world().await;
    let sm = &w.cloud.secret_manager;
    sm.grant(PROJECT, &federated_member(), SecretManagerRole::Admin);
    sm.create_secret(PROJECT, "db", &[("owner", "sync")], &[]);
    let token = w.federated_token().await;
    let add = format!("projects/{PROJECT}/secrets/db:addVersion");
    let crc = |data: &[u8]| crc32c::crc32c(data);

    // CRC32C (Castagnoli): the standard check value pins the algorithm. The reference's
    // D.3 example pairs "secret" with 2355516876, which is not its CRC32C: refused.
    assert_eq!(crc(b"123456789"), 0xE306_9283);
    assert_eq!(crc(b"secret"), 2_956_741_965);
    assert_status_like(
        &w.sm(
            M::POST,
            &add,
            Some(&token),
            Some(&payload(b"secret", Some(json!("2355516876")))),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Checksum mismatch",
    );
    let (status, body) = w
        .sm(
            M::POST,
            &add,
            Some(&token),
            Some(&payload(b"secret", Some(json!("2956741965")))),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["name"],
        format!("projects/{NUMBER}/secrets/db/versions/1")
    );
    assert_eq!(body["state"], "ENABLED");
    assert_eq!(body["clientSpecifiedPayloadChecksum"], true);
    assert_eq!(body["replicationStatus"], json!({"automatic": {}}));
    // The checksum may be a JSON number; without one the flag is absent.
    let two = w
        .sm(
            M::POST,
            &add,
            Some(&token),
            Some(&payload(b"second", Some(json!(crc(b"second"))))),
        )
        .await;
    assert_eq!(
        two.1["name"],
        format!("projects/{NUMBER}/secrets/db/versions/2")
    );
    let three = w
        .sm(M::POST, &add, Some(&token), Some(&payload(b"third", None)))
        .await;
    assert_eq!(three.0, 200);
    assert!(
        three.1.get("clientSpecifiedPayloadChecksum").is_none(),
        "{}",
        three.1
    );

    assert_status_like(
        &w.sm(
            M::POST,
            &add,
            Some(&token),
            Some(&payload(b"secret", Some(json!("2956741966")))),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Checksum mismatch",
    );
    let at_limit = vec![7u8; 64 * 1024];
    let over = vec![7u8; 64 * 1024 + 1];
    assert_eq!(
        w.sm(M::POST, &add, Some(&token), Some(&payload(&at_limit, None)))
            .await
            .0,
        200
    );
    assert_status_like(
        &w.sm(
            M::POST,
            &add,
            Some(&token),
            Some(&payload(&over, Some(json!(crc(&over).to_string())))),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "64KiB",
    );
    assert_status(
        &w.sm(M::POST, &add, Some(&token), Some(&json!({}))).await,
        400,
        "INVALID_ARGUMENT",
        "Field [payload] is required.",
    );
    assert_status_like(
        &w.sm(
            M::POST,
            &add,
            Some(&token),
            Some(&json!({"payload": {"data": "!!not base64!!"}})),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Base64",
    );
    assert_status(
        &w.sm(
            M::POST,
            &format!("projects/{PROJECT}/secrets/absent:addVersion"),
            Some(&token),
            Some(&payload(b"x", None)),
        )
        .await,
        404,
        "NOT_FOUND",
        &format!("Secret [projects/{NUMBER}/secrets/absent] not found."),
    );

    // Access: latest is the highest number; the CRC32C comes back as a decimal string.
    let (status, body) = w
        .sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions/latest:access"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["name"],
        format!("projects/{NUMBER}/secrets/db/versions/4")
    );
    assert_eq!(
        keys(&body["payload"]),
        BTreeSet::from(["data", "dataCrc32c"])
    );
    assert_eq!(body["payload"]["dataCrc32c"], crc(&at_limit).to_string());
    let (_, body) = w
        .sm(
            M::GET,
            &format!("projects/{NUMBER}/secrets/db/versions/1:access"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        body["payload"],
        json!({"data": "c2VjcmV0", "dataCrc32c": "2956741965"})
    );
    assert_status(
        &w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions/9:access"),
            Some(&token),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
        &format!("Secret Version [projects/{NUMBER}/secrets/db/versions/9] not found."),
    );
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions/0:access"),
            Some(&token),
            None
        )
        .await
        .0,
        400
    );

    // List: newest first, paged.
    let (_, page) = w
        .sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions?pageSize=3"),
            Some(&token),
            None,
        )
        .await;
    let names: Vec<&str> = page["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["4", "3", "2"]);
    assert_eq!(page["totalSize"], 4);
    let next = page["nextPageToken"].as_str().unwrap();
    let (_, page) = w
        .sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions?pageSize=3&pageToken={next}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(page["versions"].as_array().unwrap().len(), 1);
    assert!(page.get("nextPageToken").is_none());
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions?pageSize=3&page_size=2"),
            Some(&token),
            None
        )
        .await
        .0,
        400
    );

    // A disabled latest version cannot be accessed.
    let (status, body) = w
        .sm(
            M::POST,
            &format!("projects/{PROJECT}/secrets/db/versions/4:disable"),
            Some(&token),
            Some(&json!({})),
        )
        .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("DISABLED")));
    assert_status(
        &w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions/latest:access"),
            Some(&token),
            None,
        )
        .await,
        400,
        "FAILED_PRECONDITION",
        &format!("Secret Version [projects/{NUMBER}/secrets/db/versions/4] is in DISABLED state."),
    );
    let (_, got) = w
        .sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions/latest"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got["state"], "DISABLED");
    sm.set_version_state(PROJECT, "db", 1, VersionState::Destroyed);
    assert_status_like(
        &w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/db/versions/1:access"),
            Some(&token),
            None,
        )
        .await,
        400,
        "FAILED_PRECONDITION",
        "DESTROYED",
    );

    let stored = sm.secret(PROJECT, "db").unwrap();
    assert_eq!(stored.versions.len(), 4);
    assert_eq!(stored.versions[0].data, None);
    assert_eq!(stored.versions[1].data.as_deref(), Some(&b"second"[..]));
    assert!(stored.versions[1].client_specified_payload_checksum);
    assert!(!stored.versions[2].client_specified_payload_checksum);
    assert_eq!(stored.latest().unwrap().state, VersionState::Disabled);
}

#[tokio::test]
async fn secret_manager_etags_are_preconditions() {
    let w = world().await;
    let sm = &w.cloud.secret_manager;
    sm.grant(PROJECT, &federated_member(), SecretManagerRole::Admin);
    sm.create_secret(
        PROJECT,
        "db",
        &[("owner", "sync")],
        &[("fedsync.origin", "aws")],
    );
    let token = w.federated_token().await;
    let path = format!("projects/{PROJECT}/secrets/db");
    let (_, secret) = w.sm(M::GET, &path, Some(&token), None).await;
    let etag = secret["etag"].as_str().unwrap().to_owned();
    assert_eq!(secret["labels"], json!({"owner": "sync"}));

    assert_status(
        &w.sm(
            M::PATCH,
            &path,
            Some(&token),
            Some(&json!({"labels": {"owner": "x"}})),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Field [update_mask] is required.",
    );
    assert_status_like(
        &w.sm(
            M::PATCH,
            &format!("{path}?updateMask=labels"),
            Some(&token),
            Some(&json!({"labels": {"owner": "x"}, "etag": "\"1\""})),
        )
        .await,
        409,
        "ABORTED",
        "etag",
    );
    assert_status_like(
        &w.sm(
            M::PATCH,
            &format!("{path}?updateMask=replication"),
            Some(&token),
            Some(&json!({"replication": {"automatic": {}}})),
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "immutable",
    );
    assert_eq!(
        w.sm(
            M::PATCH,
            &format!("{path}?updateMask=labels"),
            Some(&token),
            Some(&json!({"labels": {"Owner": "x"}}))
        )
        .await
        .0,
        400
    );
    assert_eq!(sm.secret(PROJECT, "db").unwrap().etag, etag);

    let (status, updated) = w
        .sm(
            M::PATCH,
            &format!("{path}?updateMask=labels,annotations"),
            Some(&token),
            Some(&json!({"labels": {"owner": "fedsync", "env": "prod"}, "annotations": {}, "etag": etag})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["labels"],
        json!({"env": "prod", "owner": "fedsync"})
    );
    assert!(updated.get("annotations").is_none(), "{updated}");
    let new_etag = updated["etag"].as_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    // Only masked fields change.
    let (_, updated) = w
        .sm(
            M::PATCH,
            &format!("{path}?updateMask=annotations"),
            Some(&token),
            Some(&json!({"labels": {}, "annotations": {"a": "b"}})),
        )
        .await;
    assert_eq!(
        updated["labels"],
        json!({"env": "prod", "owner": "fedsync"})
    );
    let latest_etag = updated["etag"].as_str().unwrap().to_owned();

    assert_status_like(
        &w.sm(
            M::DELETE,
            &format!("{path}?etag={}", urlencode(&new_etag)),
            Some(&token),
            None,
        )
        .await,
        409,
        "ABORTED",
        "etag",
    );
    assert!(sm.secret(PROJECT, "db").is_some());
    let (status, body) = w
        .sm(
            M::DELETE,
            &format!("{path}?etag={}", urlencode(&latest_etag)),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, body), (200, json!({})));
    assert!(sm.secret(PROJECT, "db").is_none());
    assert_eq!(w.sm(M::DELETE, &path, Some(&token), None).await.0, 404);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn secret_manager_injects_failures_and_counts_calls() {
    let w = world().await;
    let sm = &w.cloud.secret_manager;
    sm.grant(
        PROJECT,
        &federated_member(),
        SecretManagerRole::SecretAccessor,
    );
    sm.create_secret(PROJECT, "db", &[], &[]);
    sm.add_version(PROJECT, "db", b"value");
    let token = w.federated_token().await;
    let path = format!("projects/{PROJECT}/secrets/db/versions/latest:access");

    sm.fail_next(
        SecretManagerMethod::AccessSecretVersion,
        1,
        GoogleError::unavailable(),
    );
    sm.fail_next(
        SecretManagerMethod::AccessSecretVersion,
        1,
        GoogleError::resource_exhausted(),
    );
    // Faults are answered before authentication.
    assert_status(
        &w.sm(M::GET, &path, None, None).await,
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
    );
    assert_status_like(
        &w.sm(M::GET, &path, Some(&token), None).await,
        429,
        "RESOURCE_EXHAUSTED",
        "quota",
    );
    let (status, body) = w.sm(M::GET, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["data"], STANDARD.encode(b"value"));
    assert_eq!(sm.calls(SecretManagerMethod::AccessSecretVersion), 3);
    assert_eq!(sm.calls(SecretManagerMethod::GetSecret), 0);
    let statuses: Vec<u16> = sm.call_log().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 429, 200]);

    // Unknown URLs and query parameters.
    assert_status(
        &w.sm(M::PUT, "projects/p/secrets/db", Some(&token), None)
            .await,
        404,
        "NOT_FOUND",
        "Method not found.",
    );
    assert_status(
        &w.sm(M::GET, &format!("{path}?version=1"), Some(&token), None)
            .await,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received. Unknown name \"version\": Cannot bind query parameter. Field 'version' could not be found in request message.",
    );
}

impl World {
    /// One `secrets.list` page: status and body.
    async fn list_page(&self, token: &str, query: &str) -> (u16, Value) {
        self.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets?{query}"),
            Some(token),
            None,
        )
        .await
    }
}

/// The secret IDs of a `secrets.list` page, in the order answered.
fn listed_ids(page: &Value) -> Vec<String> {
    let prefix = format!("projects/{NUMBER}/secrets/");
    page["secrets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap();
            name.strip_prefix(&prefix).unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn secret_manager_lists_secrets_newest_first_in_pages() {
    let w = world().await;
    let sm = &w.cloud.secret_manager;
    let token = w.federated_token().await;
    let member = federated_member();

    // Listing needs `secretmanager.secrets.list` on the project: a grant on one secret or
    // a role without the permission is not enough.
    sm.create_secret(PROJECT, "granted", &[], &[]);
    sm.grant_on_secret(PROJECT, "granted", &member, SecretManagerRole::Viewer);
    sm.grant(PROJECT, &member, SecretManagerRole::SecretAccessor);
    sm.grant(PROJECT, &member, SecretManagerRole::SecretVersionManager);
    let denied = w.list_page(&token, "").await;
    assert_status(
        &denied,
        403,
        "PERMISSION_DENIED",
        &format!(
            "Permission 'secretmanager.secrets.list' denied for resource 'projects/{PROJECT}' (or it may not exist)."
        ),
    );
    assert_eq!(
        denied.1["error"]["details"][0]["metadata"]["permission"],
        "secretmanager.secrets.list"
    );
    assert!(sm.delete_secret(PROJECT, "granted"));
    sm.grant(PROJECT, &member, SecretManagerRole::Viewer);

    // An empty project answers the empty message: every field omitted.
    let (status, body) = w.list_page(&token, "").await;
    assert_eq!((status, &body), (200, &json!({})));

    // Secrets created in an order that is neither alphabetical nor its reverse, one
    // millisecond apart so that their create times differ.
    let created: Vec<String> = (0..23).map(|i| format!("s{:02}", (i * 7) % 23)).collect();
    for id in &created {
        sm.create_secret(PROJECT, id, &[("team", "core")], &[]);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sm.add_project("other-proj", "210987654321");
    sm.create_secret("other-proj", "elsewhere", &[], &[]);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    // Pages of 5 cover every secret of the project exactly once, newest first.
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut query = "pageSize=5".to_owned();
    loop {
        let (status, page) = w.list_page(&token, &query).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert_eq!(page["totalSize"], 23, "{page}");
        let ids = listed_ids(&page);
        assert!(!ids.is_empty() && ids.len() <= 5, "{page}");
        listed.extend(ids);
        match page.get("nextPageToken") {
            Some(next) => {
                query = format!("pageSize=5&pageToken={}", urlencode(next.as_str().unwrap()))
            }
            None => {
                assert_eq!(keys(&page), BTreeSet::from(["secrets", "totalSize"]));
                break;
            }
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(listed, newest_first);

    // Each listed secret is the Secret that get answers.
    let (_, page) = w.list_page(&token, "pageSize=1").await;
    let (status, got) = w
        .sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/{}", newest_first[0]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(page["secrets"], json!([got]));
    assert_eq!(got["labels"], json!({"team": "core"}));

    // Absent, 0 and above the maximum all mean one page here; the project may be named by
    // number.
    for query in ["", "pageSize=0", "pageSize=25001", "page_size=2147483647"] {
        let (status, page) = w.list_page(&token, query).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(listed_ids(&page), newest_first, "{query}");
        assert!(page.get("nextPageToken").is_none(), "{query}");
    }
    let (_, by_number) = w
        .sm(
            M::GET,
            &format!("projects/{NUMBER}/secrets"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed_ids(&by_number), newest_first);

    // A page resumes after the last secret served: a secret created meanwhile (the newest,
    // so before that point) and one deleted before it was served make no other secret
    // appear twice or go missing.
    let (_, first) = w.list_page(&token, "pageSize=10").await;
    assert_eq!(listed_ids(&first), newest_first[..10]);
    let next = urlencode(first["nextPageToken"].as_str().unwrap());
    sm.create_secret(PROJECT, "late", &[], &[]);
    assert!(sm.delete_secret(PROJECT, &newest_first[15]));
    let (_, rest) = w
        .sm(
            M::GET,
            &format!("projects/{NUMBER}/secrets?pageSize=100&pageToken={next}"),
            Some(&token),
            None,
        )
        .await;
    let mut expected: Vec<String> = newest_first[10..].to_vec();
    expected.retain(|id| *id != newest_first[15]);
    assert_eq!(listed_ids(&rest), expected);
    assert_eq!(rest["totalSize"], 23);

    // Refusals: page sizes that are negative or not int32, tokens this listing did not
    // issue, filters (not emulated), unknown parameters.
    for size in ["-1", "2147483648", "ten", "1.5"] {
        let answer = w.list_page(&token, &format!("pageSize={size}")).await;
        assert_eq!(answer.0, 400, "{size}: {}", answer.1);
        assert_eq!(answer.1["error"]["status"], "INVALID_ARGUMENT", "{size}");
    }
    sm.add_version(PROJECT, "late", b"one");
    sm.add_version(PROJECT, "late", b"two");
    let (_, versions) = w
        .sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/late/versions?pageSize=1"),
            Some(&token),
            None,
        )
        .await;
    let versions_token = urlencode(versions["nextPageToken"].as_str().unwrap());
    let truncated = &next[..next.len() - 1];
    for token_text in ["garbled", versions_token.as_str(), truncated] {
        assert_status_like(
            &w.list_page(&token, &format!("pageToken={token_text}"))
                .await,
            400,
            "INVALID_ARGUMENT",
            "Invalid page_token",
        );
    }
    assert_status(
        &w.list_page(&token, "filter=name%3Aprod").await,
        501,
        "UNIMPLEMENTED",
        "List filters are not emulated.",
    );
    // Empty token and filter are the defaults.
    assert_eq!(w.list_page(&token, "pageToken=&filter=").await.0, 200);
    assert_status_like(
        &w.list_page(&token, "orderBy=name").await,
        400,
        "INVALID_ARGUMENT",
        "Unknown name \"orderBy\"",
    );
    // Location-scoped listing is not emulated.
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/locations/us-east1/secrets"),
            Some(&token),
            None
        )
        .await
        .0,
        501
    );

    // Every call was counted, refusals included.
    let statuses: Vec<u16> = sm
        .call_log()
        .iter()
        .filter(|c| c.method == SecretManagerMethod::ListSecrets)
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses.len(), sm.calls(SecretManagerMethod::ListSecrets));
    assert_eq!(statuses[0], 403);
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 8);
    assert_eq!(statuses.iter().filter(|s| **s == 501).count(), 1);
}

#[tokio::test]
async fn secret_manager_version_pages_resume_after_the_last_version() {
    let w = world().await;
    let sm = &w.cloud.secret_manager;
    sm.grant(PROJECT, &federated_member(), SecretManagerRole::Viewer);
    let token = w.federated_token().await;
    sm.create_secret(PROJECT, "db", &[], &[]);
    for data in [b"1", b"2", b"3", b"4"] {
        sm.add_version(PROJECT, "db", data);
    }
    let list = |query: String| {
        let w = &w;
        let token = &token;
        async move {
            w.sm(
                M::GET,
                &format!("projects/{PROJECT}/secrets/db/versions?{query}"),
                Some(token),
                None,
            )
            .await
        }
    };
    let numbers = |page: &Value| -> Vec<u64> {
        page["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let name = v["name"].as_str().unwrap();
                name.rsplit('/').next().unwrap().parse().unwrap()
            })
            .collect()
    };
    let (_, first) = list("pageSize=2".to_owned()).await;
    assert_eq!(numbers(&first), [4, 3]);
    // A version added between pages is newer than the page's last: it does not shift the
    // next page.
    sm.add_version(PROJECT, "db", b"5");
    let next = urlencode(first["nextPageToken"].as_str().unwrap());
    let (status, second) = list(format!("pageSize=2&pageToken={next}")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(numbers(&second), [2, 1]);
    assert!(second.get("nextPageToken").is_none(), "{second}");
    assert_eq!(second["totalSize"], 5);
    // Above the maximum is capped, not refused.
    let (status, all) = list("pageSize=25001".to_owned()).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(numbers(&all), [5, 4, 3, 2, 1]);
    // The token of one secret's versions does not continue another's.
    sm.create_secret(PROJECT, "other", &[], &[]);
    sm.add_version(PROJECT, "other", b"x");
    assert_status_like(
        &w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/other/versions?pageToken={next}"),
            Some(&token),
            None,
        )
        .await,
        400,
        "INVALID_ARGUMENT",
        "Invalid page_token",
    );
}

/// Verifies a Google-signed JWT through the issuer's discovery document and JWKS.
async fn verify_google_jwt(
    http: &reqwest::Client,
    issuer_url: &str,
    token: &str,
    audience: &str,
) -> Value {
    let discovery: Value = http
        .get(format!("{issuer_url}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer_url);
    let response = http
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let cache_control = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache_control.contains("max-age="), "{cache_control}");
    let jwks: JwkSet = response.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn metadata_server_requires_its_header_and_serves_identity_and_tokens() {
    let w = world().await;
    let audience = "https://fedsync.example/push";

    let refused = w
        .metadata(&format!("default/identity?audience={audience}"), false)
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["metadata-flavor"], "Google");
    let forwarded = w
        .http
        .get(format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            w.cloud.metadata.endpoint()
        ))
        .header("Metadata-Flavor", "Google")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 403);
    assert_eq!(w.metadata("default/identity", true).await.status(), 400);
    assert_eq!(
        w.metadata("default/identity?audience=", true)
            .await
            .status(),
        400
    );
    assert_eq!(
        w.metadata("someone-else@x.iam.gserviceaccount.com/token", true)
            .await
            .status(),
        404
    );

    let response = w
        .metadata(&format!("default/identity?audience={audience}"), true)
        .await;
    assert_eq!(response.status(), 200);
    let token = response.text().await.unwrap();
    let claims = verify_google_jwt(&w.http, w.cloud.issuer.url(), &token, audience).await;
    let unique_id = service_account_unique_id(INSTANCE_SERVICE_ACCOUNT);
    assert_eq!(
        keys(&claims),
        BTreeSet::from(["aud", "azp", "exp", "iat", "iss", "sub"])
    );
    assert_eq!(claims["iss"], GOOGLE_ACCOUNTS);
    assert_eq!(claims["sub"], unique_id);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    let full = w
        .metadata(
            &format!("{INSTANCE_SERVICE_ACCOUNT}/identity?audience={audience}&format=full"),
            true,
        )
        .await
        .text()
        .await
        .unwrap();
    let claims = verify_google_jwt(&w.http, w.cloud.issuer.url(), &full, audience).await;
    assert_eq!(claims["email"], INSTANCE_SERVICE_ACCOUNT);
    assert_eq!(claims["email_verified"], true);

    let token: Value = w
        .metadata("default/token", true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        keys(&token),
        BTreeSet::from(["access_token", "expires_in", "token_type"])
    );
    assert_eq!(token["token_type"], "Bearer");
    let access_token = token["access_token"].as_str().unwrap();
    w.cloud.secret_manager.grant(
        PROJECT,
        &format!("serviceAccount:{INSTANCE_SERVICE_ACCOUNT}"),
        SecretManagerRole::Admin,
    );
    assert_eq!(
        w.sm(
            M::GET,
            &format!("projects/{PROJECT}/secrets/absent"),
            Some(access_token),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(w.cloud.metadata.requests(MetadataEndpoint::Identity), 5);
    assert_eq!(w.cloud.metadata.requests(MetadataEndpoint::Token), 3);
}

#[tokio::test]
async fn push_tokens_are_what_pubsub_sends() {
    let w = world().await;
    let issuer = &w.cloud.issuer;
    let push_sa = "pubsub-push@fedsync-proj.iam.gserviceaccount.com";
    let endpoint = "https://fedsync.example/push";

    let token = issuer.push_token(endpoint, push_sa, true, HOUR);
    let claims = verify_google_jwt(&w.http, issuer.url(), &token, endpoint).await;
    assert_eq!(
        keys(&claims),
        BTreeSet::from([
            "aud",
            "azp",
            "email",
            "email_verified",
            "exp",
            "iat",
            "iss",
            "sub"
        ])
    );
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["email"], push_sa);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["sub"], claims["azp"]);
    assert_eq!(claims["sub"], service_account_unique_id(push_sa));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(issuer.key().kid()));

    // Negative tokens for receivers: unverified email, expired, wrong key.
    let unverified = issuer.push_token(endpoint, push_sa, false, HOUR);
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&unverified).unwrap();
    assert_eq!(claims["email_verified"], false);
    let mut expired = issuer.push_claims(endpoint, push_sa, true, HOUR);
    expired["exp"] = json!(unix_now() - 10);
    let expired = issuer.sign(&expired);
    assert!(jsonwebtoken::decode_header(&expired).is_ok());

    // The issuer can claim to be itself, and rotate keys while publishing both.
    issuer.set_token_issuer(issuer.url());
    let old_kid = issuer.key().kid().to_owned();
    issuer.rotate_key();
    let token = issuer.push_token(endpoint, push_sa, true, HOUR);
    let claims = verify_google_jwt(&w.http, issuer.url(), &token, endpoint).await;
    assert_eq!(claims["iss"], issuer.url());
    assert_ne!(issuer.key().kid(), old_kid);
    assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 2);
    issuer.retire_old_keys();
    assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 1);
    assert!(issuer.jwks_fetches() >= 2);
}

#[tokio::test]
async fn google_identity_tokens_federate_through_a_provider_trusting_the_issuer() {
    let w = world().await;
    let issuer = &w.cloud.issuer;
    issuer.set_token_issuer(issuer.url());
    let audience = w.cloud.sts.add_provider(
        WorkloadIdentityProvider::new(NUMBER, POOL, "google", issuer.url())
            .condition(&format!("assertion.email == '{INSTANCE_SERVICE_ACCOUNT}'")),
    );
    let https_audience = format!("https:{audience}");
    let identity = |format: &'static str| {
        let path = format!(
            "default/identity?audience={}&format={format}",
            urlencode(&https_audience)
        );
        let w = &w;
        async move { w.metadata(&path, true).await.text().await.unwrap() }
    };
    let mut params = w.form(&identity("full").await);
    params[1].1 = audience.clone();
    let (status, body) = w.exchange_form(&params).await;
    assert_eq!(status, 200, "{body}");
    // Without the email claim the condition fails.
    params[4].1 = identity("standard").await;
    let (status, body) = w.exchange_form(&params).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "The given credential is rejected by the attribute condition."
    );
}
