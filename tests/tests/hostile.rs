//! The hostile-input catalogue: forged, expired and replayed credentials, `alg: none`
//! and algorithm confusion, wrong audiences, issuers and subjects, oversized, deeply
//! nested and malformed bodies, unknown events, and secret names built to escape a rule
//! or a name template, sent to every trigger: the EventBridge Lambda (directly and
//! through SQS), the Pub/Sub push receiver, and the webhook (notices, Vault events and
//! Event Grid deliveries). Each case names the answer it must get; the servers' own
//! request logs (moto's, OpenBao's audit device, the Google, Key Vault and Entra
//! emulators') prove that nothing was read or written, unless the case says what was.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fedsync_tests::azure::event_grid::{
    EVENT_GRID_APP_ID, EventGrid, SECRET_NEW_VERSION_CREATED, SECURE_WEBHOOK_ROLE, Schema,
};
use fedsync_tests::azure::world::{Azure, TENANT, WEBHOOK_APP, azure};
use fedsync_tests::clouds::{Clouds, SUBJECT, VALUE, event};
use fedsync_tests::google::{
    GoogleCloud, MetadataEndpoint, Principal, SecretManagerMethod, SecretManagerRole,
    WorkloadIdentityProvider,
};
use fedsync_tests::google_world::{
    DEST_PROJECT, GOOGLE_SECRET, POOL, PUSH_ACCOUNT, PUSH_AUDIENCE, SOURCE_PROJECT, google,
    google_destination, push_receiver_config, trust_writer,
};
use fedsync_tests::issuer::{Issuer, SigningKey, unix_now};
use fedsync_tests::lambda_api::{Invocation, LambdaApi, LambdaProcess};
use fedsync_tests::leaks;
use fedsync_tests::openbao::{OpenBao, kv_event};
use fedsync_tests::receiver::Receiver;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// The webhook's HMAC key for notices and Vault events.
const KEY: &str = "9d4e1b7a2c6f0e8d3b5a7c9e1f2d4b6a8c0e2f4a6b8d0c2e4f6a8b0c2d4e6f81";
const NOTIFY_AUD: &str = "fedsync-notify";
const SENDER: &str = "ci:deployer";
/// The values the sources hold: none may appear in an answer or a log.
const VAULT_PASSWORD: &str = "hostile-vault-Pa55word-never-logged-7c1e";
const PRIVATE_PASSWORD: &str = "private-vault-Pa55word-outside-every-rule-3f9a";
const PLACEHOLDER_PASSWORD: &str = "placeholder-named-Pa55word-never-logged-5b2d";
const KV_VALUE: &str = "hostile-key-vault-value-never-logged-1a8e";
const KV_NAME: &str = "prod-app-db";
/// A name whose first letter is CYRILLIC SMALL LETTER A, not `a`.
const LOOK_ALIKE: &str = "\u{0430}pp";
/// CYRILLIC SMALL LETTER O, not `o`.
const CYRILLIC_O: char = '\u{043e}';
/// Past this, a case's refused request has had all the time it needs to touch anything.
const SETTLE: Duration = Duration::from_millis(150);
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Vault secrets named with a name template's placeholders and look-alikes of references,
/// and the names they must land under: each substituted once and sanitized, never
/// expanded again (AWS, then Google).
const PLACEHOLDER_NAMES: [(&str, &str, &str); 3] = [
    ("app/{name}", "vault-app/-name-", "vault-app--name-"),
    (
        "app/${FEDSYNC_NOTIFY_SECRET}",
        "vault-app/--FEDSYNC_NOTIFY_SECRET-",
        "vault-app---FEDSYNC_NOTIFY_SECRET-",
    ),
    (
        "app/env:FEDSYNC_SIGNING_KEY",
        "vault-app/env-FEDSYNC_SIGNING_KEY",
        "vault-app-env-FEDSYNC_SIGNING_KEY",
    ),
];

// ---------------------------------------------------------------------------------------
// The catalogue.

/// Where a case sends its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Lambda,
    Push,
    Webhook,
}

/// One hostile request.
#[derive(Debug, Clone)]
enum Request {
    /// An invocation of the EventBridge Lambda with this event.
    Invoke(Value),
    /// A POST to a receiver's path.
    Post {
        to: Trigger,
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
}

/// What a case may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// No request reached any cloud: nothing read, nothing written.
    Nothing,
    /// The source may be read again, but nothing is written (the report says
    /// `unchanged` for every destination).
    NoWrite,
    /// It syncs: the control cases, and names that must land exactly where expected.
    Writes,
}

/// The answer a case must get.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// The HTTP status (a Lambda's answer is 200; its failed invocation 500).
    status: u16,
    /// Text the answer must contain ("" for none).
    says: &'static str,
    touch: Touch,
}

const fn refused(status: u16) -> Expect {
    Expect {
        status,
        says: "",
        touch: Touch::Nothing,
    }
}

const fn answered(status: u16, says: &'static str) -> Expect {
    Expect {
        status,
        says,
        touch: Touch::Nothing,
    }
}

const fn syncs(says: &'static str) -> Expect {
    Expect {
        status: 200,
        says,
        touch: Touch::Writes,
    }
}

struct Case {
    trigger: Trigger,
    name: &'static str,
    send: fn(&World) -> Request,
    expect: Expect,
}

const fn case(
    trigger: Trigger,
    name: &'static str,
    send: fn(&World) -> Request,
    expect: Expect,
) -> Case {
    Case {
        trigger,
        name,
        send,
        expect,
    }
}

const SYNCED: &str = r#""status":"synced""#;
const IGNORED: &str = r#""status":"ignored""#;
const REJECTED: &str = r#""status":"rejected""#;
const NO_RULE: &str = "no rule matches this secret";
const NO_RETRY: &str = r#"{"batchItemFailures":[]}"#;

