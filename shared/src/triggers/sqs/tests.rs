//! SQS batch handling, against the sample batch in `events/` and scripted
//! outcomes per secret (no cloud is reached).

use super::*;
use crate::config::Config;
use crate::event::ChangeKind;
use crate::report::{FailureClass, Outcome, Report, Status};
use crate::triggers::eventbridge;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

fn config() -> Config {
    Config::parse(
        "[sources.main]\nkind = \"aws-secrets-manager\"\nregion = \"us-east-1\"\n",
        "test",
    )
    .unwrap()
}

fn sample() -> Value {
    let path = format!("{}/../events/sqs-batch.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A record of the sample batch, renamed and regrouped, carrying `body`.
fn record(message_id: &str, group: &str, body: &Value) -> Value {
    let mut record = sample()["Records"][0].clone();
    record["messageId"] = message_id.into();
    record["attributes"]["MessageGroupId"] = group.into();
    record["body"] = body.to_string().into();
    record
}

/// The EventBridge event in the sample batch's record `index`.
fn sample_event(index: usize) -> Value {
    serde_json::from_str(sample()["Records"][index]["body"].as_str().unwrap()).unwrap()
}

/// A PutSecretValue event naming `secret`, tagged with `mark` (its id) so that
/// the order records were handled in can be told.
fn put(secret: &str, mark: &str) -> Value {
    let mut event = sample_event(0);
    event["id"] = mark.into();
    event["detail"]["responseElements"]["arn"] =
        format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret}-AbCdEf").into();
    event
}

/// A batch of PutSecretValue records, one per id: "a1" is a record of group
/// "A" about the secret "prod/a", whose message id and event id are "a1".
fn batch(ids: &[&str]) -> Value {
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            let letter = &id[..1];
            record(
                id,
                &letter.to_uppercase(),
                &put(&format!("prod/{letter}"), id),
            )
        })
        .collect();
    json!({ "Records": records })
}

fn report(secret: &str, status: Status) -> Report {
    Report {
        source: "main".into(),
        secret: secret.into(),
        kind: ChangeKind::Upsert,
        source_version: None,
        note: None,
        error: None,
        outcomes: vec![Outcome {
            destination: "aws-dr".into(),
            name: secret.into(),
            status,
            exchanges: 0,
            elapsed_ms: 0,
            acknowledged_at: std::time::SystemTime::now(),
        }],
    }
}

fn unavailable() -> Status {
    Failure::new(FailureClass::Unavailable, "STS answered 503").into()
}

/// The ids of the records to deliver again.
fn failures(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

/// Handles `batch` with the real EventBridge parser; each change's outcome is
/// `outcome(event id)`. Returns the answer and the event ids handled, in order.
async fn run(batch: &Value, outcome: impl Fn(&str) -> Status) -> (SqsBatchResponse, Vec<String>) {
    let handled = Mutex::new(Vec::new());
    let response = process(records(batch), async |event: &Value| {
        let id = event["id"].as_str().unwrap_or_default().to_string();
        handled.lock().unwrap().push(id.clone());
        // Let the other groups run between the records of one.
        tokio::task::yield_now().await;
        match eventbridge::parse(event, &config()) {
            Err(f) => Handled::Rejected(f),
            Ok(None) => Handled::Ignored,
            Ok(Some(change)) => Handled::Synced(report(&change.secret, outcome(&id))),
        }
    })
    .await;
    (response, handled.into_inner().unwrap())
}

#[tokio::test]
async fn the_sample_batch_is_handled_whole_with_nothing_to_retry() {
    let batch = sample();
    let records = records(&batch);
    let groups: Vec<_> = records.iter().map(|r| r.group.as_deref()).collect();
    assert_eq!(
        groups,
        [
            Some("prod/app/db"),
            Some("prod/app/db"),
            Some("prod/app/cache")
        ]
    );
    let changes: Vec<_> = records
        .iter()
        .map(|r| {
            let event = r.body.as_ref().unwrap();
            eventbridge::parse(event, &config())
                .unwrap()
                .unwrap()
                .secret
        })
        .collect();
    assert_eq!(changes, ["prod/app/db", "prod/app/db", "prod/app/cache"]);

    let (response, handled) = run(&batch, |_| Status::Synced).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(handled.len(), 3);
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
}

#[tokio::test]
async fn records_of_one_group_are_handled_in_order_and_groups_interleave() {
    let batch = batch(&["a1", "b1", "a2", "b2", "a3"]);
    let (response, handled) = run(&batch, |_| Status::Synced).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    let of = |prefix: &str| -> Vec<&str> {
        handled
            .iter()
            .map(String::as_str)
            .filter(|id| id.starts_with(prefix))
            .collect()
    };
    assert_eq!(of("a"), ["a1", "a2", "a3"]);
    assert_eq!(of("b"), ["b1", "b2"]);
    assert_eq!(
        &handled[..2],
        ["a1", "b1"],
        "both groups start before either finishes: {handled:?}"
    );
}

#[tokio::test]
async fn groups_run_concurrently_while_a_group_waits_for_its_previous_record() {
    // a1 cannot finish before b1 has been handled: handled one record at a time
    // across the whole batch, this would never end.
    let b1_done = tokio::sync::Notify::new();
    let batch = batch(&["a1", "a2", "b1"]);
    let order = Mutex::new(Vec::new());
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        process(records(&batch), async |event: &Value| {
            let id = event["id"].as_str().unwrap().to_string();
            if id == "a1" {
                b1_done.notified().await;
            }
            if id == "b1" {
                b1_done.notify_one();
            }
            order.lock().unwrap().push(id);
            Handled::Ignored
        }),
    )
    .await
    .expect("the groups did not run concurrently");
    assert!(failures(&response).is_empty());
    assert_eq!(*order.lock().unwrap(), ["b1", "a1", "a2"]);
}

