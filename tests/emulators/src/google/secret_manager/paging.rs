//! Pagination of Secret Manager's list methods (`secrets.list`, `versions.list`), as
//! `service.proto` specifies it and AIP-158 describes it.
//!
//! - `pageSize`: 0 or absent lets the server decide (here: the maximum); above 25,000 it is
//!   capped at 25,000 (`ListSecretsRequest.page_size`, `ListSecretVersionsRequest.page_size`);
//!   a negative value or one that is not an `int32` is refused, 400 `INVALID_ARGUMENT`.
//! - `pageToken`: opaque. It names the listing it continues and the last resource of the
//!   page before, so a page resumes after that resource: resources created or deleted
//!   between two pages never make another one appear twice or go missing. A token that
//!   this server did not issue for the same listing (garbled, truncated, or from another
//!   listing: a checksum catches alterations) is refused, 400 `INVALID_ARGUMENT` (inferred
//!   text). An empty token asks for the first page.
//! - `totalSize`: the number of resources in the whole listing.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::super::status::GoogleError;

/// The largest page a list method answers.
pub const MAX_PAGE_SIZE: usize = 25_000;

/// One page of a listing.
#[derive(Debug)]
pub(super) struct Page<T> {
    pub(super) items: Vec<T>,
    /// Present when resources remain after this page.
    pub(super) next_page_token: Option<String>,
    /// How many resources the whole listing holds.
    pub(super) total_size: usize,
}

/// The page of `items` the request's `pageSize` and `pageToken` select.
///
/// `collection` names the listing (`projects/{NUMBER}/secrets`); `items` are keyed by
/// strings whose byte order is the listing's order (any order on input).
pub(super) fn page<T>(
    mut items: Vec<(String, T)>,
    collection: &str,
    params: &HashMap<String, String>,
) -> Result<Page<T>, GoogleError> {
    let size = page_size(params.get("pageSize").map(String::as_str))?;
    let after = params
        .get("pageToken")
        .filter(|t| !t.is_empty())
        .map(|token| decode_token(token, collection))
        .transpose()?;
    items.sort_by(|(a, _), (b, _)| a.cmp(b));
    let total_size = items.len();
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    let more = rest.len() > size;
    rest.truncate(size);
    let next_page_token = match rest.last() {
        Some((last, _)) if more => Some(encode_token(collection, last)),
        _ => None,
    };
    Ok(Page {
        items: rest.into_iter().map(|(_, item)| item).collect(),
        next_page_token,
        total_size,
    })
}

/// The number of resources a page holds for `pageSize`.
fn page_size(given: Option<&str>) -> Result<usize, GoogleError> {
    let Some(text) = given else {
        return Ok(MAX_PAGE_SIZE);
    };
    let size: i32 = text.parse().map_err(|_| {
        GoogleError::invalid_argument(format!(
            "Invalid value at 'page_size' (TYPE_INT32), \"{text}\""
        ))
    })?;
    match usize::try_from(size) {
        Err(_) => Err(GoogleError::invalid_argument(format!(
            "Invalid page_size {size}: it must not be negative."
        ))),
        Ok(0) => Ok(MAX_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

/// `base64url(collection \n key \n crc32c)`.
fn encode_token(collection: &str, last_key: &str) -> String {
    let payload = format!("{collection}\n{last_key}");
    let checksum = crc32c::crc32c(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(format!("{payload}\n{checksum:08x}"))
}

/// The key of the last resource served before, from a token issued for `collection`.
fn decode_token(token: &str, collection: &str) -> Result<String, GoogleError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (payload, checksum) = text.rsplit_once('\n')?;
            if format!("{:08x}", crc32c::crc32c(payload.as_bytes())) != checksum {
                return None;
            }
            let (listing, key) = payload.split_once('\n')?;
            (listing == collection && !key.is_empty()).then(|| key.to_owned())
        })
        .ok_or_else(|| {
            GoogleError::invalid_argument(
                "Invalid page_token: it was not returned by a previous call to this list method \
                 for the same parent.",
            )
        })
}

/// A key that orders newest first on `created` (nanoseconds since the epoch, or a version
/// number), then on `tiebreak`.
pub(super) fn newest_first_key(created: u128, tiebreak: &str) -> String {
    format!("{:039}/{tiebreak}", u128::MAX - created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None).unwrap(), MAX_PAGE_SIZE);
        assert_eq!(page_size(Some("0")).unwrap(), MAX_PAGE_SIZE);
        assert_eq!(page_size(Some("7")).unwrap(), 7);
        assert_eq!(page_size(Some("25001")).unwrap(), MAX_PAGE_SIZE);
        assert_eq!(page_size(Some("2147483647")).unwrap(), MAX_PAGE_SIZE);
        for bad in ["-1", "2147483648", "1.5", "ten", ""] {
            let error = page_size(Some(bad)).unwrap_err();
            assert_eq!(error.status, "INVALID_ARGUMENT", "{bad}");
        }
    }

    #[test]
    fn pages_resume_after_the_last_key() {
        let items = |keys: &[&str]| -> Vec<(String, String)> {
            keys.iter()
                .map(|k| ((*k).to_owned(), (*k).to_owned()))
                .collect()
        };
        let first = page(
            items(&["b", "a", "d", "c"]),
            "p",
            &params(&[("pageSize", "2")]),
        )
        .unwrap();
        assert_eq!(first.items, ["a", "b"]);
        assert_eq!(first.total_size, 4);
        let token = first.next_page_token.unwrap();
        // "ab" arrived and "c" left between the pages.
        let second = page(
            items(&["a", "ab", "b", "d"]),
            "p",
            &params(&[("pageSize", "2"), ("pageToken", &token)]),
        )
        .unwrap();
        assert_eq!(second.items, ["d"]);
        assert!(second.next_page_token.is_none());
        let error = page(items(&["a"]), "q", &params(&[("pageToken", &token)])).unwrap_err();
        assert_eq!(error.status, "INVALID_ARGUMENT");
        let forged = URL_SAFE_NO_PAD.encode("p\nb\n00000000");
        let error = page(items(&["a"]), "p", &params(&[("pageToken", &forged)])).unwrap_err();
        assert_eq!(error.status, "INVALID_ARGUMENT");
    }

    #[test]
    fn newest_first_keys_order() {
        let mut keys = [
            newest_first_key(5, "a"),
            newest_first_key(10, "b"),
            newest_first_key(10, "a"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                newest_first_key(10, "a"),
                newest_first_key(10, "b"),
                newest_first_key(5, "a"),
            ]
        );
    }
}
