//! Strict local emulators of the Azure APIs fedsync speaks, written from Microsoft's
//! published API specifications and documentation (not from fedsync's code):
//!
//! - [`entra`] emulates Microsoft Entra ID's token endpoint for workload identity
//!   federation (`client_credentials` with a `client_assertion`), its OpenID discovery
//!   and JWKS;
//! - [`key_vault`] emulates the Key Vault secrets data plane (api-version 7.5 and its
//!   siblings), with RBAC grants, soft delete and asynchronous recovery;
//! - [`event_grid`] builds what Event Grid sends a webhook for Key Vault secret events
//!   (both schemas, the subscription validation handshakes, and the Entra bearer token).
//!
//! A test starts one [`entra::Entra`], configures tenants, applications and federated
//! credentials on it, then starts one [`key_vault::KeyVault`] per vault it needs.

pub mod entra;
pub mod event_grid;
pub mod key_vault;
pub mod world;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};

/// The current time as a duration since the Unix epoch.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    since_epoch().as_secs()
}

/// The proleptic Gregorian date and time of `secs` seconds after the Unix epoch, in UTC:
/// `(year, month, day, hour, minute, second)` (Howard Hinnant's `civil_from_days`).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let hour = (rest / 3600) as u32;
    let minute = (rest % 3600 / 60) as u32;
    let second = (rest % 60) as u32;
    (year, month, day, hour, minute, second)
}

/// `2022-10-27 23:39:22Z`: how Entra writes `timestamp` in its error bodies.
fn entra_timestamp(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// `2019-07-25T01:08:33.1036736Z`: ISO 8601 with seven fractional digits, as Entra's
/// AADSTS700024 text and Event Grid's `eventTime` write instants.
fn iso_seven_digits(secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    let ticks = nanos / 100;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ticks:07}Z")
}

/// A GUID derived from `parts` (SHA-256, formatted as a version-4-shaped GUID), so object
/// ids are stable for the same tenant and application across calls.
fn stable_guid(parts: &[&str]) -> String {
    let hash = digest(&SHA256, parts.join("\n").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// The canonical (lowercase, hyphenated) form of a GUID written in the hyphenated form,
/// or `None` if `text` is not one. Entra compares tenant and application ids as GUIDs.
fn canonical_guid(text: &str) -> Option<String> {
    if text.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(text)
        .ok()
        .map(|id| id.hyphenated().to_string())
}
