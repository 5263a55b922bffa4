//! RFC 9457 problem details: the body of every refusal and every error Keygate answers.

use serde::{Deserialize, Serialize};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Every `code` a problem of Keygate's carries: a client may branch on them, and the OpenAPI document lists them as
/// `code`'s enum (a code outside the list fails the tests that meet it: `Problem::new` checks in debug builds, and
/// the end-to-end suite validates every answer against the document).
pub const CODES: &[&str] = &[
    // The gateway's decision (`decision::Code`), as refusals.
    "MISSING_CREDENTIAL",
    "AMBIGUOUS_CREDENTIAL",
    "INCOMPLETE_PAIR",
    "INVALID_FORMAT",
    "WRONG_ENVIRONMENT",
    "WRONG_PROJECT",
    "NOT_FOUND",
    "REVOKED",
    "DEACTIVATED",
    "EXPIRED",
    "FORBIDDEN_ORGANIZATION",
    "INSUFFICIENT_PERMISSIONS",
    "NO_ROUTE",
    "CUSTOMER_REQUIRED",
    "CUSTOMER_NOT_ALLOWED",
    "IP_NOT_ALLOWED",
    "RATE_LIMITED",
    "USAGE_EXCEEDED",
    // Requests.
    "INVALID_BODY",
    "INVALID_PATH",
    "INVALID_QUERY",
    "EMPTY_UPDATE",
    "VALIDATION_FAILED",
    "PAYLOAD_TOO_LARGE",
    "HEADER_TOO_LARGE",
    "METHOD_NOT_ALLOWED",
    // Who may.
    "FORBIDDEN",
    "NOT_KEY_OWNER",
    "REVOKED_BY_OTHER",
    "TOO_MANY_FAILED_SIGN_INS",
    "INVALID_SIGNATURE",
    "BOOTSTRAP_DISABLED",
    "ALREADY_BOOTSTRAPPED",
    "INVITATION_INVALID",
    "ALREADY_MEMBER",
    "LAST_OWNER",
    // State.
    "CONFLICT",
    "ILLEGAL_TRANSITION",
    "LIMIT_REACHED",
    "ROLE_IN_USE",
    "IDENTITY_IN_USE",
    // Keygate itself.
    "STORAGE_UNAVAILABLE",
    "ORIGIN_UNREACHABLE",
    "MISCONFIGURED",
    "INTERNAL",
];

/// An `application/problem+json` body. `code` is Keygate's stable machine code; `field` names the request field at
/// fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// One of [`CODES`].
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::schema::problem_code"))]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem with a stable `code` (`SCREAMING_SNAKE_CASE`); its type URI is derived from the code.
    pub fn new(status: u16, code: &str, title: &str, detail: impl Into<String>) -> Self {
        debug_assert!(CODES.contains(&code), "problem code {code} is not in keygate_shared::problem::CODES");
        Self {
            type_uri: format!("urn:keygate:problem:{}", code.to_ascii_lowercase().replace('_', "-")),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(400, code, "Bad request", detail)
    }

    /// A request field failed validation; nothing was changed.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::new(422, "VALIDATION_FAILED", "Invalid field", detail).with_field(field)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "NOT_FOUND", "Not found", detail)
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(409, code, "Conflict", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "STORAGE_UNAVAILABLE", "Service unavailable", detail)
    }

    pub fn internal() -> Self {
        Self::new(500, "INTERNAL", "Internal error", "Keygate hit an unexpected error; the request changed nothing.")
    }
}
