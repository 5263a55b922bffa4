//! What the recent-errors log keeps of a request's and a response's body: a bounded preview with credentials
//! redacted, so the data can be looked at and sent again (Instrumental's "recent errors") without the log becoming
//! a store of secrets.
//!
//! Redacted: every occurrence of the presented credential (and its secret part), and the value of any field whose
//! name says it holds a credential (`password`, `secret`, `token`, `api_key`, `authorization`, …) in JSON
//! (`"name": "value"`) and in form or query encoding (`name=value`). A textual scan, not a parser: it works on
//! truncated and malformed bodies too.
//!
//! The gateway does the first step ([`redact_credentials`], [`cut`]: it knows the credential, and nothing else
//! leaves it); the key's object does the second ([`redact_fields`], in [`crate::api::RecentError::redacted`]) before
//! anything is stored, which keeps the gateway's module small.

/// The replacement of a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Field names (lowercase) that mark a credential wherever they appear in a name.
const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "credential",
    "private",
];

fn is_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| lower.contains(s))
}

/// A preview of `body`: the credentials in `secrets` and the values of credential-named fields replaced, then cut to
/// at most `max` characters (whole characters; a final `…` marks a cut).
pub fn body_preview(body: &str, secrets: &[&str], max: usize) -> String {
    cut(&redact_fields(&redact_credentials(body, secrets)), max)
}

/// `text` with every occurrence of each credential in `secrets` (those of 8 bytes or more) replaced.
pub fn redact_credentials(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().map(|s| s.as_bytes()).filter(|s| s.len() >= 8) {
        let bytes = out.as_bytes();
        let mut redacted = String::with_capacity(out.len());
        let (mut i, mut copied) = (0, 0);
        while i + secret.len() <= bytes.len() {
            if &bytes[i..i + secret.len()] == secret {
                // A credential is ASCII: a match starts and ends on character boundaries.
                redacted.push_str(&out[copied..i]);
                redacted.push_str(REDACTED);
                i += secret.len();
                copied = i;
            } else {
                i += 1;
            }
        }
        redacted.push_str(&out[copied..]);
        out = redacted;
    }
    out
}

/// At most `max` whole characters of `text`; a final `…` marks a cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some(_) => {
            let at = text.char_indices().nth(max.saturating_sub(1)).map_or(0, |(at, _)| at);
            format!("{}…", &text[..at])
        }
        None => text.to_owned(),
    }
}

/// Replaces the values of credential-named JSON fields (also JSON inside a JSON string, `\"name\": \"value\"`, as
/// an origin echoing a request may answer) and `name=value` pairs.
pub fn redact_fields(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = json_field(text, i) {
            out.push_str(&end.0);
            i = end.1;
            continue;
        }
        // Form or query: name=value (the name runs back to the previous separator).
        if bytes[i] == b'=' {
            let start = text[..i].rfind(['&', '?', '\n', ' ', ';']).map_or(0, |s| s + 1);
            let name = &text[start..i];
            if !name.is_empty() && !name.contains(['"', '{', ':']) && is_sensitive(name) {
                let end = text[i + 1..].find(['&', '\n', ' ', ';']).map_or(text.len(), |e| i + 1 + e);
                out.push('=');
                out.push_str(REDACTED);
                i = end;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// At `at`, a quoted name (`"name"`, or `\"name\"` inside a string) that marks a credential, its colon and its
/// value: the redacted text and where the value ends.
fn json_field(text: &str, at: usize) -> Option<(String, usize)> {
    let rest = &text[at..];
    let quote = if rest.starts_with("\\\"") {
        "\\\""
    } else if rest.starts_with('"') {
        "\""
    } else {
        return None;
    };
    let name_start = at + quote.len();
    let name_len = text[name_start..].find(quote)?;
    let name = &text[name_start..name_start + name_len];
    if name.len() > 64 || name.contains(['"', '\\', '\n']) || !is_sensitive(name) {
        return None;
    }
    let mut j = name_start + name_len + quote.len();
    let skip_space = |j: &mut usize| {
        while text.as_bytes().get(*j).is_some_and(u8::is_ascii_whitespace) {
            *j += 1;
        }
    };
    skip_space(&mut j);
    if text.as_bytes().get(j) != Some(&b':') {
        return None;
    }
    j += 1;
    skip_space(&mut j);
    let head = &text[at..j];
    let value = &text[j..];
    let len = match value.strip_prefix(quote) {
        Some(string) => quote.len() + string_len(string, quote),
        None => skip_value(value),
    };
    Some((format!("{head}{quote}{REDACTED}{quote}"), j + len))
}

/// The length of a string's rest up to and including its closing `quote` (a `"` honours backslash escapes); the
/// whole rest when it is cut short.
fn string_len(rest: &str, quote: &str) -> usize {
    if quote != "\"" {
        return rest.find(quote).map_or(rest.len(), |e| e + quote.len());
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The length of a non-string JSON value at the start of `rest`: anything up to the next `,`, `}` or `]` at its own
/// depth (or an escaped quote); the whole rest when it is cut short.
fn skip_value(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut depth = 0i32;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return i,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => return i,
            b'\\' if depth == 0 => return i,
            _ => {}
        }
    }
    bytes.len()
}
