//! `fedsync trust lint` as people run it: the tight examples in
//! `examples/trust/` pass, each broad fixture in `tests/fixtures/trust/` exits 1
//! with its specific finding in the `--json` output, and a file that cannot be
//! read or is of no known kind exits 2 naming the file.

use fedsync_tests::lambda_api::workspace_binary;
use fedsync_tests::leaks::Role;
use fedsync_tests::process;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root: paths in the output are relative to it, as typed.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

/// `fedsync trust lint ARGS`, run from the repository root.
async fn lint(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(workspace_binary("fedsync"));
    command
        .args(["trust", "lint"])
        .args(args)
        .current_dir(repository())
        .env_clear();
    process::output(Role::Fedsync, &mut command)
        .await
        .expect("run fedsync")
}

/// The `.json` files of a folder of the repository, as relative paths (a shell's `DIR/*.json`).
fn json_files(folder: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repository().join(folder))
        .expect("read the folder")
        .map(|entry| entry.expect("a folder entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_string))
        .filter(|name| name.ends_with(".json"))
        .map(|name| format!("{folder}/{name}"))
        .collect();
    files.sort();
    files
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn findings(out: &Output) -> Vec<Value> {
    let stdout = text(&out.stdout);
    match serde_json::from_str(&stdout) {
        Ok(Value::Array(all)) => all,
        _ => panic!("--json prints an array:\n{stdout}\n{}", text(&out.stderr)),
    }
}

#[tokio::test]
async fn the_tight_examples_pass() {
    let examples = json_files("examples/trust");
    assert!(examples.len() >= 5, "{examples:?}");
    let args: Vec<&str> = examples.iter().map(String::as_str).collect();

    let out = lint(&args).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for example in &examples {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{example} (")) && l.ends_with("): no finding")),
            "{example}: {stdout}"
        );
    }
    assert!(stdout.contains("0 findings"), "{stdout}");

    let mut json_args = args.clone();
    json_args.push("--json");
    let out = lint(&json_args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(findings(&out), Vec::<Value>::new());
}

/// A finding a fixture must produce: its field, its severity, a word of its reason.
type Expected = (&'static str, &'static str, &'static str);

/// Each broad fixture and the findings it must produce.
const BROAD: &[(&str, &[Expected])] = &[
    (
        "aws-github-wildcard-subject.json",
        &[(
            "Statement[0].Condition.StringLike[\"token.actions.githubusercontent.com:sub\"]",
            "high",
            "wildcard",
        )],
    ),
    (
        "aws-get-role-no-conditions.json",
        &[
            (
                "Role.AssumeRolePolicyDocument.Statement.Condition[\"token.actions.githubusercontent.com:aud\"]",
                "medium",
                "audience",
            ),
            (
                "Role.AssumeRolePolicyDocument.Statement.Condition[\"token.actions.githubusercontent.com:sub\"]",
                "high",
                "every repository on GitHub",
            ),
        ],
    ),
    (
        "aws-public-principal.json",
        &[
            ("Statement[0].Principal.AWS", "high", "anyone"),
            ("Statement[1].NotPrincipal", "high", "NotPrincipal"),
        ],
    ),
    (
        "aws-many-subjects.json",
        &[(
            "AssumeRolePolicyDocument.Statement",
            "medium",
            "3 workloads",
        )],
    ),
    (
        "gcp-provider-no-condition.json",
        &[
            ("attributeCondition", "high", "No attribute condition"),
            (
                "attributeMapping[\"google.subject\"]",
                "high",
                "share one principal",
            ),
            ("oidc.allowedAudiences[0]", "high", "AWS"),
        ],
    ),
    (
        "gcp-provider-starts-with.json",
        &[
            ("attributeCondition", "high", "startsWith"),
            ("attributeCondition", "high", "does not pin the subject"),
        ],
    ),
    (
        "gcp-iam-policy-whole-pool.json",
        &[
            ("bindings[0].members[0]", "high", "whole pool"),
            (
                "bindings[1].members[0]",
                "high",
                "attribute.repository_owner",
            ),
        ],
    ),
    (
        "azure-foreign-audience.json",
        &[("audiences[0]", "high", "foreign")],
    ),
    (
        "azure-credential-list.json",
        &[
            ("[2].claimsMatchingExpression.value", "high", "wildcard"),
            ("[*].subject", "medium", "2 workloads"),
        ],
    ),
];

#[tokio::test]
async fn each_broad_fixture_exits_1_with_its_findings() {
    for (name, expected) in BROAD {
        let file = format!("tests/fixtures/trust/{name}");
        let out = lint(&[&file, "--json"]).await;
        assert_eq!(out.status.code(), Some(1), "{file}: {}", text(&out.stderr));
        let all = findings(&out);
        assert_eq!(all.len(), expected.len(), "{file}: {all:#?}");
        for (field, severity, word) in *expected {
            assert!(
                all.iter().any(|f| f["file"] == file.as_str()
                    && f["field"] == *field
                    && f["severity"] == *severity
                    && f["reason"].as_str().is_some_and(|r| r.contains(word))
                    && f["example"].as_str().is_some_and(|e| !e.is_empty())),
                "{file}: no {severity} finding on {field} saying {word:?} in {all:#?}"
            );
        }
    }
}

#[tokio::test]
async fn every_broad_fixture_is_covered_and_the_report_groups_by_file() {
    let fixtures: Vec<String> = json_files("tests/fixtures/trust")
        .into_iter()
        .filter(|f| !f.ends_with("unrecognised-shape.json"))
        .collect();
    assert_eq!(fixtures.len(), BROAD.len(), "{fixtures:?}");
    let args: Vec<&str> = fixtures.iter().map(String::as_str).collect();
    let out = lint(&args).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for fixture in &fixtures {
        assert!(
            stdout.contains(&format!("{fixture} (")),
            "{fixture}: {stdout}"
        );
    }
    assert!(
        stdout.contains("why: ") && stdout.contains("tighter:"),
        "{stdout}"
    );
    assert!(stdout.contains("0 of 9 files pass"), "{stdout}");
}

#[tokio::test]
async fn an_unrecognised_or_unreadable_file_exits_2_naming_it() {
    let unrecognised = "tests/fixtures/trust/unrecognised-shape.json";
    let example = "examples/trust/azure-federated-credential.json";
    let out = lint(&[example, unrecognised, "--json"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{unrecognised}: not a recognised trust definition"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"kind\""),
        "the shape found is named: {stderr}"
    );
    assert_eq!(findings(&out), Vec::<Value>::new());

    let missing = "tests/fixtures/trust/no-such-file.json";
    let out = lint(&[missing]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{missing}: cannot read the file")),
        "{stderr}"
    );
}
