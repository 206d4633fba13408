//! The demo's clouds, all in this process: an issuer for fedsync's own signing key
//! (a static file server hosting what `fedsync issuer` writes), AWS (IAM, STS and
//! Secrets Manager), Google (STS, IAM Credentials, Secret Manager and the metadata
//! server) and Azure (Entra and Key Vault), each trusting fedsync's token the way
//! the README's trust examples do, and the configuration that reaches them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fedsync_emulators::aws::iam::Iam;
use fedsync_emulators::aws::secrets_manager::SecretValue;
use fedsync_emulators::aws::{Aws, WRITER_ACTIONS};
use fedsync_emulators::azure::world::{Azure, CLIENT};
use fedsync_emulators::google::{
    GoogleCloud, INSTANCE_SERVICE_ACCOUNT, Principal, SecretManagerRole, ServiceAccountRole,
    WorkloadIdentityProvider,
};
use fedsync_emulators::issuer::{KeyType, SigningKey};
use fedsync_emulators::static_files::StaticFiles;
use fedsync_emulators::sts_front::RoleTrust;

/// The `sub` of fedsync's tokens, which every cloud trusts exactly.
pub const SUBJECT: &str = "fedsync:demo";
/// The AWS region the source lives in (the sample events' region).
pub const SOURCE_REGION: &str = "us-east-1";
/// The AWS region of the disaster-recovery copies.
pub const DR_REGION: &str = "eu-west-1";
/// The Google project the sample Pub/Sub events come from (its number is theirs).
const GOOGLE_SOURCE: (&str, &str) = ("demo-source", "123456789012");
/// The Google project fedsync writes to.
const GOOGLE_DEST: (&str, &str) = ("demo-dr", "222222222222");
const POOL: &str = "fedsync";
const GOOGLE_SECRET: &str = "app-db";
const WRITER_ACCOUNT: &str = "fedsync-writer@demo-dr.iam.gserviceaccount.com";
const READER_ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecrets",
];

/// What must exist before the async runtime starts: IAM, and the source reader's
/// session, which the demo puts in the environment as the host's own credentials
/// (as Lambda does for its execution role).
pub struct Prepared {
    iam: Arc<Iam>,
}

