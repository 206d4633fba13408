//! Event Grid deliveries (`triggers::event_grid::parse`): a handshake yields
//! its code, each event a change of the configured Key Vault source, a no-op or
//! a refusal that quotes no more of the delivery than an excerpt; parsing is
//! deterministic.

#![no_main]

use fedsync::config::SourceConfig;
use fedsync::triggers::event_grid::{Delivery, parse};
use fedsync_fuzz::{Input, assert_same, config, is_source, outcome};
use libfuzzer_sys::fuzz_target;

/// A delivery as text that does not depend on the moment it was parsed.
fn comparable_delivery(delivery: &Result<Delivery, fedsync::report::Failure>) -> String {
    match delivery {
        Err(f) => format!("{f:?}"),
        Ok(Delivery::Validation(code)) => format!("validation {code:?}"),
        Ok(Delivery::Events(events)) => events.iter().map(outcome).collect::<Vec<_>>().join("\n"),
    }
}

fuzz_target!(|data: &[u8]| {
    let first = parse(data, config());
    assert_same(
        &comparable_delivery(&first),
        &comparable_delivery(&parse(data, config())),
    );
    let input = Input::new(data);
    match first {
        Err(failure) => input.assert_not_echoed(&failure.message),
        Ok(Delivery::Validation(code)) => {
            let text = String::from_utf8_lossy(data);
            assert!(text.contains("validationCode"), "{code:?}");
        }
        Ok(Delivery::Events(events)) => {
            for event in events {
                match event {
                    Err(failure) => {
                        assert!(!failure.is_retryable());
                        input.assert_not_echoed(&failure.message);
                    }
                    Ok(Some(change)) => {
                        assert!(is_source(&change.source, |s| matches!(
                            s,
                            SourceConfig::AzureKeyVault(_)
                        )));
                        assert!(!change.secret.is_empty(), "{change:?}");
                    }
                    Ok(None) => {}
                }
            }
        }
    }
});
