//! The AWS path end to end: the real `fedsync-eventbridge` binary, fed through a
//! Lambda Runtime API server, reads its source from moto with the function's own
//! role credentials, exchanges its signed token at a validating STS front, and
//! writes to moto's Secrets Manager in another region with IAM checking on.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::lambda_api::LambdaApi;
use fedsync_tests::leaks;
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

    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));
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

/// The Embedded Metric Format documents the function printed.
fn metric_documents(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

#[tokio::test]
async fn each_sync_prints_its_outcome_and_propagation_latency_as_cloudwatch_metrics() {
    let clouds = Clouds::start().await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;
    // The change happened two seconds before it was delivered.
    let mut change = event("eventbridge-put-secret-value.json");
    let changed_at = std::time::SystemTime::now() - Duration::from_secs(2);
    change["time"] = humantime::format_rfc3339_seconds(changed_at)
        .to_string()
        .into();
    let answer = api.invoke(change.clone(), INVOKE_TIMEOUT).await.expect_ok();
    assert_eq!(outcome(&answer)["status"], "synced", "{answer:#}");
    api.invoke(change, INVOKE_TIMEOUT).await.expect_ok();

    // The output is read as it comes: wait for the second sync's line.
    assert!(
        process
            .wait_for_log(r#""Outcome":"unchanged""#, Duration::from_secs(10))
            .await,
        "{}",
        process.logs()
    );
    let documents = metric_documents(&process.logs());
    assert_eq!(
        documents.len(),
        2,
        "one per destination per sync: {documents:#?}"
    );
    let (synced, unchanged) = (&documents[0], &documents[1]);
    let directive = &synced["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "fedsync");
    assert_eq!(
        directive["Dimensions"],
        json!([["Destination", "Outcome"], ["Outcome"]])
    );
    assert_eq!(
        (&synced["Destination"], &synced["Outcome"], &synced["Syncs"]),
        (&json!("aws-dr"), &json!("synced"), &json!(1))
    );
    let latency = synced["PropagationLatency"].as_u64().unwrap();
    assert!(
        (2000..60_000).contains(&latency),
        "from the change to the write: {latency} ms"
    );
    assert_eq!(unchanged["Outcome"], "unchanged");
    assert!(
        unchanged.get("PropagationLatency").is_none(),
        "nothing landed: {unchanged}"
    );
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
        .secret_string(leaks::secret("second-value"))
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
        .secret_string(leaks::secret("owned-by-someone-else"))
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

/// A PutSecretValue event that names the secret only as the caller sent it.
fn put_event_naming(secret_id: &str) -> Value {
    let mut e = event("eventbridge-put-secret-value.json");
    e["detail"]["responseElements"] = Value::Null;
    e["detail"]["requestParameters"]["secretId"] = secret_id.into();
    e
}

#[tokio::test]
async fn a_source_rollback_moves_the_destination_back_without_a_new_version() {
    let clouds = Clouds::start().await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;
    let first = clouds.source_version().await;
    assert_eq!(
        outcome(&deliver(&api, "eventbridge-put-secret-value.json").await)["status"],
        "synced"
    );
    let source = clouds.moto.secrets_manager();
    let second = source
        .put_secret_value()
        .secret_id(SECRET)
        .secret_string(leaks::secret("second-value"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(&deliver(&api, "eventbridge-put-secret-value.json").await)["status"],
        "synced"
    );

    // Roll the source back: AWSCURRENT moves to the first version again.
    source
        .update_secret_version_stage()
        .secret_id(SECRET)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&first)
        .remove_from_version_id(second.version_id().unwrap())
        .send()
        .await
        .unwrap();
    let answer = deliver(&api, "eventbridge-secret-label-updated.json").await;
    assert_eq!(outcome(&answer)["status"], "synced", "{answer:#}");
    // Asked by stage: moto's default read does not follow a moved AWSCURRENT (AWS's does).
    let now = clouds
        .destination()
        .get_secret_value()
        .secret_id(SECRET)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert_eq!(
        now.secret_string(),
        Some(VALUE),
        "the destination holds the rolled-back value"
    );
    assert_eq!(
        clouds.versions(SECRET).await,
        2,
        "the earlier version was reused, not rewritten"
    );
    let answer = deliver(&api, "eventbridge-secret-label-updated.json").await;
    assert_eq!(
        outcome(&answer)["status"],
        "unchanged",
        "and the marks agree with it: {answer:#}"
    );
    let logs = process.logs();
    assert_no_leak(&logs);
    assert!(!logs.contains("second-value"));
}

#[tokio::test]
async fn a_deletion_propagates_under_on_delete_delete_and_a_restore_brings_the_copy_back() {
    let clouds = Clouds::start().await;
    let rules = "[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"aws-dr\"]\non_delete = \"delete\"\n";
    let (api, process) = clouds
        .function(&clouds.config_with_rules("recovery_window_days = 7", SUBJECT, rules))
        .await;
    assert_eq!(
        outcome(&deliver(&api, "eventbridge-put-secret-value.json").await)["status"],
        "synced"
    );

    let source = clouds.moto.secrets_manager();
    source
        .delete_secret()
        .secret_id(SECRET)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let answer = deliver(&api, "eventbridge-delete-secret.json").await;
    assert_eq!(
        (
            answer["report"]["kind"].as_str(),
            outcome(&answer)["status"].as_str()
        ),
        (Some("delete"), Some("deleted")),
        "{answer:#}"
    );
    let described = clouds
        .destination()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    assert!(
        described.deleted_date().is_some(),
        "scheduled for deletion with its recovery window"
    );
    let answer = deliver(&api, "eventbridge-delete-secret.json").await;
    assert_eq!(
        outcome(&answer)["status"],
        "unchanged",
        "a redelivered deletion changes nothing"
    );

    source
        .restore_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    let answer = deliver(&api, "eventbridge-restore-secret.json").await;
    assert_eq!(outcome(&answer)["status"], "synced", "{answer:#}");
    let described = clouds
        .destination()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    assert!(
        described.deleted_date().is_none(),
        "fedsync's own copy was restored"
    );
    assert_eq!(clouds.versions(SECRET).await, 1);
    assert_no_leak(&process.logs());
}

#[tokio::test]
async fn deletions_are_ignored_by_default_and_unmanaged_copies_never_deleted() {
    let clouds = Clouds::start().await;
    clouds
        .destination()
        .create_secret()
        .name(SECRET)
        .secret_string(leaks::secret("theirs-unmanaged-copy-8a1f"))
        .send()
        .await
        .unwrap();
    let rules = "[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"aws-dr\"]\non_delete = \"delete\"\n";
    let (api, _process) = clouds
        .function(&clouds.config_with_rules("", SUBJECT, rules))
        .await;
    clouds
        .moto
        .secrets_manager()
        .delete_secret()
        .secret_id(SECRET)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let answer = deliver(&api, "eventbridge-delete-secret.json").await;
    assert_eq!(outcome(&answer)["status"], "skipped", "{answer:#}");
    let kept = clouds
        .destination()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    assert!(kept.deleted_date().is_none());

    let (api, _process) = clouds.function(&clouds.config("", SUBJECT)).await;
    let answer = deliver(&api, "eventbridge-delete-secret.json").await;
    assert!(
        outcome(&answer)["reason"]
            .as_str()
            .unwrap()
            .contains("on_delete = \"ignore\""),
        "{answer:#}"
    );
}

#[tokio::test]
async fn key_granularity_writes_one_secret_per_json_key() {
    let clouds = Clouds::start().await;
    let json = r#"{"user":"app","password":"pw-Zq81-never-logged","port":5432}"#;
    clouds
        .moto
        .secrets_manager()
        .create_secret()
        .name("prod/app/cfg")
        .secret_string(leaks::secret(json))
        .send()
        .await
        .unwrap();
    let rules = "[[rules]]\nsource = \"main\"\nmatch = \"prod/app/cfg\"\ndestinations = [\"aws-dr\"]\ngranularity = \"key\"\nname = \"{name}/{key}\"\n";
    let (api, process) = clouds
        .function(&clouds.config_with_rules("", SUBJECT, rules))
        .await;

    let answer = api
        .invoke(put_event_naming("prod/app/cfg"), INVOKE_TIMEOUT)
        .await
        .expect_ok();
    let outcomes = answer["report"]["outcomes"].as_array().unwrap();
    let mut names: Vec<_> = outcomes
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("prod/app/cfg/password", "synced"),
            ("prod/app/cfg/port", "synced"),
            ("prod/app/cfg/user", "synced")
        ]
    );
    for (name, value) in [
        ("prod/app/cfg/password", "pw-Zq81-never-logged"),
        ("prod/app/cfg/port", "5432"),
    ] {
        let got = clouds
            .destination()
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        assert_eq!(got.secret_string(), Some(value));
    }
    let tags = clouds.tags("prod/app/cfg/user").await;
    assert!(
        tags.contains(&("fedsync:source".into(), "main:prod/app/cfg#user".into())),
        "{tags:?}"
    );
    assert!(!process.logs().contains("pw-Zq81-never-logged"));
}

#[tokio::test]
async fn an_event_naming_the_secret_by_arn_is_resolved_through_the_source() {
    let clouds = Clouds::start().await;
    let arn = clouds
        .moto
        .secrets_manager()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;
    let answer = api
        .invoke(put_event_naming(&arn), INVOKE_TIMEOUT)
        .await
        .expect_ok();
    assert_eq!(answer["report"]["secret"], SECRET, "{answer:#}");
    assert_eq!(outcome(&answer)["status"], "synced");
    assert_no_leak(&process.logs());
}

#[tokio::test]
async fn binary_values_are_copied_as_bytes_and_oversized_ones_refused_before_any_write() {
    let clouds = Clouds::start().await;
    let source = clouds.moto.secrets_manager();
    let bytes = leaks::secret_bytes((0..=255u8).cycle().take(1000).collect::<Vec<u8>>());
    let blob = aws_sdk_secretsmanager::primitives::Blob::new(bytes.clone());
    source
        .create_secret()
        .name("prod/app/cert")
        .secret_binary(blob)
        .send()
        .await
        .unwrap();
    let big = leaks::secret("x".repeat(65_537));
    source
        .create_secret()
        .name("prod/app/big")
        .secret_string(&big)
        .send()
        .await
        .unwrap();
    let (api, _process) = clouds.function(&clouds.config("", SUBJECT)).await;

    let answer = api
        .invoke(put_event_naming("prod/app/cert"), INVOKE_TIMEOUT)
        .await
        .expect_ok();
    assert_eq!(outcome(&answer)["status"], "synced", "{answer:#}");
    let got = clouds
        .destination()
        .get_secret_value()
        .secret_id("prod/app/cert")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.secret_binary().map(|b| b.as_ref().to_vec()),
        Some(bytes)
    );

    // moto, unlike AWS, stores a value over the limit: fedsync must refuse to copy it.
    {
        let answer = api
            .invoke(put_event_naming("prod/app/big"), INVOKE_TIMEOUT)
            .await
            .expect_ok();
        let o = outcome(&answer);
        assert_eq!(
            (o["status"].as_str(), o["class"].as_str()),
            (Some("failed"), Some("bad-input")),
            "{answer:#}"
        );
        assert!(
            o["message"].as_str().unwrap().contains("at most 65536"),
            "{answer:#}"
        );
        assert!(
            clouds
                .destination()
                .describe_secret()
                .secret_id("prod/app/big")
                .send()
                .await
                .is_err(),
            "nothing written"
        );
    }
}
