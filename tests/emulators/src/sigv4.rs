//! AWS Signature Version 4, written from AWS's published signing process: the
//! canonical request, the string to sign, the derived signing key and the
//! signature. Test servers use it to check, as AWS does, that a request was signed
//! with a given secret key, independently of the SDK's own signer.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use axum::http::HeaderMap;

/// The only algorithm SigV4 (as opposed to SigV4a) names.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
const TERMINATOR: &str = "aws4_request";

/// The parts of an HTTP request a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?` (empty when there is none).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// An `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case header names, as listed.
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
}

impl Authorization {
    /// Parses the header's value; the error says what is missing, in AWS's words.
    pub fn parse(value: &str) -> Result<Self, String> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| format!("Unsupported AWS 'algorithm': expected '{ALGORITHM}'"))?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',') {
            let Some((name, value)) = part.trim().split_once('=') else {
                return Err(format!("'{}' is not a key=value pair", part.trim()));
            };
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let missing = |what: &str| {
            format!(
                "Authorization header requires '{what}' parameter. Authorization={}",
                value.split_whitespace().next().unwrap_or_default()
            )
        };
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, TERMINATOR] = scope.as_slice() else {
            return Err(format!(
                "Credential should be scoped to a valid region, service and '{TERMINATOR}': \
                 {credential}"
            ));
        };
        Ok(Authorization {
            access_key_id: (*access_key_id).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
            signed_headers: signed_headers.split(';').map(str::to_owned).collect(),
            signature: signature.to_owned(),
        })
    }

    /// `DATE/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// The canonical request over the listed headers.
pub fn canonical_request(request: &Request<'_>, signed_headers: &[String]) -> String {
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{}",
        request.method,
        canonical_path(request.path),
        canonical_query(request.query),
        signed_headers.join(";"),
        hex(digest(&SHA256, request.body).as_ref()),
    )
}

/// `AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hex(sha256(canonical request))}`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hashed = hex(digest(&SHA256, canonical_request.as_bytes()).as_ref());
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{hashed}")
}

/// The signature `secret_access_key` makes of `request` under `authorization`'s scope
/// and signed headers, at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn signature(
    secret_access_key: &str,
    request: &Request<'_>,
    authorization: &Authorization,
    amz_date: &str,
) -> String {
    let canonical = canonical_request(request, &authorization.signed_headers);
    let to_sign = string_to_sign(amz_date, &authorization.scope(), &canonical);
    let mut key = format!("AWS4{secret_access_key}").into_bytes();
    for part in [
        authorization.date.as_str(),
        &authorization.region,
        &authorization.service,
        TERMINATOR,
    ] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex(&hmac_sha256(&key, to_sign.as_bytes()))
}

/// Whether `authorization.signature` is what `secret_access_key` makes (compared in
/// constant time).
pub fn verify(
    secret_access_key: &str,
    request: &Request<'_>,
    authorization: &Authorization,
    amz_date: &str,
) -> bool {
    let expected = signature(secret_access_key, request, authorization, amz_date);
    aws_lc_rs::constant_time::verify_slices_are_equal(
        expected.as_bytes(),
        authorization.signature.as_bytes(),
    )
    .is_ok()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Trims a header value and folds each run of spaces into one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path, each segment URI-encoded once more (every service but S3), `/` when empty.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(|segment| uri_encode(segment.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Names and values decoded, then URI-encoded, sorted by name and then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name)),
                uri_encode(&percent_decode(value)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 encoding: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex).
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences to bytes; anything else (a lone `%` included) as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The worked example of AWS's SigV4 documentation (IAM `ListUsers`).
    #[test]
    fn the_documented_example_signs_to_the_documented_signature() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let request = Request {
            method: "GET",
            path: "/",
            query: "Version=2010-05-08&Action=ListUsers",
            headers: &headers,
            body: b"",
        };
        let authorization = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        )
        .unwrap();
        let canonical = canonical_request(&request, &authorization.signed_headers);
        assert_eq!(
            hex(digest(&SHA256, canonical.as_bytes()).as_ref()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
            "{canonical}"
        );
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert!(verify(secret, &request, &authorization, "20150830T123600Z"));
        assert!(!verify(
            "another-secret",
            &request,
            &authorization,
            "20150830T123600Z"
        ));
    }

    #[test]
    fn malformed_headers_are_named() {
        assert!(Authorization::parse("AWS4-HMAC-SHA512 Credential=a").is_err());
        let no_signature = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sts/aws4_request, SignedHeaders=host",
        );
        assert!(no_signature.unwrap_err().contains("'Signature'"));
        let short_scope = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/sts, SignedHeaders=host, Signature=00",
        );
        assert!(
            short_scope
                .unwrap_err()
                .contains("Credential should be scoped")
        );
    }

    #[test]
    fn queries_are_decoded_encoded_and_sorted() {
        assert_eq!(canonical_query("b=2&a=x%2Fy&a=%7E+"), "a=x%2Fy&a=~%2B&b=2");
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/a b/c"), "/a%20b/c");
    }
}
