//! `fedsync demo`, the first command of the README, run as a new user runs it: no
//! configuration, no cloud, nothing else running, from a folder that is not the
//! checkout. The output must show every sample event sent, every expected
//! destination synced, a second pass with no new exchange, and the wrong audience
//! failing with doctor's explanation. Also: the function binaries never link the
//! emulators the demo runs on.

use fedsync_tests::lambda_api::workspace_binary;
use fedsync_tests::leaks::Role;
use std::path::Path;

/// The demo's output, with its exit status checked.
async fn demo() -> String {
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(workspace_binary("fedsync"));
    command
        .arg("demo")
        .current_dir(elsewhere.path())
        .env_clear()
        .env("TMPDIR", elsewhere.path())
        .env("NO_COLOR", "1");
    let output = fedsync_tests::process::output(Role::Fedsync, &mut command)
        .await
        .expect("run fedsync demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed:\n{stdout}\n{stderr}"
    );
    // Nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(left.is_empty(), "the demo left files: {left:?}");
    stdout
}

/// The section of `output` from the line starting with `from` to the one starting with `to`.
fn section<'a>(output: &'a str, from: &str, to: &str) -> &'a str {
    let start = output
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?} in:\n{output}"));
    let end = output[start..].find(to).map_or(output.len(), |e| start + e);
    &output[start..end]
}

/// The table rows (change, destination, status, exchanges) of a section.
fn rows(section: &str) -> Vec<(String, String, String, u32)> {
    section
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(".json"))
        .map(|l| {
            let cells: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let n = cells.len();
            assert!(n >= 5, "a row has five cells: {l:?}");
            (
                cells[0].to_owned(),
                cells[1].to_owned(),
                cells[2..n - 2].join(" "),
                cells[n - 2]
                    .parse()
                    .unwrap_or_else(|_| panic!("exchanges in {l:?}")),
            )
        })
        .collect()
}

fn status_of<'a>(
    rows: &'a [(String, String, String, u32)],
    file: &str,
    dest: &str,
) -> Vec<&'a str> {
    rows.iter()
        .filter(|r| r.0 == file && r.1 == dest)
        .map(|r| r.2.as_str())
        .collect()
}

#[tokio::test]
async fn the_demo_syncs_every_sample_event_shows_the_cache_and_explains_a_wrong_audience() {
    let output = demo().await;

    // Pass 1: every file of events/ is sent.
    let first = section(&output, "Pass 1", "Pass 2");
    let first_rows = rows(first);
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    for entry in std::fs::read_dir(events).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            first_rows.iter().any(|r| r.0 == name),
            "{name} was not sent:\n{first}"
        );
    }
    let everywhere = ["aws-dr", "gcp-dr", "azure-dr"];
    for file in [
        "eventbridge-create-secret.json",
        "eventbridge-put-secret-value.json",
        "eventbridge-update-secret.json",
        "eventbridge-rotation-succeeded.json",
        "sqs-batch.json",
        "function-url-notify.json",
    ] {
        for dest in everywhere {
            assert!(
                status_of(&first_rows, file, dest).contains(&"synced"),
                "{file} did not reach {dest}:\n{first}"
            );
        }
    }
    for dest in ["aws-dr", "azure-dr"] {
        let statuses = status_of(&first_rows, "pubsub-secret-version-add.json", dest);
        assert_eq!(statuses, ["synced"], "{first}");
    }
    for file in ["eventbridge-unrelated.json", "pubsub-topic-configured.json"] {
        assert_eq!(status_of(&first_rows, file, "-"), ["ignored"], "{first}");
    }
    // A deletion is left alone by default, and said so.
    for dest in everywhere {
        let statuses = status_of(&first_rows, "eventbridge-delete-secret.json", dest);
        assert!(
            statuses.len() == 1 && statuses[0].contains("on_delete = \"ignore\""),
            "{statuses:?}"
        );
    }
    assert!(
        !first_rows.iter().any(|r| r.2.starts_with("failed")),
        "{first}"
    );
    // One exchange per destination, on the first change only.
    let exchanges: u32 = first_rows.iter().map(|r| r.3).sum();
    assert_eq!(exchanges, 3, "{first}");
    assert!(
        first.contains(
            "The clouds answered 4 exchanges: AWS STS 1, Google (STS and impersonation) 2, Entra 1."
        ),
        "{first}"
    );

    // Pass 2: new values land with the cached credentials.
    let second = section(&output, "Pass 2", "Pass 3");
    let second_rows = rows(second);
    assert!(second_rows.len() >= 9, "{second}");
    for file in [
        "eventbridge-put-secret-value.json",
        "sqs-batch.json",
        "function-url-notify.json",
    ] {
        for dest in everywhere {
            assert!(
                status_of(&second_rows, file, dest).contains(&"synced"),
                "{second}"
            );
        }
    }
    assert!(second_rows.iter().all(|r| r.3 == 0), "{second}");
    assert!(
        second.contains("New exchanges in pass 2: 0 by fedsync's count, 0 by the clouds' count."),
        "{second}"
    );

    // Pass 3: the wrong audience fails at AWS only, and doctor says why.
    let third = section(&output, "Pass 3", "Demo complete");
    let third_rows = rows(third);
    assert_eq!(
        status_of(&third_rows, "eventbridge-put-secret-value.json", "aws-dr"),
        ["failed (auth)"]
    );
    for dest in ["gcp-dr", "azure-dr"] {
        assert_eq!(
            status_of(&third_rows, "eventbridge-put-secret-value.json", dest),
            ["synced"]
        );
    }
    let doctor = section(third, "fedsync doctor", "checks:");
    let failed: Vec<&str> = doctor.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{doctor}");
    assert!(failed[0].starts_with("destination aws-dr") && failed[0].contains("exchange"));
    assert!(
        doctor.contains("likely cause")
            && doctor.contains(":aud\" must equal the token's aud \"sts.amazonaws.com.invalid\""),
        "doctor does not name the audience:\n{doctor}"
    );
    assert!(output.contains("Demo complete"), "{output}");

    // Values are never shown, and neither are tokens.
    let value_like = output
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .filter(|w| w.starts_with("demo-") && w.len() > 20);
    assert_eq!(value_like.count(), 0, "a value was printed:\n{output}");
    assert!(!output.contains("eyJ"), "a token was printed:\n{output}");
}

/// The function binaries must not carry the emulators: only the CLI (for the demo)
/// and the test harness depend on them.
#[test]
fn only_the_cli_and_the_tests_link_the_emulators() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--workspace",
            "--edges",
            "normal,build",
            "--invert",
            "fedsync-emulators",
            "--depth",
            "1",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut dependents: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "fedsync-emulators")
        .collect();
    dependents.sort();
    dependents.dedup();
    assert_eq!(dependents, ["fedsync-cli", "fedsync-tests"], "{text}");
}
