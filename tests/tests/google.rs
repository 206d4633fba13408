//! The Google path end to end: the real `fedsync-pubsub-push` receiver and the
//! real Lambda binary against the strict Google emulators (STS, IAM Credentials,
//! Secret Manager, metadata server, Pub/Sub's push signer), with moto behind the
//! validating STS front for the AWS side.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::google::{
    GoogleCloud, Principal, SecretManagerMethod, SecretManagerRole, ServiceAccountRole,
};
use fedsync_tests::google_world::*;
use fedsync_tests::leaks;
use serde_json::{Value, json};
use std::time::Duration;

/// The latest value and the version count of a destination secret.
fn held(google: &GoogleCloud, name: &str) -> (String, usize, Value) {
    let secret = google
        .secret_manager
        .secret(DEST_PROJECT.0, name)
        .unwrap_or_else(|| panic!("{name} was not created"));
    let latest = secret.latest().expect("a version");
    let annotations = json!(secret.annotations);
    (
        String::from_utf8(latest.data.clone().expect("not destroyed")).unwrap(),
        secret.versions.len(),
        annotations,
    )
}

/// A push request's body for `eventType` on the source secret, version `n`.
fn push_body(event_type: &str, n: u64) -> Value {
    let mut body = event("pubsub-secret-version-add.json");
    let secret = format!("projects/{}/secrets/{GOOGLE_SECRET}", SOURCE_PROJECT.1);
    let attributes = &mut body["message"]["attributes"];
    attributes["eventType"] = event_type.into();
    attributes["secretId"] = secret.clone().into();
    attributes["versionId"] = format!("{secret}/versions/{n}").into();
    body
}

