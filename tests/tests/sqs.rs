//! SQS batches end to end: the real `fedsync-eventbridge` binary, invoked the way
//! an SQS event source mapping invokes it, syncs every record's change from moto
//! through the validating STS front, and answers with a partial batch response
//! that lists exactly the records SQS must deliver again. Upstream of it, the
//! real `fedsync-relay` binary queues EventBridge events in moto's FIFO queue,
//! one message group per secret, and the function drains what it queued.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::leaks;
use fedsync_tests::moto::credentials_env;
use fedsync_tests::sts_front::StsError;
use serde_json::{Value, json};
use std::time::Duration;

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The sample batch's other secret.
const OTHER: &str = "prod/app/cache";
const OTHER_VALUE: &str = "another-s3cr3t-that-must-never-be-logged-91c4";

/// Creates the second source secret the sample batch names.
async fn create_other(clouds: &Clouds) {
    clouds
        .moto
        .secrets_manager()
        .create_secret()
        .name(OTHER)
        .secret_string(leaks::secret(OTHER_VALUE))
        .send()
        .await
        .unwrap();
}

/// The record ids the answer lists for a retry.
async fn failures(api: &LambdaApi, batch: Value) -> Vec<String> {
    let answer = api.invoke(batch, INVOKE_TIMEOUT).await.expect_ok();
    let listed = answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a partial batch response: {answer:#}"));
    listed
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

/// A record of the sample batch re-cut: `message_id`, in `group`, carrying the
/// event of the sample record `from` (0, 1: the first secret; 2: the other).
fn record(message_id: &str, group: &str, from: usize) -> Value {
    let mut record = event("sqs-batch.json")["Records"][from].clone();
    record["messageId"] = message_id.into();
    record["attributes"]["MessageGroupId"] = group.into();
    record
}

fn assert_no_leak(logs: &str) {
    assert!(!logs.is_empty(), "the function logged nothing");
    for value in [VALUE, OTHER_VALUE] {
        assert!(
            !logs.contains(value),
            "a secret value appears in the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn a_batch_of_two_secrets_lands_and_lists_nothing_to_retry() {
    let clouds = Clouds::start().await;
    create_other(&clouds).await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;

    let listed = failures(&api, event("sqs-batch.json")).await;
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));
    assert_eq!(clouds.written(OTHER).await.as_deref(), Some(OTHER_VALUE));
    // The second record of the first secret found its version already there.
    assert_eq!(clouds.versions(SECRET).await, 1);
    assert_eq!(clouds.versions(OTHER).await, 1);
    let logs = process.logs();
    for id in [
        "2e1424d4-f796-459a-8184-9c92662be6da",
        "4d8f3c2a-6b1e-4f0a-9c7d-1e2f3a4b5c6d",
        "7a9b8c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6e",
    ] {
        assert!(logs.contains(id), "record {id} is not logged:\n{logs}");
    }
    assert_no_leak(&logs);
}

#[tokio::test]
async fn a_refused_record_and_the_rest_of_its_group_are_listed_and_no_other_group() {
    let clouds = Clouds::start().await;
    create_other(&clouds).await;
    // The other secret goes to a destination of its own (its own session, so its
    // own cached credentials): the STS faults below reach only that group.
    let rules = format!(
        r#"
[destinations.aws-dr-other]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "{role}"
identity = "deploy"
session_name = "fedsync-other"
endpoint = "{moto}"
sts_endpoint = "{sts}"

[[rules]]
source = "main"
match = "prod/app/db"
destinations = ["aws-dr"]

[[rules]]
source = "main"
match = "{OTHER}"
destinations = ["aws-dr-other"]
"#,
        role = clouds.writer_role,
        moto = clouds.moto.endpoint(),
        sts = clouds.sts.endpoint(),
    );
    let (api, process) = clouds
        .function(&clouds.config_with_rules("", SUBJECT, &rules))
        .await;

    // A single EventBridge event still works, and leaves aws-dr's credentials cached.
    let answer = api
        .invoke(event("eventbridge-put-secret-value.json"), INVOKE_TIMEOUT)
        .await
        .expect_ok();
    assert_eq!(
        answer["report"]["outcomes"][0]["status"], "synced",
        "{answer:#}"
    );

    // STS is unavailable: the other secret's exchange fails, in a retryable way.
    clouds.sts.fail_next(10, StsError::service_unavailable());
    let batch = json!({"Records": [
        record("db-1", SECRET, 0),
        record("other-1", OTHER, 2),
        record("other-2", OTHER, 2),
        record("db-2", SECRET, 1),
        record("other-3", OTHER, 2),
    ]});
    let listed = failures(&api, batch).await;
    assert_eq!(listed, ["other-1", "other-2", "other-3"]);
    assert_eq!(clouds.written(OTHER).await, None);
    assert_eq!(clouds.versions(SECRET).await, 1);
    let logs = process.logs();
    for held_back in ["other-2", "other-3"] {
        assert!(
            logs.lines().any(|l| l.contains(held_back)
                && l.contains("not handled: an earlier record of its message group needs a retry")),
            "{held_back} was handled or not logged:\n{logs}"
        );
    }
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("\"message_id\":\"other-2\"")
                && l.contains("handling an SQS record")),
        "other-2 was handled after other-1 failed:\n{logs}"
    );

    // SQS delivers the listed records again; STS is back (and the failure is
    // remembered only for a short backoff, shorter than SQS's visibility timeout).
    clouds.sts.clear_faults();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let retry = json!({"Records": [
        record("other-1", OTHER, 2),
        record("other-2", OTHER, 2),
        record("other-3", OTHER, 2),
    ]});
    let listed = failures(&api, retry).await;
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(clouds.written(OTHER).await.as_deref(), Some(OTHER_VALUE));
    assert_eq!(clouds.versions(OTHER).await, 1);
    assert_no_leak(&process.logs());
}

