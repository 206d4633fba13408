//! `fedsync plan` against real servers: Secrets Manager in moto as the source,
//! and as destinations moto behind the validating STS front and the Key Vault
//! emulator behind Entra, both reached by exchange. Stores are arranged so that
//! one plan shows every action: a secret to create, one behind, one in step, a
//! name held by a secret fedsync does not manage, names held by secrets
//! scheduled for deletion (AWS) or soft-deleted (Key Vault), two secrets a rule
//! maps to one name, and two names Key Vault tells apart only by case. Each row is checked, `--secret` narrows the plan, the
//! exit code says whether anything would be refused (2) or could not be read
//! (1), the destination is the same after every plan, and no value is printed.

use fedsync_tests::azure::key_vault::Operation;
use fedsync_tests::azure::world::Azure;
use fedsync_tests::cli::fedsync;
use fedsync_tests::clouds::{Clouds, SUBJECT};
use fedsync_tests::leaks::secret;
use fedsync_tests::moto::credentials_env;
use serde_json::Value;
use std::process::Output;

/// The value key of the marks (32 bytes and more).
const VALUE_KEY: &str = "plan-test-value-key-0123456789abcdef-9d2";

const RULES: &str = r#"
[[rules]]
source = "main"
match = "app/*"
destinations = ["aws-dr"]

[[rules]]
source = "main"
match = "team-*/db"
destinations = ["aws-dr"]
name = "shared-{basename}"

[[rules]]
source = "main"
match = "kv/*"
destinations = ["kv"]

[reconcile]
value_key = "env:FEDSYNC_VALUE_KEY"
"#;

/// Every name the plan may touch at the destination.
const DESTINATION_NAMES: [&str; 6] = [
    "app/new",
    "app/old",
    "app/same",
    "app/taken",
    "app/gone",
    "shared-db",
];

fn value(name: &str, change: usize) -> String {
    format!("{name}-plan-value-{change}-b81f")
}

struct World {
    clouds: Clouds,
    azure: Azure,
    config: String,
    /// Every value put into a store, to search the output for.
    values: Vec<String>,
}

impl World {
    async fn put_source(&mut self, name: &str, change: usize) {
        let v = secret(value(name, change));
        self.values.push(v.clone());
        self.clouds.set_source(name, v, change == 0).await;
    }

    /// A secret created at the destination by someone other than fedsync.
    async fn put_foreign(&mut self, name: &str) {
        let v = secret(format!("{name}-not-fedsyncs-b81f"));
        self.values.push(v.clone());
        self.clouds
            .destination()
            .create_secret()
            .name(name)
            .secret_string(v)
            .send()
            .await
            .unwrap();
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = credentials_env(&self.clouds.reader);
        env.extend([
            ("AWS_REGION", "us-east-1".to_string()),
            ("FEDSYNC_VALUE_KEY", VALUE_KEY.to_string()),
            (
                "FEDSYNC_SIGNING_KEY",
                self.clouds.issuer.rsa().private_key_pem().to_string(),
            ),
            // The most verbose level: nothing fedsync logs may carry a value.
            ("FEDSYNC_LOG", "trace".to_string()),
        ]);
        env
    }

    /// `fedsync ARGS` with this world's configuration; the output is checked for values.
    async fn run(&self, args: &[&str], config: &str) -> Output {
        let out = fedsync(args, config, &self.env()).await;
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for v in &self.values {
            assert!(!all.contains(v.as_str()), "a value was printed: {all}");
        }
        out
    }

    /// `fedsync plan --json ARGS`: the exit code and the plan.
    async fn plan(&self, args: &[&str]) -> (i32, Value) {
        let args: Vec<&str> = ["plan", "--json"].iter().chain(args).copied().collect();
        let out = self.run(&args, &self.config).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let plan = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), plan)
    }

    /// The requests to Key Vault that change something.
    fn vault_writes(&self) -> usize {
        [
            Operation::SetSecret,
            Operation::UpdateSecret,
            Operation::DeleteSecret,
            Operation::RecoverDeletedSecret,
            Operation::PurgeDeletedSecret,
        ]
        .into_iter()
        .map(|o| self.azure.vault.calls(o))
        .sum()
    }

    /// What the AWS destination holds under every name the plan may touch: the
    /// tags, the versions and their stages, and whether it is scheduled for
    /// deletion (or the error for a name that does not exist).
    async fn destination(&self) -> Vec<String> {
        let client = self.clouds.destination();
        let mut held = vec![];
        for name in DESTINATION_NAMES {
            let state = match client.describe_secret().secret_id(name).send().await {
                Ok(d) => {
                    let mut tags: Vec<String> = (d.tags().iter())
                        .map(|t| format!("{:?}={:?}", t.key(), t.value()))
                        .collect();
                    tags.sort();
                    let mut versions: Vec<String> = (d.version_ids_to_stages().into_iter())
                        .flatten()
                        .map(|(v, stages)| format!("{v}:{stages:?}"))
                        .collect();
                    versions.sort();
                    format!("{tags:?} {versions:?} deleted={:?}", d.deleted_date())
                }
                Err(e) => format!("{:?}", e.into_service_error().meta().code()),
            };
            held.push(format!("{name}: {state}"));
        }
        held
    }
}

