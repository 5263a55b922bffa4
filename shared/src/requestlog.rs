//! The request log: every gateway request made with a key that proved itself (passed, refused after the secret
//! matched, rate limited, or failed at the origin), one line each, kept by the key's organization.
//!
//! The gateway buffers lines per isolate and sends them to the `keygate-request-log` queue at most once a second
//! (or when a batch is full); the control plane consumes the queue, groups lines by organization and stores them in
//! each organization's object, which keeps the newest [`MAX_PER_KEY`] per key and [`MAX_PER_ORGANIZATION`] in all,
//! none older than [`RETENTION_MS`]. Lines never hold a credential, a query string or a body.

use serde::{Deserialize, Serialize};

use crate::key::KeyId;
use crate::problem::Problem;
use crate::time::Timestamp;

/// Lines kept per key (the oldest go first)…
pub const MAX_PER_KEY: i64 = 1_000;
/// …per organization…
pub const MAX_PER_ORGANIZATION: i64 = 100_000;
/// …and none older than seven days.
pub const RETENTION_MS: i64 = 7 * 86_400_000;
/// Lines one isolate sends in one queue message, at most (a full batch goes out at once). A line is at most about
/// 1,400 bytes of JSON (its fields are bounded in bytes, and JSON may escape each one), so a message stays under a
/// queue message's 128 KB.
pub const MAX_BATCH: usize = 80;
/// A page of the log, at most, and by default.
pub const PAGE_MAX: usize = 100;
pub const PAGE_DEFAULT: usize = 50;
pub const MAX_PATH: usize = 256;
pub const MAX_METHOD: usize = 16;
pub const MAX_CODE: usize = 64;
pub const MAX_CLIENT_IP: usize = 64;
pub const MAX_USER_AGENT: usize = 256;
pub const MAX_COUNTRY: usize = 8;
pub const MAX_ORGANIZATION: usize = 64;
const MAX_ID: usize = 40;

/// One request of one key, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LoggedRequest {
    /// Unique (a queue may deliver a batch twice: the second copy changes nothing).
    pub id: String,
    pub at: Timestamp,
    pub key_id: String,
    pub method: String,
    /// The canonical path, without the query string.
    pub path: String,
    /// The status the client got.
    pub status: u16,
    /// Why the request was refused or failed (`RATE_LIMITED`, `ORIGIN_ERROR`, …); `null` for a pass.
    pub code: Option<String>,
    /// Milliseconds from the request's arrival to its answer's headers (the origin's time included).
    pub latency_ms: u32,
    /// `CF-Connecting-IP`, when the request had one.
    pub client_ip: Option<String>,
    /// The organization the request acted for (`Keygate-Org`, or the key's own).
    pub organization: String,
    /// `User-Agent`: recorded only for a canary key's trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `CF-IPCountry`, where Cloudflare knows it: recorded only for a canary key's trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The permission the route needed, on a request that passed (for least-privilege suggestions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}

impl LoggedRequest {
    /// The line with every field cut to its bound in bytes (so a hostile path or header cannot grow what is stored
    /// or what a queue message carries).
    pub fn bounded(mut self) -> Self {
        self.key_id = cut(&self.key_id, MAX_ID);
        self.id = cut(&self.id, MAX_ID);
        self.method = cut(&self.method, MAX_METHOD);
        self.path = cut(&self.path, MAX_PATH);
        self.code = self.code.map(|c| cut(&c, MAX_CODE));
        self.client_ip = self.client_ip.map(|c| cut(&c, MAX_CLIENT_IP));
        self.organization = cut(&self.organization, MAX_ORGANIZATION);
        self.user_agent = self.user_agent.map(|c| cut(&c, MAX_USER_AGENT));
        self.country = self.country.map(|c| cut(&c, MAX_COUNTRY));
        self.permission = self.permission.map(|c| cut(&c, crate::model::PERMISSION_MAX_LEN));
        self
    }
}

/// `text`, cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// One queue message: lines of one isolate, each with the organization that owns its key (where it is stored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogBatch {
    pub lines: Vec<(String, LoggedRequest)>,
}

/// A page of the log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestLogPage {
    pub requests: Vec<LoggedRequest>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Which statuses a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// `429`
    Exact(u16),
    /// `4xx`: 400–499.
    Class(u16),
}

impl StatusFilter {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(digit) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
            return match digit.parse::<u16>() {
                Ok(d @ 1..=5) if digit.len() == 1 => Some(Self::Class(d)),
                _ => None,
            };
        }
        match text.parse::<u16>() {
            Ok(s @ 100..=599) if text.len() == 3 => Some(Self::Exact(s)),
            _ => None,
        }
    }

    /// The statuses it covers, inclusive (the organization's object filters by this range).
    pub fn range(self) -> (u16, u16) {
        match self {
            Self::Exact(s) => (s, s),
            Self::Class(d) => (d * 100, d * 100 + 99),
        }
    }
}

