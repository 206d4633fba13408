//! The demo's story: each sample event of `events/` (built into the binary, so the
//! demo runs from anywhere), the change at the source that it reports, how it is
//! delivered (as its function would take it), and what each pass must show.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fedsync::Engine;
use fedsync::triggers::notify::{self, Accepted, NotifyAuth};
use fedsync::triggers::{self, Handled, sqs};

use super::world::{Place, World};

/// The audience pass 3 asks AWS for, which the writer role does not trust.
pub const WRONG_AUDIENCE: &str = "sts.amazonaws.com.invalid";

/// What the owner of the source did before the event was sent.
#[derive(Clone, Copy)]
enum Change {
    /// Nothing the demo must do (the event reports no new value).
    None,
    /// A new current value of these AWS secrets.
    Aws(&'static [&'static str]),
    /// The AWS secret was scheduled for deletion, or restored.
    AwsDeleted(&'static str),
    AwsRestored(&'static str),
    /// A new version of the Google secret, or its deletion.
    Google(&'static str),
    GoogleDeleted(&'static str),
}

/// How the event reaches fedsync.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// An EventBridge event (Lambda) or a Pub/Sub push request (Cloud Run).
    Direct,
    /// An SQS batch of EventBridge events, as the FIFO queue delivers them.
    SqsBatch,
    /// A signed change notice to the webhook's function URL.
    Notice,
}

/// One sample event and the change it reports.
pub struct Step {
    pub file: &'static str,
    pub event: &'static str,
    change: Change,
    delivery: Delivery,
}

macro_rules! event {
    ($file:literal, $change:expr, $delivery:expr) => {
        Step {
            file: $file,
            event: include_str!(concat!("../../../../events/", $file)),
            change: $change,
            delivery: $delivery,
        }
    };
}

const DB: &str = "prod/app/db";
const CACHE: &str = "prod/app/cache";
const GOOGLE_DB: &str = "app-db";

/// Every file of `events/`, in the order a story needs them.
pub fn first_pass() -> Vec<Step> {
    use Change::*;
    use Delivery::*;
    vec![
        event!("eventbridge-create-secret.json", Aws(&[DB]), Direct),
        event!("eventbridge-put-secret-value.json", Aws(&[DB]), Direct),
        event!("eventbridge-update-secret.json", Aws(&[DB]), Direct),
        event!("eventbridge-rotation-succeeded.json", Aws(&[DB]), Direct),
        event!("eventbridge-secret-label-updated.json", None, Direct),
        event!("eventbridge-tag-resource.json", None, Direct),
        event!("sqs-batch.json", Aws(&[DB, CACHE]), SqsBatch),
        event!("function-url-notify.json", Aws(&[DB]), Notice),
        event!("eventbridge-delete-secret.json", AwsDeleted(DB), Direct),
        event!("eventbridge-restore-secret.json", AwsRestored(DB), Direct),
        event!("eventbridge-unrelated.json", None, Direct),
        event!("pubsub-secret-version-add.json", Google(GOOGLE_DB), Direct),
        event!(
            "pubsub-secret-delete.json",
            GoogleDeleted(GOOGLE_DB),
            Direct
        ),
        event!("pubsub-topic-configured.json", None, Direct),
    ]
}

/// The (event, destination) pairs pass 1 must show as synced.
pub fn expected_first_pass() -> Vec<(&'static str, &'static str)> {
    let everywhere = ["aws-dr", "gcp-dr", "azure-dr"];
    let mut expected = Vec::new();
    for file in [
        "eventbridge-create-secret.json",
        "eventbridge-put-secret-value.json",
        "eventbridge-update-secret.json",
        "eventbridge-rotation-succeeded.json",
        "sqs-batch.json",
        "function-url-notify.json",
    ] {
        expected.extend(everywhere.map(|d| (file, d)));
    }
    expected.extend(["aws-dr", "azure-dr"].map(|d| ("pubsub-secret-version-add.json", d)));
    expected
}

/// New values again, now that fedsync holds credentials for every destination.
pub fn second_pass() -> Vec<Step> {
    use Change::*;
    use Delivery::*;
    vec![
        event!("eventbridge-put-secret-value.json", Aws(&[DB]), Direct),
        event!("sqs-batch.json", Aws(&[DB, CACHE]), SqsBatch),
        event!("function-url-notify.json", Aws(&[DB]), Notice),
    ]
}

pub fn expected_second_pass() -> Vec<(&'static str, &'static str)> {
    second_pass()
        .iter()
        .flat_map(|s| ["aws-dr", "gcp-dr", "azure-dr"].map(|d| (s.file, d)))
        .collect()
}

/// One change, sent with the wrong audience for AWS.
pub fn third_pass() -> Vec<Step> {
    vec![event!(
        "eventbridge-put-secret-value.json",
        Change::Aws(&[DB]),
        Delivery::Direct
    )]
}

/// The configuration with aws-dr asking for [`WRONG_AUDIENCE`].
pub fn with_wrong_audience(config: &str) -> String {
    config.replacen(
        "[destinations.aws-dr]\n",
        &format!("[destinations.aws-dr]\naudience = \"{WRONG_AUDIENCE}\"\n"),
        1,
    )
}

impl Step {
    /// Makes the change this event reports, with a fresh value nobody is shown.
    pub fn prepare(&self, world: &World) {
        match self.change {
            Change::None => {}
            Change::Aws(names) => {
                for name in names {
                    world.change(Place::Aws(name), &fresh_value());
                }
            }
            Change::AwsDeleted(name) => world.delete(Place::Aws(name)),
            Change::AwsRestored(name) => world.restore_aws(name),
            Change::Google(name) => world.change(Place::Google(name), &fresh_value()),
            Change::GoogleDeleted(name) => world.delete(Place::Google(name)),
        }
    }
}

/// Hands the event to fedsync as its function would; one result per change.
pub async fn deliver(
    world: &World,
    engine: &Engine,
    step: &Step,
    event: &serde_json::Value,
) -> Vec<Handled> {
    match step.delivery {
        Delivery::Direct => vec![triggers::handle_any(engine, event).await],
        Delivery::SqsBatch => {
            let handled = std::sync::Mutex::new(Vec::new());
            sqs::process(sqs::records(event), async |record: &serde_json::Value| {
                let result = triggers::eventbridge::handle(engine, record).await;
                let copy = match &result {
                    Handled::Ignored => Handled::Ignored,
                    Handled::Rejected(f) => Handled::Rejected(f.clone()),
                    Handled::Synced(r) => Handled::Synced(r.clone()),
                };
                handled.lock().unwrap_or_else(|e| e.into_inner()).push(copy);
                result
            })
            .await;
            handled.into_inner().unwrap_or_else(|e| e.into_inner())
        }
        Delivery::Notice => vec![notice(engine, event, &world.notice_key).await],
    }
}

/// The webhook's handling of a notice: the function URL's body, signed now with the
/// demo's notice key (the sample carries a placeholder signature), verified, parsed
/// and synced.
async fn notice(engine: &Engine, event: &serde_json::Value, key: &[u8]) -> Handled {
    let body = event["body"].as_str().unwrap_or_default().as_bytes();
    let Some(config) = &engine.config().triggers.notify else {
        return Handled::Rejected(fedsync::report::Failure::new(
            fedsync::report::FailureClass::BadInput,
            "the demo configuration has no [triggers.notify]".to_owned(),
        ));
    };
    let auth = match NotifyAuth::new(config) {
        Ok(auth) => auth,
        Err(f) => return Handled::Rejected(f),
    };
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        .to_string();
    let signature = match notify::sign(key, &timestamp, body) {
        Ok(signature) => signature,
        Err(f) => return Handled::Rejected(f),
    };
    match auth
        .verify(None, Some(&timestamp), Some(&signature), body)
        .await
    {
        Ok(Accepted::New(claim)) => {
            let parsed = notify::parse(body, engine.config()).map(Some);
            notify::sync_claimed(engine, claim, parsed).await
        }
        Ok(_) => Handled::Ignored,
        Err(refused) => Handled::Rejected(fedsync::report::Failure::new(
            fedsync::report::FailureClass::Auth,
            format!("the notice was refused: {refused}"),
        )),
    }
}

/// A value no one has seen: the demo never prints values, only what happened.
fn fresh_value() -> String {
    let bytes: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
        .take(18)
        .collect();
    format!("demo-{}", hex::encode(bytes))
}

/// The demo's table: one row per change and destination.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

struct Row {
    change: String,
    destination: String,
    status: String,
    exchanges: u32,
    time: Duration,
}

impl Table {
    pub fn row(
        &mut self,
        change: &str,
        destination: &str,
        status: &str,
        exchanges: u32,
        time: Duration,
    ) {
        self.rows.push(Row {
            change: change.to_owned(),
            destination: destination.to_owned(),
            status: status.to_owned(),
            exchanges,
            time,
        });
    }

    pub fn print(&self) {
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.change.clone(),
                    r.destination.clone(),
                    r.status.clone(),
                    r.exchanges.to_string(),
                    format!("{} ms", r.time.as_millis()),
                ]
            })
            .collect();
        let header = ["CHANGE", "DESTINATION", "STATUS", "EXCHANGES", "TIME"];
        let widths = crate::table::widths(&header, &cells);
        let right = [false, false, false, true, true];
        println!("  {}", crate::table::line(&header, &widths, &right));
        for row in &cells {
            println!("  {}", crate::table::line(row, &widths, &right));
        }
    }

    /// Whether each expected (event, destination) landed (a batch may also
    /// redeliver a change already synced, which is then unchanged) and none failed.
    pub fn expect_synced(&self, expected: &[(&str, &str)]) -> bool {
        let landed = expected.iter().all(|(file, destination)| {
            self.rows
                .iter()
                .any(|r| r.change == *file && r.destination == *destination && r.status == "synced")
        });
        landed && !self.rows.iter().any(|r| r.status.starts_with("failed"))
    }

    /// Exchanges fedsync reported over all rows.
    pub fn exchanges(&self) -> u32 {
        self.rows.iter().map(|r| r.exchanges).sum()
    }

    /// Whether `destination` failed.
    pub fn failed(&self, destination: &str) -> bool {
        self.rows
            .iter()
            .any(|r| r.destination == destination && r.status.starts_with("failed"))
    }
}
