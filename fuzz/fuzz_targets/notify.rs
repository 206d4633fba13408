//! Change notices (`triggers::notify`). The input is a request: header lines
//! (`authorization`, `x-fedsync-timestamp`, `x-fedsync-signature`), a blank line
//! and the body; or a body alone. A timestamp of `now`, `now+N` or `now-N`
//! stands for that moment and a signature of `valid` for the right one, so that
//! accepted requests are reached too.
//!
//! The body parses deterministically into a change of a configured source, or a
//! refusal quoting no more of it than an excerpt. Verification accepts exactly
//! the requests signed with the key over `{timestamp}.{body}` within the window,
//! the second time as a replay; every refusal (signature or bearer token, whose
//! issuer is never reachable) quotes no more of the request than an excerpt.

#![no_main]

use fedsync::triggers::notify::{
    Accepted, NotifyAuth, REPLAY_WINDOW, SIGNATURE_HEADER, TIMESTAMP_HEADER, parse,
};
use fedsync_fuzz::{HMAC_KEY, Input, assert_same, config, outcome, split_head};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `now`, `now+N`, `now-N` as Unix seconds; anything else as given.
fn timestamp(given: &str) -> String {
    let Some(offset) = given.strip_prefix("now") else {
        return given.to_string();
    };
    let at = match (offset.strip_prefix('+'), offset.strip_prefix('-')) {
        _ if offset.is_empty() => Some(now()),
        (Some(n), _) => n.parse().ok().and_then(|n| now().checked_add(n)),
        (_, Some(n)) => n.parse().ok().and_then(|n| now().checked_sub(n)),
        _ => None,
    };
    at.map_or_else(|| given.to_string(), |at| at.to_string())
}

fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_KEY.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = split_head(data);
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut input = Input::new(body).with(head);

    let first = parse(body, config());
    let text = |parsed: &Result<_, _>| outcome(&parsed.clone().map(Some));
    assert_same(&text(&first), &text(&parse(body, config())));
    match first {
        Err(failure) => {
            assert!(!failure.is_retryable());
            input.assert_not_echoed(&failure.message);
        }
        Ok(change) => {
            assert!(config().sources.contains_key(&change.source));
            assert!(!change.secret.is_empty());
        }
    }

    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let authorization = header("authorization");
    let timestamp = header(TIMESTAMP_HEADER).map(timestamp);
    let signature = header(SIGNATURE_HEADER).map(|s| match (s, &timestamp) {
        ("valid", Some(t)) => sign(t, body),
        _ => s.to_string(),
    });
    for part in [&timestamp, &signature].into_iter().flatten() {
        input = input.with(part);
    }

    let notify = config()
        .triggers
        .notify
        .as_ref()
        .expect("notices are configured");
    let auth = NotifyAuth::new(notify).expect("the key is set");
    let verify = || {
        runtime().block_on(auth.verify(
            authorization,
            timestamp.as_deref(),
            signature.as_deref(),
            body,
        ))
    };
    // The library reads the clock too: a second either side of the window's edge may differ.
    let (window, now) = (REPLAY_WINDOW.as_secs(), now());
    let at: Option<u64> = timestamp.as_deref().and_then(|t| t.parse().ok());
    let on_edge = at.is_some_and(|at| now.abs_diff(at).abs_diff(window) <= 1);
    let valid = signature.as_deref().is_some_and(|s| {
        let given = s.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok());
        let expected = timestamp.as_deref().map(|t| sign(t, body));
        let expected = expected.as_deref().and_then(|e| hex::decode(&e[7..]).ok());
        given.is_some() && given == expected
    }) && at.is_some_and(|at| now.abs_diff(at) <= window);

    match verify() {
        Ok(accepted) => {
            assert!(
                valid || on_edge,
                "accepted a request that is not signed right"
            );
            // Held as in flight while it is handled, a replay once handled.
            let Accepted::New(Some(claim)) = accepted else {
                panic!("a signed request is not claimed: {accepted:?}")
            };
            assert!(matches!(verify(), Ok(Accepted::InFlight)));
            claim.done();
            assert!(matches!(verify(), Ok(Accepted::Replay)));
        }
        Err(refused) => {
            assert!(
                !valid || on_edge,
                "refused a request signed right: {refused}"
            );
            input.assert_not_echoed(&refused.0);
        }
    }
});
