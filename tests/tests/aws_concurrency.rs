//! Many changes at once through one engine (one warm function instance): the
//! credential cache collapses them into a single STS exchange per destination.

use fedsync::{ChangeKind, Config, Engine, SecretChange};
use fedsync_tests::issuer::Issuer;
use fedsync_tests::leaks;
use fedsync_tests::moto::{Moto, credentials_env};
use fedsync_tests::sts_front::{RoleTrust, StsFront};
use futures_util::future::join_all;
use serde_json::json;
use std::time::SystemTime;

const CHANGES: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_changes_cause_exactly_one_exchange() {
    let moto = Moto::start().await;
    let writer = moto
        .create_role(
            "fedsync-writer",
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}),
        )
        .await;
    let reader = moto
        .create_role(
            "fedsync-reader",
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*"}]}),
        )
        .await;
    moto.enable_iam_auth().await;
    // The host's ambient credentials, as Lambda hands them to a function (this test
    // binary runs only this test, so setting the process environment is safe).
    for (name, value) in credentials_env(&moto.role_credentials(&reader, "lambda").await) {
        unsafe { std::env::set_var(name, value) };
    }
    for i in 0..CHANGES {
        moto.secrets_manager()
            .create_secret()
            .name(format!("prod/s{i}"))
            .secret_string(leaks::secret(format!("burst-source-value-{i}-6d0c")))
            .send()
            .await
            .unwrap();
    }
    let issuer = Issuer::start().await;
    let sts = StsFront::start(moto.sts()).await;
    sts.trust_issuer(issuer.url());
    sts.trust_role(
        &writer,
        RoleTrust {
            issuer: issuer.url().into(),
            audience: "sts.amazonaws.com".into(),
            subject: "fedsync:burst".into(),
        },
    );
    let key_file = std::env::temp_dir().join(format!("fedsync-burst-{}.pem", std::process::id()));
    std::fs::write(&key_file, issuer.ec().private_key_pem()).unwrap();
    let config = format!(
        r#"
[identities.deploy]
kind = "signing-key"
issuer = "{issuer}"
key = "file:{key}"
subject = "fedsync:burst"

[sources.main]
kind = "aws-secrets-manager"
region = "us-east-1"
endpoint = "{moto}"

[destinations.dr]
kind = "aws-secrets-manager"
region = "eu-west-1"
role_arn = "{writer}"
identity = "deploy"
endpoint = "{moto}"
sts_endpoint = "{sts}"

[[rules]]
source = "main"
match = "prod/*"
destinations = ["dr"]
"#,
        issuer = issuer.url(),
        key = key_file.display(),
        moto = moto.endpoint(),
        sts = sts.endpoint(),
    );
    let engine = Engine::new(Config::parse(&config, "burst.toml").unwrap())
        .await
        .unwrap();
    std::fs::remove_file(&key_file).unwrap();

    let changes = (0..CHANGES).map(|i| SecretChange {
        source: "main".into(),
        secret: format!("prod/s{i}"),
        version: None,
        kind: ChangeKind::Upsert,
        observed_at: SystemTime::now(),
    });
    let reports = join_all(changes.map(|c| {
        let engine = &engine;
        async move { engine.sync(&c).await }
    }))
    .await;

    for r in &reports {
        assert_eq!(r.outcomes.len(), 1, "{r:?}");
        assert!(
            matches!(r.outcomes[0].status, fedsync::report::Status::Synced),
            "{r:?}"
        );
    }
    let exchanged: u32 = reports.iter().map(|r| r.outcomes[0].exchanges).sum();
    assert_eq!(
        sts.successes(&writer),
        1,
        "one exchange for one destination"
    );
    assert_eq!(sts.exchanges().len(), 1, "and no refused ones");
    assert_eq!(exchanged, 1, "exactly one report counts the exchange");
}
