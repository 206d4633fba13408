//! The proto3 JSON rules Google's REST front ends apply to a request before the method
//! sees it: every body field must exist in the request message (under its lowerCamelCase
//! JSON name or its proto name; `null` means absent), every value must have the field's
//! type (int64 as a decimal string or a number, bytes as base64, `Duration` as `"3600s"`),
//! and every query parameter must bind to a field or be a system parameter. The error
//! texts imitate Google's ("Invalid JSON payload received. Unknown name ...").
//!
//! Also the small wire helpers the emulators share: percent-decoding of URL paths and
//! RFC 3339 timestamps.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

use super::status::GoogleError;

/// A message field: `(json_name, proto_name)`.
pub(crate) type Field = (&'static str, &'static str);

/// The body as JSON; an empty body is the empty message `{}`.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, GoogleError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GoogleError::invalid_argument(format!(
            "Invalid JSON payload received. Unexpected token. ({e})"
        ))
    })?;
    if !value.is_object() {
        return Err(GoogleError::invalid_argument(
            "Invalid JSON payload received. Expected an object at the top level.",
        ));
    }
    Ok(value)
}

/// The fields of one message, checked against the message's field list.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    path: String,
    values: HashMap<&'static str, &'a Value>,
}

impl<'a> Fields<'a> {
    /// Checks `value` (the message at `path`, `""` for the request itself) against
    /// `known`. Unknown names and a field given under both of its names are refused.
    pub(crate) fn parse(
        value: &'a Value,
        path: &str,
        known: &[Field],
    ) -> Result<Self, GoogleError> {
        let Some(object) = value.as_object() else {
            return Err(type_error(path, "TYPE_MESSAGE", value));
        };
        let mut values = HashMap::new();
        for (name, field_value) in object {
            let Some(&(json_name, _)) = known
                .iter()
                .find(|(json_name, proto_name)| name == json_name || name == proto_name)
            else {
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!(" at '{path}'")
                };
                return Err(GoogleError::invalid_argument(format!(
                    "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
                )));
            };
            if field_value.is_null() {
                continue;
            }
            if values.insert(json_name, field_value).is_some() {
                return Err(GoogleError::invalid_argument(format!(
                    "Invalid JSON payload received. Duplicate field \"{json_name}\"."
                )));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            values,
        })
    }

    /// The dotted JSON path of a field of this message, as errors name it.
    pub(crate) fn path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub(crate) fn raw(&self, name: &str) -> Option<&'a Value> {
        self.values.get(name).copied()
    }

    /// A nested message field.
    pub(crate) fn message(
        &self,
        name: &str,
        known: &[Field],
    ) -> Result<Option<Fields<'a>>, GoogleError> {
        self.raw(name)
            .map(|value| Fields::parse(value, &self.path(name), known))
            .transpose()
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<&'a str>, GoogleError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(&self.path(name), "TYPE_STRING", other)),
        }
    }

    /// A `repeated string` field.
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<&'a str>>, GoogleError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let Some(items) = value.as_array() else {
            return Err(type_error(&self.path(name), "TYPE_STRING", value));
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| type_error(&self.path(name), "TYPE_STRING", item))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A repeated message field, each element checked against `known`.
    pub(crate) fn messages(
        &self,
        name: &str,
        known: &[Field],
    ) -> Result<Option<Vec<Fields<'a>>>, GoogleError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let Some(items) = value.as_array() else {
            return Err(type_error(&self.path(name), "TYPE_MESSAGE", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Fields::parse(item, &format!("{}[{i}]", self.path(name)), known))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A `map<string, string>` field.
    pub(crate) fn string_map(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, GoogleError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let Some(object) = value.as_object() else {
            return Err(type_error(&self.path(name), "TYPE_MESSAGE", value));
        };
        object
            .iter()
            .map(|(key, item)| match item {
                Value::String(s) => Ok((key.clone(), s.clone())),
                other => Err(type_error(
                    &format!("{}[{key}]", self.path(name)),
                    "TYPE_STRING",
                    other,
                )),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// An `int64` field: a decimal string (what proto3 JSON writes) or an integral number.
    pub(crate) fn int64(&self, name: &str) -> Result<Option<i64>, GoogleError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| type_error(&self.path(name), "TYPE_INT64", value))
    }

    /// A `bytes` field: base64, standard or URL-safe, padded or not (proto3 JSON accepts
    /// all four). The value is never echoed in the error: it may be a secret.
    pub(crate) fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, GoogleError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let Some(text) = value.as_str() else {
            return Err(GoogleError::invalid_argument(format!(
                "Invalid value at '{}' (TYPE_BYTES), expected a base64 string.",
                self.path(name)
            )));
        };
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(Some)
            .ok_or_else(|| {
                GoogleError::invalid_argument(format!(
                    "Invalid value at '{}' (TYPE_BYTES), Base64 decoding failed.",
                    self.path(name)
                ))
            })
    }

    /// A `google.protobuf.Duration` field (`"3600s"`, `"1.5s"`); negative durations are
    /// returned as `Err` of the magnitude so the caller can word its own range error.
    pub(crate) fn duration(
        &self,
        name: &str,
    ) -> Result<Option<Result<Duration, Duration>>, GoogleError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let invalid = || {
            GoogleError::invalid_argument(format!(
                "Invalid value at '{0}' (type.googleapis.com/google.protobuf.Duration), Field \
                 '{0}', Illegal duration format; duration must end with 's'",
                self.path(name)
            ))
        };
        let text = value.as_str().ok_or_else(invalid)?;
        parse_duration(text).map(Some).ok_or_else(invalid)
    }
}

