//! The convergence run: changes to OpenBao secrets reach AWS Secrets Manager
//! (moto), Google Secret Manager and Azure Key Vault (the emulators) through the
//! webhook while the fault-injecting proxy sits in front of every server fedsync
//! talks to, OpenBao included. A producer writes new versions over time and
//! sends a signed notice per write plus 20% duplicates, shuffled, to 8 workers
//! that deliver them concurrently; a delivery answered 503 (or not answered in
//! time) is delivered again later, as Pub/Sub or SQS would, a bounded number of
//! times.
//!
//! Afterwards every destination holds its source's latest value, moto holds one
//! version per distinct source version written (a retried write made no second
//! one), and no destination ever went from a newer source version to an older
//! one. The default scale suits CI; `FEDSYNC_CONVERGENCE_CHANGES` and
//! `FEDSYNC_CONVERGENCE_SECRETS` select a larger run (1000 over 50 is the full
//! one), and `FEDSYNC_FAULT_SEED` replays a fault schedule.

use fedsync_tests::azure::world::{Azure, CLIENT, TENANT};
use fedsync_tests::clouds::{Clouds, SUBJECT};
use fedsync_tests::fault_proxy::{FaultKind, FaultPlan, FaultProxy, Forwarded, is_token_request};
use fedsync_tests::google::{GoogleCloud, Principal, SecretManagerRole, ServiceAccountRole};
use fedsync_tests::google_world::{DEST_PROJECT, POOL, WRITER_ACCOUNT, google, trust};
use fedsync_tests::issuer::unix_now;
use fedsync_tests::leaks;
use fedsync_tests::notice;
use fedsync_tests::openbao::OpenBao;
use fedsync_tests::receiver::Receiver;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "3f9c2a7e5b1d4c8f0a6e2b9d7c3f1a5e8b0d4c6f2a9e7b1d3c5f8a0e2b4d6c9f";
const WORKERS: usize = 8;
/// Duplicates sent, as a share of the changes.
const DUPLICATES: f64 = 0.2;
/// Deliveries of one notice at most, the first included.
const MAX_DELIVERIES: u32 = 10;
/// The webhook's budget per request: a held request costs this, not minutes.
const BUDGET: Duration = Duration::from_secs(8);
/// How long a worker waits for an answer: longer than the budget, so the
/// webhook has always finished with a request its worker gave up on.
const WORKER_TIMEOUT: Duration = Duration::from_secs(30);
/// The proxy's upstreams, by the name it records them under.
const MOTO: &str = "moto";
const AWS_STS: &str = "aws-sts";
const GOOGLE_STS: &str = "google-sts";
const GOOGLE_IAM: &str = "iam-credentials";
const SECRET_MANAGER: &str = "secret-manager";
const ENTRA: &str = "entra";
const KEY_VAULT: &str = "key-vault";
const OPENBAO: &str = "openbao";

/// How many changes over how many secrets.
struct Scale {
    changes: usize,
    secrets: usize,
}

impl Scale {
    fn from_env() -> Scale {
        let read = |name: &str, default: usize| match std::env::var(name) {
            Ok(text) => text
                .parse()
                .unwrap_or_else(|_| panic!("{name}={text:?} is not a count")),
            Err(_) => default,
        };
        let scale = Scale {
            changes: read("FEDSYNC_CONVERGENCE_CHANGES", 200),
            secrets: read("FEDSYNC_CONVERGENCE_SECRETS", 20),
        };
        assert!(
            scale.secrets >= 1 && scale.changes >= scale.secrets,
            "every secret needs at least one change"
        );
        scale
    }
}

/// The servers, the proxy in front of them, and the webhook configured through it.
struct World {
    clouds: Clouds,
    google: GoogleCloud,
    azure: Azure,
    bao: OpenBao,
    proxy: FaultProxy,
    webhook: Receiver,
}

