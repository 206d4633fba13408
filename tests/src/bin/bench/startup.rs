//! The start-up section of the benchmark: for every function binary, its
//! start-up (process spawn to the first Runtime API poll for a Lambda function,
//! to the first accepted connection for an HTTP receiver), its peak RSS after it
//! has handled one real event end to end, and its stripped release size.

use crate::report::{Table, mib, ms, quantile, verdict};
use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE, event};
use fedsync_tests::google_world::{GOOGLE_SECRET, SOURCE_PROJECT, push_world};
use fedsync_tests::issuer::unix_now;
use fedsync_tests::lambda_api::{Invocation, LambdaApi, LambdaProcess, workspace_binary};
use fedsync_tests::moto::{Moto, credentials_env};
use fedsync_tests::notice;
use fedsync_tests::receiver::Receiver;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts measured per function.
const STARTS: usize = 30;
const START_UP_TARGET: Duration = Duration::from_millis(10);
const RSS_TARGET: u64 = 20 * 1024 * 1024;
const SIZE_TARGET: u64 = 12 * 1024 * 1024;
/// The level the functions are deployed with (`LogLevel` in template.yaml, the
/// Dockerfile's `FEDSYNC_LOG`).
const LOG_LEVEL: &str = "info";
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const LAMBDA: &str = "the first Runtime API poll";
const RECEIVER: &str = "the first accepted connection";
/// The relay's FIFO change queue in moto.
const QUEUE: &str = "fedsync-changes.fifo";

/// What was measured of one function.
struct Figures {
    function: &'static str,
    start_up_to: &'static str,
    /// Sorted.
    starts: Vec<Duration>,
    peak_rss: u64,
    size: u64,
}

/// Measures every function binary, one after the other (nothing else runs
/// while one starts), and tabulates the figures against their targets.
pub async fn run() -> Table {
    let figures = [
        eventbridge().await,
        relay().await,
        pubsub_push().await,
        webhook().await,
    ];
    let mut table = Table::new(
        "Start-up, memory and size of the function binaries",
        &format!(
            "Each function binary is started {STARTS} times, measured from just before the \
             process is spawned to {LAMBDA} on the Lambda Runtime API server of `tests/` \
             (Lambda functions), or to {RECEIVER} on `$PORT`, polled every millisecond (HTTP \
             receivers): configuration parsed, keys loaded, clients built, logging set up. \
             Peak RSS is `VmHWM` of a fresh process after it has handled one real event end \
             to end, checked to have succeeded. The size is the release binary, which the \
             release profile strips. Every process runs with `FEDSYNC_LOG={LOG_LEVEL}`, as \
             deployed."
        ),
        &[
            "function",
            "start-up measured to",
            &format!("start-up (median of {STARTS})"),
            "start-up (p90)",
            "peak RSS after one event",
            "binary size (stripped)",
            "start-up < 10 ms (median and p90)",
            "peak RSS < 20 MiB",
            "size < 12 MiB",
        ],
    );
    for f in &figures {
        let (median, p90) = (quantile(&f.starts, 0.5), quantile(&f.starts, 0.9));
        table.row(vec![
            format!("`{}`", f.function),
            f.start_up_to.to_string(),
            ms(median),
            ms(p90),
            mib(f.peak_rss),
            mib(f.size),
            verdict(median < START_UP_TARGET && p90 < START_UP_TARGET),
            verdict(f.peak_rss < RSS_TARGET),
            verdict(f.size < SIZE_TARGET),
        ]);
    }
    table.note(
        "The event each function handled before its peak RSS was read: \
         `fedsync-eventbridge` a PutSecretValue event synced from moto to moto's Secrets \
         Manager in another region through the validating STS front; `fedsync-relay` the \
         same event queued in a moto SQS FIFO queue (and found there); \
         `fedsync-pubsub-push` a signed `SECRET_VERSION_ADD` push synced from the Google \
         emulators to AWS and to another Google project, exchanges included; \
         `fedsync-webhook` an HMAC-signed change notice (`POST /v1/notify`) synced to \
         moto's Secrets Manager through the STS front."
            .to_string(),
    );
    table.note(
        "Start-up is sensitive to load on the machine: compare figures from quiet runs."
            .to_string(),
    );
    table
}

