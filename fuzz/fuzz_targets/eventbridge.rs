//! EventBridge events (`triggers::eventbridge::parse`): a change names a
//! configured Secrets Manager source and a secret, a refusal quotes no more of
//! the event than an excerpt, and the same event always parses the same way.

#![no_main]

use fedsync::config::SourceConfig;
use fedsync::triggers::eventbridge::{parse, secret_name};
use fedsync_fuzz::{Input, assert_same, config, is_source, outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = std::str::from_utf8(data) {
        let name = secret_name(id);
        assert!(id.contains(name), "{name:?} is not part of {id:?}");
        if !id.starts_with("arn:") {
            assert_eq!(name, id);
        }
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let first = parse(&event, config());
    let again = parse(&event, config());
    assert_same(&outcome(&first), &outcome(&again));
    match first {
        Err(failure) => {
            assert!(
                !failure.is_retryable(),
                "a malformed event is never retried"
            );
            Input::new(data).assert_not_echoed(&failure.message);
        }
        Ok(Some(change)) => {
            assert!(is_source(&change.source, |s| matches!(
                s,
                SourceConfig::AwsSecretsManager { .. }
            )));
            assert!(
                !change.secret.is_empty(),
                "a change names a secret: {change:?}"
            );
        }
        Ok(None) => {}
    }
});
