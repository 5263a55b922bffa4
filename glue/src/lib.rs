//! Workers glue both of Keygate's Workers (the gateway, `verifier/`, and the control plane, `control/`) share. No
//! decision is made here: only what crossing between the runtime and the platform-free handlers needs.

#![cfg(target_arch = "wasm32")]

use keygate_shared::api::MAX_BODY_BYTES;
use keygate_shared::http::Reply;
use keygate_shared::problem::Problem;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Response, ResponseInit};

#[wasm_bindgen]
extern "C" {
    type BodyStream;
    #[wasm_bindgen(method, js_name = getReader)]
    fn get_reader(this: &BodyStream) -> BodyReader;

    type BodyReader;
    #[wasm_bindgen(method)]
    fn read(this: &BodyReader) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn cancel(this: &BodyReader) -> js_sys::Promise;
}

fn too_large() -> Reply {
    Reply::problem(&Problem::new(413, "PAYLOAD_TOO_LARGE", "Payload too large", "Request bodies are at most 64 KiB."))
}

fn unreadable() -> Reply {
    Reply::problem(&Problem::bad_request("INVALID_BODY", "The body could not be read."))
}

/// How much of an oversized body is read and thrown away before the 413 goes out, so that the client (and any proxy
/// in between) reads the answer instead of a reset connection ("lingering close", as HTTP servers do). Past this
/// the stream is cancelled.
pub const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// Reads a request's body as UTF-8 text with a byte cap whatever its framing: a declared `Content-Length` above the
/// cap is refused before anything is read, and a chunked body is refused as soon as it passes the cap — never
/// buffered: the rest is read and thrown away (up to [`LINGER_BYTES`], then the stream is cancelled) before the 413.
/// No body reads as an empty one.
pub async fn read_body(request: &web_sys::Request) -> Result<String, Reply> {
    let declared = request.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let Some(stream) = request.body() else { return Ok(String::new()) };
    let reader = stream.unchecked_ref::<BodyStream>().get_reader();
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|_| unreadable())?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).map_err(|_| unreadable())?;
        if done.is_truthy() {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(|_| unreadable())?;
        let array = js_sys::Uint8Array::new(&value);
        if bytes.len().saturating_add(array.length() as usize) > MAX_BODY_BYTES {
            linger(&reader, bytes.len() + array.length() as usize).await;
            return Err(too_large());
        }
        let start = bytes.len();
        bytes.resize(start + array.length() as usize, 0);
        array.copy_to(&mut bytes[start..]);
    }
    String::from_utf8(bytes)
        .map_err(|_| Reply::problem(&Problem::bad_request("INVALID_BODY", "The body is not UTF-8 text.")))
}

/// Reads and drops what is left of a refused body, up to [`LINGER_BYTES`] in all; cancels the stream past that.
async fn linger(reader: &BodyReader, mut seen: usize) {
    while seen < LINGER_BYTES {
        let Ok(chunk) = JsFuture::from(reader.read()).await else { return };
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done")).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            return;
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).unwrap_or(JsValue::UNDEFINED);
        seen = seen.saturating_add(js_sys::Uint8Array::new(&value).length() as usize);
    }
    let _ = JsFuture::from(reader.cancel()).await;
}

/// A platform-free reply as a runtime `Response`.
pub fn to_response(reply: Reply) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    for (k, v) in &reply.headers {
        headers.append(k, v)?;
    }
    let init = ResponseInit::new();
    init.set_status(reply.status);
    init.set_headers(&headers);
    let body = (!reply.body.is_empty()).then_some(reply.body.as_str());
    Response::new_with_opt_str_and_init(body, &init)
}

/// `console.error` of one message (Workers' logs).
pub fn log_error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(message));
}
