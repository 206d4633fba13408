//! How a change is written to a Google Secret Manager destination that already
//! holds the secret: `addVersion` and the marks patch naming the predicted
//! version at once, and what happens when the prediction or one of the two
//! calls fails. The real `fedsync-pubsub-push` receiver against the strict
//! Google emulators: a source project whose secret gains versions, and a
//! destination project that fedsync created on the first push.

use fedsync_tests::google::{GoogleError, SecretManagerMethod as M};
use fedsync_tests::google_world::*;
use fedsync_tests::leaks;
use serde_json::Value;

/// The push world after a first push created the destination secret (Google
/// version 1, holding source version 1).
async fn synced_once() -> PushWorld {
    let w = push_world().await;
    let answer = push(&w, 1).await;
    assert_eq!(status(&answer, "gcp-dr"), "synced", "{answer:#}");
    assert_eq!(destination(&w).versions.len(), 1);
    w
}

/// Pushes `SECRET_VERSION_ADD` for source version `n`; the JSON answer.
async fn push(w: &PushWorld, n: u64) -> Value {
    let secret = format!("projects/{}/secrets/{GOOGLE_SECRET}", SOURCE_PROJECT.1);
    let mut body = fedsync_tests::clouds::event("pubsub-secret-version-add.json");
    let attributes = &mut body["message"]["attributes"];
    attributes["eventType"] = "SECRET_VERSION_ADD".into();
    attributes["secretId"] = secret.clone().into();
    attributes["versionId"] = format!("{secret}/versions/{n}").into();
    w.push(&body, Some(w.good_token())).await.1
}

/// Adds a source version holding `value`; its number.
fn change_source(w: &PushWorld, value: &str) -> u64 {
    w.google.secret_manager.add_version(
        SOURCE_PROJECT.0,
        GOOGLE_SECRET,
        leaks::secret(value).as_bytes(),
    )
}

/// The outcome status of `destination` in a push's answer.
fn status(answer: &Value, destination: &str) -> String {
    answer["report"]["outcomes"]
        .as_array()
        .unwrap_or_else(|| panic!("no outcomes: {answer:#}"))
        .iter()
        .find(|o| o["destination"] == destination)
        .and_then(|o| o["status"].as_str())
        .unwrap_or_else(|| panic!("no outcome for {destination}: {answer:#}"))
        .to_string()
}

fn destination(w: &PushWorld) -> fedsync_tests::google::secret_manager::SecretSnapshot {
    w.google
        .secret_manager
        .secret(DEST_PROJECT.0, GOOGLE_SECRET)
        .expect("the destination secret exists")
}

/// The values of the destination's versions, oldest first.
fn values(w: &PushWorld) -> Vec<String> {
    destination(w)
        .versions
        .iter()
        .map(|v| String::from_utf8(v.data.clone().expect("not destroyed")).unwrap())
        .collect()
}

/// fedsync's marks on the destination: (Google version named, source version named).
fn marks(w: &PushWorld) -> (String, String) {
    let a = destination(w).annotations;
    (
        a["fedsync-version"].clone(),
        a["fedsync-source-version"].clone(),
    )
}

/// Calls of `addVersion` and of `secrets.patch` so far (destination calls only:
/// the source is only read).
fn writes(w: &PushWorld) -> (usize, usize) {
    let sm = &w.google.secret_manager;
    (sm.calls(M::AddSecretVersion), sm.calls(M::UpdateSecret))
}

fn assert_no_value_in_logs(w: &PushWorld, values: &[&str]) {
    let logs = w.receiver.logs();
    for value in values {
        assert!(!logs.contains(value), "a value appears in the logs");
    }
}

#[tokio::test]
async fn a_warm_update_adds_the_version_and_patches_its_marks_in_one_call_each() {
    let w = synced_once().await;
    let second = "google-write-second";
    let n = change_source(&w, second);
    let before = writes(&w);
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "synced", "{answer:#}");
    let after = writes(&w);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "one addVersion and one marks patch"
    );
    assert_eq!(values(&w).last().map(String::as_str), Some(second));
    assert_eq!(marks(&w), ("2".into(), n.to_string()));
    assert_eq!(
        destination(&w)
            .labels
            .get("fedsync-managed-by")
            .map(String::as_str),
        Some("fedsync")
    );

    // The marks are trusted: the same change again writes nothing.
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "unchanged", "{answer:#}");
    assert_eq!(writes(&w), after);
    assert_no_value_in_logs(&w, &[second]);
}

