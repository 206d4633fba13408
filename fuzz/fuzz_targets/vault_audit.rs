//! Vault/OpenBao audit lines (`triggers::vault_audit::parse`), read for every
//! configured `vault-kv` source: a change is of that source, names a secret and
//! at most a numeric version; a refusal never quotes more of the line than an
//! excerpt; parsing is deterministic.

#![no_main]

use fedsync::config::SourceConfig;
use fedsync::triggers::vault_audit::parse;
use fedsync_fuzz::{Input, assert_same, config, outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The listener reads the stream line by line, as text.
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    for (name, source) in &config().sources {
        let SourceConfig::VaultKv(kv) = source else {
            continue;
        };
        let first = parse(line, name, kv);
        let again = parse(line, name, kv);
        assert_same(&outcome(&first), &outcome(&again));
        match first {
            Err(failure) => {
                assert!(!failure.is_retryable());
                Input::new(data).assert_not_echoed(&failure.message);
            }
            Ok(Some(change)) => {
                assert_eq!(&change.source, name);
                assert!(!change.secret.is_empty(), "{change:?}");
                assert!(
                    change
                        .version
                        .as_deref()
                        .is_none_or(|v| v.bytes().all(|b| b.is_ascii_digit())),
                    "{change:?}"
                );
            }
            Ok(None) => {}
        }
    }
});
