//! `POST /v1/notify` on the real webhook: fedsync's own change notices, signed
//! with HMAC or carrying a bearer JWT, synced from AWS to AWS (moto); forged,
//! stale, replayed, tampered and mis-addressed notices touch nothing. A notice
//! answered "try again" is handled again when the very same request is resent.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE};
use fedsync_tests::issuer::unix_now;
use fedsync_tests::notice;
use fedsync_tests::receiver::Receiver;
use fedsync_tests::sts_front::StsError;
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "5f1d0c6b2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180f1e2d3c4b5a6978";
const NOTIFY_AUD: &str = "fedsync-notify";
const SENDER: &str = "ci:deployer";

struct Hook {
    clouds: Clouds,
    receiver: Receiver,
}

async fn hook() -> Hook {
    let clouds = Clouds::start().await;
    let trigger = format!(
        "[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n[[triggers.notify.issuers]]\nissuer = \"{}\"\naudience = \"{NOTIFY_AUD}\"\nsubjects = [\"{SENDER}\"]\n",
        clouds.issuer.url()
    );
    let config = format!("{trigger}{}", clouds.config("", SUBJECT));
    let mut env = clouds.function_env(&config);
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    let receiver = Receiver::start("fedsync-webhook", &env).await;
    Hook { clouds, receiver }
}

impl Hook {
    async fn post(&self, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let url = format!("{}/v1/notify", self.receiver.url());
        notice::post(&url, body, headers).await
    }

    async fn signed(&self, body: &str, timestamp: u64) -> (u16, Value) {
        self.post(body, &notice::signed_headers(KEY, timestamp, body))
            .await
    }

    async fn bearer(&self, body: &str, token: String) -> (u16, Value) {
        self.post(body, &notice::bearer_headers(&token)).await
    }

    fn token(&self, subject: &str, audience: &str, ttl: Duration) -> String {
        self.clouds
            .issuer
            .mint(&self.clouds.issuer.claims(subject, audience, ttl))
    }
}

fn notice() -> String {
    json!({"source": "main", "secret": SECRET}).to_string()
}

#[tokio::test]
async fn refused_notices_touch_nothing_and_a_signed_one_syncs_once() {
    let h = hook().await;
    let body = notice();
    let now = unix_now();
    let forged = [
        ("content-type", "application/json".to_string()),
        ("x-fedsync-timestamp", now.to_string()),
        ("x-fedsync-signature", format!("sha256={}", "00".repeat(32))),
    ];
    assert_eq!(h.post(&body, &forged).await.0, 401, "forged");
    assert_eq!(
        h.signed(&body, now - 400).await.0,
        401,
        "outside the window"
    );
    let hour = Duration::from_secs(3600);
    assert_eq!(
        h.bearer(&body, h.token(SENDER, "someone-else", hour))
            .await
            .0,
        401,
        "wrong audience"
    );
    assert_eq!(
        h.bearer(&body, h.token("ci:intruder", NOTIFY_AUD, hour))
            .await
            .0,
        401,
        "subject not allowed"
    );
    let mut expired = h.clouds.issuer.claims(SENDER, NOTIFY_AUD, hour);
    expired["exp"] = json!(unix_now() - 120);
    assert_eq!(
        h.bearer(&body, h.clouds.issuer.mint(&expired)).await.0,
        401,
        "expired"
    );
    let stranger = fedsync_tests::issuer::Issuer::start().await;
    let foreign = stranger.mint(&stranger.claims(SENDER, NOTIFY_AUD, hour));
    assert_eq!(h.bearer(&body, foreign).await.0, 401, "untrusted issuer");
    assert!(h.clouds.sts.exchanges().is_empty(), "no exchange");
    assert!(h.clouds.written(SECRET).await.is_none(), "no write");

    let (status, answer) = h.signed(&body, unix_now() - 2).await;
    assert_eq!(
        (status, answer["report"]["outcomes"][0]["status"].as_str()),
        (200, Some("synced")),
        "{answer:#}"
    );
    // A new notice for the same change finds it unchanged; the very same request
    // again (a retry, or a replay) does nothing at all.
    let again = notice::signed_headers(KEY, unix_now(), &body);
    assert_eq!(
        h.post(&body, &again).await.1["report"]["outcomes"][0]["status"],
        "unchanged"
    );
    assert_eq!(
        h.post(&body, &again).await.1,
        json!({"status": "duplicate"})
    );
    assert_eq!(h.clouds.versions(SECRET).await, 1);
    assert!(!h.receiver.logs().contains(VALUE));
}

#[tokio::test]
async fn the_same_signed_notice_resent_after_a_retryable_failure_is_handled_again() {
    let h = hook().await;
    let body = notice();
    let headers = notice::signed_headers(KEY, unix_now(), &body);
    // STS is down for longer than the request's retries last.
    h.clouds.sts.fail_next(100, StsError::service_unavailable());
    let (status, answer) = h.post(&body, &headers).await;
    assert_eq!(status, 503, "{answer:#}");
    assert!(h.clouds.written(SECRET).await.is_none());

    // The sender resends the identical request (same timestamp and signature).
    h.clouds.sts.clear_faults();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer) = h.post(&body, &headers).await;
    assert_eq!(
        (status, answer["report"]["outcomes"][0]["status"].as_str()),
        (200, Some("synced")),
        "the resend was handled, not taken for a replay: {answer:#}"
    );
    assert_eq!(h.clouds.written(SECRET).await.as_deref(), Some(VALUE));
    // Handled to the end, it is now a replay.
    assert_eq!(
        h.post(&body, &headers).await.1,
        json!({"status": "duplicate"})
    );
    assert!(!h.receiver.logs().contains(VALUE));
}

#[tokio::test]
async fn a_bearer_token_from_a_trusted_issuer_syncs() {
    let h = hook().await;
    let (status, answer) = h
        .bearer(
            &notice(),
            h.token(SENDER, NOTIFY_AUD, Duration::from_secs(300)),
        )
        .await;
    assert_eq!(
        (status, answer["report"]["outcomes"][0]["status"].as_str()),
        (200, Some("synced")),
        "{answer:#}"
    );
}

#[tokio::test]
async fn bad_requests_get_a_4xx_that_says_why() {
    let h = hook().await;
    let (status, _) = h
        .post(&notice(), &[("content-type", "text/plain".to_string())])
        .await;
    assert_eq!(status, 415);
    let (status, answer) = h
        .signed(r#"{"source":"nowhere","secret":"x"}"#, unix_now())
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown source"),
        "{answer:#}"
    );
    let (status, answer) = h.signed(r#"{"secret":"x"}"#, unix_now()).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("source"),
        "{answer:#}"
    );
}