#[tokio::test]
async fn a_version_added_by_another_writer_meanwhile_ends_with_marks_naming_fedsyncs_own() {
    let w = synced_once().await;
    let ours = "google-write-ours";
    let theirs = leaks::secret("google-write-theirs");
    let n = change_source(&w, ours);
    // Between fedsync's inspect and its write, someone else adds version 2.
    w.google.secret_manager.add_version_before_next(
        M::AddSecretVersion,
        DEST_PROJECT.0,
        GOOGLE_SECRET,
        theirs.as_bytes(),
    );
    let before = writes(&w);
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "synced", "{answer:#}");
    assert_eq!(values(&w)[1..], [theirs.clone(), ours.to_string()]);
    assert_eq!(
        marks(&w),
        ("3".into(), n.to_string()),
        "the marks name the version fedsync added, not the predicted one"
    );
    let after = writes(&w);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 2),
        "one addVersion; the marks patched again naming the real number"
    );

    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "unchanged", "{answer:#}");
    assert_eq!(destination(&w).versions.len(), 3, "no duplicate");
    assert_no_value_in_logs(&w, &[ours, &theirs]);
}

#[tokio::test]
async fn a_failed_add_version_puts_the_previous_marks_back() {
    let w = synced_once().await;
    let held = destination(&w);
    let second = "google-write-retried";
    let n = change_source(&w, second);
    w.google
        .secret_manager
        .fail_next(M::AddSecretVersion, 1, GoogleError::internal());
    let before = writes(&w);
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "failed", "{answer:#}");
    assert_eq!(status(&answer, "aws-dr"), "synced", "{answer:#}");
    let now = destination(&w);
    assert_eq!(now.versions.len(), 1);
    assert_eq!(
        (now.labels, now.annotations),
        (held.labels, held.annotations),
        "the marks are as they were before the write"
    );
    let after = writes(&w);
    assert_eq!(
        after.1 - before.1,
        2,
        "the marks patch, then the one that puts them back"
    );

    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "synced", "{answer:#}");
    assert_eq!(values(&w).len(), 2);
    assert_eq!(values(&w)[1], second);
    assert_eq!(marks(&w), ("2".into(), n.to_string()));
    assert_no_value_in_logs(&w, &[second]);
}

#[tokio::test]
async fn marks_left_naming_a_version_that_was_never_added_are_unverified_and_healed() {
    let w = synced_once().await;
    let second = "google-write-healed";
    let n = change_source(&w, second);
    let sm = &w.google.secret_manager;
    sm.fail_next(M::AddSecretVersion, 1, GoogleError::internal());
    // The marks patch passes; putting the previous marks back fails.
    sm.fail_after(M::UpdateSecret, 1, GoogleError::internal());
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "failed", "{answer:#}");
    assert_eq!(destination(&w).versions.len(), 1);
    assert_eq!(
        marks(&w),
        ("2".into(), n.to_string()),
        "the marks claim version 2, which does not exist"
    );
    let logs = w.receiver.logs();
    assert!(
        logs.contains("the marks naming it could not be put back"),
        "{logs}"
    );

    // Trusted, these marks would make this change "unchanged": they must not be.
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "synced", "{answer:#}");
    assert_eq!(values(&w).len(), 2);
    assert_eq!(values(&w)[1], second);
    assert_eq!(marks(&w), ("2".into(), n.to_string()));
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "unchanged", "{answer:#}");
    assert_no_value_in_logs(&w, &[second]);
}

#[tokio::test]
async fn a_failed_marks_patch_leaves_the_value_which_the_next_sync_only_marks() {
    let w = synced_once().await;
    let second = "google-write-unmarked";
    let n = change_source(&w, second);
    w.google
        .secret_manager
        .fail_next(M::UpdateSecret, 1, GoogleError::internal());
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "failed", "{answer:#}");
    assert_eq!(values(&w).len(), 2, "the version landed");
    assert_eq!(
        marks(&w),
        ("1".into(), "1".into()),
        "the marks still name the previous version"
    );

    let before = writes(&w);
    let answer = push(&w, n).await;
    assert_eq!(status(&answer, "gcp-dr"), "synced", "{answer:#}");
    let after = writes(&w);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 1),
        "only the marks are written: no second copy of the value"
    );
    assert_eq!(values(&w).len(), 2);
    assert_eq!(marks(&w), ("2".into(), n.to_string()));
    assert_no_value_in_logs(&w, &[second]);
}
