//! Every request the console makes goes through here: the console token (from `sessionStorage`) as Bearer, the
//! chosen organization as `Keygate-Org`, and problem+json errors turned into [`ApiError`].

use std::fmt;

use gloo_net::http::{Method, RequestBuilder};
use keygate_shared::api::{
    AcceptInvitationRequest, AuditPage, CanaryTripList, CreateIdentityRequest, CreateKeyRequest, CreateProjectRequest,
    CreateSessionRequest, CreatedKey, DescribePermissionRequest, IdentityList, IdentityView, InvitationList,
    InvitationView, InviteMemberRequest, InviteMemberResponse, KeyList, KeyView, MemberList, MemberView, NewSession,
    OrganizationView, PermissionInfo, ProjectList, PutRoleRequest, RecentErrors, RedeemInvitationRequest,
    RedeemInvitationResponse, RegenerateKeyRequest, RenameProjectRequest, RoleInfo, SessionInfo, SessionList,
    SessionView, UpdateIdentityRequest, UpdateKeyRequest, UpdateSettingsRequest, UsageReport, WhoAmI,
};
use keygate_shared::model::{OrganizationSettings, Project};
use keygate_shared::problem::Problem;
use keygate_shared::requestlog::RequestLogPage;
use keygate_shared::webhook::{
    CreateWebhookRequest, CreatedWebhook, DeliveryList, DeliveryView, UpdateWebhookRequest, WebhookList, WebhookView,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

const TOKEN_KEY: &str = "keygate.console_token";
const ORG_KEY: &str = "keygate.organization";

/// Why a call failed: the API's problem (its `detail` is shown next to the field or action), or no answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Problem(Problem),
    Network(String),
}

impl ApiError {
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Problem(p) => p.field.as_deref(),
            Self::Network(_) => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Problem(p) => p.status,
            Self::Network(_) => 0,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem(p) => match &p.field {
                Some(field) => write!(f, "{field}: {}", p.detail),
                None => f.write_str(&p.detail),
            },
            Self::Network(e) => write!(f, "Keygate did not answer ({e}). Check your connection and retry."),
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// The console token of this tab. Kept in `sessionStorage` only: never in the URL or `localStorage`.
pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok()?.filter(|t| !t.is_empty())
}

pub fn set_token(token: Option<&str>) {
    if let Some(s) = storage() {
        let _ = match token {
            Some(t) => s.set_item(TOKEN_KEY, t),
            None => s.remove_item(TOKEN_KEY).and_then(|()| s.remove_item(ORG_KEY)),
        };
    }
}

/// The organization chosen in the switcher (sent as `Keygate-Org`).
pub fn organization() -> Option<String> {
    storage()?.get_item(ORG_KEY).ok()?.filter(|o| !o.is_empty())
}

pub fn set_organization(org: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(ORG_KEY, org);
    }
}

async fn call<T: DeserializeOwned>(method: Method, path: &str, body: Option<&dyn erased::Body>) -> Result<T, ApiError> {
    call_with(method, path, body, token().as_deref()).await
}

async fn call_with<T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: Option<&dyn erased::Body>,
    token: Option<&str>,
) -> Result<T, ApiError> {
    let mut request = RequestBuilder::new(path).method(method);
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    if let Some(org) = organization() {
        request = request.header("keygate-org", &org);
    }
    let request = match body {
        Some(b) => request
            .header("content-type", "application/json")
            .body(b.json())
            .map_err(|e| ApiError::Network(e.to_string()))?,
        None => request.build().map_err(|e| ApiError::Network(e.to_string()))?,
    };
    let response = request.send().await.map_err(|e| ApiError::Network(e.to_string()))?;
    let text = response.text().await.map_err(|e| ApiError::Network(e.to_string()))?;
    if !response.ok() {
        let problem = serde_json::from_str::<Problem>(&text).unwrap_or_else(|_| {
            Problem::new(response.status(), "HTTP_ERROR", "Error", format!("Keygate answered {}.", response.status()))
        });
        return Err(ApiError::Problem(problem));
    }
    let text = if text.is_empty() { "null" } else { text.as_str() };
    serde_json::from_str(text).map_err(|e| ApiError::Network(format!("unexpected answer: {e}")))
}