/// The configuration, whose identity has `subject`.
fn config(clouds: &Clouds, azure: &Azure, subject: &str) -> String {
    format!(
        "{}{}",
        clouds.config_with_rules("", subject, RULES),
        azure.vault_config("destinations.kv", "deploy", "")
    )
}

/// The world: the source's secrets, two of them already synced (one of which
/// has moved on since), a foreign secret and one scheduled for deletion at the
/// destination.
async fn world() -> World {
    let clouds = Clouds::start().await;
    let azure = Azure::start().await;
    azure.trust(clouds.issuer.url(), SUBJECT);
    let config = config(&clouds, &azure, SUBJECT);
    let mut w = World {
        clouds,
        azure,
        config,
        values: vec![],
    };
    w.put_source("app/old", 0).await;
    w.put_source("app/same", 0).await;
    let out = w.run(&["reconcile", "--json"], &w.config).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.clouds.written("app/same").await.is_some());

    w.put_source("app/old", 1).await;
    for name in [
        "app/new",
        "app/taken",
        "app/gone",
        "team-a/db",
        "team-b/db",
        "kv/soft",
        "kv/Db",
        "kv/db",
    ] {
        w.put_source(name, 0).await;
    }
    let deleted = secret("kv-soft-not-fedsyncs-b81f");
    w.azure.vault.create_soft_deleted("kv-soft", &deleted);
    w.values.push(deleted);
    w.put_foreign("app/taken").await;
    w.put_foreign("app/gone").await;
    w.clouds
        .destination()
        .delete_secret()
        .secret_id("app/gone")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    w
}

/// The single target planned for `secret`.
fn row<'a>(plan: &'a Value, secret: &str) -> &'a Value {
    let found = (plan["secrets"].as_array().unwrap().iter())
        .find(|s| s["secret"] == secret)
        .unwrap_or_else(|| panic!("{secret} is not in the plan: {plan:#}"));
    let targets = found["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{found:#}");
    &targets[0]
}