#[tokio::test]
async fn a_malformed_record_is_rejected_without_a_retry_and_holds_nothing_back() {
    let clouds = Clouds::start().await;
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;

    let mut not_json = record("bad-1", SECRET, 0);
    not_json["body"] = "{\"version\": \"0\", ".into();
    let mut not_an_event = record("bad-2", SECRET, 0);
    not_an_event["body"] = "[1, 2, 3]".into();
    let batch = json!({"Records": [not_json, not_an_event, record("db-1", SECRET, 0)]});
    let listed = failures(&api, batch).await;
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));
    let logs = process.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("bad-1") && l.contains("Records[0].body is not JSON")),
        "the unreadable record is not logged:\n{logs}"
    );
    assert!(
        logs.contains("not an EventBridge event"),
        "the record that is no EventBridge event is not logged:\n{logs}"
    );
    assert_no_leak(&logs);
}

/// The relay's answer for one event.
async fn relay(api: &LambdaApi, event: Value) -> Value {
    api.invoke(event, INVOKE_TIMEOUT).await.expect_ok()
}

#[tokio::test]
async fn the_relay_queues_each_secret_in_its_own_group_and_the_function_drains_the_queue() {
    let clouds = Clouds::start().await;
    create_other(&clouds).await;
    let moto = &clouds.moto;
    let sqs = moto.sqs();
    moto.disable_iam_auth().await;
    // The relay may queue messages, and nothing else: no secret is read through it.
    let (queue_url, relay_role) = moto.change_queue("fedsync-changes.fifo").await;
    moto.enable_iam_auth().await;
    let mut env = credentials_env(&moto.role_credentials(&relay_role, "relay").await);
    env.extend([
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT_URL", moto.endpoint().to_string()),
        ("FEDSYNC_CHANGE_QUEUE_URL", queue_url.clone()),
        ("FEDSYNC_LOG", "trace".to_string()),
    ]);
    let relay_api = LambdaApi::start().await;
    let relay_process = LambdaProcess::spawn(&workspace_binary("fedsync-relay"), &relay_api, env);

    // The first secret by ARN (PutSecretValue) and by name (label moved), the
    // other secret, one event delivered twice, and two that are not changes.
    let by_arn = event("eventbridge-put-secret-value.json");
    let by_name = event("eventbridge-secret-label-updated.json");
    let mut other = by_arn.clone();
    other["id"] = "9d8c7b6a-0000-4000-8000-000000000003".into();
    let other_arn = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{OTHER}-QwErTy");
    other["detail"]["requestParameters"]["secretId"] = other_arn.clone().into();
    other["detail"]["responseElements"]["arn"] = other_arn.into();
    for (change, group) in [
        (&by_arn, SECRET),
        (&by_name, SECRET),
        (&other, OTHER),
        (&by_arn, SECRET),
    ] {
        let answer = relay(&relay_api, change.clone()).await;
        assert_eq!(answer["status"], "queued", "{answer:#}");
        assert_eq!(answer["group"], group, "{answer:#}");
    }
    let ignored = relay(&relay_api, event("eventbridge-unrelated.json")).await;
    assert_eq!(ignored["status"], "ignored", "{ignored:#}");
    let mut nameless = by_arn.clone();
    nameless["detail"]["requestParameters"] = json!({});
    nameless["detail"]["responseElements"] = json!({});
    let rejected = relay(&relay_api, nameless).await;
    assert_eq!(rejected["status"], "rejected", "{rejected:#}");
    assert!(
        rejected["error"]
            .as_str()
            .unwrap()
            .contains("names no secret"),
        "{rejected:#}"
    );

    // The queue holds each distinct event once, in its secret's group.
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap_or_default();
    let group = |m: &aws_sdk_sqs::types::Message| {
        m.attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId))
            .cloned()
            .unwrap_or_default()
    };
    let mut groups: Vec<String> = messages.iter().map(group).collect();
    groups.sort();
    assert_eq!(
        groups,
        [OTHER, SECRET, SECRET],
        "the duplicate was queued once"
    );

    // The function drains the queue as its event source mapping would hand it over.
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"MessageGroupId": group(m), "ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fedsync-changes.fifo",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let (api, process) = clouds.function(&clouds.config("", SUBJECT)).await;
    let listed = failures(&api, json!({ "Records": records })).await;
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));
    assert_eq!(clouds.written(OTHER).await.as_deref(), Some(OTHER_VALUE));
    assert_eq!(clouds.versions(SECRET).await, 1);
    assert_no_leak(&process.logs());
    assert_no_leak(&relay_process.logs());
}