mod erased {
    /// A request body, serialized once.
    pub trait Body {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Body for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Checks a console token before keeping it.
pub async fn sign_in(token: &str) -> Result<SessionView, ApiError> {
    call_with(Method::GET, "/admin/v1/session", None, Some(token)).await
}

pub async fn session() -> Result<SessionView, ApiError> {
    call(Method::GET, "/admin/v1/session", None).await
}

/// Query string for `GET /keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyQuery {
    pub project: String,
    pub environment: String,
    pub status: String,
    pub include_deactivated: bool,
    /// `pair`: LandingLens's legacy key pairs only.
    pub kind: String,
}

impl KeyQuery {
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        let filters = [("project", &self.project), ("environment", &self.environment), ("status", &self.status)];
        for (k, v) in filters.into_iter().chain([("kind", &self.kind)]) {
            if !v.is_empty() {
                parts.push(format!("{k}={}", js_sys::encode_uri_component(v)));
            }
        }
        if self.include_deactivated {
            parts.push("include_deactivated=true".into());
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

pub async fn keys(query: &KeyQuery) -> Result<KeyList, ApiError> {
    call(Method::GET, &format!("/admin/v1/keys{}", query.to_query()), None).await
}

pub async fn key(id: &str) -> Result<KeyView, ApiError> {
    call(Method::GET, &format!("/admin/v1/keys/{id}"), None).await
}

pub async fn create_key(request: &CreateKeyRequest) -> Result<CreatedKey, ApiError> {
    call(Method::POST, "/admin/v1/keys", Some(&json(request))).await
}

pub async fn update_key(id: &str, request: &UpdateKeyRequest) -> Result<KeyView, ApiError> {
    call(Method::PATCH, &format!("/admin/v1/keys/{id}"), Some(&json(request))).await
}

/// `revoke`, `activate` or `deactivate`.
pub async fn key_action(id: &str, action: &str) -> Result<KeyView, ApiError> {
    call(Method::POST, &format!("/admin/v1/keys/{id}/{action}"), Some(&serde_json::json!({}))).await
}

pub async fn regenerate(id: &str, grace_seconds: Option<u32>) -> Result<CreatedKey, ApiError> {
    let body = json(&RegenerateKeyRequest { grace_seconds });
    call(Method::POST, &format!("/admin/v1/keys/{id}/regenerate"), Some(&body)).await
}

pub async fn delete_key(id: &str) -> Result<(), ApiError> {
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/keys/{id}"), None).await.map(|_| ())
}

pub async fn usage(id: &str) -> Result<UsageReport, ApiError> {
    call(Method::GET, &format!("/admin/v1/keys/{id}/usage"), None).await
}

/// The organization's usage by acting organization (owners and admins).
pub async fn organization_usage() -> Result<keygate_shared::api::OrganizationUsageReport, ApiError> {
    call(Method::GET, "/admin/v1/usage", None).await
}

pub async fn errors(id: &str) -> Result<RecentErrors, ApiError> {
    call(Method::GET, &format!("/admin/v1/keys/{id}/errors"), None).await
}

pub async fn projects() -> Result<Vec<Project>, ApiError> {
    call::<ProjectList>(Method::GET, "/admin/v1/projects", None).await.map(|l| l.projects)
}

pub async fn create_project(slug: &str, name: &str) -> Result<Project, ApiError> {
    let body = json(&CreateProjectRequest { slug: slug.to_owned(), name: name.to_owned() });
    call(Method::POST, "/admin/v1/projects", Some(&body)).await
}

pub async fn rename_project(id: &str, name: &str) -> Result<Project, ApiError> {
    let body = json(&RenameProjectRequest { name: name.to_owned() });
    call(Method::PATCH, &format!("/admin/v1/projects/{id}"), Some(&body)).await
}

/// Describes a permission of the catalog (owners and admins); an empty description removes it.
pub async fn describe_permission(name: &str, description: &str) -> Result<PermissionInfo, ApiError> {
    let request = DescribePermissionRequest { description: description.to_owned() };
    // `:` is legal in a path segment, and the gateway does not decode `%3A` (a reserved character).
    let segment = String::from(js_sys::encode_uri_component(name)).replace("%3A", ":");
    let path = format!("/admin/v1/permissions/{segment}");
    call(Method::PUT, &path, Some(&json(&request))).await
}

/// Defines a role or replaces its definition (owners and admins).
pub async fn put_role(name: &str, request: &PutRoleRequest) -> Result<RoleInfo, ApiError> {
    let segment = String::from(js_sys::encode_uri_component(name));
    call(Method::PUT, &format!("/admin/v1/roles/{segment}"), Some(&json(request))).await
}

/// A page of the organization's identities (customers), by external id.
pub async fn identities(cursor: Option<String>) -> Result<IdentityList, ApiError> {
    let path = match cursor {
        Some(c) => format!("/admin/v1/identities?cursor={}", String::from(js_sys::encode_uri_component(&c))),
        None => "/admin/v1/identities".to_owned(),
    };
    call(Method::GET, &path, None).await
}

pub async fn create_identity(request: &CreateIdentityRequest) -> Result<IdentityView, ApiError> {
    call(Method::POST, "/admin/v1/identities", Some(&json(request))).await
}

pub async fn update_identity(id: &str, request: &UpdateIdentityRequest) -> Result<IdentityView, ApiError> {
    call(Method::PATCH, &format!("/admin/v1/identities/{id}"), Some(&json(request))).await
}

/// The gateway's endpoint: environment, project, routes and credential headers (for the simulator).
pub async fn health() -> Result<keygate_shared::api::Health, ApiError> {
    call_with(Method::GET, "/v1/health", None, None).await
}

/// What the key's observed use suggests it does not need.
pub async fn suggestions(id: &str) -> Result<keygate_shared::privilege::SuggestionList, ApiError> {
    call(Method::GET, &format!("/admin/v1/keys/{id}/suggestions"), None).await
}

/// Where a key was reported leaked.
pub async fn key_leaks(id: &str) -> Result<keygate_shared::leak::KeyLeakList, ApiError> {
    call(Method::GET, &format!("/admin/v1/keys/{id}/leaks"), None).await
}

/// The newest uses of canary keys (of one key, with `key`).
pub async fn canary_trips(key: Option<&str>) -> Result<CanaryTripList, ApiError> {
    let path = match key {
        Some(id) => format!("/admin/v1/canary-trips?key={id}"),
        None => "/admin/v1/canary-trips".to_owned(),
    };
    call(Method::GET, &path, None).await
}

/// The organization's webhooks (owners and admins).
pub async fn webhooks() -> Result<WebhookList, ApiError> {
    call(Method::GET, "/admin/v1/webhooks", None).await
}

/// Adds a webhook: the answer holds its signing secret, once.
pub async fn create_webhook(request: &CreateWebhookRequest) -> Result<CreatedWebhook, ApiError> {
    call(Method::POST, "/admin/v1/webhooks", Some(&json(request))).await
}

pub async fn update_webhook(id: &str, request: &UpdateWebhookRequest) -> Result<WebhookView, ApiError> {
    call(Method::PATCH, &format!("/admin/v1/webhooks/{id}"), Some(&json(request))).await
}

pub async fn delete_webhook(id: &str) -> Result<(), ApiError> {
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/webhooks/{id}"), None).await.map(|_| ())
}

/// Queues a `ping` to the webhook.
pub async fn test_webhook(id: &str) -> Result<DeliveryView, ApiError> {
    call(Method::POST, &format!("/admin/v1/webhooks/{id}/test"), None).await
}

/// A new signing secret, answered once; the previous one signs beside it for a day.
pub async fn rotate_webhook_secret(id: &str) -> Result<keygate_shared::webhook::RotatedSecret, ApiError> {
    call(Method::POST, &format!("/admin/v1/webhooks/{id}/rotate-secret"), None).await
}

pub async fn deliveries(id: &str) -> Result<DeliveryList, ApiError> {
    call(Method::GET, &format!("/admin/v1/webhooks/{id}/deliveries"), None).await
}

pub async fn delete_identity(id: &str) -> Result<(), ApiError> {
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/identities/{id}"), None).await.map(|_| ())
}

/// Deletes a role no key holds (owners and admins).
pub async fn delete_role(name: &str) -> Result<(), ApiError> {
    let segment = String::from(js_sys::encode_uri_component(name));
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/roles/{segment}"), None).await.map(|_| ())
}

/// Changes the organization's settings (owners).
pub async fn update_settings(request: &UpdateSettingsRequest) -> Result<OrganizationSettings, ApiError> {
    call(Method::PATCH, "/admin/v1/organization/settings", Some(&json(request))).await
}

pub async fn members() -> Result<Vec<MemberView>, ApiError> {
    call::<MemberList>(Method::GET, "/admin/v1/members", None).await.map(|m| m.members)
}

/// Removes a member (or, with one's own id, leaves the organization).
pub async fn remove_member(id: &str) -> Result<(), ApiError> {
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/members/{id}"), None).await.map(|_| ())
}

/// Invites someone: the answer holds the one-time code, shown once.
pub async fn invite(request: &InviteMemberRequest) -> Result<InviteMemberResponse, ApiError> {
    call(Method::POST, "/admin/v1/invitations", Some(&json(request))).await
}

pub async fn invitations() -> Result<Vec<InvitationView>, ApiError> {
    call::<InvitationList>(Method::GET, "/admin/v1/invitations", None).await.map(|l| l.invitations)
}

pub async fn revoke_invitation(id: &str) -> Result<(), ApiError> {
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/invitations/{id}"), None).await.map(|_| ())
}

/// A new user joins with an invitation code: no token is sent (the code is the credential).
pub async fn redeem(code: &str, name: Option<String>) -> Result<RedeemInvitationResponse, ApiError> {
    let body = json(&RedeemInvitationRequest { code: code.trim().to_owned(), name });
    call_with(Method::POST, "/admin/v1/invitations/redeem", Some(&body), None).await
}

/// The signed-in user accepts an invitation to another organization.
pub async fn accept(code: &str) -> Result<OrganizationView, ApiError> {
    let body = json(&AcceptInvitationRequest { code: code.trim().to_owned() });
    call(Method::POST, "/admin/v1/invitations/accept", Some(&body)).await
}

pub async fn sessions() -> Result<Vec<SessionInfo>, ApiError> {
    call::<SessionList>(Method::GET, "/admin/v1/sessions", None).await.map(|l| l.sessions)
}

/// Another console token for the signed-in user, shown once.
pub async fn create_session(label: &str) -> Result<NewSession, ApiError> {
    let body = json(&CreateSessionRequest { label: Some(label.to_owned()) });
    call(Method::POST, "/admin/v1/sessions", Some(&body)).await
}

/// Signs a session out: `current` (this console's token) or one of the user's sessions by id.
pub async fn end_session(id: &str) -> Result<(), ApiError> {
    call::<Option<serde_json::Value>>(Method::DELETE, &format!("/admin/v1/sessions/{id}"), None).await.map(|_| ())
}

/// Filters of the request log (`GET /requests`), as typed in the console; empty ones are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub key: String,
    pub status: String,
    pub code: String,
    pub method: String,
    pub path: String,
}

impl LogFilter {
    pub fn to_query(&self, cursor: Option<&str>) -> String {
        let filters = [
            ("key", &self.key),
            ("status", &self.status),
            ("code", &self.code),
            ("method", &self.method),
            ("path", &self.path),
        ];
        let mut parts: Vec<String> = filters
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", js_sys::encode_uri_component(v.trim())))
            .collect();
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", js_sys::encode_uri_component(c)));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

/// A page of the request log.
pub async fn requests(filter: &LogFilter, cursor: Option<&str>) -> Result<RequestLogPage, ApiError> {
    call(Method::GET, &format!("/admin/v1/requests{}", filter.to_query(cursor)), None).await
}

pub async fn audit(cursor: Option<&str>) -> Result<AuditPage, ApiError> {
    let query = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
    call(Method::GET, &format!("/admin/v1/audit{query}"), None).await
}

/// `GET /v1/whoami` with the pasted key (not the console token).
pub async fn whoami(key: &str) -> Result<WhoAmI, ApiError> {
    let response = RequestBuilder::new("/v1/whoami")
        .method(Method::GET)
        .header("x-api-key", key.trim())
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    let text = response.text().await.map_err(|e| ApiError::Network(e.to_string()))?;
    if response.ok() {
        serde_json::from_str(&text).map_err(|e| ApiError::Network(e.to_string()))
    } else {
        Err(ApiError::Problem(
            serde_json::from_str(&text)
                .unwrap_or_else(|_| Problem::new(response.status(), "HTTP_ERROR", "Error", "The key was refused.")),
        ))
    }
}