fn reason(row: &Value) -> &str {
    row["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_plan_shows_each_action_with_its_reason_and_writes_nothing() {
    let w = world().await;
    let before = w.destination().await;
    let old_version = w
        .clouds
        .destination()
        .describe_secret()
        .secret_id("app/old")
        .send()
        .await
        .unwrap();
    let held_old = old_version
        .tags()
        .iter()
        .find(|t| t.key() == Some("fedsync:source-version"))
        .and_then(|t| t.value())
        .map(str::to_string);

    let (code, plan) = w.plan(&[]).await;
    assert_eq!(code, 2, "refusals and collisions exit 2: {plan:#}");
    assert_eq!(plan["complete"], true, "{plan:#}");
    assert_eq!(plan["value_hashes"], "value-key", "{plan:#}");
    // The world's own prod/app/db is listed, and covered by no rule.
    assert_eq!(plan["sources"][0]["listed"], 11, "{plan:#}");
    assert_eq!(plan["sources"][0]["covered"], 10, "{plan:#}");

    let new = row(&plan, "app/new");
    assert_eq!(new["action"], "create", "{new:#}");
    assert_eq!(
        (&new["destination"], &new["name"], &new["rule"]),
        (&"aws-dr".into(), &"app/new".into(), &0.into())
    );
    assert!(new["held_version"].is_null(), "{new:#}");

    let old = row(&plan, "app/old");
    assert_eq!(old["action"], "update", "{old:#}");
    assert!(held_old.is_some(), "fedsync's version mark is on app/old");
    assert_eq!(old["held_version"].as_str(), held_old.as_deref(), "{old:#}");
    assert!(reason(old).starts_with("holds source version"), "{old:#}");
    assert_ne!(old["value_hash"], old["held_hash"], "a new value: {old:#}");
    assert!(old["held_hash"].is_string(), "{old:#}");

    let same = row(&plan, "app/same");
    assert_eq!(same["action"], "unchanged", "{same:#}");
    assert_eq!(
        same["value_hash"], same["held_hash"],
        "the hash a sync marks its copy with: {same:#}"
    );

    let taken = row(&plan, "app/taken");
    assert_eq!(taken["action"], "refused", "{taken:#}");
    assert!(
        reason(taken).contains("fedsync does not manage it (overwrite = \"managed\")"),
        "{taken:#}"
    );

    let gone = row(&plan, "app/gone");
    assert_eq!(gone["action"], "refused", "{gone:#}");
    assert!(
        reason(gone).contains("held by a secret scheduled for deletion"),
        "{gone:#}"
    );

    for secret in ["team-a/db", "team-b/db"] {
        let collision = row(&plan, secret);
        assert_eq!(collision["action"], "collision", "{collision:#}");
        assert_eq!(
            (&collision["name"], &collision["rule"]),
            (&"shared-db".into(), &1.into())
        );
        let why = reason(collision);
        assert!(
            why.contains("main:team-a/db") && why.contains("main:team-b/db"),
            "both sources named: {why}"
        );
    }

    let soft = row(&plan, "kv/soft");
    assert_eq!(
        (&soft["action"], &soft["destination"], &soft["name"]),
        (&"refused".into(), &"kv".into(), &"kv-soft".into()),
        "{soft:#}"
    );
    assert!(
        reason(soft).contains("held by a secret scheduled for deletion"),
        "{soft:#}"
    );
    // Key Vault ignores case: kv-Db and kv-db are one secret there.
    for (secret, name) in [("kv/Db", "kv-Db"), ("kv/db", "kv-db")] {
        let collision = row(&plan, secret);
        assert_eq!(
            (&collision["action"], &collision["name"]),
            (&"collision".into(), &name.into()),
            "{collision:#}"
        );
        let why = reason(collision);
        assert!(
            why.contains("main:kv/Db") && why.contains("main:kv/db"),
            "both sources named: {why}"
        );
    }
    let hashes: std::collections::BTreeSet<&str> = (plan["secrets"].as_array().unwrap().iter())
        .map(|s| s["targets"][0]["value_hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 10, "every value its own hash: {plan:#}");
    assert_eq!(
        plan["totals"],
        serde_json::json!({"create": 1, "update": 1, "unchanged": 1, "drift": 0, "refused": 3,
            "collision": 4, "error": 0, "source_failures": 0}),
        "{plan:#}"
    );

    // The table says the same, a row per target.
    let out = w.run(&["plan"], &w.config).await;
    assert_eq!(out.status.code(), Some(2));
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |secret: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("main:{secret} ")))
            .unwrap_or_else(|| panic!("no row for {secret}:\n{table}"))
            .to_string()
    };
    assert!(line("app/new").contains(" create "), "{table}");
    assert!(line("app/old").contains(" update "), "{table}");
    assert!(line("app/same").contains(" unchanged "), "{table}");
    assert!(
        line("app/taken").contains(" refused ") && line("app/taken").contains("does not manage"),
        "{table}"
    );
    assert!(
        line("team-b/db").contains(" collision ") && line("team-b/db").contains("shared-db"),
        "{table}"
    );

    assert_eq!(w.destination().await, before, "a plan writes nothing");
    assert_eq!(w.vault_writes(), 0, "a plan writes nothing to Key Vault");
    assert!(w.azure.vault.latest("kv-db").is_none());
    assert_eq!(
        w.clouds.written("app/old").await.as_deref(),
        Some(value("app/old", 0).as_str())
    );
}

#[tokio::test]
async fn a_named_secret_narrows_the_plan_and_the_exit_code_follows_it() {
    let w = world().await;
    let before = w.destination().await;

    let (code, plan) = w.plan(&["--secret", "app/same"]).await;
    assert_eq!(code, 0, "in step: clean: {plan:#}");
    assert_eq!(plan["secrets"].as_array().unwrap().len(), 1, "{plan:#}");
    assert_eq!(
        plan["sources"].as_array().unwrap().len(),
        0,
        "nothing listed"
    );
    assert_eq!(row(&plan, "app/same")["action"], "unchanged");

    let (code, plan) = w.plan(&["--secret", "app/new", "--source", "main"]).await;
    assert_eq!(code, 0, "a create is clean: {plan:#}");
    assert_eq!(row(&plan, "app/new")["action"], "create");

    let (code, plan) = w.plan(&["--secret", "app/taken"]).await;
    assert_eq!(code, 2, "{plan:#}");
    assert_eq!(plan["secrets"].as_array().unwrap().len(), 1, "{plan:#}");
    assert_eq!(row(&plan, "app/taken")["action"], "refused");

    // A named secret the source does not hold cannot be planned.
    let (code, plan) = w.plan(&["--secret", "app/missing"]).await;
    assert_eq!(code, 1, "{plan:#}");
    assert_eq!(
        plan["secrets"][0]["error"]["class"], "not-found",
        "{plan:#}"
    );

    // One no rule covers is refused before any store is read.
    let out = w.run(&["plan", "--secret", "other/x"], &w.config).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no rule covers the secret \"other/x\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(w.destination().await, before, "a plan writes nothing");
    assert_eq!(w.vault_writes(), 0, "a plan writes nothing to Key Vault");
}

#[tokio::test]
async fn a_destination_that_cannot_be_read_exits_1_with_the_failure() {
    let w = world().await;
    // AWS and Entra trust another subject: every exchange is refused.
    let config = config(&w.clouds, &w.azure, "fedsync:someone-else");
    let out = w.run(&["plan", "--json"], &config).await;
    let plan: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{plan:#}");
    let new = row(&plan, "app/new");
    assert_eq!(new["action"], "error", "{new:#}");
    assert!(reason(new).starts_with("auth: "), "{new:#}");
    let soft = row(&plan, "kv/soft");
    assert_eq!(soft["action"], "error", "{soft:#}");
    assert!(reason(soft).starts_with("auth: "), "{soft:#}");
    assert_eq!(plan["totals"]["error"], 10, "{plan:#}");
}