async fn world(plan: FaultPlan) -> World {
    let clouds = Clouds::start().await;
    let google = google().await;
    let azure = Azure::start().await;
    let bao = OpenBao::start().await;
    let issuer = clouds.issuer.url();
    // One identity, fedsync's signing key, trusted by OpenBao and the three clouds.
    bao.trust_jwt(issuer, "fedsync", "vault", SUBJECT).await;
    let provider = trust(&google, issuer, &format!("assertion.sub == '{SUBJECT}'"));
    google.iam.grant(
        WRITER_ACCOUNT,
        ServiceAccountRole::WorkloadIdentityUser,
        &Principal::federated(DEST_PROJECT.1, POOL, SUBJECT).member(),
    );
    google.secret_manager.grant(
        DEST_PROJECT.0,
        &Principal::service_account(WRITER_ACCOUNT).member(),
        SecretManagerRole::Admin,
    );
    azure.trust(issuer, SUBJECT);

    let proxy = FaultProxy::new(plan);
    let via = |name: &'static str, upstream: String| {
        let proxy = &proxy;
        async move { proxy.route(name, &upstream).await }
    };
    let moto = via(MOTO, clouds.moto.endpoint().to_string()).await;
    let aws_sts = via(AWS_STS, clouds.sts.endpoint()).await;
    let google_sts = via(GOOGLE_STS, google.sts.endpoint()).await;
    let google_iam = via(GOOGLE_IAM, google.iam.endpoint()).await;
    let secret_manager = via(SECRET_MANAGER, google.secret_manager.endpoint()).await;
    let entra = via(ENTRA, azure.entra.authority_host().to_string()).await;
    let key_vault = via(KEY_VAULT, azure.vault.url().to_string()).await;
    let openbao = via(OPENBAO, bao.address().to_string()).await;

    let config = format!(
        r#"
[identities.deploy]
kind = "signing-key"
issuer = "{issuer}"
key = "env:FEDSYNC_SIGNING_KEY"
subject = "{SUBJECT}"

[sources.vault]
kind = "vault-kv"
address = "{openbao}"
login = {{ role = "fedsync", identity = "deploy" }}

[destinations.aws-dr]
kind = "aws-secrets-manager"
region = "{region}"
role_arn = "{role}"
identity = "deploy"
endpoint = "{moto}"
sts_endpoint = "{aws_sts}"

[destinations.gcp-dr]
kind = "gcp-secret-manager"
project = "{project}"
workload_identity_provider = "{provider}"
identity = "deploy"
service_account = "{WRITER_ACCOUNT}"
secretmanager_endpoint = "{secret_manager}"
sts_endpoint = "{google_sts}"
iamcredentials_endpoint = "{google_iam}"

[destinations.kv]
kind = "azure-key-vault"
vault_url = "{key_vault}"
vault_name = "{vault_name}"
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
identity = "deploy"
authority_host = "{entra}"

[triggers.notify]
hmac_secret = "env:FEDSYNC_NOTIFY_SECRET"

[[rules]]
source = "vault"
match = "conv-*"
destinations = ["aws-dr", "gcp-dr", "kv"]
"#,
        region = fedsync_tests::clouds::DEST_REGION,
        role = clouds.writer_role,
        project = DEST_PROJECT.0,
        vault_name = azure.vault.name(),
    );
    let mut env = clouds.function_env(&config);
    // No cloud credential at all: every one comes from an exchange.
    env.retain(|(k, _)| !k.starts_with("AWS_"));
    env.push(("FEDSYNC_NOTIFY_SECRET", KEY.to_string()));
    env.push(("FEDSYNC_BUDGET", format!("{}s", BUDGET.as_secs())));
    let webhook = Receiver::start("fedsync-webhook", &env).await;
    World {
        clouds,
        google,
        azure,
        bao,
        proxy,
        webhook,
    }
}

/// One write to the source: a notice names it.
struct Change {
    secret: String,
    version: u64,
}

/// One notice to deliver.
struct Delivery {
    change: usize,
    /// Deliveries so far.
    attempts: u32,
    not_before: Instant,
}

/// The notices waiting for a worker, as a queue service holds them.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Delivery>,
    /// Deliveries a worker is making now.
    in_flight: usize,
    /// The producer has written everything.
    produced: bool,
}

/// What the workers saw.
#[derive(Default)]
struct Tally {
    deliveries: usize,
    redeliveries: usize,
    /// Outcomes by status, over every processed answer.
    outcomes: BTreeMap<String, usize>,
    /// Answers that refused a delivery or reported a failure nobody retries.
    permanent: Vec<String>,
    /// Notices delivered `MAX_DELIVERIES` times without success.
    exhausted: Vec<String>,
    /// `(body, unix second)` of every signature sent: no two are alike, so the
    /// webhook never takes a delivery for a replay.
    signed: HashSet<(String, u64)>,
}

