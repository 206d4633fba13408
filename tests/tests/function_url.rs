//! The webhook served as a Lambda function URL (lambda_http, payload format 2.0)
//! by the real binary behind the Lambda Runtime API: the same routes and the same
//! authentication as the container, answered as function URL responses.

use base64::Engine as _;
use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::issuer::unix_now;
use fedsync_tests::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::notice;
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "3c9a1e7f5b2d8046a1c3e5f7092b4d6f8a0c2e4f6a8b0d2f4e6c8a0b2d4f6e81";

/// The sample request of `events/`, carrying `body` signed at `timestamp` (base64
/// encoded, as function URLs may deliver bodies).
fn request(body: &str, timestamp: u64, key: &str, base64: bool) -> Value {
    let mut request = event("function-url-notify.json");
    for (name, value) in notice::signed_headers(key, timestamp, body) {
        request["headers"][name] = json!(value);
    }
    request["body"] = if base64 {
        json!(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        json!(body)
    };
    request["isBase64Encoded"] = json!(base64);
    request
}

#[tokio::test]
async fn a_signed_notice_through_the_function_url_syncs_and_a_forged_one_gets_401() {
    let clouds = Clouds::start().await;
    let config = format!(
        "[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n{}",
        clouds.config("", SUBJECT)
    );
    let mut env = clouds.function_env(&config);
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    let api = LambdaApi::start().await;
    let _function = LambdaProcess::spawn(&workspace_binary("fedsync-webhook"), &api, env);
    let body = json!({"source": "main", "secret": SECRET}).to_string();
    let timeout = Duration::from_secs(60);

    let forged = api
        .invoke(
            request(&body, unix_now(), &KEY.replace('3', "4"), false),
            timeout,
        )
        .await
        .expect_ok();
    assert_eq!(forged["statusCode"], 401, "{forged:#}");
    assert!(
        clouds.written(SECRET).await.is_none(),
        "a forged notice wrote nothing"
    );

    let answer = api
        .invoke(request(&body, unix_now(), KEY, true), timeout)
        .await
        .expect_ok();
    assert_eq!(answer["statusCode"], 200, "{answer:#}");
    let report: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        report["report"]["outcomes"][0]["status"], "synced",
        "{report:#}"
    );
    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));

    let wrong_type = {
        let mut r = request(&body, unix_now(), KEY, false);
        r["headers"]["content-type"] = json!("text/plain");
        r
    };
    let answer = api.invoke(wrong_type, timeout).await.expect_ok();
    assert_eq!(answer["statusCode"], 415, "{answer:#}");
}
