//! The one canonical form of a gateway path: what is matched against the route rules is exactly what is forwarded.
//!
//! [`normalize`] takes the path as the runtime gives it (percent-encoded, without the query) and:
//! - decodes percent-encoded *unreserved* characters (`A-Z a-z 0-9 - . _ ~`, RFC 3986 §2.3), so `/%73treams` is
//!   `/streams`, writes the hex digits of every other escape in upper case, and escapes raw non-ASCII bytes;
//! - removes `.` segments and resolves `..` segments (after decoding, so `%2e%2e` is `..` too);
//! - collapses repeated slashes (`//streams` is `/streams`); a trailing slash is kept.
//!
//! It refuses, rather than guesses at, what origins are known to read differently: a malformed escape (`%zz`, `%4`),
//! an encoded `/`, `\` or NUL (`%2F`, `%5C`, `%00`: an origin that decodes them would see other segments than the
//! ones matched), a `..` above the root, control characters, and paths that do not start with `/` or are longer
//! than [`MAX_PATH_LEN`].

use std::fmt;

/// Longer paths are refused (before and after normalization).
pub const MAX_PATH_LEN: usize = 2048;

/// Why a path has no canonical form. The gateway answers 400 `INVALID_PATH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    TooLong,
    BadEscape,
    /// `%2F`, `%5C` or `%00`.
    EncodedSeparator,
    AboveRoot,
    ControlCharacter,
}

impl PathError {
    pub const fn describe(self) -> &'static str {
        match self {
            Self::NotAbsolute => "The path must start with `/`.",
            Self::TooLong => "The path is longer than 2048 characters.",
            Self::BadEscape => "The path has a malformed percent-escape; write `%` as `%25`.",
            Self::EncodedSeparator => "The path encodes `/`, `\\` or NUL (`%2F`, `%5C`, `%00`); send them unencoded.",
            Self::AboveRoot => "The path climbs above the root with `..`.",
            Self::ControlCharacter => "The path contains a control character or a space.",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl std::error::Error for PathError {}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the unreserved escapes of one segment and upper-cases the others.
fn decode_segment(segment: &str, out: &mut String) -> Result<(), PathError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex_value), bytes.get(i + 2).copied().and_then(hex_value))
            else {
                return Err(PathError::BadEscape);
            };
            let value = hi * 16 + lo;
            if matches!(value, b'/' | b'\\' | 0) {
                return Err(PathError::EncodedSeparator);
            }
            if is_unreserved(value) {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
            }
            i += 3;
            continue;
        }
        if b.is_ascii_control() || b == b' ' || b == b'\\' {
            return Err(PathError::ControlCharacter);
        }
        if !b.is_ascii() {
            // Raw UTF-8 (the runtime gives percent-encoded paths, so this is rare) is written as its escapes.
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
            i += 1;
            continue;
        }
        out.push(char::from(b));
        i += 1;
    }
    Ok(())
}

/// The canonical form of `raw` (see the module documentation).
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for segment in raw.split('/').skip(1) {
        trailing_slash = false;
        if segment.is_empty() {
            trailing_slash = true;
            continue;
        }
        let mut decoded = String::with_capacity(segment.len());
        decode_segment(segment, &mut decoded)?;
        match decoded.as_str() {
            "." => trailing_slash = true,
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing_slash = true;
            }
            _ => segments.push(decoded),
        }
    }
    let mut out = String::with_capacity(raw.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    if out.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    Ok(out)
}

/// Whether `path` is already canonical (then `normalize` would return it unchanged). Cheap: one pass, no allocation;
/// the gateway normalizes only paths that are not.
pub fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.len() > MAX_PATH_LEN {
        return false;
    }
    let upper_hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
    let mut segment_start = 1;
    let mut i = 1;
    while i <= bytes.len() {
        if i < bytes.len() && bytes[i] != b'/' {
            let b = bytes[i];
            if b == b'%' {
                // Only an upper-case escape of a character that must stay escaped is canonical.
                let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else { return false };
                if !upper_hex(hi) || !upper_hex(lo) {
                    return false;
                }
                let value = hex_value(hi).unwrap_or(0) * 16 + hex_value(lo).unwrap_or(0);
                if is_unreserved(value) || matches!(value, b'/' | b'\\' | 0) {
                    return false;
                }
                i += 3;
                continue;
            }
            if b.is_ascii_control() || b == b' ' || b == b'\\' || !b.is_ascii() {
                return false;
            }
            i += 1;
            continue;
        }
        let segment = &bytes[segment_start..i];
        // An empty segment is only allowed as the trailing slash (or the root itself).
        if (segment.is_empty() && i < bytes.len()) || segment == b"." || segment == b".." {
            return false;
        }
        segment_start = i + 1;
        i += 1;
    }
    true
}
