//! The request log's pure parts: the query a page is asked with, the line's bounds, and the isolate's buffer.

use crate::requestlog::{
    Cursor, Flush, LogBatch, LogBuffer, LogQuery, LoggedRequest, MAX_BATCH, MAX_PATH, PAGE_DEFAULT, StatusFilter,
};
use crate::tests::NOW;

fn line(status: u16, code: Option<&str>, path: &str) -> LoggedRequest {
    LoggedRequest {
        id: String::new(),
        at: NOW,
        key_id: "F854DS4QEVHXS4".into(),
        method: "GET".into(),
        path: path.into(),
        status,
        code: code.map(str::to_owned),
        latency_ms: 3,
        client_ip: Some("203.0.113.9".into()),
        organization: "org_a".into(),
        user_agent: None,
        country: None,
        permission: None,
    }
}

fn query(pairs: &[(&str, &str)]) -> Result<LogQuery, crate::problem::Problem> {
    LogQuery::parse(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
}

#[test]
fn statuses_are_exact_or_a_class() {
    assert_eq!(StatusFilter::parse("429"), Some(StatusFilter::Exact(429)));
    assert_eq!(StatusFilter::parse("4xx"), Some(StatusFilter::Class(4)));
    assert_eq!(StatusFilter::Class(4).range(), (400, 499));
    assert_eq!(StatusFilter::Exact(429).range(), (429, 429));
    for bad in ["", "42", "4290", "6xx", "0xx", "xx", "44xx", "abc", "99", "600"] {
        assert_eq!(StatusFilter::parse(bad), None, "{bad}");
    }
}

#[test]
fn a_query_reads_its_filters_and_refuses_bad_ones_by_name() {
    let q = query(&[("status", "4xx"), ("method", "post"), ("code", "rate_limited"), ("path", "/data")]).unwrap();
    assert_eq!(q.method.as_deref(), Some("POST"));
    assert_eq!(q.code.as_deref(), Some("RATE_LIMITED"));
    assert_eq!(q.limit, PAGE_DEFAULT);
    assert_eq!(q.status, Some(StatusFilter::Class(4)));
    assert_eq!(q.path.as_deref(), Some("/data"));
    // What the filters select is the organization's SQL (`control/src/tests/objects.rs`, the e2e `logs` tests).
    for (name, value) in [
        ("key", "not-a-key"),
        ("method", "G E T"),
        ("status", "2"),
        ("code", "a;DROP TABLE"),
        ("path", "data"),
        ("cursor", "x"),
        ("cursor", "12.a'b"),
        ("limit", "0"),
        ("limit", "101"),
    ] {
        let problem = query(&[(name, value)]).expect_err(value);
        assert_eq!(problem.status, 400);
        assert_eq!(problem.field.as_deref(), Some(name), "{value}");
    }
    assert_eq!(query(&[("status", " ")]).unwrap(), LogQuery { limit: PAGE_DEFAULT, ..LogQuery::default() });
}

#[test]
fn a_cursor_is_the_last_lines_time_and_id() {
    let mut last = line(200, None, "/");
    last.id = "ab12cd-1f".into();
    let cursor = Cursor::of(&last);
    assert_eq!(Cursor::parse(&cursor), Some(Cursor { at: NOW, id: "ab12cd-1f".into() }));
}

#[test]
fn a_hostile_line_is_cut_to_its_bounds() {
    let long = format!("/{}", "a".repeat(10_000));
    let bounded =
        LoggedRequest { client_ip: Some("x".repeat(500)), ..line(200, Some(&"C".repeat(500)), &long) }.bounded();
    assert!(bounded.path.len() <= MAX_PATH);
    assert!(bounded.code.unwrap().len() <= 64);
    assert!(bounded.client_ip.unwrap().len() <= 64);
    let multibyte = LoggedRequest { organization: "é".repeat(100), ..line(200, None, "/") }.bounded();
    assert_eq!(multibyte.organization, "é".repeat(32), "cut on a character boundary, in bytes");
}

/// A full batch of the largest lines JSON can make (every field at its bound, every byte escaped) is still a queue
/// message (at most 128 KB).
#[test]
fn a_full_batch_of_the_largest_lines_fits_a_queue_message() {
    let worst = |n: usize| "\"".repeat(n);
    let line = LoggedRequest {
        id: worst(100),
        key_id: worst(100),
        method: worst(100),
        organization: worst(1_000),
        user_agent: None,
        country: None,
        permission: None,
        client_ip: Some(worst(1_000)),
        latency_ms: u32::MAX,
        ..line(599, Some(&worst(1_000)), &worst(10_000))
    };
    let batch = LogBatch { lines: vec![(worst(64), line.bounded()); MAX_BATCH] };
    let size = serde_json::to_string(&batch).unwrap().len();
    assert!(size < 128_000, "{size} bytes");
}

/// The first line schedules one flush; later ones wait for it; a full batch goes out at once; ids are unique.
#[test]
fn the_isolate_buffer_schedules_one_flush_and_sends_full_batches_at_once() {
    let mut buffer = LogBuffer::new("a1b2".into());
    assert_eq!(buffer.push("org_a", line(200, None, "/")), Flush::Schedule);
    assert_eq!(buffer.push("org_a", line(200, None, "/")), Flush::Pending);
    let batch = buffer.take();
    assert_eq!(batch.lines.len(), 2);
    assert_eq!(batch.lines[0].1.id, "a1b2-1");
    assert_eq!(batch.lines[1].1.id, "a1b2-2");
    assert_eq!(buffer.push("org_b", line(200, None, "/")), Flush::Schedule, "the next line schedules again");
    let mut full = None;
    for _ in 1..MAX_BATCH {
        if let Flush::Now(batch) = buffer.push("org_b", line(200, None, "/")) {
            full = Some(batch);
        }
    }
    assert_eq!(full.expect("a full batch goes out at once").lines.len(), MAX_BATCH);
    assert!(buffer.take().lines.is_empty());
}
