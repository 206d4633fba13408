//! The Google world of the end-to-end tests and benchmarks: the emulators with a
//! source project holding one secret and a destination project, trust set up for
//! the runtime's metadata identity, and the `fedsync-pubsub-push` receiver
//! configured to read that source and write to AWS and to Google.

use crate::clouds::{Clouds, VALUE};
use crate::google::{
    GoogleCloud, INSTANCE_SERVICE_ACCOUNT, Principal, SecretManagerRole, WorkloadIdentityProvider,
};
use crate::leaks::secret;
use crate::receiver::Receiver;
use crate::sts_front::RoleTrust;
use serde_json::Value;
use std::time::Duration;

pub const SOURCE_PROJECT: (&str, &str) = ("source-proj", "111111111111");
pub const DEST_PROJECT: (&str, &str) = ("dest-proj", "222222222222");
pub const POOL: &str = "fedsync";
pub const PROVIDER: &str = "fedsync";
pub const PUSH_AUDIENCE: &str = "https://fedsync.example.run.app/";
pub const PUSH_ACCOUNT: &str = "pubsub-push@source-proj.iam.gserviceaccount.com";
pub const WRITER_ACCOUNT: &str = "fedsync-writer@dest-proj.iam.gserviceaccount.com";
pub const GOOGLE_SECRET: &str = "app-db";

/// Google's emulators with a source project holding `app-db` and a destination project.
pub async fn google() -> GoogleCloud {
    let google = GoogleCloud::start().await;
    // Tokens name the emulated issuer, so that verifiers can discover its keys.
    google.issuer.set_token_issuer(google.issuer.url());
    for (id, number) in [SOURCE_PROJECT, DEST_PROJECT] {
        google.secret_manager.add_project(id, number);
    }
    let runtime = Principal::service_account(INSTANCE_SERVICE_ACCOUNT).member();
    google.secret_manager.grant(
        SOURCE_PROJECT.0,
        &runtime,
        SecretManagerRole::SecretAccessor,
    );
    google
        .secret_manager
        .create_secret(SOURCE_PROJECT.0, GOOGLE_SECRET, &[], &[]);
    google
        .secret_manager
        .add_version(SOURCE_PROJECT.0, GOOGLE_SECRET, secret(VALUE).as_bytes());
    google
}

/// Trusts `issuer` tokens with subject `subject` at a provider in the destination project.
pub fn trust(google: &GoogleCloud, issuer: &str, condition: &str) -> String {
    let provider =
        WorkloadIdentityProvider::new(DEST_PROJECT.1, POOL, PROVIDER, issuer).condition(condition);
    google.sts.add_provider(provider)
}

/// Trusts `issuer` tokens with `subject` at a provider in the destination
/// project, and lets that federated principal administer the project's secrets
/// (no service account to impersonate); returns the provider's name.
pub fn trust_writer(google: &GoogleCloud, issuer: &str, subject: &str) -> String {
    let provider = trust(google, issuer, &format!("assertion.sub == '{subject}'"));
    google.secret_manager.grant(
        DEST_PROJECT.0,
        &Principal::federated(DEST_PROJECT.1, POOL, subject).member(),
        SecretManagerRole::Admin,
    );
    provider
}

pub fn google_destination(
    google: &GoogleCloud,
    provider: &str,
    identity: &str,
    service_account: Option<&str>,
) -> String {
    let impersonate = service_account
        .map(|sa| format!("service_account = \"{sa}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[destinations.gcp-dr]
kind = "gcp-secret-manager"
project = "{project}"
workload_identity_provider = "{provider}"
identity = "{identity}"
{impersonate}secretmanager_endpoint = "{sm}"
sts_endpoint = "{sts}"
iamcredentials_endpoint = "{iam}"
"#,
        project = DEST_PROJECT.0,
        sm = google.secret_manager.endpoint(),
        sts = google.sts.endpoint(),
        iam = google.iam.endpoint(),
    )
}

/// The push receiver's own part of its configuration: the push subscription's
/// token, its runtime identity (the metadata server), and the source project
/// `gsm` read as that identity.
pub fn push_receiver_config(google: &GoogleCloud) -> String {
    format!(
        r#"
[triggers.pubsub]
audience = "{PUSH_AUDIENCE}"
service_account = "{PUSH_ACCOUNT}"
jwks_url = "{jwks}"
issuers = ["{iss}"]

[identities.run]
kind = "gcp-metadata"
metadata_host = "{metadata}"

[sources.gsm]
kind = "gcp-secret-manager"
project = "{source}"
project_number = "{source_number}"
secretmanager_endpoint = "{sm}"
metadata_host = "{metadata}"
"#,
        jwks = google.issuer.jwks_uri(),
        iss = google.issuer.token_issuer(),
        metadata = google.metadata.host(),
        source = SOURCE_PROJECT.0,
        source_number = SOURCE_PROJECT.1,
        sm = google.secret_manager.endpoint(),
    )
}

/// The receiver and the clouds it reaches.
pub struct PushWorld {
    pub clouds: Clouds,
    pub google: GoogleCloud,
    pub receiver: Receiver,
    /// The receiver's configuration, to start more of them.
    pub receiver_config: String,
}

/// The push receiver on Cloud Run: reads the Google source as its own service
/// account, writes to AWS (metadata identity token -> AssumeRoleWithWebIdentity)
/// and to a Google destination project (metadata identity token -> Google STS).
pub async fn push_world() -> PushWorld {
    let clouds = Clouds::start().await;
    let google = google().await;
    let runtime_sub = google.metadata.unique_id();
    clouds.sts.trust_issuer(google.issuer.url());
    clouds.sts.trust_role(
        &clouds.writer_role,
        RoleTrust {
            issuer: google.issuer.url().into(),
            audience: "sts.amazonaws.com".into(),
            subject: runtime_sub.clone(),
        },
    );
    let provider = trust_writer(&google, google.issuer.url(), &runtime_sub);
    let config = format!(
        r#"{receiver}
[destinations.aws-dr]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "{role}"
identity = "run"
endpoint = "{moto}"
sts_endpoint = "{sts_front}"
{gcp}
[[rules]]
source = "gsm"
match = "*"
destinations = ["aws-dr", "gcp-dr"]
"#,
        receiver = push_receiver_config(&google),
        role = clouds.writer_role,
        moto = clouds.moto.endpoint(),
        sts_front = clouds.sts.endpoint(),
        gcp = google_destination(&google, &provider, "run", None),
    );
    let env = [
        ("FEDSYNC_CONFIG_TOML", config.clone()),
        ("FEDSYNC_LOG", "trace".to_string()),
    ];
    let receiver = Receiver::start("fedsync-pubsub-push", &env).await;
    PushWorld {
        clouds,
        google,
        receiver,
        receiver_config: config,
    }
}

impl PushWorld {
    /// POSTs a push request's body with `token` as its bearer; the status and the JSON answer.
    pub async fn push(&self, body: &Value, token: Option<String>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/", self.receiver.url()))
            .json(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A push token as Pub/Sub would send it to this receiver.
    pub fn good_token(&self) -> String {
        self.google
            .issuer
            .push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, true, Duration::from_secs(3600))
    }
}