/// Where a page starts: below this line (lines are ordered by time, then id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Cursor {
    pub at: Timestamp,
    pub id: String,
}

impl Cursor {
    pub fn of(line: &LoggedRequest) -> String {
        format!("{}.{}", line.at.millis(), line.id)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('.')?;
        let at = at.parse::<i64>().ok().filter(|n| *n >= 0)?;
        let id_ok = !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        id_ok.then(|| Self { at: Timestamp(at), id: id.to_owned() })
    }
}

/// A query of the log: filters, all optional and combined with "and".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogQuery {
    pub key: Option<String>,
    pub method: Option<String>,
    pub status: Option<StatusFilter>,
    pub code: Option<String>,
    /// Paths starting with this.
    pub path: Option<String>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
}

impl LogQuery {
    /// Reads `key`, `method`, `status` (`429` or `4xx`), `code`, `path` (a prefix), `cursor` and `limit` (1–100)
    /// from a query string's parameters; an invalid one is a 400 `INVALID_QUERY` naming it.
    pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<Self, Problem> {
        let present = |name: &str| param(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let key = match present("key") {
            Some(k) => Some(
                KeyId::parse(&k)
                    .map(|id| id.to_string())
                    .ok_or_else(|| invalid("key", "a key id, such as 7Q3M0T9ZK1XW2R"))?,
            ),
            None => None,
        };
        let method = match present("method") {
            Some(m) if m.len() <= MAX_METHOD && m.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some(m.to_ascii_uppercase())
            }
            Some(_) => return Err(invalid("method", "an HTTP method, such as GET")),
            None => None,
        };
        let status = match present("status") {
            Some(s) => Some(
                StatusFilter::parse(&s)
                    .ok_or_else(|| invalid("status", "a status such as 429, or a class such as 4xx"))?,
            ),
            None => None,
        };
        let code = match present("code") {
            Some(c) if c.len() <= MAX_CODE && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Some(c.to_ascii_uppercase())
            }
            Some(_) => return Err(invalid("code", "a code such as RATE_LIMITED")),
            None => None,
        };
        let path = match present("path") {
            Some(p) if p.starts_with('/') && p.len() <= MAX_PATH => Some(p),
            Some(_) => return Err(invalid("path", "a path prefix starting with /, at most 256 bytes")),
            None => None,
        };
        let cursor = match present("cursor") {
            Some(c) => Some(Cursor::parse(&c).ok_or_else(|| invalid("cursor", "use the next_cursor of a page"))?),
            None => None,
        };
        let limit = match present("limit") {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=PAGE_MAX).contains(n))
                .ok_or_else(|| invalid("limit", "a number from 1 to 100"))?,
            None => PAGE_DEFAULT,
        };
        Ok(Self { key, method, status, code, path, cursor, limit })
    }
}

/// A query parameter that cannot be read: 400, naming it.
fn invalid(name: &str, expected: &str) -> Problem {
    Problem::bad_request("INVALID_QUERY", format!("`{name}`: {expected}.")).with_field(name)
}

/// What the gateway keeps of one request until its isolate's batch goes out.
#[derive(Debug, Default)]
pub struct LogBuffer {
    prefix: String,
    next: u64,
    batch: LogBatch,
    /// Whether a flush is already scheduled for what is pending.
    scheduled: bool,
}

/// What to do after [`LogBuffer::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Flush {
    /// The batch is full: send it now.
    Now(LogBatch),
    /// The first line since the last flush: schedule one (a second from now).
    Schedule,
    /// A flush is already scheduled.
    Pending,
}

impl LogBuffer {
    /// `prefix` makes this isolate's line ids unique (random, from the runtime).
    pub fn new(prefix: String) -> Self {
        Self { prefix, ..Self::default() }
    }

    /// Keeps one line (its `id` is assigned here) for the organization `owner`.
    pub fn push(&mut self, owner: &str, mut line: LoggedRequest) -> Flush {
        self.next += 1;
        line.id = format!("{}-{:x}", self.prefix, self.next);
        self.batch.lines.push((owner.to_owned(), line.bounded()));
        if self.batch.lines.len() >= MAX_BATCH {
            return Flush::Now(self.take());
        }
        if self.scheduled {
            Flush::Pending
        } else {
            self.scheduled = true;
            Flush::Schedule
        }
    }

    /// What is pending, to send now (the scheduled flush).
    pub fn take(&mut self) -> LogBatch {
        self.scheduled = false;
        std::mem::take(&mut self.batch)
    }
}
