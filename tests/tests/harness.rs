//! Tests of the harness itself: the local servers must be as strict as AWS, or the
//! end-to-end tests built on them prove nothing.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::assume_role_with_web_identity::{
    AssumeRoleWithWebIdentityError, AssumeRoleWithWebIdentityOutput,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fedsync_tests::issuer::{Issuer, KeyType, SigningKey, jwk_thumbprint, unix_now};
use fedsync_tests::lambda_api::{Invocation, LambdaApi, workspace_binary};
use fedsync_tests::moto::{self, Moto};
use fedsync_tests::sts_front::{RoleTrust, StsError, StsFront};
use fedsync_tests::xml;
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

const AUDIENCE: &str = "sts.amazonaws.com";
const SUBJECT: &str = "fedsync:source:prod";
const HOUR: Duration = Duration::from_secs(3600);

/// moto with IAM checking on, an issuer, and a front trusting the issuer for two roles.
struct Aws {
    moto: Moto,
    issuer: Issuer,
    front: StsFront,
    writer: String,
    denied: String,
}

async fn aws() -> Aws {
    let moto = Moto::start().await;
    let writer = moto
        .create_role(
            "fedsync-writer",
            &json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
            }),
        )
        .await;
    let denied = moto
        .create_role(
            "fedsync-denied",
            &json!({
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "secretsmanager:PutSecretValue", "Resource": "*"},
                ],
            }),
        )
        .await;
    moto.enable_iam_auth().await;
    let issuer = Issuer::start().await;
    let front = StsFront::start(moto.sts()).await;
    front.trust_issuer(issuer.url());
    for role in [&writer, &denied] {
        front.trust_role(
            role,
            RoleTrust {
                issuer: issuer.url().to_owned(),
                audience: AUDIENCE.to_owned(),
                subject: SUBJECT.to_owned(),
            },
        );
    }
    Aws {
        moto,
        issuer,
        front,
        writer,
        denied,
    }
}

impl Aws {
    fn good_claims(&self) -> Value {
        self.issuer.claims(SUBJECT, AUDIENCE, HOUR)
    }

    /// `AssumeRoleWithWebIdentity` through the front, as the AWS SDK sends it (unsigned).
    async fn exchange(
        &self,
        role_arn: &str,
        token: &str,
    ) -> Result<AssumeRoleWithWebIdentityOutput, SdkError<AssumeRoleWithWebIdentityError>> {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(moto::REGION))
            .endpoint_url(self.front.endpoint())
            .build();
        aws_sdk_sts::Client::from_conf(config)
            .assume_role_with_web_identity()
            .role_arn(role_arn)
            .role_session_name("fedsync-harness")
            .web_identity_token(token)
            .send()
            .await
    }

    /// Asserts the front refuses `token` for the writer role with `code` and `status`.
    async fn assert_refused(&self, token: &str, code: &str, status: u16) -> String {
        let error = self
            .exchange(&self.writer, token)
            .await
            .expect_err("the front must refuse this token");
        assert_eq!(http_status(&error), Some(status), "{error:?}");
        let error = error.into_service_error();
        assert_eq!(error.code(), Some(code), "{error:?}");
        assert_eq!(self.front.successes(&self.writer), 0);
        error.message().unwrap_or_default().to_owned()
    }
}

fn http_status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
}