fn statuses(answer: &Value) -> Vec<(String, String)> {
    let mut s: Vec<_> = answer["report"]["outcomes"]
        .as_array()
        .unwrap_or_else(|| panic!("no outcomes: {answer:#}"))
        .iter()
        .map(|o| {
            (
                o["destination"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    s.sort();
    s
}

#[tokio::test]
async fn a_signed_push_lands_the_google_value_in_aws_and_in_another_google_project() {
    let w = push_world().await;
    let (status, answer) = w
        .push(&push_body("SECRET_VERSION_ADD", 1), Some(w.good_token()))
        .await;
    assert_eq!(status, 200, "{answer:#}");
    let synced = vec![
        ("aws-dr".to_string(), "synced".to_string()),
        ("gcp-dr".to_string(), "synced".to_string()),
    ];
    assert_eq!(statuses(&answer), synced, "{answer:#}");
    assert!(
        answer["report"].get("error").is_none(),
        "confirming the source needs no more than secretAccessor: {answer:#}"
    );

    let aws = w
        .clouds
        .destination()
        .get_secret_value()
        .secret_id(GOOGLE_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(aws.secret_string(), Some(VALUE));
    let (value, versions, annotations) = held(&w.google, GOOGLE_SECRET);
    assert_eq!((value.as_str(), versions), (VALUE, 1));
    assert_eq!(
        annotations["fedsync-source"],
        format!("gsm:{GOOGLE_SECRET}")
    );
    assert_eq!(annotations["fedsync-source-version"], "1");

    // The same push again is a no-op everywhere.
    let (_, answer) = w
        .push(&push_body("SECRET_VERSION_ADD", 1), Some(w.good_token()))
        .await;
    let unchanged = vec![
        ("aws-dr".to_string(), "unchanged".to_string()),
        ("gcp-dr".to_string(), "unchanged".to_string()),
    ];
    assert_eq!(statuses(&answer), unchanged, "{answer:#}");
    assert!(
        !w.receiver.logs().contains(VALUE),
        "the value appears in the logs"
    );
}

#[tokio::test]
async fn unauthenticated_pushes_get_401_and_touch_nothing() {
    let w = push_world().await;
    let other = fedsync_tests::issuer::Issuer::start().await;
    let g = &w.google.issuer;
    let hour = Duration::from_secs(3600);
    let mut expired = g.push_claims(PUSH_AUDIENCE, PUSH_ACCOUNT, true, hour);
    expired["exp"] = json!(fedsync_tests::issuer::unix_now() - 600);
    expired["iat"] = json!(fedsync_tests::issuer::unix_now() - 4200);
    let cases = [
        ("missing", None),
        ("expired", Some(g.sign(&expired))),
        (
            "wrong audience",
            Some(g.push_token("https://elsewhere.example/", PUSH_ACCOUNT, true, hour)),
        ),
        (
            "wrong email",
            Some(g.push_token(
                PUSH_AUDIENCE,
                "intruder@evil.iam.gserviceaccount.com",
                true,
                hour,
            )),
        ),
        (
            "unverified email",
            Some(g.push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, false, hour)),
        ),
        (
            "signed by another key",
            Some(other.mint(&g.push_claims(PUSH_AUDIENCE, PUSH_ACCOUNT, true, hour))),
        ),
        ("not a JWT", Some("garbage".to_string())),
    ];
    for (what, token) in cases {
        let (status, _) = w.push(&push_body("SECRET_VERSION_ADD", 1), token).await;
        assert_eq!(status, 401, "{what}");
    }
    assert_eq!(
        w.google
            .secret_manager
            .calls(SecretManagerMethod::AccessSecretVersion),
        0,
        "no store call"
    );
    assert!(
        w.clouds.sts.exchanges().is_empty() && w.google.sts.exchanges().is_empty(),
        "no exchange"
    );
    let logs = w.receiver.logs();
    assert!(
        logs.contains("refused an unauthenticated push request"),
        "{logs}"
    );
}

#[tokio::test]
async fn duplicate_and_out_of_order_pushes_never_regress_nor_duplicate() {
    let w = push_world().await;
    let token = w.good_token();
    w.push(&push_body("SECRET_VERSION_ADD", 1), Some(token.clone()))
        .await;
    w.google.secret_manager.add_version(
        SOURCE_PROJECT.0,
        GOOGLE_SECRET,
        leaks::secret("second-value").as_bytes(),
    );
    let (_, answer) = w
        .push(&push_body("SECRET_VERSION_ADD", 2), Some(token.clone()))
        .await;
    assert!(
        statuses(&answer).iter().all(|(_, s)| s == "synced"),
        "{answer:#}"
    );
    // A late duplicate of the first push, then the second again.
    for n in [1, 2, 1] {
        let (status, answer) = w
            .push(&push_body("SECRET_VERSION_ADD", n), Some(token.clone()))
            .await;
        assert_eq!(status, 200);
        assert!(
            statuses(&answer).iter().all(|(_, s)| s == "unchanged"),
            "{answer:#}"
        );
    }
    let (value, versions, annotations) = held(&w.google, GOOGLE_SECRET);
    assert_eq!(
        (value.as_str(), versions),
        ("second-value", 2),
        "one Google version per source version"
    );
    assert_eq!(annotations["fedsync-source-version"], "2");
    let aws = w
        .clouds
        .destination()
        .get_secret_value()
        .secret_id(GOOGLE_SECRET)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert_eq!(aws.secret_string(), Some("second-value"));
    assert_eq!(w.clouds.versions(GOOGLE_SECRET).await, 2);
}

#[tokio::test]
async fn topic_configured_and_unusable_messages_are_acknowledged_without_a_sync() {
    let w = push_world().await;
    let (status, answer) = w
        .push(&event("pubsub-topic-configured.json"), Some(w.good_token()))
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    let mut unusable = push_body("SECRET_VERSION_ADD", 1);
    unusable["message"]["attributes"]["secretId"] = "bogus".into();
    let (status, answer) = w.push(&unusable, Some(w.good_token())).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("rejected")),
        "acknowledged, so it cannot loop"
    );
}

/// The Lambda with its own signing key, writing to Google through STS and impersonation.
async fn lambda_to_google(
    condition: &str,
) -> (
    Clouds,
    GoogleCloud,
    fedsync_tests::lambda_api::LambdaApi,
    fedsync_tests::lambda_api::LambdaProcess,
) {
    let clouds = Clouds::start().await;
    let google = google().await;
    let provider = trust(&google, clouds.issuer.url(), condition);
    let federated = Principal::federated(DEST_PROJECT.1, POOL, SUBJECT).member();
    google.iam.grant(
        WRITER_ACCOUNT,
        ServiceAccountRole::WorkloadIdentityUser,
        &federated,
    );
    google.secret_manager.grant(
        DEST_PROJECT.0,
        &Principal::service_account(WRITER_ACCOUNT).member(),
        SecretManagerRole::Admin,
    );
    let rules = "[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"gcp-dr\"]\nname = \"{basename}\"\n";
    let config = clouds.config_with_rules(
        "",
        SUBJECT,
        &format!(
            "{}\n{rules}",
            google_destination(&google, &provider, "deploy", Some(WRITER_ACCOUNT))
        ),
    );
    let (api, process) = clouds.function(&config).await;
    (clouds, google, api, process)
}

#[tokio::test]
async fn an_eventbridge_change_lands_in_google_through_sts_and_impersonation() {
    let (clouds, google, api, process) =
        lambda_to_google(&format!("assertion.sub == '{SUBJECT}'")).await;
    for expected in ["synced", "unchanged"] {
        let answer = api
            .invoke(
                event("eventbridge-put-secret-value.json"),
                Duration::from_secs(60),
            )
            .await
            .expect_ok();
        assert_eq!(
            answer["report"]["outcomes"][0]["status"], expected,
            "{answer:#}"
        );
    }
    let (value, versions, annotations) = held(&google, "db");
    assert_eq!((value.as_str(), versions), (VALUE, 1));
    assert_eq!(annotations["fedsync-source"], format!("main:{SECRET}"));
    assert_eq!(
        (google.sts.successes(), google.iam.successes()),
        (1, 1),
        "one exchange, one impersonation"
    );
    assert!(!process.logs().contains(VALUE));
    drop(clouds);
}

#[tokio::test]
async fn a_failed_attribute_condition_is_named_and_nothing_is_written() {
    let (_clouds, google, api, _process) =
        lambda_to_google("assertion.sub == 'fedsync:someone-else'").await;
    let answer = api
        .invoke(
            event("eventbridge-put-secret-value.json"),
            Duration::from_secs(60),
        )
        .await
        .expect_ok();
    let o = &answer["report"]["outcomes"][0];
    assert_eq!(
        (o["status"].as_str(), o["class"].as_str()),
        (Some("failed"), Some("auth")),
        "{answer:#}"
    );
    let message = o["message"].as_str().unwrap();
    assert!(
        message.contains("invalid_grant") && message.contains("attribute condition"),
        "{message}"
    );
    assert!(
        message.contains(&format!("subject \"{SUBJECT}\"")),
        "{message}"
    );
    assert!(google.secret_manager.secret(DEST_PROJECT.0, "db").is_none());
}
