//! Minimal XML helpers for the AWS Query protocol: escaping values into a response and
//! reading an element's text out of one. Enough for the flat documents STS and IAM use.

/// Escapes text for use as XML character data or an attribute value.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Undoes [`escape`] and decimal or hexadecimal character references.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find(';') else {
            break;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The unescaped text of the first element named `name` (attributes allowed, no nesting
/// of the same name), or `None` when there is no such element.
pub fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut search_from = 0;
    while let Some(found) = xml[search_from..].find(&open) {
        let tag_start = search_from + found;
        let after_name = &xml[tag_start + open.len()..];
        if after_name.starts_with('>') || after_name.starts_with(char::is_whitespace) {
            let content_start = tag_start + open.len() + after_name.find('>')? + 1;
            let content_len = xml[content_start..].find(&close)?;
            return Some(unescape(&xml[content_start..content_start + content_len]));
        }
        search_from = tag_start + open.len();
    }
    None
}