/// The raw body of an error response (moto's IAM refusals are XML the SDK cannot parse).
fn raw_body<E>(error: &SdkError<E, HttpResponse>) -> String {
    let bytes = error
        .raw_response()
        .and_then(|response| response.body().bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

fn sdk_credentials(output: &AssumeRoleWithWebIdentityOutput) -> Credentials {
    let credentials = output.credentials().expect("credentials in the response");
    Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        SystemTime::try_from(*credentials.expiration()).ok(),
        "sts-front",
    )
}

#[tokio::test]
async fn sts_front_accepts_a_good_token_and_its_credentials_pass_iam_checks() {
    let aws = aws().await;
    for key in [aws.issuer.rsa(), aws.issuer.ec()] {
        let token = key.sign(&aws.good_claims());
        let output = aws
            .exchange(&aws.writer, &token)
            .await
            .unwrap_or_else(|e| panic!("{:?} token refused: {e:?}", key.key_type()));
        assert_eq!(output.subject_from_web_identity_token(), Some(SUBJECT));
        assert_eq!(output.audience(), Some(AUDIENCE));
        assert_eq!(output.provider(), Some(aws.issuer.url()));
        let user = output.assumed_role_user().expect("assumed role user");
        assert_eq!(
            user.arn(),
            format!(
                "arn:aws:sts::{}:assumed-role/fedsync-writer/fedsync-harness",
                moto::ACCOUNT_ID
            )
        );
        let expires = SystemTime::try_from(*output.credentials().unwrap().expiration()).unwrap();
        let lifetime = expires.duration_since(SystemTime::now()).unwrap();
        assert!(
            lifetime > Duration::from_secs(3500) && lifetime <= HOUR,
            "{lifetime:?}"
        );
    }
    assert_eq!(aws.front.successes(&aws.writer), 2);
    assert_eq!(aws.front.failures(&aws.writer), 0);

    let output = aws
        .exchange(&aws.writer, &aws.issuer.mint(&aws.good_claims()))
        .await
        .unwrap();
    let secrets = aws.moto.secrets_manager_as(sdk_credentials(&output));
    secrets
        .create_secret()
        .name("harness/writer")
        .secret_string("one")
        .send()
        .await
        .expect("the writer role may create a secret");
    secrets
        .put_secret_value()
        .secret_id("harness/writer")
        .secret_string("two")
        .send()
        .await
        .expect("the writer role may put a value");
    let versions = aws
        .moto
        .secrets_manager()
        .list_secret_version_ids()
        .secret_id("harness/writer")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);
}

#[tokio::test]
async fn explicit_deny_in_the_role_policy_is_a_403() {
    let aws = aws().await;
    aws.moto
        .secrets_manager()
        .create_secret()
        .name("harness/denied")
        .secret_string("one")
        .send()
        .await
        .unwrap();
    let output = aws
        .exchange(&aws.denied, &aws.issuer.mint(&aws.good_claims()))
        .await
        .expect("the denied role trusts the token too");
    let secrets = aws.moto.secrets_manager_as(sdk_credentials(&output));
    secrets
        .describe_secret()
        .secret_id("harness/denied")
        .send()
        .await
        .expect("the Allow statement covers DescribeSecret");
    let error = secrets
        .put_secret_value()
        .secret_id("harness/denied")
        .secret_string("two")
        .send()
        .await
        .expect_err("the explicit Deny must win");
    // moto answers IAM refusals in XML even for this JSON service: the SDK sees no code.
    assert_eq!(http_status(&error), Some(403), "{error:?}");
    assert!(raw_body(&error).contains("<Code>AccessDenied</Code>"));
}

#[tokio::test]
async fn moto_checks_signatures_and_session_tokens_once_iam_auth_is_on() {
    let aws = aws().await;
    let admin = aws.moto.admin_credentials();
    let forged = Credentials::new(
        admin.access_key_id(),
        "not-the-secret",
        None,
        None,
        "forged",
    );
    let error = aws
        .moto
        .sts_as(forged)
        .get_caller_identity()
        .send()
        .await
        .expect_err("a wrong secret must not pass");
    assert_eq!(http_status(&error), Some(403));
    assert!(raw_body(&error).contains("<Code>SignatureDoesNotMatch</Code>"));

    let role = aws.moto.role_credentials(&aws.writer, "ambient").await;
    let without_token = Credentials::new(
        role.access_key_id(),
        role.secret_access_key(),
        None,
        None,
        "no-token",
    );
    let error = aws
        .moto
        .secrets_manager_as(without_token)
        .list_secrets()
        .send()
        .await
        .expect_err("temporary credentials need their session token");
    assert_eq!(http_status(&error), Some(403));
    assert!(raw_body(&error).contains("<Code>InvalidClientTokenId</Code>"));
    aws.moto
        .secrets_manager_as(role)
        .list_secrets()
        .send()
        .await
        .expect("the role's own credentials work");

    // Turned off, moto takes even a forged signature; turned on again, it refuses it.
    let forged = || Credentials::new(admin.access_key_id(), "not-the-secret", None, None, "x");
    aws.moto.disable_iam_auth().await;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}],
    });
    let later = aws.moto.create_role("later", &policy).await;
    assert!(later.ends_with(":role/later"), "{later}");
    aws.moto
        .sts_as(forged())
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    aws.moto.enable_iam_auth().await;
    let error = aws.moto.sts_as(forged()).get_caller_identity().send().await;
    assert_eq!(http_status(&error.unwrap_err()), Some(403));
}