/// Everything the producer and the workers share.
struct Run {
    changes: Mutex<Vec<Change>>,
    queue: Mutex<Queue>,
    tally: Mutex<Tally>,
    http: reqwest::Client,
    url: String,
}

impl Run {
    fn next(&self) -> Next {
        let mut queue = self.queue.lock().unwrap();
        let now = Instant::now();
        if let Some(i) = queue.waiting.iter().position(|d| d.not_before <= now) {
            let delivery = queue.waiting.remove(i).unwrap();
            queue.in_flight += 1;
            return Next::Deliver(delivery);
        }
        if queue.produced && queue.waiting.is_empty() && queue.in_flight == 0 {
            Next::Done
        } else {
            Next::Wait
        }
    }

    /// A delivery ended; `again` puts it back for later.
    fn finish(&self, mut delivery: Delivery, again: Option<String>) {
        let mut queue = self.queue.lock().unwrap();
        queue.in_flight -= 1;
        let Some(why) = again else { return };
        if delivery.attempts >= MAX_DELIVERIES {
            let changes = self.changes.lock().unwrap();
            let c = &changes[delivery.change];
            self.tally.lock().unwrap().exhausted.push(format!(
                "{} v{} after {} deliveries: {why}",
                c.secret, c.version, delivery.attempts
            ));
            return;
        }
        // Redelivered after a backoff, as a queue service does (and never in
        // the same second as before, which the webhook would take for a replay).
        let backoff = Duration::from_millis(1100 * u64::from(delivery.attempts.min(4)));
        delivery.not_before = Instant::now() + backoff;
        self.tally.lock().unwrap().redeliveries += 1;
        queue.waiting.push_back(delivery);
    }

