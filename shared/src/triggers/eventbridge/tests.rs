//! EventBridge parsing, against the sample events in `events/`.

use super::*;

fn config() -> Config {
    Config::parse(
        r#"
[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"
"#,
        "test",
    )
    .unwrap()
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn change(name: &str) -> SecretChange {
    parse(&sample(name), &config())
        .unwrap()
        .unwrap_or_else(|| panic!("{name} should be a change"))
}

#[test]
fn every_value_changing_event_names_the_secret_by_name() {
    for file in [
        "eventbridge-create-secret.json",
        "eventbridge-put-secret-value.json",
        "eventbridge-update-secret.json",
        "eventbridge-restore-secret.json",
        "eventbridge-rotation-succeeded.json",
        "eventbridge-secret-label-updated.json",
    ] {
        let c = change(file);
        assert_eq!(
            (c.source.as_str(), c.secret.as_str(), c.kind),
            ("main", "prod/app/db", ChangeKind::Upsert),
            "{file}"
        );
    }
    assert_eq!(
        change("eventbridge-put-secret-value.json")
            .version
            .as_deref(),
        Some("0f0e5a2c-7a55-4e0e-9d5a-1d7b0e6c9f11")
    );
    assert_eq!(change("eventbridge-rotation-succeeded.json").version, None);
}

#[test]
fn delete_is_a_delete() {
    let c = change("eventbridge-delete-secret.json");
    assert_eq!(
        (c.secret.as_str(), c.kind),
        ("prod/app/db", ChangeKind::Delete)
    );
}

#[test]
fn unrelated_and_metadata_events_are_no_ops() {
    for file in [
        "eventbridge-unrelated.json",
        "eventbridge-tag-resource.json",
    ] {
        assert_eq!(parse(&sample(file), &config()).unwrap(), None, "{file}");
    }
    let mut label = sample("eventbridge-secret-label-updated.json");
    label["detail"]["labelUpdated"] = "custom-label".into();
    assert_eq!(parse(&label, &config()).unwrap(), None);
    let mut failed = sample("eventbridge-put-secret-value.json");
    failed["detail"]["errorCode"] = "AccessDenied".into();
    assert_eq!(
        parse(&failed, &config()).unwrap(),
        None,
        "a failed call changed nothing"
    );
}

#[test]
fn malformed_events_are_clear_bad_input_errors() {
    let cases = [
        (
            serde_json::json!("just a string"),
            "not an EventBridge event",
        ),
        (
            serde_json::json!({"source": "aws.secretsmanager"}),
            "not an EventBridge event",
        ),
        (
            serde_json::json!({"source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail", "detail": {}}),
            "detail.eventName",
        ),
        (
            serde_json::json!({"source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": "PutSecretValue"}}),
            "names no secret",
        ),
        (
            serde_json::json!({"source": "aws.secretsmanager", "detail-type": "Secret Label Updated", "detail": []}),
            "\"detail\" is not an object",
        ),
    ];
    for (event, expected) in cases {
        let err = parse(&event, &config()).unwrap_err();
        assert_eq!(err.class, crate::report::FailureClass::BadInput);
        assert!(
            err.message.contains(expected),
            "{} should mention {expected}",
            err.message
        );
    }
}

#[test]
fn an_event_from_a_region_no_source_covers_is_rejected() {
    let mut event = sample("eventbridge-put-secret-value.json");
    event["region"] = "ap-south-1".into();
    let err = parse(&event, &config()).unwrap_err();
    assert!(err.message.contains("ap-south-1"), "{}", err.message);
}

#[test]
fn an_arn_the_caller_sent_is_kept_for_the_source_to_resolve() {
    // A partial ARN (no random suffix) cannot be told from a full one by its shape.
    let mut event = sample("eventbridge-update-secret.json");
    event["detail"]["responseElements"] = Value::Null;
    event["detail"]["requestParameters"]["secretId"] =
        "arn:aws:secretsmanager:us-east-1:1:secret:app/db-backup".into();
    let c = parse(&event, &config()).unwrap().unwrap();
    assert_eq!(
        c.secret,
        "arn:aws:secretsmanager:us-east-1:1:secret:app/db-backup"
    );
}

#[test]
fn arns_become_names() {
    assert_eq!(
        secret_name("arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbCdEf"),
        "prod/db"
    );
    assert_eq!(
        secret_name("arn:aws:secretsmanager:us-east-1:1:secret:a-b-c-123456"),
        "a-b-c"
    );
    assert_eq!(
        secret_name("prod/db-AbCdEf"),
        "prod/db-AbCdEf",
        "a plain name is kept as written"
    );
    assert_eq!(
        secret_name("arn:aws:secretsmanager:us-east-1:1:secret:x"),
        "x"
    );
}

#[test]
fn refusals_never_repeat_a_value_of_the_event() {
    let pasted = "pasted-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
    for event in [
        serde_json::json!({"source": "aws.secretsmanager", "detail-type": "x", "detail": {}, "resources": pasted}),
        serde_json::json!({"source": "aws.secretsmanager", "detail-type": "Secret Label Updated",
            "detail": {"labelUpdated": "AWSCURRENT", "name": "s"}, "region": pasted}),
    ] {
        let err = parse(&event, &config()).unwrap_err();
        assert!(!err.message.contains(&pasted[..40]), "{}", err.message);
    }
}

#[test]
fn an_event_naming_an_empty_secret_is_malformed() {
    let put = |detail: serde_json::Value| {
        serde_json::json!({"source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail",
            "region": "us-east-1", "detail": detail})
    };
    for event in [
        put(
            serde_json::json!({"eventName": "PutSecretValue", "requestParameters": {"secretId": ""}}),
        ),
        put(serde_json::json!({"eventName": "PutSecretValue",
            "responseElements": {"arn": "arn:aws:secretsmanager:us-east-1:1:secret:-AbCdEf"}})),
        serde_json::json!({"source": "aws.secretsmanager", "detail-type": "Secret Label Updated",
            "region": "us-east-1", "detail": {"labelUpdated": "AWSCURRENT", "name": ""}}),
    ] {
        let err = parse(&event, &config()).unwrap_err();
        assert!(err.message.contains("empty secret"), "{}", err.message);
    }
}