/// `fedsync-eventbridge`: a PutSecretValue event synced to the destination region.
async fn eventbridge() -> Figures {
    let name = "fedsync-eventbridge";
    let binary = workspace_binary(name);
    let clouds = Clouds::start().await;
    let env = at_log_level(clouds.function_env(&clouds.config("", SUBJECT)));
    let starts = lambda_starts(&binary, &env).await;

    let api = LambdaApi::start().await;
    let process = LambdaProcess::spawn(&binary, &api, env);
    let answer = invoked(
        api.invoke(event("eventbridge-put-secret-value.json"), INVOKE_TIMEOUT)
            .await,
        &process,
    );
    assert_synced(name, &answer, &["aws-dr"], &process.logs());
    assert!(
        clouds.written(SECRET).await.as_deref() == Some(VALUE),
        "{name} answered synced but the destination does not hold the source's value; logs:\n{}",
        process.logs()
    );
    Figures {
        function: name,
        start_up_to: LAMBDA,
        starts,
        peak_rss: peak_rss(process.id()),
        size: size(&binary),
    }
}

/// `fedsync-relay`: the same event queued in the change queue, with a role
/// that may send to that queue and do nothing else.
async fn relay() -> Figures {
    let name = "fedsync-relay";
    let binary = workspace_binary(name);
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let (queue_url, role) = moto.change_queue(QUEUE).await;
    moto.enable_iam_auth().await;
    let mut env = credentials_env(&moto.role_credentials(&role, "relay").await);
    env.extend([
        ("AWS_ENDPOINT_URL", moto.endpoint().to_string()),
        ("FEDSYNC_CHANGE_QUEUE_URL", queue_url.clone()),
    ]);
    let env = at_log_level(env);
    let starts = lambda_starts(&binary, &env).await;

    let api = LambdaApi::start().await;
    let process = LambdaProcess::spawn(&binary, &api, env);
    let answer = invoked(
        api.invoke(event("eventbridge-put-secret-value.json"), INVOKE_TIMEOUT)
            .await,
        &process,
    );
    assert!(
        answer["status"] == "queued" && answer["group"] == SECRET,
        "{name} did not queue the change in its secret's group: {answer:#}\nlogs:\n{}",
        process.logs()
    );
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive from the change queue");
    let ids: Vec<&str> = received
        .messages()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert!(
        ids.len() == 1 && answer["message_id"] == ids[0],
        "the change queue holds {ids:?}, not the one message {name} queued ({answer:#}); logs:\n{}",
        process.logs()
    );
    Figures {
        function: name,
        start_up_to: LAMBDA,
        starts,
        peak_rss: peak_rss(process.id()),
        size: size(&binary),
    }
}

/// `fedsync-pubsub-push`: a signed push synced to AWS and to another Google project.
async fn pubsub_push() -> Figures {
    let name = "fedsync-pubsub-push";
    let world = push_world().await;
    let env = [
        ("FEDSYNC_CONFIG_TOML", world.receiver_config.clone()),
        ("FEDSYNC_LOG", LOG_LEVEL.to_string()),
    ];
    let starts = receiver_starts(name, &env).await;

    let receiver = Receiver::start(name, &env).await;
    let mut body = event("pubsub-secret-version-add.json");
    body["message"]["attributes"]["secretId"] =
        format!("projects/{}/secrets/{GOOGLE_SECRET}", SOURCE_PROJECT.1).into();
    let response = reqwest::Client::new()
        .post(format!("{}/", receiver.url()))
        .bearer_auth(world.good_token())
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name} does not answer: {e}; logs:\n{}", receiver.logs()));
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status == 200,
        "{name} answered {status}: {answer:#}\nlogs:\n{}",
        receiver.logs()
    );
    assert_synced(name, &answer, &["aws-dr", "gcp-dr"], &receiver.logs());
    Figures {
        function: name,
        start_up_to: RECEIVER,
        starts,
        peak_rss: peak_rss(receiver.id()),
        size: size(&workspace_binary(name)),
    }
}

