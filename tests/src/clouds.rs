//! The AWS world of the end-to-end tests and benchmarks: moto with IAM checking
//! on, an OpenID issuer, the validating STS front, a reader role for the
//! function's ambient credentials and a writer role it reaches by exchange, and a
//! source secret; plus the configuration and environment of the real function.

use crate::issuer::Issuer;
use crate::lambda_api::{LambdaApi, LambdaProcess, workspace_binary};
use crate::moto::{Moto, credentials_env};
use crate::sts_front::{RoleTrust, StsFront};
use aws_credential_types::Credentials;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use serde_json::{Value, json};

/// The source secret every scenario starts with.
pub const SECRET: &str = "prod/app/db";
/// Its value: tests search every log for it.
pub const VALUE: &str = "s3cr3t-Value-that-must-never-be-logged-7f3a";
/// The subject the writer role trusts.
pub const SUBJECT: &str = "fedsync:test";
/// The destination region (the source is in moto's default, us-east-1).
pub const DEST_REGION: &str = "eu-west-1";

/// Moto (IAM checking on), an issuer, the STS front, and roles for reading and writing.
pub struct Clouds {
    pub moto: Moto,
    pub issuer: Issuer,
    pub sts: StsFront,
    pub writer_role: String,
    /// The function's execution role, whose session `reader` is (the front knows it,
    /// so the function may sign STS calls with it).
    pub reader_role: String,
    pub reader: Credentials,
}

impl Clouds {
    pub async fn start() -> Clouds {
        let moto = Moto::start().await;
        let reader_role = moto
            .create_role(
                "fedsync-reader",
                &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecrets", "kms:Sign", "kms:GetPublicKey"], "Resource": "*"}]}),
            )
            .await;
        let writer_role = moto
            .create_role(
                "fedsync-writer",
                &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:CreateSecret",
                               "secretsmanager:PutSecretValue", "secretsmanager:TagResource",
                               "secretsmanager:UpdateSecretVersionStage", "secretsmanager:DeleteSecret",
                               "secretsmanager:RestoreSecret"],
                    "Resource": "*"}]}),
            )
            .await;
        moto.enable_iam_auth().await;
        let reader = moto.role_credentials(&reader_role, "lambda").await;
        let issuer = Issuer::start().await;
        let sts = StsFront::start(moto.sts()).await;
        sts.register_credentials(&reader, &reader_role);
        sts.trust_issuer(issuer.url());
        sts.trust_role(
            &writer_role,
            RoleTrust {
                issuer: issuer.url().into(),
                audience: "sts.amazonaws.com".into(),
                subject: SUBJECT.into(),
            },
        );
        moto.secrets_manager()
            .create_secret()
            .name(SECRET)
            .secret_string(crate::leaks::secret(VALUE))
            .send()
            .await
            .unwrap();
        Clouds {
            moto,
            issuer,
            sts,
            writer_role,
            reader_role,
            reader,
        }
    }

    /// A Secrets Manager client for the destination region, signed with the admin key.
    pub fn destination(&self) -> aws_sdk_secretsmanager::Client {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(DEST_REGION))
            .endpoint_url(self.moto.endpoint())
            .credentials_provider(self.moto.admin_credentials().clone())
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    /// The current value of the destination secret `name`, if it exists.
    pub async fn written(&self, name: &str) -> Option<String> {
        let value = self
            .destination()
            .get_secret_value()
            .secret_id(name)
            // AWS's default, named: moto's default follows the last PutSecretValue,
            // not the label, once UpdateSecretVersionStage has moved it.
            .version_stage("AWSCURRENT")
            .send()
            .await;
        value.ok().and_then(|v| v.secret_string().map(String::from))
    }

    /// Gives the source secret `name` the value `value`: its first version creates it,
    /// a later one is put as its new current version.
    pub async fn set_source(&self, name: &str, value: String, first: bool) {
        let sm = self.moto.secrets_manager();
        if first {
            sm.create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        } else {
            sm.put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    }

    /// The configuration the function runs with; `destination_extra` adds keys to the destination.
    pub fn config(&self, destination_extra: &str, subject: &str) -> String {
        let rules = "[[rules]]\nsource = \"main\"\nmatch = \"prod/**\"\ndestinations = [\"aws-dr\"]\ntags = { team = \"platform\" }\n";
        self.config_with_rules(destination_extra, subject, rules)
    }

    /// The configuration with `rules` (TOML `[[rules]]` tables) instead of the default rule.
    pub fn config_with_rules(&self, destination_extra: &str, subject: &str, rules: &str) -> String {
        format!(
            r#"
[identities.deploy]
kind = "signing-key"
issuer = "{issuer}"
key = "env:FEDSYNC_SIGNING_KEY"
subject = "{subject}"

[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"
endpoint = "{moto}"

[destinations.aws-dr]
kind = "aws-secrets-manager"
region = "{DEST_REGION}"
role_arn = "{role}"
identity = "deploy"
endpoint = "{moto}"
sts_endpoint = "{sts}"
{destination_extra}

{rules}
"#,
            issuer = self.issuer.url(),
            moto = self.moto.endpoint(),
            role = self.writer_role,
            sts = self.sts.endpoint(),
        )
    }

    /// The environment Lambda would give the function: its role credentials, and
    /// fedsync's configuration, signing key and log level.
    pub fn function_env(&self, config: &str) -> Vec<(&'static str, String)> {
        let mut env = credentials_env(&self.reader);
        env.push(("FEDSYNC_CONFIG_TOML", config.to_string()));
        env.push((
            "FEDSYNC_SIGNING_KEY",
            self.issuer.rsa().private_key_pem().to_string(),
        ));
        // The most verbose level: the leak checks then cover everything fedsync can log.
        env.push(("FEDSYNC_LOG", "trace".to_string()));
        env
    }

    /// Starts the real Lambda binary with `config`, as Lambda would.
    pub async fn function(&self, config: &str) -> (LambdaApi, LambdaProcess) {
        let api = LambdaApi::start().await;
        let binary = workspace_binary("fedsync-eventbridge");
        let process = LambdaProcess::spawn(&binary, &api, self.function_env(config));
        (api, process)
    }

    pub async fn versions(&self, name: &str) -> usize {
        let out = self
            .destination()
            .list_secret_version_ids()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        out.versions().len()
    }

    pub async fn tags(&self, name: &str) -> Vec<(String, String)> {
        let out = self
            .destination()
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        let mut tags: Vec<_> = out
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        tags.sort();
        tags
    }

    pub async fn source_version(&self) -> String {
        let out = self
            .moto
            .secrets_manager()
            .get_secret_value()
            .secret_id(SECRET)
            .send()
            .await
            .unwrap();
        out.version_id.unwrap()
    }
}

/// A sample event from `events/`.
pub fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
