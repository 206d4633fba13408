//! The benchmark's world: every cloud in this process (AWS, Google, Azure, each
//! trusting fedsync's issuer), a source in AWS Secrets Manager, N destinations
//! taken in turn from the three clouds, each with its own principal, and the real
//! `fedsync-webhook` binary syncing what signed change notices announce.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fedsync_tests::aws::iam::Iam;
use fedsync_tests::aws::secrets_manager::SecretValue;
use fedsync_tests::aws::{Aws, WRITER_ACTIONS};
use fedsync_tests::azure::world::{Azure, CLIENT};
use fedsync_tests::google::{
    GoogleCloud, Principal, SecretManagerRole, ServiceAccountRole, WorkloadIdentityProvider,
};
use fedsync_tests::issuer::{Issuer, unix_now};
use fedsync_tests::moto::credentials_env;
use fedsync_tests::notice::signed_headers;
use fedsync_tests::receiver::Receiver;
use fedsync_tests::sts_front::RoleTrust;
use serde_json::{Value, json};

/// The `sub` of fedsync's tokens, which every cloud trusts exactly.
const SUBJECT: &str = "fedsync:bench";
const SOURCE_REGION: &str = "us-east-1";
const DEST_REGION: &str = "eu-west-1";
const GOOGLE_DEST: (&str, &str) = ("bench-dr", "222222222222");
const POOL: &str = "fedsync";
const NOTICE_KEY: &str = "bench-notice-key-0123456789abcdef0123456789abcdef";
const READER_ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
];

/// The cloud a destination is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Aws,
    Google,
    Azure,
}

/// One destination and the principal fedsync becomes there.
pub struct Destination {
    pub name: String,
    pub cloud: Cloud,
    /// The AWS role, the Google service account, or the Entra application.
    pub principal: String,
}

pub struct World {
    pub aws: Aws,
    pub google: GoogleCloud,
    pub azure: Azure,
    issuer: Issuer,
    pub destinations: Vec<Destination>,
    config: String,
    reader_env: Vec<(&'static str, String)>,
    http: reqwest::Client,
}

/// A new version of a source secret.
pub struct Change {
    pub secret: String,
    pub version: String,
}

/// What the receiver answered for one change.
pub struct Synced {
    pub latency: Duration,
    /// Destinations that wrote the new value.
    pub written: usize,
}

impl World {
    /// The clouds with `destinations` destinations (AWS, Google, Azure in turn) and
    /// `secrets` source secrets, `bench-000` onwards, each with a first value.
    pub async fn start(destinations: usize, secrets: usize) -> World {
        let iam = Arc::new(Iam::new());
        let reader = iam.create_role("fedsync-reader", READER_ACTIONS);
        let session = iam
            .issue_session(&reader, "bench", Duration::from_secs(12 * 3600))
            .expect("the reader role was just created");
        let aws = Aws::start_with(iam).await;
        let google = GoogleCloud::start().await;
        let azure = Azure::start().await;
        let issuer = Issuer::start().await;

        aws.sts.trust_issuer(issuer.url());
        google
            .secret_manager
            .add_project(GOOGLE_DEST.0, GOOGLE_DEST.1);
        let provider = WorkloadIdentityProvider::new(GOOGLE_DEST.1, POOL, POOL, issuer.url())
            .condition(&format!("assertion.sub == '{SUBJECT}'"));
        let federated = provider.principal(SUBJECT).member();
        let provider = google.sts.add_provider(provider);
        azure.trust(issuer.url(), SUBJECT);

        let mut config = format!(
            r#"
[triggers.notify]
hmac_secret = "env:FEDSYNC_NOTICE_KEY"

[identities.fedsync]
kind = "signing-key"
issuer = "{issuer}"
key = "env:FEDSYNC_SIGNING_KEY"
subject = "{SUBJECT}"

[sources.main]
kind = "aws-secrets-manager"
region = "{SOURCE_REGION}"
endpoint = "{sm}"
"#,
            issuer = issuer.url(),
            sm = aws.secrets_manager.endpoint(),
        );
        let mut planned = Vec::new();
        for i in 0..destinations {
            let cloud = [Cloud::Aws, Cloud::Google, Cloud::Azure][i % 3];
            let (name, principal, table) = match cloud {
                Cloud::Aws => {
                    let name = format!("aws-{i:02}");
                    let role = aws
                        .iam
                        .create_role(&format!("fedsync-writer-{i:02}"), WRITER_ACTIONS);
                    aws.sts.trust_role(
                        &role,
                        RoleTrust {
                            issuer: issuer.url().into(),
                            audience: "sts.amazonaws.com".into(),
                            subject: SUBJECT.into(),
                        },
                    );
                    let table = format!(
                        "\n[destinations.{name}]\nkind = \"aws-secrets-manager\"\nregion = \"{DEST_REGION}\"\nrole_arn = \"{role}\"\nidentity = \"fedsync\"\nendpoint = \"{}\"\nsts_endpoint = \"{}\"\n",
                        aws.secrets_manager.endpoint(),
                        aws.sts.endpoint()
                    );
                    (name, role, table)
                }
                Cloud::Google => {
                    let name = format!("gcp-{i:02}");
                    let account = format!(
                        "fedsync-writer-{i:02}@{}.iam.gserviceaccount.com",
                        GOOGLE_DEST.0
                    );
                    google.iam.grant(
                        &account,
                        ServiceAccountRole::WorkloadIdentityUser,
                        &federated,
                    );
                    google.secret_manager.grant(
                        GOOGLE_DEST.0,
                        &Principal::service_account(&account).member(),
                        SecretManagerRole::Admin,
                    );
                    let table = format!(
                        "\n[destinations.{name}]\nkind = \"gcp-secret-manager\"\nproject = \"{}\"\nworkload_identity_provider = \"{provider}\"\nservice_account = \"{account}\"\nidentity = \"fedsync\"\nsecretmanager_endpoint = \"{}\"\nsts_endpoint = \"{}\"\niamcredentials_endpoint = \"{}\"\n",
                        GOOGLE_DEST.0,
                        google.secret_manager.endpoint(),
                        google.sts.endpoint(),
                        google.iam.endpoint()
                    );
                    (name, account, table)
                }
                Cloud::Azure => {
                    let name = format!("azure-{i:02}");
                    let table = azure.vault_config(&format!("destinations.{name}"), "fedsync", "");
                    (name, CLIENT.to_string(), table)
                }
            };
            config += &table;
            planned.push(Destination {
                name,
                cloud,
                principal,
            });
        }
        let names: Vec<String> = planned.iter().map(|d| format!("\"{}\"", d.name)).collect();
        config += &format!(
            "\n[[rules]]\nsource = \"main\"\nmatch = \"bench-*\"\nname = \"{{destination}}-{{name}}\"\ndestinations = [{}]\n",
            names.join(", ")
        );
        let mut reader_env = credentials_env(&session.credentials);
        reader_env.push(("AWS_REGION", SOURCE_REGION.to_string()));
        let world = World {
            aws,
            google,
            azure,
            issuer,
            destinations: planned,
            config,
            reader_env,
            http: reqwest::Client::new(),
        };
        for s in 0..secrets {
            world.change(&secret_name(s), 0);
        }
        world
    }