    /// Signs `body` at a second no delivery of the same body was signed at.
    async fn sign(&self, body: &str) -> Vec<(&'static str, String)> {
        loop {
            let now = unix_now();
            if self
                .tally
                .lock()
                .unwrap()
                .signed
                .insert((body.to_string(), now))
            {
                return notice::signed_headers(KEY, now, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Delivers one notice; `Some(reason)` when it must be delivered again.
    async fn deliver(&self, delivery: &mut Delivery) -> Option<String> {
        let body = {
            let changes = self.changes.lock().unwrap();
            let c = &changes[delivery.change];
            json!({"source": "vault", "secret": c.secret, "version": c.version.to_string()})
                .to_string()
        };
        let headers = self.sign(&body).await;
        delivery.attempts += 1;
        self.tally.lock().unwrap().deliveries += 1;
        let mut request = self
            .http
            .post(format!("{}/v1/notify", self.url))
            .timeout(WORKER_TIMEOUT)
            .body(body.clone());
        for (k, v) in &headers {
            request = request.header(*k, v);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Some(format!("no answer: {e}")),
        };
        let status = response.status().as_u16();
        let answer: Value = match response.text().await {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            Err(e) => return Some(format!("{status}, and the answer was lost: {e}")),
        };
        let mut tally = self.tally.lock().unwrap();
        for o in answer["report"]["outcomes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let status = o["status"].as_str().unwrap_or("?").to_string();
            *tally.outcomes.entry(status).or_default() += 1;
        }
        match status {
            503 => Some(format!("503 {answer}")),
            200 if answer["status"] == "processed" => {
                // A 200 means nobody will retry: anything failed in it stays failed.
                let failed = answer["report"]["outcomes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|o| o["status"] == "failed");
                if failed || !answer["report"]["error"].is_null() {
                    tally
                        .permanent
                        .push(format!("{body}: 200 without a retry: {answer}"));
                }
                None
            }
            _ => {
                tally.permanent.push(format!("{body}: {status} {answer}"));
                None
            }
        }
    }
}

enum Next {
    Deliver(Delivery),
    Wait,
    Done,
}

async fn worker(run: Arc<Run>) {
    loop {
        match run.next() {
            Next::Done => return,
            Next::Wait => tokio::time::sleep(Duration::from_millis(20)).await,
            Next::Deliver(mut delivery) => {
                let again = run.deliver(&mut delivery).await;
                run.finish(delivery, again);
            }
        }
    }
}

/// The value of version `version` of `secret`: it names both, and is unique.
fn value_of(secret: &str, version: u64, rng: &mut fastrand::Rng) -> String {
    let noise: String = (0..16).map(|_| rng.alphanumeric()).collect();
    format!("{secret}-v{version}-{noise}")
}

/// The source version a destination's value holds, checking that it is a
/// value of `secret` (`{"value": "<secret>-v<N>-<noise>"}`).
fn version_in(secret: &str, held: &str) -> u64 {
    let parsed: Value = serde_json::from_str(held)
        .unwrap_or_else(|_| panic!("{secret} holds something that is not a source value"));
    let value = parsed["value"].as_str().unwrap_or_default();
    value
        .strip_prefix(&format!("{secret}-v"))
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{secret} holds a value of another secret"))
}

/// The first version that came after a newer one, if any.
fn regression(versions: &[u64]) -> Option<(u64, u64)> {
    versions
        .windows(2)
        .find(|w| w[1] < w[0])
        .map(|w| (w[0], w[1]))
}

/// The source versions AWSCURRENT held at `secret`, in the order moto answered
/// the requests that set it (the proxy's record: an answer lost on the way back
/// still counts, the write landed).
fn aws_current_history(forwarded: &[Forwarded], secret: &str) -> Vec<u64> {
    let mut tokens: BTreeMap<String, u64> = BTreeMap::new();
    let mut history = Vec::new();
    for f in forwarded.iter().filter(|f| f.succeeded()) {
        let request: Value = serde_json::from_slice(&f.request_body).unwrap_or(Value::Null);
        let name = request["SecretId"].as_str().or(request["Name"].as_str());
        if name != Some(secret) {
            continue;
        }
        let written = request["SecretString"]
            .as_str()
            .map(|s| version_in(secret, s));
        match f.target.as_deref() {
            Some("secretsmanager.CreateSecret") => {
                let n = written.expect("CreateSecret carries the value");
                tokens.insert(request["ClientRequestToken"].as_str().unwrap().into(), n);
                history.push(n);
            }
            Some("secretsmanager.PutSecretValue") => {
                let n = written.expect("PutSecretValue carries the value");
                tokens.insert(request["ClientRequestToken"].as_str().unwrap().into(), n);
                let answer: Value = serde_json::from_slice(&f.response_body).unwrap_or_default();
                let stages = answer["VersionStages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if stages.iter().any(|s| s == "AWSCURRENT") {
                    history.push(n);
                }
            }
            Some("secretsmanager.UpdateSecretVersionStage")
                if request["VersionStage"] == "AWSCURRENT" =>
            {
                let token = request["MoveToVersionId"].as_str().unwrap_or_default();
                history.push(*tokens.get(token).unwrap_or_else(|| {
                    panic!("{secret}: AWSCURRENT moved to a version no request wrote")
                }));
            }
            _ => {}
        }
    }
    history
}

impl World {
    /// Every version moto holds for `name` (deprecated ones included), as the
    /// source versions their values hold.
    async fn aws_versions(&self, name: &str) -> Vec<u64> {
        let client = self.clouds.destination();
        let mut ids = Vec::new();
        let mut next = None;
        loop {
            let page = client
                .list_secret_version_ids()
                .secret_id(name)
                .include_deprecated(true)
                .max_results(100)
                .set_next_token(next)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListSecretVersionIds {name}: {e:?}"));
            ids.extend(
                page.versions()
                    .iter()
                    .filter_map(|v| v.version_id().map(str::to_string)),
            );
            // moto answers every version at once, with an empty NextToken.
            next = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        let mut versions = Vec::new();
        for id in ids {
            let value = client
                .get_secret_value()
                .secret_id(name)
                .version_id(&id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetSecretValue {name} {id}: {e:?}"));
            versions.push(version_in(name, value.secret_string().unwrap_or_default()));
        }
        versions
    }

    /// Google's versions of `name`, oldest first, as source versions.
    fn google_versions(&self, name: &str) -> Vec<u64> {
        self.google
            .secret_manager
            .secret(DEST_PROJECT.0, name)
            .map(|s| {
                s.versions
                    .iter()
                    .map(|v| {
                        let data = v.data.clone().expect("fedsync destroys no version");
                        version_in(name, &String::from_utf8(data).unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Key Vault's versions of `name`, oldest first, as source versions.
    fn azure_versions(&self, name: &str) -> Vec<u64> {
        self.azure
            .vault
            .secret(name)
            .map(|s| {
                s.versions
                    .iter()
                    .map(|v| version_in(name, &v.value))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The token requests each upstream granted.
    fn exchanges(&self, upstream: &str) -> usize {
        self.proxy
            .forwarded(upstream)
            .iter()
            .filter(|f| f.succeeded() && is_token_request(&f.path, &f.request_body))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_destination_converges_through_faults_without_duplicates_or_regressions() {
    let scale = Scale::from_env();
    let plan = FaultPlan::from_env()
        .rate(FaultKind::InternalError, 0.01)
        .rate(FaultKind::BadGateway, 0.01)
        .rate(FaultKind::Unavailable, 0.01)
        .rate(FaultKind::Throttled, 0.015)
        .rate(FaultKind::ResetBefore, 0.01)
        .rate(FaultKind::ResetAfter, 0.01)
        .rate(FaultKind::Timeout, 0.005)
        .rate(FaultKind::Truncated, 0.01)
        .token_outages(Duration::from_secs(20), Duration::from_secs(2))
        .retry_after(1)
        .hold(Duration::from_secs(30));
    let mut rng = fastrand::Rng::with_seed(plan.seed());
    let w = world(plan).await;
    let secrets: Vec<String> = (0..scale.secrets)
        .map(|i| format!("conv-s{i:02}"))
        .collect();
    // Every secret changes at least once; the rest fall anywhere.
    let mut order: Vec<usize> = (0..scale.changes)
        .map(|i| {
            if i < scale.secrets {
                i
            } else {
                rng.usize(..scale.secrets)
            }
        })
        .collect();
    rng.shuffle(&mut order);

    let run = Arc::new(Run {
        changes: Mutex::new(Vec::new()),
        queue: Mutex::new(Queue::default()),
        tally: Mutex::new(Tally::default()),
        http: reqwest::Client::new(),
        url: w.webhook.url().to_string(),
    });
    let started = Instant::now();
    // The first token requests meet an outage, on top of the periodic ones.
    w.proxy.token_outage_for(Duration::from_secs(3));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(worker(run.clone())))
        .collect();

    // The producer: a window of writes, then their notices and a fifth more as
    // duplicates, shuffled; the next window is written while they are delivered.
    let window = (scale.changes / 10).max(10);
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    let mut duplicates = 0;
    for chunk in order.chunks(window) {
        let mut deliveries = Vec::new();
        for &s in chunk {
            let secret = &secrets[s];
            let next = latest.get(secret).map_or(1, |v| version_in(secret, v) + 1);
            let value = leaks::secret_json(json!({"value": value_of(secret, next, &mut rng)}));
            let version = w.bao.put(secret, value.clone()).await;
            assert_eq!(version, next, "OpenBao numbers {secret}'s versions");
            latest.insert(secret.clone(), value.to_string());
            let mut changes = run.changes.lock().unwrap();
            changes.push(Change {
                secret: secret.clone(),
                version,
            });
            deliveries.push(changes.len() - 1);
        }
        let extra = (chunk.len() as f64 * DUPLICATES).round() as usize;
        for _ in 0..extra {
            deliveries.push(deliveries[rng.usize(..chunk.len())]);
        }
        duplicates += extra;
        rng.shuffle(&mut deliveries);
        {
            let mut queue = run.queue.lock().unwrap();
            queue
                .waiting
                .extend(deliveries.into_iter().map(|change| Delivery {
                    change,
                    attempts: 0,
                    not_before: Instant::now(),
                }));
        }
        // Write the next window once half of this one is being delivered.
        while run.queue.lock().unwrap().waiting.len() > window / 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    run.queue.lock().unwrap().produced = true;
    for worker in workers {
        worker.await.unwrap();
    }
    let wall = started.elapsed();

    // (1) Every destination holds its source's latest value.
    let mut converged = 0;
    let mut behind = Vec::new();
    for secret in &secrets {
        let read = w
            .bao
            .api(reqwest::Method::GET, &format!("secret/data/{secret}"), None)
            .await;
        let source = read["data"]["data"].to_string();
        assert_eq!(
            &source, &latest[secret],
            "OpenBao holds what was written last"
        );
        let aws = w.clouds.written(secret).await;
        let gcp = w
            .google
            .secret_manager
            .secret(DEST_PROJECT.0, secret)
            .and_then(|s| s.latest().and_then(|v| v.data.clone()))
            .map(|d| String::from_utf8(d).unwrap());
        let azure = w.azure.vault.latest(secret).map(|v| v.value);
        for (destination, held) in [("aws", aws), ("gcp", gcp), ("azure", azure)] {
            if held.as_deref() == Some(source.as_str()) {
                converged += 1;
            } else {
                let held = held.map(|h| version_in(secret, &h));
                behind.push(format!(
                    "{destination} {secret}: holds v{held:?}, the source v{}",
                    version_in(secret, &source)
                ));
            }
        }
    }
    let targets = secrets.len() * 3;
    let share = 100.0 * converged as f64 / targets as f64;

    // (2) moto holds one version per distinct source version written.
    let mut aws_duplicates = Vec::new();
    let mut writes = BTreeMap::from([("aws", 0), ("gcp", 0), ("azure", 0)]);
    // (3) No destination ever went back to an older source version.
    let mut regressions = Vec::new();
    let moto_record = w.proxy.forwarded(MOTO);
    for secret in &secrets {
        let versions = w.aws_versions(secret).await;
        let distinct: BTreeSet<u64> = versions.iter().copied().collect();
        if distinct.len() != versions.len() {
            aws_duplicates.push(format!("{secret}: {versions:?}"));
        }
        let histories = [
            ("aws", aws_current_history(&moto_record, secret)),
            ("gcp", w.google_versions(secret)),
            ("azure", w.azure_versions(secret)),
        ];
        *writes.get_mut("aws").unwrap() += versions.len();
        for (destination, history) in histories {
            if destination != "aws" {
                *writes.get_mut(destination).unwrap() += history.len();
            }
            if let Some((newer, older)) = regression(&history) {
                regressions.push(format!(
                    "{destination} {secret}: v{older} after v{newer} in {history:?}"
                ));
            }
        }
    }

    let tally = run.tally.lock().unwrap();
    let exchanges = [AWS_STS, GOOGLE_STS, GOOGLE_IAM, ENTRA, OPENBAO]
        .iter()
        .map(|u| format!("{u}={}", w.exchanges(u)))
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "convergence: {} changes over {} secrets, {duplicates} duplicates, {} deliveries \
         ({} redeliveries), outcomes {:?}; faults {}; writes aws={} gcp={} azure={}; \
         exchanges {exchanges}; {:.1} s; converged {share:.1}% ({converged}/{targets}), \
         duplicate AWS versions {}, regressions {}",
        scale.changes,
        scale.secrets,
        tally.deliveries,
        tally.redeliveries,
        tally.outcomes,
        w.proxy.fault_summary(),
        writes["aws"],
        writes["gcp"],
        writes["azure"],
        wall.as_secs_f64(),
        aws_duplicates.len(),
        regressions.len(),
    );

    assert!(
        tally.exhausted.is_empty(),
        "notices never delivered successfully:\n{}",
        tally.exhausted.join("\n")
    );
    assert!(
        tally.permanent.is_empty(),
        "answers that nobody retries reported failures:\n{}",
        tally.permanent.join("\n")
    );
    assert_eq!(
        tally.deliveries,
        scale.changes + duplicates + tally.redeliveries,
        "every notice was delivered, and redelivered only when asked"
    );
    assert!(behind.is_empty(), "not converged:\n{}", behind.join("\n"));
    assert_eq!(share, 100.0);
    assert!(
        aws_duplicates.is_empty(),
        "moto holds several versions of one source version:\n{}",
        aws_duplicates.join("\n")
    );
    assert!(
        regressions.is_empty(),
        "a destination went back to an older version:\n{}",
        regressions.join("\n")
    );
    // The faults happened: every kind, at every kind of server.
    let faults = w.proxy.faults();
    for kind in FaultKind::SCHEDULED.iter().chain([&FaultKind::TokenOutage]) {
        assert!(
            faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} was injected: {}",
            w.proxy.fault_summary()
        );
    }
    for upstream in [MOTO, SECRET_MANAGER, KEY_VAULT, OPENBAO] {
        assert!(
            !w.proxy.faults_at(upstream).is_empty(),
            "no fault at {upstream}"
        );
    }
    let logs = w.webhook.logs();
    for value in latest.values() {
        assert!(
            !logs.contains(value.as_str()),
            "a value leaked into the logs"
        );
    }
}
