//! Pub/Sub push bodies (`triggers::pubsub::parse`): a change names the
//! configured Google source and a secret id (never a full resource name), a
//! refusal quotes no more of the body than an excerpt, and parsing is
//! deterministic.

#![no_main]

use fedsync::config::SourceConfig;
use fedsync::triggers::pubsub::parse;
use fedsync_fuzz::{Input, assert_same, config, is_source, outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = parse(data, config());
    let again = parse(data, config());
    assert_same(&outcome(&first), &outcome(&again));
    match first {
        Err(failure) => {
            assert!(!failure.is_retryable(), "a malformed push is never retried");
            Input::new(data).assert_not_echoed(&failure.message);
        }
        Ok(Some(change)) => {
            assert!(is_source(&change.source, |s| matches!(
                s,
                SourceConfig::GcpSecretManager(_)
            )));
            assert!(
                !change.secret.is_empty(),
                "a change names a secret: {change:?}"
            );
            assert!(!change.secret.contains('/'), "{change:?}");
            assert!(change.version.as_deref().is_none_or(|v| !v.contains('/')));
        }
        Ok(None) => {}
    }
});