#[tokio::test]
async fn sts_front_refuses_the_wrong_audience() {
    let aws = aws().await;
    let claims = aws.issuer.claims(SUBJECT, "someone-else", HOUR);
    let message = aws
        .assert_refused(&aws.issuer.mint(&claims), "AccessDenied", 403)
        .await;
    assert_eq!(
        message,
        "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    );
    assert_eq!(aws.front.failures(&aws.writer), 1);
}

#[tokio::test]
async fn sts_front_refuses_the_wrong_subject() {
    let aws = aws().await;
    let claims = aws.issuer.claims("fedsync:source:dev", AUDIENCE, HOUR);
    aws.assert_refused(&aws.issuer.ec().sign(&claims), "AccessDenied", 403)
        .await;
}

#[tokio::test]
async fn sts_front_refuses_a_role_without_trust_for_the_token() {
    let aws = aws().await;
    let untrusted = format!("arn:aws:iam::{}:role/untrusted", moto::ACCOUNT_ID);
    let error = aws
        .exchange(&untrusted, &aws.issuer.mint(&aws.good_claims()))
        .await
        .expect_err("no trust policy, no credentials");
    assert_eq!(http_status(&error), Some(403));
    assert_eq!(error.into_service_error().code(), Some("AccessDenied"));
}

#[tokio::test]
async fn sts_front_refuses_signatures_it_cannot_verify() {
    let aws = aws().await;
    let stray = SigningKey::generate(KeyType::Rsa);
    // A key the issuer does not publish.
    aws.assert_refused(&stray.sign(&aws.good_claims()), "InvalidIdentityToken", 400)
        .await;
    // The issuer's kid, signed with another key.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(aws.issuer.rsa().kid().to_owned());
    let forged = stray.sign_with_header(&header, &aws.good_claims());
    aws.assert_refused(&forged, "InvalidIdentityToken", 400)
        .await;
    // No kid at all.
    let anonymous = aws
        .issuer
        .rsa()
        .sign_with_header(&Header::new(Algorithm::RS256), &aws.good_claims());
    aws.assert_refused(&anonymous, "InvalidIdentityToken", 400)
        .await;
    // A tampered payload under a genuine signature.
    let genuine = aws.issuer.mint(&aws.good_claims());
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut claims = aws.good_claims();
    claims["sub"] = json!("fedsync:attacker");
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    aws.assert_refused(&tampered, "InvalidIdentityToken", 400)
        .await;
}

#[tokio::test]
async fn sts_front_refuses_unsigned_and_symmetric_tokens() {
    let aws = aws().await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(aws.good_claims().to_string());
    aws.assert_refused(&format!("{header}.{payload}."), "InvalidIdentityToken", 400)
        .await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(aws.issuer.rsa().kid().to_owned());
    let symmetric = jsonwebtoken::encode(
        &header,
        &aws.good_claims(),
        &EncodingKey::from_secret(b"shared secret"),
    )
    .unwrap();
    aws.assert_refused(&symmetric, "InvalidIdentityToken", 400)
        .await;
    aws.assert_refused("not.a-jwt", "InvalidIdentityToken", 400)
        .await;
}

#[tokio::test]
async fn sts_front_refuses_an_unknown_issuer() {
    let aws = aws().await;
    let other = Issuer::start().await;
    let message = aws
        .assert_refused(
            &other.mint(&other.claims(SUBJECT, AUDIENCE, HOUR)),
            "InvalidIdentityToken",
            400,
        )
        .await;
    assert!(message.contains("No OpenIDConnect provider"), "{message}");
}

#[tokio::test]
async fn sts_front_refuses_an_expired_token() {
    let aws = aws().await;
    let mut claims = aws.good_claims();
    claims["iat"] = json!(unix_now() - 7200);
    claims["nbf"] = json!(unix_now() - 7200);
    claims["exp"] = json!(unix_now() - 60);
    let message = aws
        .assert_refused(&aws.issuer.mint(&claims), "ExpiredTokenException", 400)
        .await;
    assert!(message.starts_with("Token expired"), "{message}");
}

#[tokio::test]
async fn sts_front_answers_query_protocol_xml_errors() {
    let aws = aws().await;
    let http = reqwest::Client::new();
    let send = |body: String| {
        http.post(format!("{}/", aws.front.endpoint()))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
    };
    let response = send(format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}\
         &RoleSessionName=bad%20name&DurationSeconds=60",
        aws.writer.replace(':', "%3A").replace('/', "%2F")
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "text/xml");
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with(r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#),
        "{body}"
    );
    assert_eq!(xml::element_text(&body, "Type").as_deref(), Some("Sender"));
    assert_eq!(
        xml::element_text(&body, "Code").as_deref(),
        Some("ValidationError")
    );
    let message = xml::element_text(&body, "Message").unwrap();
    assert!(
        message.starts_with("3 validation errors detected:"),
        "{message}"
    );
    for member in ["webIdentityToken", "roleSessionName", "durationSeconds"] {
        assert!(message.contains(member), "{message}");
    }
    assert!(xml::element_text(&body, "RequestId").is_some());

    let response = send("Action=GetCallerIdentity&Version=2011-06-15".to_owned())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert_eq!(
        xml::element_text(&body, "Code").as_deref(),
        Some("InvalidAction")
    );
}

