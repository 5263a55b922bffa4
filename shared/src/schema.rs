//! JSON Schemas of the types whose serde is written by hand (`schema` feature only: the control plane's OpenAPI
//! generator). Each says exactly what its serde writes and accepts: formats, patterns and bounds.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::key::KeyId;
use crate::meta::{KeyMeta, MAX_META_BYTES};
use crate::model::{PERMISSION_MAX_LEN, Permission};
use crate::net::IpRange;
use crate::time::Timestamp;

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time", "description": "RFC 3339, UTC"})
    }

    fn inline_schema() -> bool {
        true
    }
}

impl JsonSchema for KeyId {
    fn schema_name() -> Cow<'static, str> {
        "KeyId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9A-HJKMNP-TV-Z]{14}$",
            "description": "A key's public id: 14 Crockford base32 characters"
        })
    }
}

impl JsonSchema for Permission {
    fn schema_name() -> Cow<'static, str> {
        "Permission".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": PERMISSION_MAX_LEN,
            "pattern": "^[a-z0-9_.-]+(:[a-z0-9_.-]+)*:([a-z0-9_.-]+|\\*)$",
            "description": "`resource:action`: `:`-separated segments of a-z, 0-9, `_`, `.`, `-`; the last may be `*`",
            "examples": ["data:read", "admin:*"]
        })
    }
}

impl JsonSchema for IpRange {
    fn schema_name() -> Cow<'static, str> {
        "IpRange".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An IPv4 or IPv6 address or CIDR range",
            "examples": ["203.0.113.0/24", "2001:db8::/32"]
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

impl JsonSchema for KeyMeta {
    fn schema_name() -> Cow<'static, str> {
        "KeyMeta".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": format!("A JSON object of at most {MAX_META_BYTES} bytes of compact JSON"),
            "examples": [{"plan": "pro", "tenant": "acme"}]
        })
    }
}

/// A problem's `code`: one of [`crate::problem::CODES`].
pub fn problem_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": crate::problem::CODES,
        "description": "Keygate's stable machine code of the problem"
    })
}
