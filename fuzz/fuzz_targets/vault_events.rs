//! Vault event notifications (`triggers::vault_events::parse`). The input is
//! `SOURCE\n\nBODY` (the `?source=` parameter, then the body) or a body alone.
//! A change names a `vault-kv` source reading the event's mount (the one named,
//! when one is), a refusal quotes no more of the input than an excerpt, and
//! parsing is deterministic.

#![no_main]

use fedsync::config::SourceConfig;
use fedsync::triggers::vault_events::parse;
use fedsync_fuzz::{Input, assert_same, config, is_source, outcome, split_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = split_head(data);
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let source = (!head.is_empty()).then_some(head);
    let first = parse(body, config(), source);
    let again = parse(body, config(), source);
    assert_same(&outcome(&first), &outcome(&again));
    match first {
        Err(failure) => {
            assert!(!failure.is_retryable());
            Input::new(body)
                .with(head)
                .assert_not_echoed(&failure.message);
        }
        Ok(Some(change)) => {
            assert!(is_source(&change.source, |s| matches!(
                s,
                SourceConfig::VaultKv(_)
            )));
            if let Some(named) = source {
                assert_eq!(change.source, named);
            }
            assert!(!change.secret.is_empty(), "{change:?}");
            assert!(!change.secret.ends_with('/'), "{change:?}");
        }
        Ok(None) => {}
    }
});