/// `fedsync-webhook`: an HMAC-signed change notice synced to the destination region.
async fn webhook() -> Figures {
    let name = "fedsync-webhook";
    let clouds = Clouds::start().await;
    // A fresh key each run: at least 32 bytes, as the trigger requires.
    let key: String = (0..32)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect();
    let config = format!(
        "[triggers.notify]\nhmac_secret = \"env:FEDSYNC_NOTIFY_SECRET\"\n{}",
        clouds.config("", SUBJECT)
    );
    let mut env = clouds.function_env(&config);
    env.push(("FEDSYNC_NOTIFY_SECRET", key.clone()));
    let env = at_log_level(env);
    let starts = receiver_starts(name, &env).await;

    let receiver = Receiver::start(name, &env).await;
    let body = json!({"source": "main", "secret": SECRET}).to_string();
    let (status, answer) = notice::post(
        &format!("{}/v1/notify", receiver.url()),
        &body,
        &notice::signed_headers(&key, unix_now(), &body),
    )
    .await;
    assert!(
        status == 200,
        "{name} answered {status}: {answer:#}\nlogs:\n{}",
        receiver.logs()
    );
    assert_synced(name, &answer, &["aws-dr"], &receiver.logs());
    assert!(
        clouds.written(SECRET).await.as_deref() == Some(VALUE),
        "{name} answered synced but the destination does not hold the source's value; logs:\n{}",
        receiver.logs()
    );
    Figures {
        function: name,
        start_up_to: RECEIVER,
        starts,
        peak_rss: peak_rss(receiver.id()),
        size: size(&workspace_binary(name)),
    }
}

/// `env` with the deployed log level instead of any other.
fn at_log_level(mut env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    env.retain(|(k, _)| *k != "FEDSYNC_LOG");
    env.push(("FEDSYNC_LOG", LOG_LEVEL.to_string()));
    env
}

/// [`STARTS`] starts of the Lambda function `binary`, each against a Runtime API
/// of its own, to its first poll; sorted.
async fn lambda_starts(binary: &Path, env: &[(&'static str, String)]) -> Vec<Duration> {
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let api = LambdaApi::start().await;
        let spawned = Instant::now();
        let process = LambdaProcess::spawn(binary, &api, env.iter().cloned());
        let first = api
            .wait_for_first_poll(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{} did not poll the Runtime API; logs:\n{}",
                    binary.display(),
                    process.logs()
                )
            });
        starts.push(first.duration_since(spawned));
    }
    starts.sort();
    starts
}

/// [`STARTS`] starts of the HTTP receiver `name`, to its first accepted connection; sorted.
async fn receiver_starts(name: &str, env: &[(&str, String)]) -> Vec<Duration> {
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        starts.push(Receiver::start(name, env).await.startup());
    }
    starts.sort();
    starts
}

/// The answer of a successful invocation; panics with the function's logs otherwise.
fn invoked(outcome: Invocation, process: &LambdaProcess) -> Value {
    match outcome {
        Invocation::Ok(answer) => answer,
        other => panic!(
            "the invocation failed: {other:?}; logs:\n{}",
            process.logs()
        ),
    }
}

/// Panics (with `logs`) unless the report in `answer` synced to exactly `destinations`.
fn assert_synced(function: &str, answer: &Value, destinations: &[&str], logs: &str) {
    let mut synced: Vec<&str> = answer["report"]["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["status"] == "synced")
        .filter_map(|o| o["destination"].as_str())
        .collect();
    synced.sort();
    assert!(
        synced == destinations,
        "{function} did not sync to {destinations:?}: {answer:#}\nlogs:\n{logs}"
    );
}

/// The size of a built binary.
fn size(binary: &Path) -> u64 {
    std::fs::metadata(binary)
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()))
        .len()
}

/// `VmHWM` of a running process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is not running: {e}"));
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}