    /// Starts a fresh `fedsync-webhook` (an empty credential cache) at the
    /// default log level, as deployed.
    pub async fn receiver(&self) -> Receiver {
        let mut env = self.reader_env.clone();
        env.push(("FEDSYNC_CONFIG_TOML", self.config.clone()));
        env.push((
            "FEDSYNC_SIGNING_KEY",
            self.issuer.ec().private_key_pem().to_string(),
        ));
        env.push(("FEDSYNC_NOTICE_KEY", NOTICE_KEY.to_string()));
        Receiver::start("fedsync-webhook", &env).await
    }

    /// Gives the source secret `name` its `n`th value; the new version's id.
    pub fn change(&self, name: &str, n: usize) -> Change {
        let value = format!("bench-value-{name}-{n:06}-{}", fastrand::u64(..));
        let version = self
            .aws
            .secrets_manager
            .put(SOURCE_REGION, name, SecretValue::String(value));
        Change {
            secret: name.to_string(),
            version,
        }
    }

    /// Sends the signed notice of `change`, and checks that every destination
    /// reported it synced or unchanged (a later change of the same secret, synced
    /// first, leaves nothing to write); `written` counts the first.
    pub async fn notify(&self, receiver: &Receiver, change: &Change) -> Synced {
        let secret = &change.secret;
        let body =
            json!({"source": "main", "secret": secret, "version": change.version}).to_string();
        let now = unix_now();
        let mut request = self
            .http
            .post(format!("{}/v1/notify", receiver.url()))
            .body(body.clone());
        for (k, v) in signed_headers(NOTICE_KEY, now, &body) {
            request = request.header(k, v);
        }
        let started = Instant::now();
        let response = request.send().await.expect("the receiver answers");
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let latency = started.elapsed();
        assert!(
            status.is_success(),
            "{secret}: {status} {answer:#}\nlogs:\n{}",
            receiver.logs()
        );
        let outcomes = answer["report"]["outcomes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            outcomes.len(),
            self.destinations.len(),
            "{secret}: one outcome per destination: {answer:#}"
        );
        let mut written = 0;
        for outcome in &outcomes {
            match outcome["status"].as_str() {
                Some("synced") => written += 1,
                Some("unchanged") => {}
                _ => panic!("{secret}: not synced: {outcome:#}"),
            }
        }
        Synced { latency, written }
    }

    /// Exchanges each destination's principal was granted so far: AWS STS
    /// sessions of its role, Google impersonations of its service account, Entra
    /// tokens of its application (shared by every Key Vault destination).
    pub fn exchanges(&self, destination: &Destination) -> usize {
        match destination.cloud {
            Cloud::Aws => self.aws.sts.successes(&destination.principal),
            Cloud::Google => self
                .google
                .iam
                .calls()
                .iter()
                .filter(|c| c.outcome.is_ok() && c.service_account.contains(&destination.principal))
                .count(),
            Cloud::Azure => self.azure.entra.successes(&destination.principal),
        }
    }

    /// Every exchange the clouds granted: AWS sessions, Google STS tokens and
    /// impersonations, Entra tokens.
    pub fn all_exchanges(&self) -> usize {
        let aws: usize = self
            .destinations
            .iter()
            .filter(|d| d.cloud == Cloud::Aws)
            .map(|d| self.aws.sts.successes(&d.principal))
            .sum();
        aws + self.google.sts.successes()
            + self.google.iam.successes()
            + self.azure.entra.successes(CLIENT)
    }
}

/// The `n`th source secret.
pub fn secret_name(n: usize) -> String {
    format!("bench-{n:03}")
}