fn type_error(path: &str, type_name: &str, value: &Value) -> GoogleError {
    GoogleError::invalid_argument(format!("Invalid value at '{path}' ({type_name}), {value}"))
}

/// `-?\d+(\.\d{1,9})?s`; `Err` holds the magnitude of a negative duration.
fn parse_duration(text: &str) -> Option<Result<Duration, Duration>> {
    let body = text.strip_suffix('s')?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (seconds, nanos) = match body.split_once('.') {
        Some((seconds, fraction)) => {
            if fraction.is_empty()
                || fraction.len() > 9
                || !fraction.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
            (seconds, nanos)
        }
        None => (body, 0),
    };
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let duration = Duration::new(seconds.parse().ok()?, nanos);
    Some(if negative {
        Err(duration)
    } else {
        Ok(duration)
    })
}

/// System parameters every Google API binds besides the method's own.
const SYSTEM_PARAMETERS: &[&str] = &["alt", "prettyPrint", "$.xgafv"];
/// Real system parameters this emulator refuses with `UNIMPLEMENTED` (credentials go only in
/// the `Authorization` header here; partial responses are not emulated).
const UNSUPPORTED_SYSTEM_PARAMETERS: &[&str] = &[
    "access_token",
    "oauth_token",
    "key",
    "fields",
    "quotaUser",
    "userIp",
    "callback",
    "uploadType",
    "upload_protocol",
];

/// The query parameters, each bound to one of `allowed` (the request message's fields,
/// by JSON or proto name; returned under the JSON name) or to a system parameter; anything
/// else is refused as Google does, and so is a field given twice.
pub(crate) fn query_params(
    query: Option<&str>,
    allowed: &[Field],
) -> Result<HashMap<String, String>, GoogleError> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let name = name.into_owned();
        if UNSUPPORTED_SYSTEM_PARAMETERS.contains(&name.as_str()) {
            return Err(GoogleError::unimplemented(format!(
                "The system parameter \"{name}\" is not supported by this emulator."
            )));
        }
        let bound = allowed
            .iter()
            .find(|(json_name, proto_name)| name == *json_name || name == *proto_name)
            .map(|(json_name, _)| (*json_name).to_owned());
        let name = match bound {
            Some(json_name) => json_name,
            None if SYSTEM_PARAMETERS.contains(&name.as_str()) => name,
            None => {
                return Err(GoogleError::invalid_argument(format!(
                    "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query \
                     parameter. Field '{name}' could not be found in request message."
                )));
            }
        };
        if params.insert(name.clone(), value.into_owned()).is_some() {
            return Err(GoogleError::invalid_argument(format!(
                "Invalid JSON payload received. Cannot bind query parameter \"{name}\": it is \
                 not a repeated field and was given more than once."
            )));
        }
    }
    match params.get("alt").map(String::as_str) {
        None | Some("json") => {}
        Some(other) => {
            return Err(GoogleError::invalid_argument(format!(
                "Invalid value at 'alt' (TYPE_ENUM), \"{other}\""
            )));
        }
    }
    Ok(params)
}

/// Decodes `%XX` escapes in a URL path; `None` for a malformed escape or invalid UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An RFC 3339 timestamp in UTC (`2026-01-02T03:04:05.123456Z`), as proto3 JSON writes a
/// `google.protobuf.Timestamp`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    DateTime::from(time)
        .fmt(DateTimeFormat::DateTime)
        .expect("a timestamp in range formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600s"), Some(Ok(Duration::from_secs(3600))));
        assert_eq!(
            parse_duration("1.5s"),
            Some(Ok(Duration::from_millis(1500)))
        );
        assert_eq!(parse_duration("-2s"), Some(Err(Duration::from_secs(2))));
        for bad in [
            "3600",
            "s",
            "1.s",
            ".5s",
            "1h",
            "1.0000000001s",
            "+1s",
            " 1s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("a%40b.com%3Ax").as_deref(),
            Some("a@b.com:x")
        );
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
    }
}
