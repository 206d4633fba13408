//! The AWS path end to end: the real `fedsync-eventbridge` binary, fed through a
//! Lambda Runtime API server, reads its source from moto with the function's own
//! role credentials, exchanges its signed token at a validating STS front, and
//! writes to moto's Secrets Manager in another region with IAM checking on.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::lambda_api::LambdaApi;
use fedsync_tests::sts_front::StsError;
use serde_json::{Value, json};
use std::time::Duration;

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Delivers a sample event and returns the function's successful answer.
async fn deliver(api: &LambdaApi, file: &str) -> Value {
    api.invoke(event(file), INVOKE_TIMEOUT).await.expect_ok()
}

/// The one destination outcome of a processed report.
fn outcome(answer: &Value) -> &Value {
    assert_eq!(answer["status"], "processed", "{answer:#}");
    let outcomes = answer["report"]["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{answer:#}");
    &outcomes[0]
}

fn assert_no_leak(logs: &str) {
    assert!(!logs.is_empty(), "the function logged nothing");
    assert!(
        !logs.contains(VALUE),
        "the secret value appears in the logs:\n{logs}"
    );
}

#[tokio::test]
async fn a_put_secret_value_event_lands_once_tagged_in_the_destination_region() {
    let clouds = Clouds::start().await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;

    let answer = deliver(&api, "eventbridge-put-secret-value.json").await;
    let o = outcome(&answer);
    assert_eq!(
        (
            o["status"].as_str(),
            o["name"].as_str(),
            o["exchanges"].as_u64()
        ),
        (Some("synced"), Some(SECRET), Some(1)),
        "{answer:#}"
    );

    let written = clouds
        .destination()
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(written.secret_string(), Some(VALUE));
    assert_eq!(clouds.versions(SECRET).await, 1);
    let version = clouds.source_version().await;
    assert_eq!(answer["report"]["source_version"], version.as_str());
    assert_eq!(
        clouds.tags(SECRET).await,
        vec![
            ("fedsync:managed-by".into(), "fedsync".into()),
            ("fedsync:source".into(), format!("main:{SECRET}")),
            ("fedsync:source-version".into(), version),
            ("team".into(), "platform".into()),
        ]
    );
    assert_eq!(clouds.sts.successes(&clouds.writer_role), 1);
    assert_no_leak(&process.logs());
}

#[tokio::test]
async fn redelivery_and_a_retry_after_a_failure_leave_exactly_one_version() {
    let clouds = Clouds::start().await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;

    // STS is unavailable: the invocation fails so that Lambda retries it.
    clouds.sts.fail_next(10, StsError::service_unavailable());
    let (_, message) = api
        .invoke(event("eventbridge-put-secret-value.json"), INVOKE_TIMEOUT)
        .await
        .expect_error();
    assert!(
        message.contains("needs a retry") && message.contains("aws-dr"),
        "{message}"
    );
    clouds.sts.clear_faults();
    // A failed exchange is remembered for a short backoff only; Lambda retries later than that.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Lambda's retry, then EventBridge delivering the same event twice more.
    let mut statuses = vec![];
    for file in [
        "eventbridge-put-secret-value.json",
        "eventbridge-put-secret-value.json",
        "eventbridge-secret-label-updated.json",
    ] {
        let answer = deliver(&api, file).await;
        statuses.push(outcome(&answer)["status"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses, ["synced", "unchanged", "unchanged"]);
    assert_eq!(clouds.versions(SECRET).await, 1);

    // A cold instance (empty cache) redelivering the same event changes nothing either.
    drop(process);
    drop(api);
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;
    let answer = deliver(&api, "eventbridge-put-secret-value.json").await;
    assert_eq!(outcome(&answer)["status"], "unchanged");
    assert_eq!(clouds.versions(SECRET).await, 1);

    // A new source value is a new destination version.
    clouds
        .moto
        .secrets_manager()
        .put_secret_value()
        .secret_id(SECRET)
        .secret_string("second-value")
        .send()
        .await
        .unwrap();
    let answer = deliver(&api, "eventbridge-put-secret-value.json").await;
    assert_eq!(outcome(&answer)["status"], "synced");
    assert_eq!(clouds.versions(SECRET).await, 2);
    assert_no_leak(&process.logs());
}

/// Runs one event with a trust mismatch and returns the failure message.
async fn refused(destination_extra: &str, subject: &str) -> String {
    let clouds = Clouds::start().await;
    let (api, process) = clouds
        .function(&clouds.config(destination_extra, subject))
        .await;
    // A trust failure is not retryable: the invocation succeeds and reports it.
    let answer = deliver(&api, "eventbridge-put-secret-value.json").await;
    let o = outcome(&answer);
    assert_eq!(
        (
            o["status"].as_str(),
            o["class"].as_str(),
            o["retryable"].as_bool()
        ),
        (Some("failed"), Some("auth"), Some(false)),
        "{answer:#}"
    );
    let missing = clouds
        .destination()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await;
    assert!(
        missing.is_err(),
        "nothing may be written when the exchange is refused"
    );
    assert_eq!(clouds.sts.successes(&clouds.writer_role), 0);
    assert_no_leak(&process.logs());
    assert!(
        process.logs().contains("AccessDenied"),
        "the refusal is logged"
    );
    o["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_token_with_the_wrong_audience_is_refused_and_the_error_names_it() {
    let message = refused(r#"audience = "api://not-sts""#, SUBJECT).await;
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(message.contains(r#"audience "api://not-sts""#), "{message}");
    assert!(
        message.contains(":aud"),
        "the hint points at the audience condition: {message}"
    );
}

#[tokio::test]
async fn a_token_with_the_wrong_subject_is_refused_and_the_error_names_it() {
    let message = refused("", "fedsync:someone-else").await;
    assert!(
        message.contains(r#"subject "fedsync:someone-else""#),
        "{message}"
    );
    assert!(
        message.contains(":sub"),
        "the hint points at the subject condition: {message}"
    );
}

#[tokio::test]
async fn a_secret_fedsync_does_not_manage_is_left_alone() {
    let clouds = Clouds::start().await;
    clouds
        .destination()
        .create_secret()
        .name(SECRET)
        .secret_string("owned-by-someone-else")
        .send()
        .await
        .unwrap();
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;

    let answer = deliver(&api, "eventbridge-put-secret-value.json").await;
    let o = outcome(&answer);
    assert_eq!(o["status"], "skipped", "{answer:#}");
    assert!(
        o["reason"].as_str().unwrap().contains("does not manage"),
        "{answer:#}"
    );
    let kept = clouds
        .destination()
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.secret_string(), Some("owned-by-someone-else"));
    assert_eq!(clouds.versions(SECRET).await, 1);
    assert!(clouds.tags(SECRET).await.is_empty());
    assert_no_leak(&process.logs());
}

#[tokio::test]
async fn unrelated_events_are_ignored_and_malformed_ones_rejected_without_retry() {
    let clouds = Clouds::start().await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;

    let answer = deliver(&api, "eventbridge-unrelated.json").await;
    assert_eq!(answer, json!({"status": "ignored"}));
    let answer = api.invoke(json!({"source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": "PutSecretValue"}}), INVOKE_TIMEOUT).await.expect_ok();
    assert_eq!(answer["status"], "rejected", "{answer:#}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("names no secret"),
        "{answer:#}"
    );
    assert_eq!(
        clouds.sts.exchanges().len(),
        0,
        "nothing was exchanged for them"
    );
    assert_no_leak(&process.logs());
}
