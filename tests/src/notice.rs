//! How a sender talks to the webhook's authenticated routes (`/v1/notify`,
//! `/v1/vault/events`): the HMAC signature headers over `{timestamp}.{body}`, or
//! a bearer token, and the status and JSON answer.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// `x-fedsync-signature: sha256=<hex>` of `{timestamp}.{body}` under `key`.
pub fn signature(key: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The headers of a JSON body signed with `key` at `timestamp` (Unix seconds).
pub fn signed_headers(key: &str, timestamp: u64, body: &str) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_string();
    vec![
        ("content-type", "application/json".to_string()),
        ("x-fedsync-signature", signature(key, &ts, body)),
        ("x-fedsync-timestamp", ts),
    ]
}

/// The headers of a JSON body sent with a bearer token.
pub fn bearer_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_string()),
        ("authorization", format!("Bearer {token}")),
    ]
}

/// POSTs `body` to `url` with `headers`: the status and the JSON answer (`Null` if none).
pub async fn post(url: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("the receiver answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
