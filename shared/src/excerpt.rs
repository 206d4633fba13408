//! Bounded excerpts of untrusted input for error messages. An event, a header
//! or a configuration may hold a secret where a name was expected, and error
//! messages are logged and returned to callers: they quote at most
//! [`MAX_BYTES`] of a name, and never a value a parser refused.

/// The most bytes of one input string an error message quotes.
pub const MAX_BYTES: usize = 32;

/// `s` quoted for an error message: escaped as debug formatting escapes it and
/// cut after at most [`MAX_BYTES`] of escaped text, with `…` after the closing
/// quote marking a cut.
pub fn quote(s: &str) -> String {
    let (kept, cut) = escaped(s);
    format!("\"{kept}\"{}", if cut { "…" } else { "" })
}

/// `s` as [`quote`] escapes and cuts it, without the quotes (`…` marking a cut),
/// for messages that delimit it themselves.
pub fn bare(s: &str) -> String {
    let (kept, cut) = escaped(s);
    format!("{kept}{}", if cut { "…" } else { "" })
}

/// `s` escaped (quotes, backslashes, control characters) and cut after at most
/// [`MAX_BYTES`] of escaped text, never within a character's escape; and
/// whether it was cut.
fn escaped(s: &str) -> (String, bool) {
    let mut out = String::new();
    for c in s.chars() {
        let start = out.len();
        if c == '\'' {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
        if out.len() > MAX_BYTES {
            out.truncate(start);
            return (out, true);
        }
    }
    (out, false)
}

/// A serde error's message (JSON or TOML) fit for an error: without its
/// position, without the value it refused (`invalid type: string "…"` becomes
/// `invalid type: string`), and with the names it quotes (unknown fields and
/// variants) escaped and cut to [`MAX_BYTES`]. Other messages are kept as they are.
pub fn serde_message(message: &str) -> String {
    let message = without_position(message.trim());
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // `{unexpected}, expected {expected}`: the expected part is the
            // parser's own words, the unexpected part the refused value.
            let (unexpected, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
            let kind = unexpected
                .split(['`', '"'])
                .next()
                .unwrap_or_default()
                .trim();
            let kind = if kind.len() > MAX_BYTES {
                "value"
            } else {
                kind
            };
            return if expected.is_empty() {
                format!("{prefix}{kind}")
            } else {
                format!("{prefix}{kind}, expected {expected}")
            };
        }
    }
    for what in ["unknown variant", "unknown field"] {
        if let Some(rest) = message
            .strip_prefix(what)
            .and_then(|r| r.strip_prefix(" `"))
        {
            // `{name}`, then the parser's own words: the name, which may hold
            // anything, ends where the last of them starts.
            let end = ["`, expected ", "`, there are no "]
                .iter()
                .filter_map(|words| rest.rfind(words))
                .max();
            let (name, tail) = match end {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest.strip_suffix('`').unwrap_or(rest), ""),
            };
            // Between backticks as serde writes it, escaped and cut.
            return format!("{what} `{}`{tail}", bare(name));
        }
    }
    message.to_string()
}

/// `message` without serde_json's ` at line L column C`.
fn without_position(message: &str) -> &str {
    let Some((before, position)) = message.rsplit_once(" at line ") else {
        return message;
    };
    let numbers = position
        .split_once(" column ")
        .is_some_and(|(line, column)| {
            [line, column]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    if numbers { before } else { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_is_cut_on_a_character_boundary_after_escaping() {
        assert_eq!(quote("db-password"), "\"db-password\"");
        let long = format!("{}é{}", "a".repeat(31), "b".repeat(40));
        assert_eq!(quote(&long), format!("\"{}\"…", "a".repeat(31)));
        // Escapes count: the message never grows past the bound.
        assert_eq!(
            quote(&"\t".repeat(40)),
            format!("\"{}\"…", "\\t".repeat(16))
        );
        assert_eq!(quote("it's \"x\"\n"), r#""it's \"x\"\n""#);
        assert_eq!(
            quote(&"x".repeat(MAX_BYTES)),
            format!("{:?}", "x".repeat(MAX_BYTES))
        );
    }

    #[test]
    fn refused_values_are_never_repeated() {
        let secret = "hunter2-hunter2-hunter2-hunter2-hunter2";
        for json in [
            format!(r#"{{"a": "{secret}"}}"#),
            format!(r#"{{"a": 1, "b": "{secret}"}}"#),
        ] {
            #[derive(serde::Deserialize, Debug)]
            #[allow(dead_code)]
            struct Shape {
                a: u64,
                b: Option<u64>,
            }
            let e = serde_json::from_str::<Shape>(&json).unwrap_err();
            assert!(e.to_string().contains(secret), "serde echoes it: {e}");
            let message = serde_message(&e.to_string());
            assert!(!message.contains("hunter2"), "{message}");
            assert_eq!(message, "invalid type: string, expected u64");
        }
    }

    #[test]
    fn unknown_names_are_cut_and_the_expected_ones_kept() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        enum Kind {
            Upsert,
            Delete,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Notice {
            kind: Kind,
        }
        let long = format!("x`, expected `{}", "s".repeat(60));
        for (json, expected) in [
            (
                r#"{"kind": "Upsertt"}"#.to_string(),
                "unknown variant `Upsertt`, expected `Upsert` or `Delete`".to_string(),
            ),
            (
                serde_json::json!({ long.clone(): 1 }).to_string(),
                format!(
                    "unknown field `x`, expected `{}…`, expected `kind`",
                    "s".repeat(18)
                ),
            ),
        ] {
            let e = serde_json::from_str::<Notice>(&json).unwrap_err();
            assert_eq!(serde_message(&e.to_string()), expected);
        }
    }

    #[test]
    fn syntax_errors_lose_only_their_position() {
        let e = serde_json::from_str::<serde_json::Value>("{\"a\" 1}").unwrap_err();
        assert_eq!(serde_message(&e.to_string()), "expected `:`");
        assert_eq!(
            serde_message("missing field `source` at line 1 column 2"),
            "missing field `source`"
        );
        assert_eq!(serde_message("stays at line one"), "stays at line one");
    }
}