#[tokio::test]
async fn sts_front_injected_failures_are_retried_by_the_sdk() {
    let aws = aws().await;
    aws.front.fail_next(2, StsError::throttling());
    aws.exchange(&aws.writer, &aws.issuer.mint(&aws.good_claims()))
        .await
        .expect("the SDK retries Throttling up to three attempts");
    assert_eq!(aws.front.failures(&aws.writer), 2);
    assert_eq!(aws.front.successes(&aws.writer), 1);
    let outcomes: Vec<_> = aws
        .front
        .exchanges()
        .into_iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Err("Throttling".to_owned()),
            Err("Throttling".to_owned()),
            Ok(())
        ]
    );
}

#[tokio::test]
async fn issuer_serves_discovery_and_a_jwks_keyed_by_rfc7638_thumbprints() {
    let issuer = Issuer::start().await;
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", issuer.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer.url());
    assert_eq!(discovery["jwks_uri"], issuer.jwks_uri());
    let served: Value = http
        .get(issuer.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, issuer.jwks());
    let jwks: JwkSet = serde_json::from_value(served).unwrap();
    assert_eq!(jwks.keys.len(), 2);

    for key in [issuer.rsa(), issuer.ec()] {
        assert!(
            key.private_key_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        let jwk: &Jwk = jwks.find(key.kid()).expect("the JWKS has the key's kid");
        // Cross-check the thumbprint with jsonwebtoken's independent implementation.
        assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid());
        assert_eq!(jwk_thumbprint(key.public_jwk()), key.kid());
        // A token signed with the private key verifies against the published key.
        let token = key.sign(&issuer.claims(SUBJECT, AUDIENCE, HOUR));
        let mut validation = Validation::new(key.algorithm());
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer.url()]);
        let decoded = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims["sub"], SUBJECT);
    }
}