/// The EventBridge Lambda: the function itself is reached only through Lambda (IAM
/// decides who may invoke it), so what it must survive is what arrives in events.
fn lambda_cases() -> Vec<Case> {
    use Trigger::Lambda as L;
    vec![
        case(
            L,
            "a Secrets Manager change syncs (the control)",
            |_| Request::Invoke(put_event("prod/app/db")),
            syncs(SYNCED),
        ),
        case(
            L,
            "an event from another service is ignored",
            |_| invoke_edited(|e| e["source"] = json!("aws.s3")),
            answered(200, IGNORED),
        ),
        case(
            L,
            "an unknown detail-type is ignored",
            |_| invoke_edited(|e| e["detail-type"] = json!("Secret Value Smuggled")),
            answered(200, IGNORED),
        ),
        case(
            L,
            "an unknown eventName is ignored",
            |_| invoke_edited(|e| e["detail"]["eventName"] = json!("GetSecretValue")),
            answered(200, IGNORED),
        ),
        case(
            L,
            "a failed API call is ignored",
            |_| invoke_edited(|e| e["detail"]["errorCode"] = json!("AccessDeniedException")),
            answered(200, IGNORED),
        ),
        case(
            L,
            "a missing detail.eventName is rejected",
            |_| {
                invoke_edited(|e| {
                    e["detail"]
                        .as_object_mut()
                        .unwrap()
                        .retain(|k, _| k != "eventName")
                })
            },
            answered(200, r#"\"detail.eventName\" is missing"#),
        ),
        case(
            L,
            "an event naming no secret is rejected",
            |_| {
                invoke_edited(|e| {
                    e["detail"]["responseElements"] = Value::Null;
                    e["detail"]["requestParameters"] = json!({});
                })
            },
            answered(200, "names no secret"),
        ),
        case(
            L,
            "an empty secret name is rejected",
            |_| Request::Invoke(put_event("")),
            answered(200, "empty secret"),
        ),
        case(
            L,
            "a region no source reads is rejected",
            |_| invoke_edited(|e| e["region"] = json!("ap-south-1")),
            answered(
                200,
                "no aws-secrets-manager source in the configuration covers region",
            ),
        ),
        case(
            L,
            "an event that is not an object is rejected",
            |_| Request::Invoke(json!("PutSecretValue prod/app/db")),
            answered(200, "not an EventBridge event"),
        ),
        case(
            L,
            "a deeply nested event fails in the runtime, before fedsync",
            |_| invoke_edited(|e| e["detail"]["requestParameters"]["nested"] = nested(1000)),
            answered(500, "recursion limit"),
        ),
        case(
            L,
            "a secret name with a control character is refused",
            |_| Request::Invoke(put_event("prod/app/db\u{7}")),
            answered(200, "control character"),
        ),
        case(
            L,
            "a secret name with a .. segment is refused",
            |_| Request::Invoke(put_event("prod/../admin/root")),
            answered(200, "segment"),
        ),
        case(
            L,
            "a look-alike of the rule's prefix (Cyrillic) matches no rule",
            |_| Request::Invoke(put_event(&format!("pr{CYRILLIC_O}d/app/db"))),
            answered(200, NO_RULE),
        ),
        case(
            L,
            "an SQS record whose body is deeply nested is dropped, never retried",
            |_| {
                Request::Invoke(batch(vec![sqs_record(
                    "m-0",
                    json!(nested_text(5000)),
                    "aws:sqs",
                )]))
            },
            answered(200, NO_RETRY),
        ),
        case(
            L,
            "an SQS record whose body is not JSON is dropped, never retried",
            |_| {
                Request::Invoke(batch(vec![sqs_record(
                    "m-1",
                    json!("{\"detail-type\":"),
                    "aws:sqs",
                )]))
            },
            answered(200, NO_RETRY),
        ),
        case(
            L,
            "an SQS record from another event source is dropped",
            |_| {
                Request::Invoke(batch(vec![sqs_record(
                    "m-2",
                    json!(put_event("prod/app/db").to_string()),
                    "aws:kinesis",
                )]))
            },
            answered(200, NO_RETRY),
        ),
        case(
            L,
            "an SQS record without a messageId is skipped",
            |_| {
                Request::Invoke(batch(vec![{
                    let mut r = sqs_record(
                        "m-3",
                        json!(put_event("prod/app/db").to_string()),
                        "aws:sqs",
                    );
                    r.as_object_mut().unwrap().remove("messageId");
                    r
                }]))
            },
            answered(200, NO_RETRY),
        ),
        case(
            L,
            "SQS Records that are not an array are refused",
            |_| Request::Invoke(json!({"Records": "prod/app/db"})),
            answered(200, NO_RETRY),
        ),
        case(
            L,
            "an SQS record naming a .. secret is dropped, never retried",
            |_| {
                Request::Invoke(batch(vec![sqs_record(
                    "m-4",
                    json!(put_event("prod/../admin/root").to_string()),
                    "aws:sqs",
                )]))
            },
            answered(200, NO_RETRY),
        ),
    ]
}

/// The Pub/Sub push receiver: authenticated by Google-signed OIDC push tokens only.
fn push_cases() -> Vec<Case> {
    use Trigger::Push as P;
    vec![
        case(
            P,
            "a signed push syncs (the control)",
            |w| {
                w.remember(
                    "push",
                    w.push(
                        &push_body("SECRET_VERSION_ADD", GOOGLE_SECRET),
                        Some(w.push_token()),
                    ),
                )
            },
            syncs(SYNCED),
        ),
        case(
            P,
            "the same push again reads but writes nothing",
            |w| w.replay("push"),
            Expect {
                status: 200,
                says: r#""status":"unchanged""#,
                touch: Touch::NoWrite,
            },
        ),
        case(
            P,
            "no token",
            |w| w.push(&push_body("SECRET_VERSION_ADD", GOOGLE_SECRET), None),
            refused(401),
        ),
        case(
            P,
            "a Basic credential instead of a bearer token",
            |w| {
                w.post(
                    Trigger::Push,
                    "/",
                    vec![(
                        "authorization",
                        format!("Basic {}", STANDARD.encode("pubsub:push")),
                    )],
                    push_body("SECRET_VERSION_ADD", GOOGLE_SECRET)
                        .to_string()
                        .into_bytes(),
                )
            },
            refused(401),
        ),
        case(
            P,
            "an expired token (a replay after its hour)",
            |w| {
                w.push_with_claims(|c| {
                    c["iat"] = json!(unix_now() - 7200);
                    c["exp"] = json!(unix_now() - 3600);
                })
            },
            refused(401),
        ),
        case(
            P,
            "the wrong audience",
            |w| w.push_with_claims(|c| c["aud"] = json!("https://elsewhere.example/")),
            refused(401),
        ),
        case(
            P,
            "the wrong issuer",
            |w| w.push_with_claims(|c| c["iss"] = json!("https://accounts.google.example")),
            refused(401),
        ),
        case(
            P,
            "the wrong email (another service account)",
            |w| w.push_with_claims(|c| c["email"] = json!("intruder@evil.iam.gserviceaccount.com")),
            refused(401),
        ),
        case(
            P,
            "an unverified email",
            |w| w.push_with_claims(|c| c["email_verified"] = json!(false)),
            refused(401),
        ),
        case(
            P,
            "alg: none",
            |w| {
                let token = unsigned(&w.push_claims(), &w.google.issuer.key());
                w.push(&push_body("SECRET_VERSION_ADD", GOOGLE_SECRET), Some(token))
            },
            refused(401),
        ),
        case(
            P,
            "HS256 with Google's public key as the HMAC secret",
            |w| {
                let token = hs256_with_public_key(&w.google.issuer.key(), &w.push_claims());
                w.push(&push_body("SECRET_VERSION_ADD", GOOGLE_SECRET), Some(token))
            },
            refused(401),
        ),
        case(
            P,
            "signed by another key under Google's kid",
            |w| {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some(w.google.issuer.key().kid().to_string());
                let token = w.stranger.rsa().sign_with_header(&header, &w.push_claims());
                w.push(&push_body("SECRET_VERSION_ADD", GOOGLE_SECRET), Some(token))
            },
            refused(401),
        ),
        case(
            P,
            "a key Google never published (an unknown kid)",
            |w| {
                let token = w.stranger.rsa().sign(&w.push_claims());
                w.push(&push_body("SECRET_VERSION_ADD", GOOGLE_SECRET), Some(token))
            },
            refused(401),
        ),
        case(
            P,
            "an oversized body (64 KiB + 1)",
            |w| {
                w.push(
                    &json!({"message": {"data": "A".repeat(64 * 1024)}}),
                    Some(w.push_token()),
                )
            },
            refused(413),
        ),
        case(
            P,
            "deeply nested JSON where a string belongs",
            |w| {
                let mut body = push_body("SECRET_VERSION_ADD", GOOGLE_SECRET).to_string();
                body = body.replacen("\"SECRET_VERSION_ADD\"", &nested_text(5000), 1);
                w.post_push_bytes(body.into_bytes())
            },
            answered(200, "invalid type: sequence, expected a string"),
        ),
        case(
            P,
            "deeply nested JSON in a field the receiver skips is skipped, not recursed",
            |w| {
                let body = push_body("SECRET_VERSION_ADD", GOOGLE_SECRET).to_string();
                let deep = format!(
                    "{},\"deep\":{}}}",
                    &body[..body.len() - 1],
                    nested_text(5000)
                );
                w.post_push_bytes(deep.into_bytes())
            },
            Expect {
                status: 200,
                says: r#""status":"unchanged""#,
                touch: Touch::NoWrite,
            },
        ),
        case(
            P,
            "invalid UTF-8",
            |w| {
                w.post_push_bytes(invalid_utf8(
                    &push_body("SECRET_VERSION_ADD", GOOGLE_SECRET).to_string(),
                ))
            },
            answered(200, REJECTED),
        ),
        case(
            P,
            "an unknown eventType is ignored",
            |w| {
                w.push(
                    &push_body("SECRET_EXFILTRATE", GOOGLE_SECRET),
                    Some(w.push_token()),
                )
            },
            answered(200, IGNORED),
        ),
        case(
            P,
            "a missing secretId",
            |w| {
                let mut body = push_body("SECRET_VERSION_ADD", GOOGLE_SECRET);
                body["message"]["attributes"]
                    .as_object_mut()
                    .unwrap()
                    .remove("secretId");
                w.push(&body, Some(w.push_token()))
            },
            answered(200, "no secretId attribute"),
        ),
        case(
            P,
            "a secret of another project",
            |w| {
                let mut body = push_body("SECRET_VERSION_ADD", GOOGLE_SECRET);
                body["message"]["attributes"]["secretId"] = json!(format!(
                    "projects/{}/secrets/{GOOGLE_SECRET}",
                    DEST_PROJECT.1
                ));
                w.push(&body, Some(w.push_token()))
            },
            answered(
                200,
                "no gcp-secret-manager source in the configuration reads project",
            ),
        ),
        case(
            P,
            "an unknown dataFormat",
            |w| {
                let mut body = push_body("SECRET_VERSION_ADD", GOOGLE_SECRET);
                body["message"]["attributes"]["dataFormat"] = json!("PROTOBUF_V9");
                w.push(&body, Some(w.push_token()))
            },
            answered(200, "unknown dataFormat"),
        ),
        case(
            P,
            "a secret id with a control character",
            |w| {
                w.push(
                    &push_body("SECRET_VERSION_ADD", "app-db\n"),
                    Some(w.push_token()),
                )
            },
            answered(200, "control character"),
        ),
        case(
            P,
            "a secret id that is a .. segment",
            |w| w.push(&push_body("SECRET_VERSION_ADD", ".."), Some(w.push_token())),
            answered(200, "segment"),
        ),
        case(
            P,
            "a look-alike secret id (Cyrillic) matches no rule",
            |w| {
                w.push(
                    &push_body("SECRET_VERSION_ADD", &format!("{LOOK_ALIKE}-db")),
                    Some(w.push_token()),
                )
            },
            answered(200, NO_RULE),
        ),
    ]
}

/// The webhook: notices and Vault events (an HMAC signature or a bearer JWT from a
/// trusted issuer), and Event Grid deliveries (an Entra token issued to Event Grid).
fn webhook_cases() -> Vec<Case> {
    use Trigger::Webhook as W;
    vec![
        case(
            W,
            "a signed notice syncs (the control)",
            |w| w.remember("notice", w.signed("/v1/notify", notice_body("app/db"))),
            syncs(SYNCED),
        ),
        case(
            W,
            "the exact same signed request again does nothing",
            |w| w.replay("notice"),
            answered(200, r#"{"status":"duplicate"}"#),
        ),
        case(
            W,
            "a forged signature",
            |w| {
                w.signed_with(
                    &KEY.replace('9', "8"),
                    unix_now(),
                    "/v1/notify",
                    notice_body("app/db"),
                )
            },
            refused(401),
        ),
        case(
            W,
            "a signature over another body",
            |w| {
                let mut request = w.signed("/v1/notify", notice_body("app/db"));
                if let Request::Post { body, .. } = &mut request {
                    *body = notice_body("app/other");
                }
                request
            },
            refused(401),
        ),
        case(
            W,
            "a replay outside the window",
            |w| w.signed_with(KEY, unix_now() - 400, "/v1/notify", notice_body("app/db")),
            refused(401),
        ),
        case(
            W,
            "a timestamp from the future",
            |w| w.signed_with(KEY, unix_now() + 400, "/v1/notify", notice_body("app/db")),
            refused(401),
        ),
        case(
            W,
            "a signature that is not sha256=<hex>",
            |w| {
                let ts = unix_now().to_string();
                w.post(
                    Trigger::Webhook,
                    "/v1/notify",
                    vec![
                        json_type(),
                        ("x-fedsync-timestamp", ts),
                        ("x-fedsync-signature", format!("sha1={}", "ab".repeat(20))),
                    ],
                    notice_body("app/db"),
                )
            },
            refused(401),
        ),
        case(
            W,
            "no credential at all",
            |w| {
                w.post(
                    Trigger::Webhook,
                    "/v1/notify",
                    vec![json_type()],
                    notice_body("app/db"),
                )
            },
            refused(401),
        ),
        case(
            W,
            "an expired bearer token",
            |w| {
                w.bearer_with(|c| {
                    c["iat"] = json!(unix_now() - 900);
                    c["nbf"] = json!(unix_now() - 900);
                    c["exp"] = json!(unix_now() - 600);
                })
            },
            refused(401),
        ),
        case(
            W,
            "a bearer token with alg: none",
            |w| w.bearer_token(unsigned(&w.notify_claims(), w.clouds.issuer.rsa())),
            refused(401),
        ),
        case(
            W,
            "HS256 with the issuer's public key as the HMAC secret",
            |w| {
                w.bearer_token(hs256_with_public_key(
                    w.clouds.issuer.rsa(),
                    &w.notify_claims(),
                ))
            },
            refused(401),
        ),
        case(
            W,
            "a bearer token for the wrong audience",
            |w| w.bearer_with(|c| c["aud"] = json!("someone-else")),
            refused(401),
        ),
        case(
            W,
            "a bearer token from an untrusted issuer",
            |w| {
                w.bearer_token(w.stranger.mint(&w.stranger.claims(
                    SENDER,
                    NOTIFY_AUD,
                    Duration::from_secs(300),
                )))
            },
            refused(401),
        ),
        case(
            W,
            "a trusted issuer's name on another issuer's signature",
            |w| w.bearer_token(w.stranger.mint(&w.notify_claims())),
            refused(401),
        ),
        case(
            W,
            "a bearer token for the wrong subject",
            |w| w.bearer_with(|c| c["sub"] = json!("ci:intruder")),
            refused(401),
        ),
        case(
            W,
            "text/plain instead of JSON",
            |w| {
                let body = notice_body("app/db");
                let mut request = w.signed("/v1/notify", body);
                if let Request::Post { headers, .. } = &mut request {
                    headers[0] = ("content-type", "text/plain".into());
                }
                request
            },
            refused(415),
        ),
        case(
            W,
            "an oversized notice (1 MiB + 1)",
            |w| w.signed("/v1/notify", vec![b' '; 1024 * 1024 + 1]),
            refused(413),
        ),
        case(
            W,
            "a deeply nested notice",
            |w| {
                let deep = format!(
                    r#"{{"source":"vault","secret":"app/db","version":{}}}"#,
                    nested_text(5000)
                );
                w.signed("/v1/notify", deep.into_bytes())
            },
            answered(400, "invalid type: sequence, expected a string"),
        ),
        case(
            W,
            "a notice that is not UTF-8",
            |w| {
                w.signed(
                    "/v1/notify",
                    invalid_utf8(r#"{"source":"vault","secret":"app/db"}"#),
                )
            },
            answered(400, "malformed event"),
        ),
        case(
            W,
            "a notice without its secret",
            |w| w.signed("/v1/notify", br#"{"source":"vault"}"#.to_vec()),
            answered(400, "missing field `secret`"),
        ),
        case(
            W,
            "a notice with an unknown field",
            |w| {
                w.signed(
                    "/v1/notify",
                    br#"{"source":"vault","secret":"app/db","value":"x"}"#.to_vec(),
                )
            },
            answered(400, "unknown field `value`"),
        ),
        case(
            W,
            "a notice of an unknown kind",
            |w| {
                w.signed(
                    "/v1/notify",
                    br#"{"source":"vault","secret":"app/db","kind":"exfiltrate"}"#.to_vec(),
                )
            },
            answered(400, "is neither \\\"upsert\\\" nor \\\"delete\\\""),
        ),
        case(
            W,
            "a notice for an unknown source",
            |w| {
                w.signed(
                    "/v1/notify",
                    br#"{"source":"elsewhere","secret":"app/db"}"#.to_vec(),
                )
            },
            answered(400, "unknown source"),
        ),
        case(
            W,
            "a .. segment climbing out of the rule's prefix",
            |w| w.signed("/v1/notify", notice_body("app/../private/db")),
            answered(400, "segment"),
        ),
        case(
            W,
            "a control character (newline) in the name",
            |w| w.signed("/v1/notify", notice_body("app/db\n")),
            answered(400, "control character"),
        ),
        case(
            W,
            "a ? in the name (a query smuggled into the path)",
            |w| w.signed("/v1/notify", notice_body("app/db?version=1")),
            answered(400, "not allowed in a secret name"),
        ),
        case(
            W,
            "a look-alike name (Cyrillic) matches no rule",
            |w| w.signed("/v1/notify", notice_body(&format!("{LOOK_ALIKE}/db"))),
            answered(200, NO_RULE),
        ),
        case(
            W,
            "a secret named {name} is substituted once, sanitized",
            |w| w.signed("/v1/notify", notice_body(PLACEHOLDER_NAMES[0].0)),
            syncs(r#""name":"vault-app/-name-""#),
        ),
        case(
            W,
            "a secret named ${VARIABLE} is never expanded",
            |w| w.signed("/v1/notify", notice_body(PLACEHOLDER_NAMES[1].0)),
            syncs(r#""name":"vault-app/--FEDSYNC_NOTIFY_SECRET-""#),
        ),
        case(
            W,
            "a secret named like a reference (env:NAME) is never resolved",
            |w| w.signed("/v1/notify", notice_body(PLACEHOLDER_NAMES[2].0)),
            syncs(r#""name":"vault-app/env-FEDSYNC_SIGNING_KEY""#),
        ),
        case(
            W,
            "an unsigned Vault event",
            |w| {
                w.post(
                    Trigger::Webhook,
                    "/v1/vault/events",
                    vec![json_type()],
                    kv_event("secret/data/app/db", 1, "kv-v2/data-write").into_bytes(),
                )
            },
            refused(401),
        ),
        case(
            W,
            "a Vault event of an unknown type is ignored",
            |w| {
                w.signed(
                    "/v1/vault/events",
                    kv_event("secret/data/app/db", 1, "kv-v2/exfiltrate").into_bytes(),
                )
            },
            answered(200, IGNORED),
        ),
        case(
            W,
            "a Vault event without its data",
            |w| w.signed("/v1/vault/events", br#"{"data": 1}"#.to_vec()),
            answered(400, "expected a Vault event"),
        ),
        case(
            W,
            "a Vault event for a mount no source reads",
            |w| {
                w.signed(
                    "/v1/vault/events",
                    kv_event("kv/data/app/db", 1, "kv-v2/data-write").into_bytes(),
                )
            },
            answered(400, "no vault-kv source reads mount"),
        ),
        case(
            W,
            "a Vault event whose path climbs out with ..",
            |w| {
                w.signed(
                    "/v1/vault/events",
                    kv_event("secret/data/app/../private/db", 1, "kv-v2/data-write").into_bytes(),
                )
            },
            answered(400, "segment"),
        ),
        case(
            W,
            "an Event Grid delivery syncs (the control)",
            |w| w.grid(|_| {}, |_| {}),
            syncs(SYNCED),
        ),
        case(
            W,
            "Event Grid: no token",
            |w| w.grid_delivery(None, |_| {}),
            refused(401),
        ),
        case(
            W,
            "Event Grid: an expired token",
            |w| {
                w.grid(
                    |c| {
                        c["nbf"] = json!(unix_now() - 7200);
                        c["iat"] = json!(unix_now() - 7200);
                        c["exp"] = json!(unix_now() - 3600);
                    },
                    |_| {},
                )
            },
            refused(401),
        ),
        case(
            W,
            "Event Grid: the wrong audience",
            |w| w.grid(|c| c["aud"] = json!("api://someone-else"), |_| {}),
            refused(401),
        ),
        case(
            W,
            "Event Grid: another tenant's issuer",
            |w| {
                w.grid(
                    |c| {
                        let iss = c["iss"]
                            .as_str()
                            .unwrap()
                            .replace(TENANT, "00000000-0000-4000-8000-000000000bad");
                        c["iss"] = json!(iss);
                    },
                    |_| {},
                )
            },
            refused(401),
        ),
        case(
            W,
            "Event Grid: a token without the webhook role",
            |w| w.grid(|c| c["roles"] = json!([]), |_| {}),
            refused(401),
        ),
        case(
            W,
            "Event Grid: a token issued to another application",
            |w| {
                w.grid(
                    |c| {
                        c["azp"] = json!("11111111-2222-4333-8444-555555555555");
                        c["appid"] = json!("11111111-2222-4333-8444-555555555555");
                    },
                    |_| {},
                )
            },
            refused(401),
        ),
        case(
            W,
            "Event Grid: alg: none",
            |w| {
                let token = unsigned(&w.grid_claims(), w.azure.entra.signing_key());
                w.grid_delivery(Some(token), |_| {})
            },
            refused(401),
        ),
        case(
            W,
            "Event Grid: HS256 with Entra's public key as the HMAC secret",
            |w| {
                let token = hs256_with_public_key(w.azure.entra.signing_key(), &w.grid_claims());
                w.grid_delivery(Some(token), |_| {})
            },
            refused(401),
        ),
        case(
            W,
            "Event Grid: an oversized delivery (1 MiB + 1)",
            |w| {
                let mut request = w.grid(|_| {}, |_| {});
                if let Request::Post { body, .. } = &mut request {
                    *body = vec![b' '; 1024 * 1024 + 1];
                }
                request
            },
            refused(413),
        ),
        case(
            W,
            "Event Grid: a body that is not JSON",
            |w| {
                let mut request = w.grid(|_| {}, |_| {});
                if let Request::Post { body, .. } = &mut request {
                    *body = invalid_utf8("[{\"eventType\": \"x\"}]");
                }
                request
            },
            answered(200, "the delivery is not JSON"),
        ),
        case(
            W,
            "Event Grid: a deeply nested delivery",
            |w| {
                let mut request = w.grid(|_| {}, |_| {});
                if let Request::Post { body, .. } = &mut request {
                    *body = nested_text(5000).into_bytes();
                }
                request
            },
            answered(200, "the delivery is not JSON"),
        ),
        case(
            W,
            "Event Grid: an unknown event type is ignored",
            |w| {
                w.grid(
                    |_| {},
                    |e| e["eventType"] = json!("Microsoft.KeyVault.SecretExfiltrated"),
                )
            },
            answered(200, IGNORED),
        ),
        case(
            W,
            "Event Grid: a vault no source reads",
            |w| {
                w.grid(
                    |_| {},
                    |e| e["data"]["VaultName"] = json!("someone-elses-kv"),
                )
            },
            answered(
                200,
                "no azure-key-vault source in the configuration reads vault",
            ),
        ),
        case(
            W,
            "Event Grid: a secret name climbing out with ..",
            |w| {
                w.grid(
                    |_| {},
                    |e| e["data"]["ObjectName"] = json!("../keys/signing"),
                )
            },
            answered(200, "segment"),
        ),
        case(
            W,
            "Event Grid: a look-alike name (Cyrillic) matches no rule",
            |w| {
                w.grid(
                    |_| {},
                    |e| e["data"]["ObjectName"] = json!(format!("pr{CYRILLIC_O}d-app-db")),
                )
            },
            answered(200, NO_RULE),
        ),
    ]
}

#[test]
fn the_catalogue_holds_at_least_30_cases_across_every_trigger() {
    let lambda = lambda_cases().len();
    let push = push_cases().len();
    let webhook = webhook_cases().len();
    println!(
        "hostile-input catalogue: {lambda} Lambda, {push} Pub/Sub push, {webhook} webhook cases"
    );
    assert!(lambda >= 10 && push >= 10 && webhook >= 10);
    assert!(lambda + push + webhook >= 30);
}

#[tokio::test]
async fn every_hostile_input_gets_its_answer_and_touches_nothing() {
    let w = world().await;
    let cases: Vec<Case> = [lambda_cases(), push_cases(), webhook_cases()]
        .into_iter()
        .flatten()
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = run(&w, case).await;
        let label = format!("{:?}: {}", case.trigger, case.name);
        match outcome {
            Ok(summary) => println!("ok    {label} -> {summary}"),
            Err(why) => {
                println!("FAIL  {label} -> {why}");
                failures.push(label);
            }
        }
    }
    println!(
        "hostile-input catalogue: {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "failed cases: {failures:#?}");
    assert!(cases.len() >= 30, "{} cases", cases.len());

    // Afterwards: the destinations hold exactly what the control cases and the
    // placeholder names wrote, under exactly the expected names.
    let mut aws: BTreeSet<String> = BTreeSet::new();
    let listed = w.clouds.destination().list_secrets().send().await.unwrap();
    aws.extend(
        listed
            .secret_list()
            .iter()
            .filter_map(|s| s.name().map(String::from)),
    );
    let mut expected_aws: BTreeSet<String> = ["prod/app/db", "vault-app/db", KV_NAME]
        .map(String::from)
        .into();
    expected_aws.extend(PLACEHOLDER_NAMES.iter().map(|(_, a, _)| a.to_string()));
    assert_eq!(aws, expected_aws, "the AWS destination's secrets");
    let google: BTreeSet<String> = w
        .google
        .secret_manager
        .secret_ids(DEST_PROJECT.0)
        .into_iter()
        .collect();
    let mut expected_google: BTreeSet<String> =
        [GOOGLE_SECRET, "vault-app-db"].map(String::from).into();
    expected_google.extend(PLACEHOLDER_NAMES.iter().map(|(_, _, g)| g.to_string()));
    assert_eq!(google, expected_google, "the Google destination's secrets");
    for (i, (name, aws_name, _)) in PLACEHOLDER_NAMES.iter().enumerate() {
        assert_eq!(
            w.clouds.written(aws_name).await,
            Some(placeholder_value(i).to_string()),
            "{name}"
        );
    }

    // The secret outside every rule was never read, whatever the names tried.
    assert_eq!(w.bao.audited("read", "secret/data/private/db"), 0);

    // No process panicked, and none logged a value or a credential it was sent.
    for (what, logs) in [
        ("the Lambda", w.lambda.logs()),
        ("the push receiver", w.push.logs()),
        ("the webhook", w.webhook.logs()),
    ] {
        assert!(!logs.contains("panicked"), "{what} panicked:\n{logs}");
        for secret in secret_values() {
            assert!(!logs.contains(&secret), "{what} logged a secret value");
        }
        assert!(!logs.contains(KEY), "{what} logged the HMAC key");
    }
}

/// Sends a case's request and checks its answer and what it touched; a one-line summary.
async fn run(w: &World, case: &Case) -> Result<String, String> {
    let request = (case.send)(w);
    let before = w.snapshot();
    let (status, text) = w.send(&request).await;
    tokio::time::sleep(SETTLE).await;
    let after = w.snapshot();
    let expect = case.expect;
    if status != expect.status || !text.contains(expect.says) {
        return Err(format!(
            "expected {} saying {:?}, got {status}: {text}",
            expect.status, expect.says
        ));
    }
    for secret in secret_values() {
        if text.contains(&secret) {
            return Err("the answer holds a secret value".into());
        }
    }
    if let Some(credential) = credential(&request)
        && text.contains(&credential)
    {
        return Err("the answer repeats the request's credential".into());
    }
    let touched = match expect.touch {
        Touch::Nothing if after != before => {
            return Err(format!("it reached a cloud: {}", before.difference(&after)));
        }
        Touch::Nothing => "nothing read or written".to_string(),
        Touch::NoWrite if after.writes() != before.writes() => {
            return Err(format!("it wrote: {}", before.difference(&after)));
        }
        Touch::NoWrite => format!("no write ({})", before.difference(&after)),
        Touch::Writes if after == before => return Err("it synced nothing".into()),
        Touch::Writes => before.difference(&after),
    };
    let says = if expect.says.is_empty() {
        String::new()
    } else {
        format!(" {}", expect.says)
    };
    Ok(format!("{status}{says}; {touched}"))
}

// ---------------------------------------------------------------------------------------
// The world: every cloud, and the three triggers' real binaries.

struct World {
    clouds: Clouds,
    google: GoogleCloud,
    azure: Azure,
    bao: OpenBao,
    api: LambdaApi,
    lambda: LambdaProcess,
    push: Receiver,
    webhook: Receiver,
    /// An issuer nobody trusts.
    stranger: Issuer,
    /// Requests kept to be sent again as they were.
    kept: Mutex<HashMap<&'static str, Request>>,
}

/// What every server has seen so far, from their own request logs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// Request lines in moto's log (AWS Secrets Manager, both regions).
    moto: usize,
    aws_exchanges: usize,
    gsm_reads: usize,
    gsm_writes: usize,
    google_exchanges: usize,
    impersonations: usize,
    metadata_tokens: usize,
    key_vault_reads: usize,
    key_vault_writes: usize,
    entra_tokens: usize,
    /// Request entries in OpenBao's audit log (logins and reads).
    openbao: usize,
}

impl Snapshot {
    fn writes(&self) -> (usize, usize) {
        (self.gsm_writes, self.key_vault_writes)
    }

    /// What grew from `self` to `after`, e.g. `openbao +2, moto +5`.
    fn difference(&self, after: &Snapshot) -> String {
        let pairs = [
            ("moto", self.moto, after.moto),
            ("AWS STS", self.aws_exchanges, after.aws_exchanges),
            ("Secret Manager reads", self.gsm_reads, after.gsm_reads),
            ("Secret Manager writes", self.gsm_writes, after.gsm_writes),
            ("Google STS", self.google_exchanges, after.google_exchanges),
            ("IAM Credentials", self.impersonations, after.impersonations),
            ("metadata", self.metadata_tokens, after.metadata_tokens),
            (
                "Key Vault reads",
                self.key_vault_reads,
                after.key_vault_reads,
            ),
            (
                "Key Vault writes",
                self.key_vault_writes,
                after.key_vault_writes,
            ),
            ("Entra", self.entra_tokens, after.entra_tokens),
            ("OpenBao", self.openbao, after.openbao),
        ];
        let grown: Vec<String> = pairs
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(n, a, b)| format!("{n} +{}", b - a))
            .collect();
        if grown.is_empty() {
            "no request to any cloud".into()
        } else {
            grown.join(", ")
        }
    }
}

async fn world() -> World {
    let clouds = Clouds::start().await;
    let google = google().await;
    let stranger = Issuer::start().await;

    // The push receiver on Cloud Run: reads the Google source as its runtime's service
    // account and writes to the destination project through workload identity
    // federation, for secrets of Latin names `app-*` only.
    let runtime = google.metadata.unique_id();
    let run_provider = trust_writer(&google, google.issuer.url(), &runtime);
    let push_config = format!(
        "{}{}\n[[rules]]\nsource = \"gsm\"\nmatch = \"app-*\"\ndestinations = [\"gcp-dr\"]\n",
        push_receiver_config(&google),
        google_destination(&google, &run_provider, "run", None),
    );
    let push = Receiver::start(
        "fedsync-pubsub-push",
        &[
            ("FEDSYNC_CONFIG_TOML", push_config),
            ("FEDSYNC_LOG", "trace".to_string()),
        ],
    )
    .await;

    // The Lambda, reading `main` (prod/app/db) and writing to AWS.
    let (api, lambda) = clouds.function(&clouds.config("", SUBJECT)).await;

    // OpenBao, holding secrets inside and outside the webhook's rule.
    let bao = OpenBao::start().await;
    bao.trust_jwt(clouds.issuer.url(), "fedsync", "vault", SUBJECT)
        .await;
    bao.put(
        "app/db",
        leaks::secret_json(json!({"password": VAULT_PASSWORD})),
    )
    .await;
    bao.put(
        "private/db",
        leaks::secret_json(json!({"password": PRIVATE_PASSWORD})),
    )
    .await;
    for (i, (name, _, _)) in PLACEHOLDER_NAMES.iter().enumerate() {
        bao.put(name, leaks::secret_json(placeholder_value(i)))
            .await;
    }

    // Key Vault as the webhook's Event Grid source, and Google as a destination
    // trusting fedsync's own issuer.
    let azure = azure(clouds.issuer.url(), SUBJECT).await;
    azure
        .vault
        .set_secret(KV_NAME, &leaks::secret(KV_VALUE), &[]);
    let provider = google.sts.add_provider(
        WorkloadIdentityProvider::new(DEST_PROJECT.1, POOL, "fedsync-webhook", clouds.issuer.url())
            .condition(&format!("assertion.sub == '{SUBJECT}'")),
    );
    google.secret_manager.grant(
        DEST_PROJECT.0,
        &Principal::federated(DEST_PROJECT.1, POOL, SUBJECT).member(),
        SecretManagerRole::Admin,
    );

    let triggers = format!(
        "[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n[[triggers.notify.issuers]]\nissuer = \"{issuer}\"\naudience = \"{NOTIFY_AUD}\"\nsubjects = [\"{SENDER}\"]\n\n[triggers.event_grid]\ntenant_id = \"{TENANT}\"\naudience = \"{WEBHOOK_APP}\"\nauthority_host = \"{authority}\"\n",
        issuer = clouds.issuer.url(),
        authority = azure.entra.authority_host(),
    );
    let rules = format!(
        r#"
[[rules]]
source = "main"
match = "prod/**"
destinations = ["aws-dr"]

[[rules]]
source = "vault"
match = "app/**"
destinations = ["aws-dr", "gcp-dr"]
name = "vault-{{name}}"

[[rules]]
source = "kv"
match = "prod-*"
destinations = ["aws-dr"]

[sources.vault]
kind = "vault-kv"
address = "{bao}"
login = {{ role = "fedsync", identity = "deploy" }}
"#,
        bao = bao.address()
    );
    let config = format!(
        "{triggers}{}{}{}",
        clouds.config_with_rules("", SUBJECT, &rules),
        azure.vault_config("sources.kv", "deploy", ""),
        google_destination(&google, &provider, "deploy", None),
    );
    let mut env = clouds.function_env(&config);
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    let webhook = Receiver::start("fedsync-webhook", &env).await;

    World {
        clouds,
        google,
        azure,
        bao,
        api,
        lambda,
        push,
        webhook,
        stranger,
        kept: Mutex::new(HashMap::new()),
    }
}

impl World {
    fn snapshot(&self) -> Snapshot {
        let sm = &self.google.secret_manager;
        let gsm_reads = [
            SecretManagerMethod::AccessSecretVersion,
            SecretManagerMethod::GetSecret,
            SecretManagerMethod::GetSecretVersion,
            SecretManagerMethod::ListSecretVersions,
        ];
        let (mut reads, mut writes) = (0, 0);
        for call in sm.call_log() {
            if gsm_reads.contains(&call.method) {
                reads += 1;
            } else {
                writes += 1;
            }
        }
        let (mut kv_reads, mut kv_writes) = (0, 0);
        for request in self.azure.vault.requests() {
            use fedsync_tests::azure::key_vault::Operation::*;
            match request.operation {
                GetSecret | GetSecrets | GetSecretVersions | GetDeletedSecret => kv_reads += 1,
                _ => kv_writes += 1,
            }
        }
        Snapshot {
            moto: self
                .clouds
                .moto
                .logs()
                .lines()
                .filter(|l| l.contains(" HTTP/1.1\" "))
                .count(),
            aws_exchanges: self.clouds.sts.exchanges().len(),
            gsm_reads: reads,
            gsm_writes: writes,
            google_exchanges: self.google.sts.exchanges().len(),
            impersonations: self.google.iam.calls().len(),
            metadata_tokens: self.google.metadata.requests(MetadataEndpoint::Token)
                + self.google.metadata.requests(MetadataEndpoint::Identity),
            key_vault_reads: kv_reads,
            key_vault_writes: kv_writes,
            entra_tokens: self.azure.entra.calls(),
            openbao: self.bao.audited_requests(),
        }
    }

    /// Sends `request`: the status and the answer's text (a failed invocation is 500,
    /// its error type and message the text; a refused connection is status 0).
    async fn send(&self, request: &Request) -> (u16, String) {
        match request {
            Request::Invoke(event) => match self.api.invoke(event.clone(), INVOKE_TIMEOUT).await {
                Invocation::Ok(answer) => (200, answer.to_string()),
                Invocation::Error {
                    error_type,
                    message,
                } => (500, format!("{error_type}: {message}")),
                Invocation::Timeout => (504, "the invocation timed out".into()),
            },
            Request::Post {
                to,
                path,
                headers,
                body,
            } => {
                let base = match to {
                    Trigger::Push => self.push.url(),
                    Trigger::Webhook => self.webhook.url(),
                    Trigger::Lambda => unreachable!("the Lambda is invoked"),
                };
                let mut post = reqwest::Client::new()
                    .post(format!("{base}{path}"))
                    .body(body.clone());
                for (name, value) in headers {
                    post = post.header(*name, value);
                }
                match post.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        (status, response.text().await.unwrap_or_default())
                    }
                    Err(e) => (0, format!("no answer: {e}")),
                }
            }
        }
    }

    fn post(
        &self,
        to: Trigger,
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Request {
        Request::Post {
            to,
            path,
            headers,
            body,
        }
    }

    /// Keeps `request` under `name` and returns it.
    fn remember(&self, name: &'static str, request: Request) -> Request {
        self.kept.lock().unwrap().insert(name, request.clone());
        request
    }

    /// The request kept under `name`, exactly as it was sent.
    fn replay(&self, name: &str) -> Request {
        self.kept.lock().unwrap()[name].clone()
    }

    // Pub/Sub push.

    fn push_claims(&self) -> Value {
        self.google
            .issuer
            .push_claims(PUSH_AUDIENCE, PUSH_ACCOUNT, true, Duration::from_secs(3600))
    }

    fn push_token(&self) -> String {
        self.google.issuer.sign(&self.push_claims())
    }

    fn push(&self, body: &Value, token: Option<String>) -> Request {
        let headers = token
            .map(|t| ("authorization", format!("Bearer {t}")))
            .into_iter()
            .collect();
        self.post(Trigger::Push, "/", headers, body.to_string().into_bytes())
    }

    fn push_with_claims(&self, edit: fn(&mut Value)) -> Request {
        let mut claims = self.push_claims();
        edit(&mut claims);
        let token = self.google.issuer.sign(&claims);
        self.push(&push_body("SECRET_VERSION_ADD", GOOGLE_SECRET), Some(token))
    }

    fn post_push_bytes(&self, body: Vec<u8>) -> Request {
        self.post(
            Trigger::Push,
            "/",
            vec![("authorization", format!("Bearer {}", self.push_token()))],
            body,
        )
    }

    // Notices and Vault events.

    fn signed(&self, path: &'static str, body: Vec<u8>) -> Request {
        self.signed_with(KEY, unix_now(), path, body)
    }

    fn signed_with(&self, key: &str, timestamp: u64, path: &'static str, body: Vec<u8>) -> Request {
        let ts = timestamp.to_string();
        let headers = vec![
            json_type(),
            ("x-fedsync-timestamp", ts.clone()),
            ("x-fedsync-signature", signature(key, &ts, &body)),
        ];
        self.post(Trigger::Webhook, path, headers, body)
    }

    fn notify_claims(&self) -> Value {
        self.clouds
            .issuer
            .claims(SENDER, NOTIFY_AUD, Duration::from_secs(300))
    }

    fn bearer_token(&self, token: String) -> Request {
        let headers = vec![json_type(), ("authorization", format!("Bearer {token}"))];
        self.post(
            Trigger::Webhook,
            "/v1/notify",
            headers,
            notice_body("app/db"),
        )
    }

    fn bearer_with(&self, edit: fn(&mut Value)) -> Request {
        let mut claims = self.notify_claims();
        edit(&mut claims);
        self.bearer_token(self.clouds.issuer.mint(&claims))
    }

    // Event Grid.

    fn grid_claims(&self) -> Value {
        self.azure.entra.app_token_claims(
            TENANT,
            EVENT_GRID_APP_ID,
            WEBHOOK_APP,
            &[SECURE_WEBHOOK_ROLE],
            Duration::from_secs(3600),
        )
    }

    /// A delivery of the vault's latest new version, its event edited by `event`, with an
    /// Event Grid token whose claims `claims` edited.
    fn grid(&self, claims: fn(&mut Value), event: fn(&mut Value)) -> Request {
        let grid = EventGrid::new(&self.azure.entra, TENANT, "fedsync-kv");
        let token = grid.bearer_token_with(WEBHOOK_APP, claims);
        self.grid_delivery(Some(token), event)
    }

    fn grid_delivery(&self, token: Option<String>, edit: fn(&mut Value)) -> Request {
        let grid = EventGrid::new(&self.azure.entra, TENANT, "fedsync-kv");
        let version = self.azure.vault.last_new_version().expect("a version");
        let mut event = grid.secret_new_version_created(&version, Schema::EventGrid);
        assert_eq!(event["eventType"], SECRET_NEW_VERSION_CREATED);
        edit(&mut event);
        let mut delivery = grid.notification(&[event], Schema::EventGrid);
        if let Some(token) = token {
            delivery = delivery.with_bearer(&token);
        }
        let headers = delivery
            .headers
            .iter()
            .map(|(n, v)| (header_name(n), v.clone()))
            .collect();
        self.post(
            Trigger::Webhook,
            "/v1/azure/events",
            headers,
            delivery.body.unwrap_or_default().into_bytes(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Building hostile requests.

/// The sample PutSecretValue event, naming `secret` by name only (as a caller passing
/// a name does).
fn put_event(secret: &str) -> Value {
    let mut e = event("eventbridge-put-secret-value.json");
    e["detail"]["responseElements"] = Value::Null;
    e["detail"]["requestParameters"]["secretId"] = json!(secret);
    e
}

/// The sample PutSecretValue event, edited.
fn invoke_edited(edit: impl FnOnce(&mut Value)) -> Request {
    let mut e = event("eventbridge-put-secret-value.json");
    edit(&mut e);
    Request::Invoke(e)
}

/// An SQS batch of `records`.
fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// A record of the sample batch, with its id, body and event source replaced.
fn sqs_record(message_id: &str, body: Value, event_source: &str) -> Value {
    let mut record = event("sqs-batch.json")["Records"][0].clone();
    record["messageId"] = json!(message_id);
    record["body"] = body;
    record["eventSource"] = json!(event_source);
    record
}

/// A push request's body: `event_type` for the source secret `id`, version 1.
fn push_body(event_type: &str, id: &str) -> Value {
    let mut body = event("pubsub-secret-version-add.json");
    let secret = format!("projects/{}/secrets/{id}", SOURCE_PROJECT.1);
    let attributes = &mut body["message"]["attributes"];
    attributes["eventType"] = json!(event_type);
    attributes["secretId"] = json!(secret);
    attributes["versionId"] = json!(format!("{secret}/versions/1"));
    body
}

fn notice_body(secret: &str) -> Vec<u8> {
    json!({"source": "vault", "secret": secret})
        .to_string()
        .into_bytes()
}

/// `depth` nested arrays around `0`.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(0), |inner, _| json!([inner]))
}

fn nested_text(depth: usize) -> String {
    format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
}

/// `json` with its first string made invalid UTF-8 (a lone continuation byte, then an
/// overlong encoding).
fn invalid_utf8(json: &str) -> Vec<u8> {
    let mut bytes = json.as_bytes().to_vec();
    let at = bytes.iter().position(|b| *b == b'"').map_or(0, |p| p + 1);
    bytes.splice(at..at, [0x80, 0xC0, 0xAF]);
    bytes
}

fn json_type() -> (&'static str, String) {
    ("content-type", "application/json".to_string())
}

/// `sha256=<hex>` of `{timestamp}.{body}` under `key`.
fn signature(key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// An Event Grid header's name, as the static name a request carries.
fn header_name(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "content-type" => "content-type",
        "authorization" => "authorization",
        "aeg-event-type" => "aeg-event-type",
        "aeg-subscription-name" => "aeg-subscription-name",
        "aeg-delivery-count" => "aeg-delivery-count",
        "aeg-data-version" => "aeg-data-version",
        "aeg-metadata-version" => "aeg-metadata-version",
        other => panic!("an unexpected Event Grid header {other}"),
    }
}

/// A token with `{"alg": "none"}`, naming `key`'s `kid`, and no signature.
fn unsigned(claims: &Value, key: &SigningKey) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": key.kid()});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The algorithm-confusion attack: an HS256 token, naming `key`'s `kid`, whose HMAC
/// secret is `key`'s public key as PEM, which a verifier that lets the token choose its
/// algorithm would use as the HMAC key.
fn hs256_with_public_key(key: &SigningKey, claims: &Value) -> String {
    let body: String = key
        .private_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let pkcs8 = STANDARD.decode(body).expect("PEM holds base64");
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).expect("an RSA key");
    let spki = pair.public_key().as_der().expect("a public key encodes");
    let der = STANDARD.encode(spki.as_ref());
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in der.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid().to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(pem.as_bytes()))
        .expect("sign a token")
}

/// The credential a request carries (a bearer token or a signature), to be sure no
/// answer repeats it.
fn credential(request: &Request) -> Option<String> {
    let Request::Post { headers, .. } = request else {
        return None;
    };
    headers
        .iter()
        .find(|(n, _)| *n == "authorization" || *n == "x-fedsync-signature")
        .map(|(_, v)| v.rsplit(' ').next().unwrap_or(v).to_string())
}

/// The value of the `i`th of [`PLACEHOLDER_NAMES`].
fn placeholder_value(i: usize) -> Value {
    json!({"password": format!("{PLACEHOLDER_PASSWORD}-{i}")})
}

/// Every value the world's sources hold (or begin with).
fn secret_values() -> Vec<String> {
    vec![
        VALUE.to_string(),
        VAULT_PASSWORD.to_string(),
        PRIVATE_PASSWORD.to_string(),
        PLACEHOLDER_PASSWORD.to_string(),
        KV_VALUE.to_string(),
    ]
}
