//! `fedsync run`: one event file through the same code path as the Lambda, with
//! the shell's AWS credentials as the host's, printing the report.

use fedsync_tests::clouds::{Clouds, SECRET, SUBJECT, VALUE};
use fedsync_tests::lambda_api::workspace_binary;
use fedsync_tests::leaks::Role;
use fedsync_tests::moto::credentials_env;
use fedsync_tests::process;
use std::path::Path;
use std::process::Output;

fn events_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

async fn fedsync(clouds: &Clouds, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(workspace_binary("fedsync"));
    command
        .args(args)
        .env_clear()
        .envs(credentials_env(&clouds.reader))
        .env("AWS_REGION", "us-east-1")
        .env("FEDSYNC_SIGNING_KEY", clouds.issuer.ec().private_key_pem());
    process::output(Role::Fedsync, &mut command)
        .await
        .expect("run fedsync")
}

/// Writes a configuration file, removed when the handle is dropped.
fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    file
}

#[tokio::test]
async fn run_syncs_an_event_file_and_prints_the_report() {
    let clouds = Clouds::start().await;
    let config = write_config(&clouds.config("", SUBJECT));
    let event = events_dir().join("eventbridge-secret-label-updated.json");

    let out = fedsync(
        &clouds,
        &[
            "run",
            "--config",
            config.path().to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["report"]["outcomes"][0]["status"], "synced",
        "{report:#}"
    );
    assert_eq!(clouds.written(SECRET).await.as_deref(), Some(VALUE));

    // The table form, a second time: unchanged, and no new exchange is needed to know it.
    let out = fedsync(
        &clouds,
        &[
            "run",
            "--config",
            config.path().to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
        ],
    )
    .await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("DESTINATION") && table.contains("unchanged"),
        "{table}"
    );
    for text in [
        &stdout,
        &stderr,
        &table,
        &String::from_utf8_lossy(&out.stderr),
    ] {
        assert!(
            !text.contains(VALUE),
            "the secret value was printed: {text}"
        );
    }
}

#[tokio::test]
async fn a_bad_configuration_is_reported_with_its_key_and_nothing_runs() {
    let clouds = Clouds::start().await;
    let config = write_config(
        &clouds
            .config("", SUBJECT)
            .replace(r#"identity = "deploy""#, r#"identity = "nobody""#),
    );
    let event = events_dir().join("eventbridge-put-secret-value.json");
    let out = fedsync(
        &clouds,
        &[
            "run",
            "--config",
            config.path().to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            r#"destinations.aws-dr.identity: unknown identity "nobody"; defined: deploy"#
        ),
        "{stderr}"
    );
    assert!(clouds.sts.exchanges().is_empty());
}

#[tokio::test]
async fn a_github_actions_job_syncs_with_the_runner_token() {
    let clouds = Clouds::start().await;
    let job_subject = "repo:acme/app:ref:refs/heads/main";
    let runner = fedsync_tests::github::ActionsTokenUrl::start(&clouds.issuer, job_subject).await;
    clouds.sts.trust_role(
        &clouds.writer_role,
        fedsync_tests::sts_front::RoleTrust {
            issuer: clouds.issuer.url().into(),
            audience: "sts.amazonaws.com".into(),
            subject: job_subject.into(),
        },
    );
    // The destination's identity becomes the runner's; its signing-key settings
    // move to an identity nothing uses.
    let config = clouds.config("", SUBJECT).replace(
        "kind = \"signing-key\"",
        "kind = \"github-actions\"\n[identities.unused]\nkind = \"signing-key\"",
    );
    let config = write_config(&config);
    let event = events_dir().join("eventbridge-put-secret-value.json");
    let mut command = tokio::process::Command::new(workspace_binary("fedsync"));
    command
        .args([
            "run",
            "--config",
            config.path().to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--json",
        ])
        .env_clear()
        .envs(credentials_env(&clouds.reader))
        .env("AWS_REGION", "us-east-1")
        .env("FEDSYNC_SIGNING_KEY", clouds.issuer.ec().private_key_pem())
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", runner.url())
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", runner.request_token());
    let out = process::output(Role::Fedsync, &mut command).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["report"]["outcomes"][0]["status"], "synced",
        "{report:#}"
    );
    assert_eq!(clouds.sts.successes(&clouds.writer_role), 1);
}