#[test]
fn jwk_thumbprint_matches_the_rfc_7638_example() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    });
    assert_eq!(
        jwk_thumbprint(&jwk),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

/// A hand-written runtime client: what `lambda_runtime` does, over plain HTTP.
struct RuntimeClient {
    http: reqwest::Client,
    base: String,
}

impl RuntimeClient {
    fn new(api: &LambdaApi) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}/2018-06-01/runtime", api.address()),
        }
    }

    async fn next(&self) -> reqwest::Response {
        let response = self
            .http
            .get(format!("{}/invocation/next", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::StatusCode {
        self.http
            .post(format!("{}/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["lambda-runtime-aws-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn lambda_api_delivers_an_event_and_returns_the_response() {
    let api = LambdaApi::start().await;
    let runtime = RuntimeClient::new(&api);
    assert!(api.first_poll().is_none());
    let event = json!({"detail-type": "AWS API Call via CloudTrail", "detail": {"n": 1}});
    let runtime_side = async {
        let before_poll = Instant::now();
        let response = runtime.next().await;
        let first_poll = api.first_poll().expect("the poll was recorded");
        assert!(first_poll >= before_poll);
        let headers = response.headers().clone();
        let deadline_ms: u128 = headers["lambda-runtime-deadline-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(deadline_ms > now_ms && deadline_ms <= now_ms + 5_000);
        assert_eq!(
            headers["lambda-runtime-invoked-function-arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:fedsync"
        );
        assert!(
            headers["lambda-runtime-trace-id"]
                .to_str()
                .unwrap()
                .starts_with("Root=1-")
        );
        let id = request_id(&response);
        assert_eq!(response.json::<Value>().await.unwrap(), event);
        let status = runtime
            .post(&format!("invocation/{id}/response"), json!({"synced": 3}))
            .await;
        assert_eq!(status, 202);
        // The invocation is over: a second answer is refused.
        let status = runtime
            .post(&format!("invocation/{id}/response"), json!({}))
            .await;
        assert_eq!(status, 400);
    };
    let (outcome, ()) = tokio::join!(
        api.invoke(event.clone(), Duration::from_secs(5)),
        runtime_side
    );
    assert_eq!(outcome, Invocation::Ok(json!({"synced": 3})));
}

#[tokio::test]
async fn lambda_api_reports_function_errors() {
    let api = LambdaApi::start().await;
    let runtime = RuntimeClient::new(&api);
    let runtime_side = async {
        let id = request_id(&runtime.next().await);
        let error = json!({"errorType": "fedsync::Error", "errorMessage": "target refused"});
        assert_eq!(
            runtime.post(&format!("invocation/{id}/error"), error).await,
            202
        );
    };
    let (outcome, ()) = tokio::join!(api.invoke(json!({}), Duration::from_secs(5)), runtime_side);
    assert_eq!(
        outcome.expect_error(),
        ("fedsync::Error".to_owned(), "target refused".to_owned())
    );
}

#[tokio::test]
async fn lambda_api_next_blocks_until_an_event_is_queued() {
    let api = LambdaApi::start().await;
    let runtime = RuntimeClient::new(&api);
    let poll = runtime.next();
    tokio::pin!(poll);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut poll)
            .await
            .is_err(),
        "/next answered with no event queued"
    );
    let first_poll = api
        .wait_for_first_poll(Duration::from_secs(1))
        .await
        .expect("the blocked poll was recorded");
    let runtime_side = async {
        let id = request_id(&poll.await);
        runtime
            .post(&format!("invocation/{id}/response"), json!(null))
            .await;
    };
    let (outcome, ()) = tokio::join!(api.invoke(json!(1), Duration::from_secs(5)), runtime_side);
    assert_eq!(outcome, Invocation::Ok(Value::Null));
    assert_eq!(api.first_poll(), Some(first_poll));
}

#[tokio::test]
async fn lambda_api_times_out_and_drops_the_stale_event() {
    let api = LambdaApi::start().await;
    let outcome = api
        .invoke(json!({"stale": true}), Duration::from_millis(200))
        .await;
    assert_eq!(outcome, Invocation::Timeout);
    // A runtime that polls later must not get the timed-out event.
    let runtime = RuntimeClient::new(&api);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), runtime.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn lambda_api_init_error_fails_the_pending_invocation() {
    let api = LambdaApi::start().await;
    let runtime = RuntimeClient::new(&api);
    let init_error = json!({"errorType": "Runtime.InitError", "errorMessage": "bad config"});
    let runtime_side = async {
        // Let the invocation register before the runtime gives up.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runtime.post("init/error", init_error).await, 202);
    };
    let (outcome, ()) = tokio::join!(api.invoke(json!({}), Duration::from_secs(5)), runtime_side);
    let expected = ("Runtime.InitError".to_owned(), "bad config".to_owned());
    assert_eq!(outcome.expect_error(), expected);
    let reported = api.init_error().expect("the init error is kept");
    assert_eq!((reported.error_type, reported.message), expected);
}

#[test]
#[should_panic(expected = "run `cargo build --workspace --bins`")]
fn workspace_binary_names_the_build_command_when_missing() {
    workspace_binary("fedsync-no-such-binary");
}

/// The front's `GetWebIdentityToken` (outbound identity federation): signed calls only,
/// the STS model's constraints, and the account's feature switch.
mod outbound_federation {
    use super::{HOUR, http_status};
    use aws_credential_types::Credentials;
    use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
    use aws_sdk_sts::config::{BehaviorVersion, Region};
    use aws_sdk_sts::error::SdkError;
    use aws_sdk_sts::operation::get_web_identity_token::{
        GetWebIdentityTokenError, GetWebIdentityTokenOutput,
    };
    use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
    use aws_sdk_sts::types::Tag;
    use axum::http::{HeaderMap, HeaderValue};
    use fedsync_tests::issuer::{discover_jwks, unix_now};
    use fedsync_tests::sigv4::{self, Authorization};
    use fedsync_tests::sts_front::{AWS_CLAIMS, StsFront};
    use fedsync_tests::xml;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::{Value, json};
    use std::time::{Duration, SystemTime};

    const ROLE: &str = "arn:aws:iam::123456789012:role/fedsync-reader";
    const REGION: &str = "eu-west-1";
    const BODY: &str = "Action=GetWebIdentityToken&Version=2011-06-15\
                        &Audience.member.1=api%3A%2F%2FAzureADTokenExchange&SigningAlgorithm=RS256";

    /// A front whose account knows one role session; outbound federation is still off.
    /// (No upstream is needed: `GetWebIdentityToken` never reaches moto.)
    async fn front() -> (StsFront, Credentials) {
        let unused = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let front = StsFront::start(aws_sdk_sts::Client::from_conf(unused)).await;
        let session = session_credentials("ASIAHARNESSSESSION01", SystemTime::now() + HOUR);
        front.register_credentials(&session, ROLE);
        (front, session)
    }

    fn session_credentials(key_id: &str, expires: SystemTime) -> Credentials {
        let secret = format!("secret-of-{key_id}");
        let token = format!("session-token-of-{key_id}");
        Credentials::new(key_id, secret, Some(token), Some(expires), "harness")
    }

    fn client(front: &StsFront, credentials: Credentials) -> aws_sdk_sts::Client {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(front.endpoint())
            .credentials_provider(credentials)
            .build();
        aws_sdk_sts::Client::from_conf(config)
    }

    async fn request(
        client: &aws_sdk_sts::Client,
        audiences: &[&str],
        algorithm: &str,
        duration: Option<i32>,
        tags: &[(&str, &str)],
    ) -> Result<GetWebIdentityTokenOutput, SdkError<GetWebIdentityTokenError>> {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
            .collect();
        client
            .get_web_identity_token()
            .set_audience(Some(audiences.iter().map(|a| (*a).to_owned()).collect()))
            .signing_algorithm(algorithm)
            .set_duration_seconds(duration)
            .set_tags(Some(tags))
            .send()
            .await
    }

    /// The refusal's HTTP status, code and message.
    fn refusal(
        result: Result<GetWebIdentityTokenOutput, SdkError<GetWebIdentityTokenError>>,
    ) -> (Option<u16>, String, String) {
        let error = result.expect_err("the front must refuse this request");
        let status = http_status(&error);
        let error = error.into_service_error();
        let code = error.code().unwrap_or_default().to_owned();
        (status, code, error.message().unwrap_or_default().to_owned())
    }

    /// Verifies `token` the way a relying party does: the issuer's discovery document,
    /// its JWKS, the `kid`, the signature, `iss`, `aud`, `exp`.
    async fn verify(issuer: &str, token: &str, audience: &str) -> (Algorithm, Value) {
        let jwks = discover_jwks(&reqwest::Client::new(), issuer).await;
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid in JWKS");
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims;
        (header.alg, claims)
    }

    #[tokio::test]
    async fn sts_front_issues_outbound_tokens_to_signed_callers_only_once_enabled() {
        let (front, session) = front().await;
        let sts = client(&front, session.clone());
        let azure = ["api://AzureADTokenExchange"];
        let (status, code, message) = refusal(request(&sts, &azure, "RS256", None, &[]).await);
        assert_eq!(
            (status, code.as_str()),
            (Some(403), "OutboundWebIdentityFederationDisabledException"),
            "{message}"
        );

        let issuer = front.enable_outbound_federation().await;
        assert_eq!(
            front.enable_outbound_federation().await,
            issuer,
            "one issuer"
        );
        let out = request(&sts, &azure, "RS256", None, &[]).await.unwrap();
        let token = out.web_identity_token().unwrap();
        let (alg, claims) = verify(&issuer, token, azure[0]).await;
        assert_eq!(alg, Algorithm::RS256);
        assert_eq!(claims["sub"], ROLE);
        assert_eq!(claims["aud"], azure[0], "one audience: a string");
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, 300, "DurationSeconds defaults to 300");
        assert!(iat.abs_diff(unix_now()) <= 2);
        assert_eq!(out.expiration().unwrap().secs(), exp as i64);
        assert_eq!(
            claims[AWS_CLAIMS],
            json!({"aws_account": "123456789012", "source_region": REGION})
        );

        let google = "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/p";
        let tags = [("team", "platform"), ("cost-center", "sec/ops @1")];
        let out = request(&sts, &[google, azure[0]], "ES384", Some(900), &tags)
            .await
            .unwrap();
        let (alg, claims) = verify(&issuer, out.web_identity_token().unwrap(), google).await;
        assert_eq!(alg, Algorithm::ES384);
        assert_eq!(claims["aud"], json!([google, azure[0]]));
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 900);
        assert_eq!(
            claims[AWS_CLAIMS]["request_tags"],
            json!({"team": "platform", "cost-center": "sec/ops @1"})
        );

        let requests = front.token_requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(
            requests[0].outcome,
            Err("OutboundWebIdentityFederationDisabledException".into())
        );
        assert!(requests[1..].iter().all(|r| r.outcome.is_ok()
            && r.region.as_deref() == Some(REGION)
            && r.access_key_id.as_deref() == Some(session.access_key_id())));

        front.disable_outbound_federation();
        let (_, code, _) = refusal(request(&sts, &azure, "RS256", None, &[]).await);
        assert_eq!(code, "OutboundWebIdentityFederationDisabledException");
    }

    /// A request signed by hand at `signed_at`, with `session`'s token.
    fn hand_signed(
        front: &StsFront,
        session: &Credentials,
        secret: &str,
        signed_at: SystemTime,
    ) -> HeaderMap {
        let stamp = DateTime::from(signed_at)
            .fmt(DateTimeFormat::DateTime)
            .unwrap()
            .replace(['-', ':'], "");
        let amz_date = format!("{}Z", &stamp[..15]);
        let host = front.endpoint().trim_start_matches("http://").to_owned();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(&host).unwrap());
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert("x-amz-date", HeaderValue::from_str(&amz_date).unwrap());
        let token = session.session_token().unwrap();
        headers.insert(
            "x-amz-security-token",
            HeaderValue::from_str(token).unwrap(),
        );
        let mut authorization = Authorization {
            access_key_id: session.access_key_id().to_owned(),
            date: amz_date[..8].to_owned(),
            region: REGION.to_owned(),
            service: "sts".to_owned(),
            signed_headers: ["content-type", "host", "x-amz-date", "x-amz-security-token"]
                .map(str::to_owned)
                .to_vec(),
            signature: String::new(),
        };
        let request = sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: BODY.as_bytes(),
        };
        authorization.signature = sigv4::signature(secret, &request, &authorization, &amz_date);
        let value = format!(
            "{} Credential={}/{}, SignedHeaders={}, Signature={}",
            sigv4::ALGORITHM,
            authorization.access_key_id,
            authorization.scope(),
            authorization.signed_headers.join(";"),
            authorization.signature
        );
        headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
        headers
    }

    /// POSTs `body` with `headers`; the status, `<Code>` (empty on success) and
    /// `<Message>` (the whole body on success).
    async fn post(front: &StsFront, headers: HeaderMap, body: &str) -> (u16, String, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/", front.endpoint()))
            .headers(headers)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let code = xml::element_text(&text, "Code").unwrap_or_default();
        let message = xml::element_text(&text, "Message").unwrap_or(text);
        (status, code, message)
    }

    #[tokio::test]
    async fn sts_front_refuses_unsigned_and_badly_signed_token_requests() {
        let (front, session) = front().await;
        front.enable_outbound_federation().await;
        let secret = session.secret_access_key().to_owned();
        let now = SystemTime::now();

        let (status, code, _) =
            post(&front, hand_signed(&front, &session, &secret, now), BODY).await;
        assert_eq!(
            (status, code.as_str()),
            (200, ""),
            "the hand-signed request is good"
        );

        let mut unsigned = hand_signed(&front, &session, &secret, now);
        unsigned.remove("authorization");
        let cases = [
            (
                "unsigned",
                unsigned,
                BODY,
                403,
                "MissingAuthenticationToken",
                "missing Authentication Token",
            ),
            (
                "wrong secret",
                hand_signed(&front, &session, "not-the-secret", now),
                BODY,
                403,
                "SignatureDoesNotMatch",
                "does not match the signature you provided",
            ),
            (
                "body changed after signing",
                hand_signed(&front, &session, &secret, now),
                "Action=GetWebIdentityToken&Version=2011-06-15&Audience.member.1=evil&SigningAlgorithm=RS256",
                403,
                "SignatureDoesNotMatch",
                "does not match the signature you provided",
            ),
            (
                "signed 20 minutes ago",
                hand_signed(&front, &session, &secret, now - Duration::from_secs(1200)),
                BODY,
                403,
                "SignatureDoesNotMatch",
                "Signature expired",
            ),
        ];
        for (what, headers, body, status, code, message) in cases {
            let answer = post(&front, headers, body).await;
            assert_eq!(
                (answer.0, answer.1.as_str()),
                (status, code),
                "{what}: {}",
                answer.2
            );
            assert!(answer.2.contains(message), "{what}: {}", answer.2);
        }
        let mut no_token = hand_signed(&front, &session, &secret, now);
        no_token.remove("x-amz-security-token");
        let answer = post(&front, no_token, BODY).await;
        assert_eq!(
            (answer.0, answer.1.as_str()),
            (403, "InvalidClientTokenId"),
            "temporary credentials without their session token: {}",
            answer.2
        );

        let stranger = session_credentials("ASIAHARNESSSTRANGER1", now + HOUR);
        let (status, code, _) =
            refusal(request(&client(&front, stranger), &["a"], "RS256", None, &[]).await);
        assert_eq!((status, code.as_str()), (Some(403), "InvalidClientTokenId"));
        let wrong_secret = Credentials::new(
            session.access_key_id(),
            "not-the-secret",
            session.session_token().map(str::to_owned),
            session.expiry(),
            "harness",
        );
        let (status, code, _) =
            refusal(request(&client(&front, wrong_secret), &["a"], "RS256", None, &[]).await);
        assert_eq!(
            (status, code.as_str()),
            (Some(403), "SignatureDoesNotMatch")
        );
        let expired = session_credentials("ASIAHARNESSEXPIRED01", now - Duration::from_secs(60));
        front.register_credentials(&expired, ROLE);
        let (status, code, _) =
            refusal(request(&client(&front, expired), &["a"], "RS256", None, &[]).await);
        assert_eq!((status, code.as_str()), (Some(403), "ExpiredToken"));
        assert_eq!(
            front
                .token_requests()
                .iter()
                .filter(|r| r.outcome.is_ok())
                .count(),
            1,
            "only the good request got a token"
        );
    }

    /// What is wrong, the audiences, algorithm, duration and tags sent, and the member
    /// the `ValidationError` must name.
    type Invalid<'a> = (
        &'a str,
        Vec<&'a str>,
        &'a str,
        Option<i32>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );

    #[tokio::test]
    async fn sts_front_validates_token_requests_as_the_sts_model_does() {
        let (front, session) = front().await;
        let sts = client(&front, session);
        // Validation comes before the account's feature switch, as in AWS.
        let long = "a".repeat(1001);
        let eleven: Vec<String> = (0..11).map(|i| format!("aud-{i}")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        let many_tags: Vec<(String, String)> =
            (0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        let many_tags: Vec<(&str, &str)> = many_tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let cases: [Invalid<'_>; 9] = [
            ("no audience", vec![], "RS256", None, vec![], "'audience'"),
            (
                "eleven audiences",
                eleven,
                "RS256",
                None,
                vec![],
                "'audience'",
            ),
            (
                "audience too long",
                vec![&long],
                "RS256",
                None,
                vec![],
                "'audience.1.member'",
            ),
            (
                "unknown algorithm",
                vec!["a"],
                "ES256",
                None,
                vec![],
                "'signingAlgorithm'",
            ),
            (
                "algorithm of another length",
                vec!["a"],
                "RSA256",
                None,
                vec![],
                "'signingAlgorithm'",
            ),
            (
                "too short",
                vec!["a"],
                "RS256",
                Some(59),
                vec![],
                "'durationSeconds'",
            ),
            (
                "too long",
                vec!["a"],
                "RS256",
                Some(3601),
                vec![],
                "'durationSeconds'",
            ),
            ("51 tags", vec!["a"], "RS256", None, many_tags, "'tags'"),
            (
                "bad tag key",
                vec!["a"],
                "RS256",
                None,
                vec![("bad!", "v")],
                "'tags.1.member.key'",
            ),
        ];
        for (what, audiences, algorithm, duration, tags, member) in cases {
            let (status, code, message) =
                refusal(request(&sts, &audiences, algorithm, duration, &tags).await);
            assert_eq!(
                (status, code.as_str()),
                (Some(400), "ValidationError"),
                "{what}: {message}"
            );
            assert!(message.contains(member), "{what}: {message}");
        }
        let (_, _, message) = refusal(request(&sts, &["a"], "HS256", Some(10), &[]).await);
        assert!(
            message.starts_with("2 validation errors detected:"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn sts_front_refuses_tokens_that_would_outlive_the_calling_session() {
        let (front, _) = front().await;
        front.enable_outbound_federation().await;
        let short = session_credentials(
            "ASIAHARNESSSHORT0001",
            SystemTime::now() + Duration::from_secs(600),
        );
        front.register_credentials(&short, ROLE);
        let sts = client(&front, short);
        let (status, code, _) = refusal(request(&sts, &["a"], "RS256", Some(900), &[]).await);
        assert_eq!(
            (status, code.as_str()),
            (Some(403), "SessionDurationEscalationException")
        );
        request(&sts, &["a"], "RS256", Some(300), &[])
            .await
            .expect("a token that ends before the session is issued");
    }
}