#[tokio::test]
async fn a_record_that_needs_a_retry_holds_back_the_rest_of_its_group_only() {
    let batch = batch(&["a1", "b1", "a2", "b2", "a3", "c1"]);
    let (response, handled) = run(&batch, |id| match id {
        "a2" => unavailable(),
        // Not retryable: reported in the report, never a reason to deliver again.
        "c1" => Failure::new(FailureClass::Auth, "AccessDenied").into(),
        _ => Status::Synced,
    })
    .await;
    assert_eq!(failures(&response), ["a2", "a3"]);
    assert!(
        !handled.iter().any(|id| id == "a3"),
        "a3 must wait for a2: {handled:?}"
    );
    for id in ["a1", "a2", "b1", "b2", "c1"] {
        assert!(handled.iter().any(|h| h == id), "{id} handled: {handled:?}");
    }
}

#[tokio::test]
async fn records_without_a_group_stand_alone() {
    let mut b1 = record("b1", "-", &put("prod/b", "b1"));
    b1["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("MessageGroupId");
    let mut b2 = b1.clone();
    b2["messageId"] = "b2".into();
    b2["body"] = put("prod/b", "b2").to_string().into();
    let batch = json!({"Records": [b1, b2]});
    let (response, handled) = run(&batch, |id| match id {
        "b1" => unavailable(),
        _ => Status::Synced,
    })
    .await;
    assert_eq!(failures(&response), ["b1"]);
    assert_eq!(handled.len(), 2);
}

#[tokio::test]
async fn a_malformed_record_is_logged_not_listed_and_holds_nothing_back() {
    let mut not_json = record("bad1", "A", &json!({}));
    not_json["body"] = "{not json".into();
    let not_an_event = record("bad2", "A", &json!({"hello": "world"}));
    let mut not_sqs = record("bad3", "A", &json!({}));
    not_sqs["eventSource"] = "aws:sns".into();
    let mut no_body = record("bad4", "A", &json!({}));
    no_body.as_object_mut().unwrap().remove("body");
    let batch = json!({"Records": [
        not_json,
        not_an_event,
        not_sqs,
        no_body,
        batch(&["a1"])["Records"][0].clone(),
    ]});

    let records = records(&batch);
    let errors: Vec<String> = records
        .iter()
        .filter_map(|r| r.body.as_ref().err().map(|f| f.message.clone()))
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains("Records[0].body is not JSON"),
        "{errors:?}"
    );
    assert!(errors[1].contains("Records[2].eventSource"), "{errors:?}");
    assert!(
        errors[2].contains("Records[3] has no \"body\""),
        "{errors:?}"
    );

    let (response, handled) = run(&batch, |_| Status::Synced).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    // The JSON body that is no EventBridge event reached the parser (and was
    // rejected there); the later record of the group was still handled.
    assert_eq!(handled, ["", "a1"]);
}

#[tokio::test]
async fn a_record_without_a_message_id_cannot_be_named_and_is_left_out() {
    let mut anonymous = record("x", "A", &put("prod/a", "x"));
    anonymous.as_object_mut().unwrap().remove("messageId");
    let batch =
        json!({"Records": [anonymous, "not a record", record("a1", "A", &put("prod/a", "a1"))]});
    let records = records(&batch);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message_id, "a1");
}

#[tokio::test]
async fn an_empty_batch_answers_no_failures() {
    for batch in [json!({"Records": []}), json!({"Records": "nope"})] {
        assert!(is_batch(&batch));
        let (response, handled) = run(&batch, |_| unavailable()).await;
        assert!(failures(&response).is_empty());
        assert!(handled.is_empty());
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": []})
        );
    }
}

#[test]
fn a_single_eventbridge_event_is_not_a_batch() {
    assert!(!is_batch(&sample_event(0)));
    assert!(is_batch(&sample()));
}