/// Creates IAM with the source reader's role and a session of it, and exports that
/// session as the process's AWS credentials. Call before any other thread starts.
pub fn prepare() -> Prepared {
    let iam = Arc::new(Iam::new());
    let reader = iam.create_role("fedsync-reader", READER_ACTIONS);
    let session = iam
        .issue_session(&reader, "demo", Duration::from_secs(3600))
        .expect("the reader role was just created");
    let c = session.credentials;
    let env = [
        ("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()),
        (
            "AWS_SESSION_TOKEN",
            c.session_token().unwrap_or_default().to_owned(),
        ),
        ("AWS_REGION", SOURCE_REGION.to_owned()),
    ];
    for (name, value) in env {
        // SAFETY: called from `main` before the runtime or any other thread exists,
        // so nothing reads the environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
    // The tables tell the story; logs only when asked for with FEDSYNC_LOG.
    if std::env::var_os(fedsync::logging::LOG_ENV).is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var(fedsync::logging::LOG_ENV, "off") };
    }
    // The demo must never reach a real cloud through a profile or a role.
    for name in ["AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }
    Prepared { iam }
}

/// The running clouds and fedsync's configuration for them.
pub struct World {
    pub aws: Aws,
    pub google: GoogleCloud,
    pub azure: Azure,
    pub writer_role: String,
    pub config_path: PathBuf,
    /// The configuration's text, to derive the deliberately wrong one from.
    pub config: String,
    /// The key the webhook checks change notices with.
    pub notice_key: Vec<u8>,
    _issuer: StaticFiles,
}

/// The place of a source secret, for the demo to change it as a user would.
pub enum Place<'a> {
    Aws(&'a str),
    Google(&'a str),
}

impl World {
    /// Starts every cloud in `dir`'s name, writes fedsync's signing key and
    /// configuration there, and publishes the key's issuer documents.
    pub async fn start(prepared: Prepared, dir: &Path) -> Result<World, String> {
        let issuer_root = dir.join("issuer");
        let issuer = StaticFiles::start(|_| issuer_root.clone()).await;
        let aws = Aws::start_with(prepared.iam).await;
        let google = GoogleCloud::start().await;
        google.issuer.set_token_issuer(google.issuer.url());
        let azure = Azure::start().await;

        let key = SigningKey::generate(KeyType::Ec);
        let key_path = dir.join("signing-key.pem");
        write(&key_path, key.private_key_pem())?;
        let notice_key: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(48)
            .collect();
        let notice_key_path = dir.join("notice-key");
        write(&notice_key_path, &notice_key)?;

        // AWS: the writer role trusts fedsync's issuer, audience and subject.
        let writer_role = aws.iam.create_role("fedsync-writer", WRITER_ACTIONS);
        aws.sts.trust_issuer(issuer.url());
        aws.sts.trust_role(
            &writer_role,
            RoleTrust {
                issuer: issuer.url().into(),
                audience: "sts.amazonaws.com".into(),
                subject: SUBJECT.into(),
            },
        );

        // Google: a provider whose condition names the subject exactly, a writer
        // service account it may impersonate, and a source the runtime may read.
        for (id, number) in [GOOGLE_SOURCE, GOOGLE_DEST] {
            google.secret_manager.add_project(id, number);
        }
        let provider = WorkloadIdentityProvider::new(GOOGLE_DEST.1, POOL, POOL, issuer.url())
            .condition(&format!("assertion.sub == '{SUBJECT}'"));
        let federated = provider.principal(SUBJECT).member();
        let provider = google.sts.add_provider(provider);
        google.iam.grant(
            WRITER_ACCOUNT,
            ServiceAccountRole::WorkloadIdentityUser,
            &federated,
        );
        google.secret_manager.grant(
            GOOGLE_DEST.0,
            &Principal::service_account(WRITER_ACCOUNT).member(),
            SecretManagerRole::Admin,
        );
        let runtime = Principal::service_account(INSTANCE_SERVICE_ACCOUNT).member();
        for role in [SecretManagerRole::SecretAccessor, SecretManagerRole::Viewer] {
            google.secret_manager.grant(GOOGLE_SOURCE.0, &runtime, role);
        }
        // The sample Pub/Sub event reports the secret's second version.
        google
            .secret_manager
            .create_secret(GOOGLE_SOURCE.0, GOOGLE_SECRET, &[], &[]);
        google
            .secret_manager
            .add_version(GOOGLE_SOURCE.0, GOOGLE_SECRET, b"demo-initial");

        // Azure: fedsync's application trusts the issuer and subject.
        azure.trust(issuer.url(), SUBJECT);

        let config = format!(
            r#"# fedsync's demo configuration: every endpoint is an in-process emulator.

[triggers.notify]
hmac_secret = {notice_key}

[identities.fedsync]
kind = "signing-key"
issuer = "{issuer}"
key = {key}
subject = "{SUBJECT}"

[sources.main]
kind = "aws-secrets-manager"
region = "{SOURCE_REGION}"
endpoint = "{sm}"

[sources.google]
kind = "gcp-secret-manager"
project = "{gsrc}"
project_number = "{gsrc_number}"
secretmanager_endpoint = "{gsm}"
metadata_host = "{metadata}"

[destinations.aws-dr]
kind = "aws-secrets-manager"
region = "{DR_REGION}"
role_arn = "{writer_role}"
identity = "fedsync"
endpoint = "{sm}"
sts_endpoint = "{sts}"

[destinations.gcp-dr]
kind = "gcp-secret-manager"
project = "{gdest}"
workload_identity_provider = "{provider}"
service_account = "{WRITER_ACCOUNT}"
identity = "fedsync"
secretmanager_endpoint = "{gsm}"
sts_endpoint = "{gsts}"
iamcredentials_endpoint = "{giam}"
{azure}
[[rules]]
source = "main"
match = "prod/**"
destinations = ["aws-dr", "gcp-dr", "azure-dr"]

[[rules]]
source = "google"
match = "*"
destinations = ["aws-dr", "azure-dr"]
"#,
            issuer = issuer.url(),
            key = file_reference(&key_path),
            notice_key = file_reference(&notice_key_path),
            sm = aws.secrets_manager.endpoint(),
            sts = aws.sts.endpoint(),
            gsrc = GOOGLE_SOURCE.0,
            gsrc_number = GOOGLE_SOURCE.1,
            gsm = google.secret_manager.endpoint(),
            metadata = google.metadata.host(),
            gdest = GOOGLE_DEST.0,
            gsts = google.sts.endpoint(),
            giam = google.iam.endpoint(),
            azure = azure.vault_config("destinations.azure-dr", "fedsync", ""),
        );
        let config_path = dir.join("fedsync.toml");
        write(&config_path, &config)?;

        // Host the key's discovery document and JWKS, as an operator would.
        let parsed = fedsync::Config::load(&config_path).map_err(|e| e.to_string())?;
        for documents in fedsync::identity::issuer::documents(&parsed)
            .await
            .map_err(|f| f.to_string())?
        {
            let well_known = issuer_root.join(".well-known");
            std::fs::create_dir_all(&well_known)
                .map_err(|e| format!("cannot create {}: {e}", well_known.display()))?;
            write(
                &well_known.join("openid-configuration"),
                &documents.discovery.to_string(),
            )?;
            write(&well_known.join("jwks.json"), &documents.jwks.to_string())?;
        }

        Ok(World {
            aws,
            google,
            azure,
            writer_role,
            config_path,
            config,
            notice_key: notice_key.into_bytes(),
            _issuer: issuer,
        })
    }

    /// Gives the source secret at `place` a new current value, as its owner would.
    pub fn change(&self, place: Place<'_>, value: &str) {
        match place {
            Place::Aws(name) => {
                self.aws.secrets_manager.put(
                    SOURCE_REGION,
                    name,
                    SecretValue::String(value.to_owned()),
                );
            }
            Place::Google(name) => {
                self.google
                    .secret_manager
                    .add_version(GOOGLE_SOURCE.0, name, value.as_bytes());
            }
        }
    }

    /// Deletes the source secret at `place` (AWS schedules the deletion).
    pub fn delete(&self, place: Place<'_>) {
        match place {
            Place::Aws(name) => self.aws.secrets_manager.delete(SOURCE_REGION, name),
            Place::Google(name) => {
                self.google
                    .secret_manager
                    .delete_secret(GOOGLE_SOURCE.0, name);
            }
        }
    }

    /// Cancels the scheduled deletion of the AWS source secret `name`.
    pub fn restore_aws(&self, name: &str) {
        self.aws.secrets_manager.restore(SOURCE_REGION, name);
    }

    /// Exchanges each cloud has answered so far: AWS STS, Google (STS and
    /// impersonation), Entra.
    pub fn exchanges(&self) -> [usize; 3] {
        [
            self.aws.sts.successes(&self.writer_role),
            self.google.sts.successes() + self.google.iam.successes(),
            self.azure.entra.successes(CLIENT),
        ]
    }
}

/// `file:PATH` as a TOML string, quoted and escaped whatever the path holds.
fn file_reference(path: &Path) -> String {
    serde_json::Value::String(format!("file:{}", path.display())).to_string()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
