//! The admin API under `/admin/v1`, platform-free over [`Stores`]. Each handler reads as steps: (1) sign in,
//! (2) parse and validate everything, (3) send the change to the object that owns it — the organization's object
//! checks the actor's membership and role in the same transaction as the change; a key's object checks what may be
//! done to the key against its authoritative record — and (4) answer.
//!
//! Nothing here is stored: each object commits its own change before it answers, then writes behind what others
//! must learn (a key's object to KV and to its organization; an organization's object to its members' objects).

use keygate_shared::api::{
    AcceptInvitationRequest, BootstrapRequest as BootstrapBody, BootstrapResponse, CreateIdentityRequest,
    CreateKeyRequest, CreateOrganizationRequest, CreateProjectRequest, CreateSessionRequest, CreatedKey,
    DescribePermissionRequest, InviteMemberRequest, InviteMemberResponse, KeyFilter, KeyView, MAX_BODY_BYTES,
    MemberList, NewSession, PermissionList, ProjectList, PutRoleRequest, RecentErrors, RedeemInvitationRequest,
    RedeemInvitationResponse, RegenerateKeyRequest, RenameProjectRequest, RoleList, SessionInfo, SessionList,
    SessionView, UpdateIdentityRequest, UpdateKeyRequest, UpdateSettingsRequest, held_roles, unknown_identity,
    validate_email, validate_identity_id, validate_name, validate_role_names,
};
use keygate_shared::authz::{Denial, OrgAction};
use keygate_shared::credential;
use keygate_shared::decision::{CONSOLE_PROJECT, Claim, Code, precheck};
use keygate_shared::hash::{SecretHash, constant_time_eq, token_hash};
use keygate_shared::http::{Incoming, Reply};
use keygate_shared::key::{ApiKey, KeyId, Secret};
use keygate_shared::keyobject::{Actor, Authorization, Authorize, KeyChange, KeyRefusal, KeyReply, KeyRequest};
use keygate_shared::model::{
    HeldRole, KeyIdentity, KeyKind, KeyRecord, KeyStatus, Membership, Organization, Permission, Project, Role, User,
    new_id, valid_slug,
};
use keygate_shared::problem::Problem;
use keygate_shared::requestlog::LogQuery;
use keygate_shared::time::Timestamp;
use serde::de::DeserializeOwned;

use crate::bootstrap::{BootstrapReply, BootstrapRequest};
use keygate_shared::webhook::{
    CreateWebhookRequest, CreatedWebhook, RotateSecretRequest, RotatedSecret, UpdateWebhookRequest, WebhookList,
};

use crate::config::Config;
use crate::org::{NewInvitation, NewMember, OrgRefusal, OrgReply, OrgRequest};
use crate::store::{OrgAnswer, StoreError, Stores};
use crate::user::{Profile, UserReply, UserRequest};

/// The header naming the organization a console request acts for.
pub const ORG_HEADER: &str = "keygate-org";
/// The permission console tokens hold.
pub const CONSOLE_PERMISSION: &str = "admin:*";
/// The prefix of invitation codes: `kginv_<organization>_<secret>`.
pub const INVITATION_PREFIX: &str = "kginv_";

type Handled = Result<Reply, Reply>;

fn problem(p: Problem) -> Reply {
    Reply::problem(&p)
}

fn unavailable(_: StoreError) -> Reply {
    Reply::unavailable()
}

fn internal<E>(_: E) -> Reply {
    problem(Problem::internal())
}

fn not_found() -> Reply {
    problem(Problem::not_found("No such key, project, member or session in this organization."))
}

fn forbidden(detail: &str) -> Reply {
    problem(Problem::new(403, "FORBIDDEN", "Forbidden", detail))
}

fn denial(denial: Denial) -> Reply {
    match denial {
        Denial::Hidden => not_found(),
        Denial::OwnerOnly => problem(Problem::new(
            403,
            "NOT_KEY_OWNER",
            "Forbidden",
            "Only the key's owner may rename, edit or regenerate it.",
        )),
        Denial::ManagersOnly => forbidden("Only owners and admins of the organization may do this."),
        Denial::OwnersOnly => forbidden("Only owners of the organization may do this."),
        Denial::RevokedByOther => problem(Problem::new(
            403,
            "REVOKED_BY_OTHER",
            "Forbidden",
            "Someone else revoked this key: only an owner or admin may activate it again.",
        )),
    }
}

/// An organization's refusal as an answer.
fn org_refusal(refusal: OrgRefusal) -> Reply {
    match refusal {
        OrgRefusal::NotMember => problem(Problem::new(
            403,
            "FORBIDDEN_ORGANIZATION",
            "Forbidden",
            "You are not a member of this organization (the one named in `Keygate-Org`, or your console token's).",
        )),
        OrgRefusal::Denied { denial: d } => denial(d),
        OrgRefusal::NotFound { what } => problem(Problem::not_found(format!("No such {what} in this organization."))),
        OrgRefusal::Conflict { code, detail } => problem(Problem::conflict(&code, detail)),
        OrgRefusal::InvitationGone { code, detail } => problem(Problem::new(410, &code, "Gone", detail)),
        OrgRefusal::Invalid { field, detail } => problem(Problem::invalid_field(&field, detail)),
        OrgRefusal::Full { detail } => problem(Problem::conflict("LIMIT_REACHED", detail)),
    }
}

fn key_refusal(refusal: KeyRefusal) -> Reply {
    match refusal {
        KeyRefusal::NotFound => not_found(),
        KeyRefusal::Exists => problem(Problem::conflict("CONFLICT", "A key with this id exists; retry.")),
        KeyRefusal::Denied { denial: d } => denial(d),
        KeyRefusal::Illegal { from, action } => problem(Problem::conflict(
            "ILLEGAL_TRANSITION",
            keygate_shared::model::IllegalTransition { from, action }.describe(),
        )),
        KeyRefusal::Invalid { problem: p } => problem(p),
        KeyRefusal::Backlog => {
            problem(Problem::unavailable("The key's organization is catching up with earlier changes; retry shortly."))
                .with_header("retry-after", "2")
        }
    }
}

async fn org<S: Stores>(stores: &S, organization: &str, request: OrgRequest) -> Result<OrgReply, Reply> {
    let answer: OrgAnswer = stores.org(organization, request).await.map_err(unavailable)?;
    answer.map_err(org_refusal)
}

async fn key<S: Stores>(stores: &S, id: &KeyId, request: KeyRequest) -> Result<KeyReply, Reply> {
    match stores.key(id, request).await.map_err(unavailable)? {
        KeyReply::Refused { refusal } => Err(key_refusal(refusal)),
        reply => Ok(reply),
    }
}

/// Says in the answer what the key's object committed: its revision, and whether KV and the organization have it yet
/// (`pending`: the object retries until they do; the gateway's revocation bound then starts from the retry).
fn committed(reply: Reply, revision: u64, settled: bool) -> Reply {
    reply
        .with_header("keygate-revision", revision.to_string())
        .with_header("keygate-propagation", if settled { "done" } else { "pending" })
}

fn unexpected<T>(what: &str) -> Result<T, Reply> {
    Err(problem(Problem::new(500, "INTERNAL", "Internal error", format!("Unexpected answer from {what}."))))
}

/// Every admin route, as parsed from method and path. The OpenAPI document lists exactly these (a test checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Bootstrap,
    OpenApi,
    Session,
    Sessions,
    CreateSession,
    EndSession(&'a str),
    CreateOrganization,
    Members,
    RemoveMember(&'a str),
    Invitations,
    Invite,
    RevokeInvitation(&'a str),
    RedeemInvitation,
    AcceptInvitation,
    Projects,
    CreateProject,
    RenameProject(&'a str),
    ListKeys,
    CreateKey,
    GetKey(&'a str),
    UpdateKey(&'a str),
    DeleteKey(&'a str),
    KeyAction(&'a str, &'a str),
    KeyErrors(&'a str),
    KeyUsage(&'a str),
    KeyRequests(&'a str),
    KeyLeaks(&'a str),
    KeySuggestions(&'a str),
    Audit,
    Settings,
    UpdateSettings,
    Permissions,
    DescribePermission(&'a str),
    Roles,
    PutRole(&'a str),
    DeleteRole(&'a str),
    Identities,
    CreateIdentity,
    GetIdentity(&'a str),
    UpdateIdentity(&'a str),
    DeleteIdentity(&'a str),
    Webhooks,
    CreateWebhook,
    UpdateWebhook(&'a str),
    DeleteWebhook(&'a str),
    TestWebhook(&'a str),
    RotateWebhookSecret(&'a str),
    WebhookDeliveries(&'a str),
    CanaryTrips,
    Usage,
    RequestLog,
    /// `KEYGATE_TEST_SEED=1` only: synthetic key index rows for scale runs.
    Seed,
}

impl<'a> Route<'a> {
    /// `path` is the part after `/admin/v1`.
    pub fn parse(method: &str, path: &'a str) -> Option<Route<'a>> {
        let segments: Vec<&'a str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route = match (method, segments.as_slice()) {
            ("POST", ["bootstrap"]) => Route::Bootstrap,
            ("GET", ["openapi.json"]) => Route::OpenApi,
            ("GET", ["session"]) => Route::Session,
            ("GET", ["sessions"]) => Route::Sessions,
            ("POST", ["sessions"]) => Route::CreateSession,
            ("DELETE", ["sessions", id]) => Route::EndSession(id),
            ("POST", ["organizations"]) => Route::CreateOrganization,
            ("GET", ["members"]) => Route::Members,
            ("DELETE", ["members", id]) => Route::RemoveMember(id),
            ("GET", ["invitations"]) => Route::Invitations,
            ("POST", ["invitations"]) => Route::Invite,
            ("POST", ["invitations", "redeem"]) => Route::RedeemInvitation,
            ("POST", ["invitations", "accept"]) => Route::AcceptInvitation,
            ("DELETE", ["invitations", id]) => Route::RevokeInvitation(id),
            ("GET", ["projects"]) => Route::Projects,
            ("POST", ["projects"]) => Route::CreateProject,
            ("PATCH", ["projects", id]) => Route::RenameProject(id),
            ("GET", ["keys"]) => Route::ListKeys,
            ("POST", ["keys"]) => Route::CreateKey,
            ("GET", ["keys", id]) => Route::GetKey(id),
            ("PATCH", ["keys", id]) => Route::UpdateKey(id),
            ("DELETE", ["keys", id]) => Route::DeleteKey(id),
            ("POST", ["keys", id, action @ ("revoke" | "activate" | "deactivate" | "regenerate")]) => {
                Route::KeyAction(id, action)
            }
            ("GET", ["keys", id, "errors"]) => Route::KeyErrors(id),
            ("GET", ["keys", id, "usage"]) => Route::KeyUsage(id),
            ("GET", ["keys", id, "requests"]) => Route::KeyRequests(id),
            ("GET", ["keys", id, "leaks"]) => Route::KeyLeaks(id),
            ("GET", ["keys", id, "suggestions"]) => Route::KeySuggestions(id),
            ("GET", ["audit"]) => Route::Audit,
            ("GET", ["organization", "settings"]) => Route::Settings,
            ("PATCH", ["organization", "settings"]) => Route::UpdateSettings,
            ("GET", ["permissions"]) => Route::Permissions,
            ("PUT", ["permissions", name]) => Route::DescribePermission(name),
            ("GET", ["roles"]) => Route::Roles,
            ("PUT", ["roles", name]) => Route::PutRole(name),
            ("DELETE", ["roles", name]) => Route::DeleteRole(name),
            ("GET", ["identities"]) => Route::Identities,
            ("POST", ["identities"]) => Route::CreateIdentity,
            ("GET", ["identities", id]) => Route::GetIdentity(id),
            ("PATCH", ["identities", id]) => Route::UpdateIdentity(id),
            ("DELETE", ["identities", id]) => Route::DeleteIdentity(id),
            ("GET", ["webhooks"]) => Route::Webhooks,
            ("POST", ["webhooks"]) => Route::CreateWebhook,
            ("PATCH", ["webhooks", id]) => Route::UpdateWebhook(id),
            ("DELETE", ["webhooks", id]) => Route::DeleteWebhook(id),
            ("POST", ["webhooks", id, "test"]) => Route::TestWebhook(id),
            ("POST", ["webhooks", id, "rotate-secret"]) => Route::RotateWebhookSecret(id),
            ("GET", ["webhooks", id, "deliveries"]) => Route::WebhookDeliveries(id),
            ("GET", ["canary-trips"]) => Route::CanaryTrips,
            ("GET", ["usage"]) => Route::Usage,
            ("GET", ["requests"]) => Route::RequestLog,
            ("POST", ["test", "seed"]) => Route::Seed,
            _ => return None,
        };
        Some(route)
    }
}

/// Routes `/admin/v1/...`. `now` is read once by the caller.
pub async fn route<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Reply {
    if req.body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return problem(Problem::new(
            413,
            "PAYLOAD_TOO_LARGE",
            "Payload too large",
            "Request bodies are at most 64 KiB.",
        ));
    }
    let path = req.path.strip_prefix("/admin/v1").unwrap_or_default();
    let Some(route) = Route::parse(&req.method, path) else {
        // A known path with another method is 405 with `Allow`; anything else 404.
        let allowed: Vec<&str> =
            ["GET", "POST", "PUT", "PATCH", "DELETE"].into_iter().filter(|m| Route::parse(m, path).is_some()).collect();
        if allowed.is_empty() {
            return problem(Problem::not_found("No such admin route; see /admin/v1/openapi.json."));
        }
        let allow = allowed.join(", ");
        return problem(Problem::new(405, "METHOD_NOT_ALLOWED", "Method not allowed", format!("Use {allow}.")))
            .with_header("allow", allow);
    };
    let result = match route {
        Route::Bootstrap => bootstrap(stores, req, config, now).await,
        Route::OpenApi => Ok(Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: crate::openapi::DOCUMENT.to_owned(),
        }),
        Route::RedeemInvitation => redeem_invitation(stores, req, config, now).await,
        _ => match sign_in(stores, req, config, now).await {
            Err(reply) => Err(reply),
            Ok(actor) => signed_in(stores, req, config, &actor, route, now).await,
        },
    };
    result.unwrap_or_else(|reply| reply)
}

async fn signed_in<S: Stores>(
    stores: &S,
    req: &Incoming,
    config: &Config,
    actor: &SignedIn,
    route: Route<'_>,
    now: Timestamp,
) -> Handled {
    match route {
        Route::Bootstrap | Route::OpenApi | Route::RedeemInvitation => Err(problem(Problem::internal())),
        Route::Session => session(stores, actor, now).await,
        Route::Sessions => sessions(stores, actor, now).await,
        Route::CreateSession => create_session(stores, req, config, actor, now).await,
        Route::EndSession(id) => end_session(stores, actor, id, now).await,
        Route::CreateOrganization => create_organization(stores, req, actor, now).await,
        Route::Members => {
            match org(stores, &actor.organization, OrgRequest::Members { actor: actor.user.clone() }).await? {
                OrgReply::Members { members } => Ok(Reply::json(200, &MemberList { members })),
                _ => unexpected("the organization"),
            }
        }
        Route::RemoveMember(user) => {
            let request = OrgRequest::RemoveMember {
                actor: actor.user.clone(),
                user: user.to_owned(),
                audit_id: audit_id()?,
                now,
            };
            org(stores, &actor.organization, request).await?;
            Ok(Reply::empty(204))
        }
        Route::Invitations => {
            match org(stores, &actor.organization, OrgRequest::Invitations { actor: actor.user.clone(), now }).await? {
                OrgReply::Invitations { invitations } => {
                    Ok(Reply::json(200, &keygate_shared::api::InvitationList { invitations }))
                }
                _ => unexpected("the organization"),
            }
        }
        Route::Invite => invite(stores, req, config, actor, now).await,
        Route::RevokeInvitation(id) => {
            let request = OrgRequest::RevokeInvitation {
                actor: actor.user.clone(),
                id: id.to_owned(),
                audit_id: audit_id()?,
                now,
            };
            org(stores, &actor.organization, request).await?;
            Ok(Reply::empty(204))
        }
        Route::AcceptInvitation => accept_invitation(stores, req, actor, now).await,
        Route::Projects => {
            match org(stores, &actor.organization, OrgRequest::Projects { actor: actor.user.clone() }).await? {
                OrgReply::Projects { projects } => Ok(Reply::json(200, &ProjectList { projects })),
                _ => unexpected("the organization"),
            }
        }
        Route::CreateProject => create_project(stores, req, actor, now).await,
        Route::RenameProject(id) => rename_project(stores, req, actor, id, now).await,
        Route::ListKeys => list_keys(stores, req, actor, now).await,
        Route::CreateKey => create_key(stores, req, actor, now).await,
        Route::GetKey(id) => {
            let (record, reply, owner_name) = snapshot(stores, actor, id, now).await?;
            let mut view = view_of(&record, &reply, now);
            view.owner_name = owner_name;
            Ok(Reply::json(200, &view))
        }
        Route::UpdateKey(id) => {
            let update: UpdateKeyRequest = body(req)?;
            if update.is_empty() {
                return Err(problem(Problem::bad_request("EMPTY_UPDATE", "Name at least one field to change.")));
            }
            change_key(stores, actor, id, KeyChange::Update { update, roles: vec![], identity: None }, now).await
        }
        Route::DeleteKey(id) => delete_key(stores, actor, id, now).await,
        Route::KeyAction(id, action) => key_action(stores, req, actor, id, action, now).await,
        Route::KeyErrors(id) => match snapshot(stores, actor, id, now).await?.1 {
            KeyReply::Snapshot { errors, .. } => Ok(Reply::json(200, &RecentErrors { errors })),
            _ => unexpected("the key"),
        },
        Route::KeyUsage(id) => match snapshot(stores, actor, id, now).await?.1 {
            KeyReply::Snapshot { usage, .. } => Ok(Reply::json(200, &usage)),
            _ => unexpected("the key"),
        },
        Route::Audit => audit(stores, req, actor, now).await,
        Route::RequestLog => request_log(stores, req, actor, None, now).await,
        Route::KeyRequests(id) => request_log(stores, req, actor, Some(key_id(id)?), now).await,
        Route::Settings => settings(stores, actor, now).await,
        Route::UpdateSettings => update_settings(stores, req, actor, now).await,
        Route::Permissions => permissions(stores, actor).await,
        Route::DescribePermission(name) => describe_permission(stores, req, actor, name, now).await,
        Route::Roles => {
            match org(stores, &actor.organization, OrgRequest::Roles { actor: actor.user.clone() }).await? {
                OrgReply::Roles { roles } => Ok(Reply::json(200, &RoleList { roles })),
                _ => unexpected("the organization"),
            }
        }
        Route::PutRole(name) => put_role(stores, req, actor, name, now).await,
        Route::Identities
        | Route::CreateIdentity
        | Route::GetIdentity(_)
        | Route::UpdateIdentity(_)
        | Route::DeleteIdentity(_) => identities(stores, req, actor, route, now).await,
        Route::Webhooks
        | Route::CreateWebhook
        | Route::UpdateWebhook(_)
        | Route::DeleteWebhook(_)
        | Route::TestWebhook(_)
        | Route::RotateWebhookSecret(_)
        | Route::WebhookDeliveries(_) => webhooks(stores, req, actor, route, now).await,
        Route::KeyLeaks(id) => {
            let request = OrgRequest::Leaks { actor: actor.user.clone(), key: key_id(id)? };
            match org(stores, &actor.organization, request).await? {
                OrgReply::Leaks { leaks } => Ok(Reply::json(200, &leaks)),
                _ => unexpected("the organization"),
            }
        }
        Route::KeySuggestions(id) => {
            let request = OrgRequest::Suggestions { actor: actor.user.clone(), key: key_id(id)?, now };
            match org(stores, &actor.organization, request).await? {
                OrgReply::Suggestions { list } => Ok(Reply::json(200, &list)),
                _ => unexpected("the organization"),
            }
        }
        Route::CanaryTrips => {
            let key = match req.query_param("key").filter(|k| !k.is_empty()) {
                Some(k) => Some(key_id(&k)?),
                None => None,
            };
            match org(stores, &actor.organization, OrgRequest::Trips { actor: actor.user.clone(), key }).await? {
                OrgReply::Trips { trips } => Ok(Reply::json(200, &trips)),
                _ => unexpected("the organization"),
            }
        }
        Route::DeleteRole(name) => {
            let request =
                OrgRequest::DeleteRole { actor: actor.user.clone(), name: name.to_owned(), audit_id: audit_id()?, now };
            match org(stores, &actor.organization, request).await? {
                OrgReply::Done => Ok(Reply::empty(204)),
                _ => unexpected("the organization"),
            }
        }
        Route::Usage => {
            match org(stores, &actor.organization, OrgRequest::Usage { actor: actor.user.clone() }).await? {
                OrgReply::Usage { usage } => Ok(Reply::json(200, &usage)),
                _ => unexpected("the organization"),
            }
        }
        Route::Seed if config.test_seed => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Seed {
                #[serde(default)]
                keys: u32,
                #[serde(default)]
                audit: u32,
                /// A key to make look `age_days` older in the index (least-privilege suggestions need 30 days).
                #[serde(default)]
                age_key: Option<String>,
                #[serde(default)]
                age_days: u32,
            }
            let seed: Seed = body(req)?;
            let request = OrgRequest::Seed {
                actor: actor.user.clone(),
                keys: seed.keys.min(20_000),
                audit: seed.audit.min(20_000),
                age: seed.age_key.map(|key| (key, seed.age_days.min(3_650))),
                now,
            };
            org(stores, &actor.organization, request).await?;
            Ok(Reply::empty(204))
        }
        Route::Seed => Err(problem(Problem::not_found("No such admin route; see /admin/v1/openapi.json."))),
    }
}

/// A JSON object body as `T`, refusing unknown fields and naming what is wrong. Only an object: serde would read a struct from an array too (`[]` as every field
/// left out), which is not what anyone sending one means.
fn body<T: DeserializeOwned>(req: &Incoming) -> Result<T, Reply> {
    let text = req.body.as_deref().unwrap_or("");
    if !text.trim_start().starts_with('{') {
        return Err(problem(Problem::bad_request("INVALID_BODY", "Send a JSON object as the request body.")));
    }
    parse_json(text)
}

/// Any JSON body as `T`, its errors as problems naming the field.
fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, Reply> {
    if text.trim().is_empty() {
        return Err(problem(Problem::bad_request("INVALID_BODY", "Send a JSON body.")));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return problem(Problem::bad_request("INVALID_BODY", format!("Malformed JSON: {inner}")));
        }
        // A missing field is reported at its parent's path: name the field itself.
        let message = inner.to_string();
        let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        let field = match (field.as_str(), missing) {
            (".", Some(name)) => name.to_owned(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            _ => field,
        };
        let p =
            Problem::new(422, "INVALID_BODY", "Invalid request body", format!("Invalid field `{field}`: {message}"));
        problem(if field == "." { p } else { p.with_field(field) })
    })
}

/// A body that may be empty (then `T::default()`).
fn optional_body<T: DeserializeOwned + Default>(req: &Incoming) -> Result<T, Reply> {
    if req.body.as_deref().is_none_or(|b| b.trim().is_empty()) { Ok(T::default()) } else { body(req) }
}

fn audit_id() -> Result<String, Reply> {
    new_id("evt").map_err(internal)
}

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap, sign-in, sessions

/// Issues a console token for `user`, acting by default in `organization`: a key of the reserved console project
/// with `admin:*`, expiring after the configured days, and a session row in the user's object.
async fn issue_console_token<S: Stores>(
    stores: &S,
    config: &Config,
    user: &str,
    organization: &str,
    label: &str,
    now: Timestamp,
) -> Result<(String, SessionInfo), Reply> {
    let mut token = ApiKey::generate(config.environment).map_err(internal)?;
    token.project_label = None;
    let permissions = vec![Permission::try_from(CONSOLE_PERMISSION).map_err(internal)?];
    let expires_at = now.plus_millis(config.console_token_ms);
    let record = KeyRecord {
        project: Some(CONSOLE_PROJECT.to_owned()),
        expires_at: Some(expires_at),
        ..KeyRecord::issued(&token, organization, user, format!("Console token: {label}"), permissions, now)
    };
    match key(stores, &token.id, KeyRequest::Create { record, audit_id: audit_id()?, now }).await? {
        KeyReply::Committed { .. } => {}
        _ => return unexpected("the token's object"),
    }
    let session = SessionInfo {
        id: token.id,
        label: label.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
        current: false,
    };
    // The user's object bounds their sessions: the oldest beyond the bound are signed out.
    match stores.user(user, UserRequest::AddSession { session: session.clone() }).await.map_err(unavailable)? {
        UserReply::Evicted { sessions } => {
            for old in sessions {
                let _ = stores.key(&old, KeyRequest::EndSession { user: user.to_owned(), now }).await;
            }
        }
        _ => return unexpected("the user's object"),
    }
    Ok((token.expose(), session))
}

async fn bootstrap<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Handled {
    // (1) The bootstrap secret, compared in constant time.
    let Some(expected) = config.bootstrap_token.as_deref() else {
        return Err(problem(Problem::new(
            403,
            "BOOTSTRAP_DISABLED",
            "Bootstrap disabled",
            "Set the KEYGATE_BOOTSTRAP_TOKEN secret to bootstrap this deployment.",
        )));
    };
    let given = req.header("authorization").and_then(credential::bearer_token).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(Reply::refusal(Code::NotFound, None));
    }
    // (2) An optional body names the organization and the owner.
    let request: BootstrapBody = optional_body(req)?;
    let org_name =
        validate_name("organization_name", request.organization_name.as_deref().unwrap_or("My organization"))
            .map_err(problem)?;
    let email = validate_email(request.email.as_deref().unwrap_or("owner@keygate.local")).map_err(problem)?;
    let name = validate_name("name", request.name.as_deref().unwrap_or("Owner")).map_err(problem)?;
    // (3) Reserve the first organization and owner, or resume a bootstrap that stopped half way.
    let begin = BootstrapRequest::Begin {
        organization: new_id("org").map_err(internal)?,
        user: new_id("usr").map_err(internal)?,
    };
    let (organization_id, user_id) = match stores.bootstrap(begin).await.map_err(unavailable)? {
        BootstrapReply::Started { organization, user } => (organization, user),
        BootstrapReply::AlreadyDone | BootstrapReply::Done => {
            return Err(problem(Problem::conflict(
                "ALREADY_BOOTSTRAPPED",
                "Keygate is already bootstrapped; sign in with a console token.",
            )));
        }
    };
    // (4) Each step is idempotent: the user, the organization with its owner, the first token, then done.
    let organization = Organization { id: organization_id.clone(), name: org_name, created_at: now };
    let profile = Profile { id: user_id.clone(), email: email.clone(), name: name.clone(), created_at: now };
    match stores.user(&user_id, UserRequest::Create { profile }).await.map_err(unavailable)? {
        UserReply::Done => {}
        _ => return unexpected("the user's object"),
    }
    let owner = NewMember { user: user_id.clone(), email: email.clone(), name: name.clone(), role: Role::Owner };
    let audit = keygate_shared::api::AuditEvent {
        id: audit_id()?,
        at: now,
        organization: organization_id.clone(),
        actor: Some(user_id.clone()),
        actor_name: None,
        action: keygate_shared::api::AuditAction::Bootstrap,
        target: None,
        detail: String::from("bootstrapped"),
    };
    org(stores, &organization_id, OrgRequest::Create { organization: organization.clone(), owner, audit }).await?;
    let (console_token, _) = issue_console_token(stores, config, &user_id, &organization_id, "bootstrap", now).await?;
    stores.bootstrap(BootstrapRequest::Finish).await.map_err(unavailable)?;
    let user = User {
        id: user_id,
        email,
        name,
        memberships: vec![Membership { organization: organization_id, role: Role::Owner }],
        created_at: now,
    };
    Ok(Reply::json(201, &BootstrapResponse { console_token, organization, user }))
}

/// The signed-in user, the organization they act for, and the console token they used.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: String,
    /// `Keygate-Org`, or the organization the token was issued in. Membership is checked by that organization's
    /// object on every request.
    pub organization: String,
    pub token: KeyId,
    pub token_expires_at: Option<Timestamp>,
}

async fn sign_in<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Result<SignedIn, Reply> {
    let endpoint = config.console_endpoint();
    let presented = credential::authenticate_headers(&req.headers, &[]);
    let claim = match precheck(presented, &endpoint) {
        Ok(claim) => claim,
        Err(code) => return Err(sign_in_refused(stores, req, code, None, now).await),
    };
    // Unknown ids stop at KV: a forged token never reaches (or creates) an object.
    let known = stores.record(&claim.id).await.map_err(unavailable)?;
    let Some(known) = known else { return Err(sign_in_refused(stores, req, Code::NotFound, None, now).await) };
    let authorize = KeyRequest::Authorize(Authorize {
        claim: claim.clone(),
        endpoint,
        permission: Some(Permission::try_from("admin:access").map_err(internal)?),
        organization: None,
        customer: None,
        client_ip: None,
        memberships: Vec::new(),
        lease: None,
        now,
    });
    match stores.key(&claim.id, authorize).await.map_err(unavailable)? {
        KeyReply::Authorized(Authorization { code: Code::Valid, record: Some(record), previously_used_at, .. }) => {
            // Sessions show when they were last used, refreshed at most once a minute.
            if previously_used_at.is_none_or(|t| now.millis() - t.millis() >= crate::user::TOUCH_EVERY_MS) {
                let _ = stores.user(&record.owner, UserRequest::Touch { key_id: claim.id, at: now }).await;
            }
            let organization = match req.header(ORG_HEADER) {
                None => record.organization.clone(),
                // Only a well-formed organization id reaches an object.
                Some(org) if org.strip_prefix("org_").is_some_and(|id| KeyId::parse(id).is_some()) => org.to_owned(),
                Some(_) => return Err(org_refusal(OrgRefusal::NotMember)),
            };
            Ok(SignedIn { user: record.owner, organization, token: claim.id, token_expires_at: record.expires_at })
        }
        KeyReply::Authorized(Authorization { code, .. }) => {
            Err(sign_in_refused(stores, req, code, Some((&claim, &known)), now).await)
        }
        _ => unexpected("the token's object"),
    }
}

/// A refused sign-in: audited in the organization of the token it named (once a minute per token), and limited
/// per source address: past the limit, failures answer 429 and are not audited.
async fn sign_in_refused<S: Stores>(
    stores: &S,
    req: &Incoming,
    code: Code,
    named: Option<(&Claim, &KeyRecord)>,
    now: Timestamp,
) -> Reply {
    if code != Code::MissingCredential {
        let source = req.header("cf-connecting-ip").unwrap_or("unknown");
        if stores.sign_in_failed(source).await {
            return problem(Problem::new(
                429,
                "TOO_MANY_FAILED_SIGN_INS",
                "Too many requests",
                "Too many failed sign-ins from this address; wait a minute. A valid console token still signs in.",
            ))
            .with_header("retry-after", "60");
        }
        if let (Some((claim, record)), Ok(id)) = (named, audit_id()) {
            let request = OrgRequest::SignInFailed {
                target: claim.id.to_string(),
                detail: format!("console sign-in refused: {}", code.as_str()),
                audit_id: id,
                now,
            };
            let _ = stores.org(&record.organization, request).await;
        }
    }
    let mut p = code.problem();
    p.detail = match code {
        Code::MissingCredential => "Sign in with a console token: `Authorization: Bearer <console token>`.".into(),
        Code::Expired => "This console token has expired: sign in with another one, or ask for an invitation.".into(),
        _ => {
            "This console token is not valid: check that you copied it whole, or ask an owner for an invitation.".into()
        }
    };
    let mut reply = Reply::problem(&p);
    if let Some(challenge) = code.www_authenticate(None) {
        reply.headers.push(("www-authenticate".into(), challenge));
    }
    reply
}

/// Who the user is (their object), and what they are in the organization they act for (its object).
async fn session<S: Stores>(stores: &S, actor: &SignedIn, now: Timestamp) -> Handled {
    let (organization, permissions, settings, roles) =
        match org(stores, &actor.organization, OrgRequest::Session { actor: actor.user.clone() }).await? {
            OrgReply::Session { organization, permissions, settings, roles } => {
                (organization, permissions, settings, roles)
            }
            _ => return unexpected("the organization"),
        };
    let (profile, mut organizations, sessions) =
        match stores.user(&actor.user, UserRequest::Read { now }).await.map_err(unavailable)? {
            UserReply::User { profile, organizations, sessions } => (profile, organizations, sessions),
            _ => return Err(not_found()),
        };
    // The organization's object is the authority: the switcher lists it even if the user's copy is behind.
    if !organizations.iter().any(|o| o.id == organization.id) {
        organizations.push(organization.clone());
    }
    let token = sessions.into_iter().find(|s| s.id == actor.token).map(|s| SessionInfo { current: true, ..s });
    let view = SessionView {
        user: keygate_shared::api::MemberView {
            id: profile.id,
            email: profile.email,
            name: profile.name,
            role: organization.role,
        },
        known_permissions: permissions.iter().map(|p| p.name.clone()).collect(),
        permissions,
        organization,
        organizations,
        token,
        token_expires_at: actor.token_expires_at,
        settings,
        roles,
    };
    Ok(Reply::json(200, &view))
}

async fn sessions<S: Stores>(stores: &S, actor: &SignedIn, now: Timestamp) -> Handled {
    match stores.user(&actor.user, UserRequest::Read { now }).await.map_err(unavailable)? {
        UserReply::User { sessions, .. } => {
            let sessions = sessions.into_iter().map(|s| SessionInfo { current: s.id == actor.token, ..s }).collect();
            Ok(Reply::json(200, &SessionList { sessions }))
        }
        _ => Err(not_found()),
    }
}

async fn create_session<S: Stores>(
    stores: &S,
    req: &Incoming,
    config: &Config,
    actor: &SignedIn,
    now: Timestamp,
) -> Handled {
    let request: CreateSessionRequest = optional_body(req)?;
    let label = validate_name("label", request.label.as_deref().unwrap_or("console")).map_err(problem)?;
    // Only a member of the organization can be given a token acting in it by default.
    org(
        stores,
        &actor.organization,
        OrgRequest::Authorize {
            actor: actor.user.clone(),
            action: OrgAction::ListMembers,
            key: None,
            roles: vec![],
            identity: None,
        },
    )
    .await?;
    let (console_token, session) =
        issue_console_token(stores, config, &actor.user, &actor.organization, &label, now).await?;
    Ok(Reply::json(201, &NewSession { console_token, session }))
}

/// Signs a session out: `current` (the token in use) or one of the user's own sessions by id.
async fn end_session<S: Stores>(stores: &S, actor: &SignedIn, id: &str, now: Timestamp) -> Handled {
    let id = if id == "current" { actor.token } else { KeyId::parse(id).ok_or_else(not_found)? };
    // The token's object deletes it only for its own user: nobody signs out someone else.
    match stores.key(&id, KeyRequest::EndSession { user: actor.user.clone(), now }).await.map_err(unavailable)? {
        KeyReply::Committed { .. } => {}
        KeyReply::Refused { .. } => return Err(not_found()),
        _ => return unexpected("the token's object"),
    }
    stores.user(&actor.user, UserRequest::RemoveSession { key_id: id }).await.map_err(unavailable)?;
    Ok(Reply::empty(204))
}

// ---------------------------------------------------------------------------------------------------------------
// Organizations, members, invitations, projects

async fn profile<S: Stores>(stores: &S, user: &str, now: Timestamp) -> Result<Profile, Reply> {
    match stores.user(user, UserRequest::Read { now }).await.map_err(unavailable)? {
        UserReply::User { profile, .. } => Ok(profile),
        _ => Err(not_found()),
    }
}

async fn create_organization<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    let request: CreateOrganizationRequest = body(req)?;
    let name = validate_name("name", &request.name).map_err(problem)?;
    let me = profile(stores, &actor.user, now).await?;
    let organization = Organization { id: new_id("org").map_err(internal)?, name, created_at: now };
    let owner = NewMember { user: me.id.clone(), email: me.email, name: me.name, role: Role::Owner };
    let audit = keygate_shared::api::AuditEvent {
        id: audit_id()?,
        at: now,
        organization: organization.id.clone(),
        actor: Some(me.id),
        actor_name: None,
        action: keygate_shared::api::AuditAction::CreateOrganization,
        target: None,
        detail: organization.name.clone(),
    };
    // A new organization is a new object: nothing done in it can reach into another one.
    org(stores, &organization.id, OrgRequest::Create { organization: organization.clone(), owner, audit }).await?;
    Ok(Reply::json(201, &organization))
}

/// An invitation code: `kginv_<organization id>_<secret>`. The organization routes the redemption to its object;
/// only the secret's SHA-256 is stored.
fn invitation_code(organization: &str) -> Result<String, Reply> {
    let org = organization.strip_prefix("org_").ok_or_else(|| problem(Problem::internal()))?;
    let secret = Secret::generate().map_err(internal)?;
    Ok(format!("{INVITATION_PREFIX}{org}_{}", secret.expose()))
}

/// The organization a code belongs to, and the hash stored for it.
fn parse_invitation_code(code: &str) -> Option<(String, String)> {
    let rest = code.trim().strip_prefix(INVITATION_PREFIX)?;
    let (org, secret) = rest.split_once('_')?;
    KeyId::parse(org)?;
    let secret_ok = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    secret_ok.then(|| (format!("org_{org}"), token_hash(code.trim())))
}

async fn invite<S: Stores>(stores: &S, req: &Incoming, config: &Config, actor: &SignedIn, now: Timestamp) -> Handled {
    let request: InviteMemberRequest = body(req)?;
    let email = validate_email(&request.email).map_err(problem)?;
    let name = validate_name("name", &request.name).map_err(problem)?;
    let code = invitation_code(&actor.organization)?;
    let invitation = NewInvitation {
        id: new_id("inv").map_err(internal)?,
        code_hash: token_hash(&code),
        email,
        name,
        role: request.role,
        expires_at: now.plus_millis(config.invitation_ms),
    };
    let request = OrgRequest::Invite { actor: actor.user.clone(), invitation, audit_id: audit_id()?, now };
    match org(stores, &actor.organization, request).await? {
        // The code is shown here once; only its hash is stored.
        OrgReply::Invitation { invitation } => Ok(Reply::json(201, &InviteMemberResponse { invitation, code })),
        _ => unexpected("the organization"),
    }
}

fn bad_code() -> Reply {
    problem(Problem::new(410, "INVITATION_INVALID", "Gone", "This invitation code is not valid."))
}

/// A new user joins with an invitation: the user's first console token is the answer. Anonymous: the code is the
/// credential. Safe to retry: a redemption that stopped half way resumes for the same new user.
async fn redeem_invitation<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Handled {
    let request: RedeemInvitationRequest = body(req)?;
    // Guessing codes is limited per source like failed sign-ins (a code carries 190 random bits; this keeps the
    // guessing from costing the organizations' objects).
    let refused = |reply: Reply| async move {
        let source = req.header("cf-connecting-ip").unwrap_or("unknown");
        if reply.status == 410 && stores.sign_in_failed(source).await {
            return problem(Problem::new(
                429,
                "TOO_MANY_FAILED_SIGN_INS",
                "Too many requests",
                "Too many invalid invitation codes from this address; wait a minute.",
            ))
            .with_header("retry-after", "60");
        }
        reply
    };
    let Some((organization, code_hash)) = parse_invitation_code(&request.code) else {
        return Err(refused(bad_code()).await);
    };
    let name = request.name.as_deref().map(|n| validate_name("name", n)).transpose().map_err(problem)?;
    let new_user = new_id("usr").map_err(internal)?;
    let member =
        NewMember { user: new_user, email: String::new(), name: name.clone().unwrap_or_default(), role: Role::Member };
    let claim = OrgRequest::Redeem { code_hash: code_hash.clone(), member, audit_id: audit_id()?, now };
    let (organization_view, user, _invitation) = match org(stores, &organization, claim).await {
        Ok(OrgReply::Joined { organization, user, invitation }) => (organization, user, invitation),
        Ok(_) => return unexpected("the organization"),
        Err(reply) => return Err(refused(reply).await),
    };
    let me = match stores.org(&organization, OrgRequest::Members { actor: user.clone() }).await.map_err(unavailable)? {
        Ok(OrgReply::Members { members }) => members.into_iter().find(|m| m.id == user),
        _ => None,
    }
    .ok_or_else(|| problem(Problem::internal()))?;
    let profile = Profile { id: user.clone(), email: me.email.clone(), name: me.name.clone(), created_at: now };
    stores.user(&user, UserRequest::Create { profile }).await.map_err(unavailable)?;
    let (console_token, session) = issue_console_token(stores, config, &user, &organization, "invitation", now).await?;
    org(stores, &organization, OrgRequest::Redeemed { code_hash }).await?;
    let answer = RedeemInvitationResponse {
        console_token,
        session,
        organization: organization_view,
        user: keygate_shared::api::MemberView { id: user, email: me.email, name: me.name, role: me.role },
    };
    Ok(Reply::json(201, &answer))
}

/// A signed-in user accepts an invitation for themselves: their own token now acts in the organization too.
async fn accept_invitation<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    let request: AcceptInvitationRequest = body(req)?;
    let (organization, code_hash) = parse_invitation_code(&request.code).ok_or_else(bad_code)?;
    let me = profile(stores, &actor.user, now).await?;
    let member = NewMember { user: me.id, email: me.email, name: me.name, role: Role::Member };
    let accept = OrgRequest::Accept { code_hash, member, audit_id: audit_id()?, now };
    match org(stores, &organization, accept).await? {
        OrgReply::Joined { organization, .. } => Ok(Reply::json(200, &organization)),
        _ => unexpected("the organization"),
    }
}

async fn create_project<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    let request: CreateProjectRequest = body(req)?;
    if !valid_slug(&request.slug) || request.slug == CONSOLE_PROJECT {
        return Err(problem(Problem::invalid_field(
            "slug",
            "a slug is 1-63 characters of a-z, 0-9 and - (and not `keygate-console`)",
        )));
    }
    let name = validate_name("name", &request.name).map_err(problem)?;
    let project = Project {
        id: new_id("prj").map_err(internal)?,
        organization: actor.organization.clone(),
        slug: request.slug,
        name,
        created_at: now,
    };
    let request = OrgRequest::CreateProject { actor: actor.user.clone(), project, audit_id: audit_id()?, now };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Project { project } => Ok(Reply::json(201, &project)),
        _ => unexpected("the organization"),
    }
}

async fn rename_project<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, id: &str, now: Timestamp) -> Handled {
    let request: RenameProjectRequest = body(req)?;
    let name = validate_name("name", &request.name).map_err(problem)?;
    let request =
        OrgRequest::RenameProject { actor: actor.user.clone(), id: id.to_owned(), name, audit_id: audit_id()?, now };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Project { project } => Ok(Reply::json(200, &project)),
        _ => unexpected("the organization"),
    }
}

/// Any member reads the organization's settings (the console shows them); they come with the session too.
async fn settings<S: Stores>(stores: &S, actor: &SignedIn, _now: Timestamp) -> Handled {
    match org(stores, &actor.organization, OrgRequest::Session { actor: actor.user.clone() }).await? {
        OrgReply::Session { settings, .. } => Ok(Reply::json(200, &settings)),
        _ => unexpected("the organization"),
    }
}

async fn update_settings<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    let change: UpdateSettingsRequest = body(req)?;
    change.apply_to(Default::default()).map_err(problem)?;
    let request = OrgRequest::UpdateSettings { actor: actor.user.clone(), change, audit_id: audit_id()?, now };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Settings { settings } => Ok(Reply::json(200, &settings)),
        _ => unexpected("the organization"),
    }
}

/// The organization's permission catalog (any member: the console's create dialog shows it).
async fn permissions<S: Stores>(stores: &S, actor: &SignedIn) -> Handled {
    match org(stores, &actor.organization, OrgRequest::Permissions { actor: actor.user.clone() }).await? {
        OrgReply::Permissions { permissions } => Ok(Reply::json(200, &PermissionList { permissions })),
        _ => unexpected("the organization"),
    }
}

async fn describe_permission<S: Stores>(
    stores: &S,
    req: &Incoming,
    actor: &SignedIn,
    name: &str,
    now: Timestamp,
) -> Handled {
    let request: DescribePermissionRequest = body(req)?;
    let (permission, description) = request.validate(name).map_err(problem)?;
    let name = permission.as_str().to_owned();
    let request =
        OrgRequest::DescribePermission { actor: actor.user.clone(), name, description, audit_id: audit_id()?, now };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Permissions { permissions } if permissions.len() == 1 => Ok(Reply::json(200, &permissions[0])),
        _ => unexpected("the organization"),
    }
}

/// Defines a role or changes it (owners and admins); the keys that hold it take the change within seconds.
async fn put_role<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, name: &str, now: Timestamp) -> Handled {
    let request: PutRoleRequest = body(req)?;
    let (role, description) = request.validate(name).map_err(problem)?;
    let request = OrgRequest::PutRole { actor: actor.user.clone(), role, description, audit_id: audit_id()?, now };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Roles { roles } if roles.len() == 1 => Ok(Reply::json(200, &roles[0])),
        _ => unexpected("the organization"),
    }
}

/// `/identities`: the organization's identities (customers whose keys share a name, metadata and one rate
/// limit). Any member reads them; owners and admins create, change and delete them.
async fn identities<S: Stores>(
    stores: &S,
    req: &Incoming,
    actor: &SignedIn,
    route: Route<'_>,
    now: Timestamp,
) -> Handled {
    let user = actor.user.clone();
    let (request, status) = match route {
        Route::Identities => {
            let cursor = req.query_param("cursor").filter(|c| !c.is_empty());
            (OrgRequest::Identities { actor: user, cursor }, 200)
        }
        Route::GetIdentity(id) => (OrgRequest::Identity { actor: user, id: id.to_owned() }, 200),
        Route::CreateIdentity => {
            let request: CreateIdentityRequest = body(req)?;
            let identity = request.validate(KeyIdentity::new_id().map_err(internal)?).map_err(problem)?;
            (OrgRequest::CreateIdentity { actor: user, identity, audit_id: audit_id()?, now }, 201)
        }
        Route::UpdateIdentity(id) => {
            let change: UpdateIdentityRequest = body(req)?;
            // Validated here too, so a bad body is refused before the organization's object is asked.
            let blank = KeyIdentity {
                id: String::new(),
                external_id: String::new(),
                name: String::new(),
                meta: None,
                rate_limit: None,
            };
            change.apply_to(&blank).map_err(problem)?;
            (OrgRequest::UpdateIdentity { actor: user, id: id.to_owned(), change, audit_id: audit_id()?, now }, 200)
        }
        Route::DeleteIdentity(id) => {
            (OrgRequest::DeleteIdentity { actor: user, id: id.to_owned(), audit_id: audit_id()?, now }, 204)
        }
        _ => return Err(problem(Problem::not_found("No such admin route."))),
    };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Identities { list } => Ok(Reply::json(status, &list)),
        OrgReply::Identity { identity } => Ok(Reply::json(status, &identity)),
        OrgReply::Done => Ok(Reply::empty(204)),
        _ => unexpected("the organization"),
    }
}

/// `/webhooks`: where the organization's events are posted (owners and admins). The signing secret is generated
/// here and answered once, by the creation.
async fn webhooks<S: Stores>(
    stores: &S,
    req: &Incoming,
    actor: &SignedIn,
    route: Route<'_>,
    now: Timestamp,
) -> Handled {
    let user = actor.user.clone();
    let mut secret = None;
    let mut previous_valid_until = None;
    let (request, status) = match route {
        Route::Webhooks => (OrgRequest::Webhooks { actor: user }, 200),
        Route::CreateWebhook => {
            let request: CreateWebhookRequest = body(req)?;
            request.validate().map_err(problem)?;
            let id = new_id("whk").map_err(internal)?;
            let generated = keygate_shared::webhook::generate_secret().map_err(internal)?;
            secret = Some(generated.clone());
            (OrgRequest::CreateWebhook { actor: user, id, request, secret: generated, audit_id: audit_id()?, now }, 201)
        }
        Route::UpdateWebhook(id) => {
            let change: UpdateWebhookRequest = body(req)?;
            change.validate().map_err(problem)?;
            (OrgRequest::UpdateWebhook { actor: user, id: id.to_owned(), change, audit_id: audit_id()?, now }, 200)
        }
        Route::DeleteWebhook(id) => {
            (OrgRequest::DeleteWebhook { actor: user, id: id.to_owned(), audit_id: audit_id()?, now }, 204)
        }
        Route::TestWebhook(id) => {
            (OrgRequest::TestWebhook { actor: user, id: id.to_owned(), event_id: audit_id()?, now }, 202)
        }
        Route::RotateWebhookSecret(id) => {
            // The body may be left out: the previous secret then signs beside the new one for a day.
            let request: RotateSecretRequest = optional_body(req)?;
            let previous_ms = i64::from(request.previous_seconds().map_err(problem)?) * 1_000;
            let generated = keygate_shared::webhook::generate_secret().map_err(internal)?;
            secret = Some(generated.clone());
            previous_valid_until = (previous_ms > 0).then(|| now.plus_millis(previous_ms));
            let id = id.to_owned();
            (
                OrgRequest::RotateWebhookSecret {
                    actor: user,
                    id,
                    secret: generated,
                    previous_ms,
                    audit_id: audit_id()?,
                    now,
                },
                200,
            )
        }
        Route::WebhookDeliveries(id) => (OrgRequest::Deliveries { actor: user, id: id.to_owned() }, 200),
        _ => return Err(problem(Problem::not_found("No such admin route."))),
    };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Webhooks { webhooks } => Ok(Reply::json(status, &WebhookList { webhooks })),
        OrgReply::Webhook { webhook } => match secret {
            Some(secret) if status == 201 => Ok(Reply::json(status, &CreatedWebhook { webhook, secret })),
            Some(secret) => Ok(Reply::json(status, &RotatedSecret { webhook, secret, previous_valid_until })),
            None => Ok(Reply::json(status, &webhook)),
        },
        OrgReply::Deliveries { deliveries } if status == 202 => match deliveries.deliveries.into_iter().next() {
            Some(delivery) => Ok(Reply::json(status, &delivery)),
            None => unexpected("the organization"),
        },
        OrgReply::Deliveries { deliveries } => Ok(Reply::json(status, &deliveries)),
        OrgReply::Done => Ok(Reply::empty(204)),
        _ => unexpected("the organization"),
    }
}

async fn audit<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    let cursor = match req.query_param("cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| problem(Problem::invalid_field("cursor", "use the next_cursor of a page")))?,
        ),
    };
    match org(stores, &actor.organization, OrgRequest::Audit { actor: actor.user.clone(), cursor, now }).await? {
        OrgReply::Audit { page } => Ok(Reply::json(200, &page)),
        _ => unexpected("the organization"),
    }
}

/// `GET /requests` and `GET /keys/{id}/requests`: a page of the request log, filtered
/// (`keygate_shared::requestlog::LogQuery`).
async fn request_log<S: Stores>(
    stores: &S,
    req: &Incoming,
    actor: &SignedIn,
    key: Option<KeyId>,
    now: Timestamp,
) -> Handled {
    let mut query = LogQuery::parse(|name| req.query_param(name)).map_err(problem)?;
    if let Some(id) = key {
        query.key = Some(id.to_string());
    }
    match org(stores, &actor.organization, OrgRequest::RequestLog { actor: actor.user.clone(), query, now }).await? {
        OrgReply::RequestLog { page } => Ok(Reply::json(200, &page)),
        _ => unexpected("the organization"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

/// The actor's role in the organization they act for, checked by its object (with `action`, and `project` when a
/// key is created for one).
async fn role<S: Stores>(
    stores: &S,
    actor: &SignedIn,
    action: OrgAction,
    key: Option<KeyId>,
) -> Result<(Role, Option<String>), Reply> {
    authorize(stores, actor, action, key, Named::default()).await.map(|a| (a.role, a.owner_name))
}

/// What a key change names that its organization defines: roles and an identity.
#[derive(Debug, Default)]
struct Named {
    roles: Vec<String>,
    identity: Option<String>,
}

/// The actor's role, the key owner's name, and the organization's definitions of what the change named.
#[derive(Debug)]
struct Authorized {
    role: Role,
    owner_name: Option<String>,
    roles: Vec<HeldRole>,
    identity: Option<KeyIdentity>,
}

/// [`role`], with the organization's definitions of the roles and identity `named` names (a name it does not
/// define is 422).
async fn authorize<S: Stores>(
    stores: &S,
    actor: &SignedIn,
    action: OrgAction,
    key: Option<KeyId>,
    named: Named,
) -> Result<Authorized, Reply> {
    let Named { roles, identity } = named;
    let request = OrgRequest::Authorize { actor: actor.user.clone(), action, key, roles, identity };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Role { role, owner_name, roles, identity } => Ok(Authorized { role, owner_name, roles, identity }),
        _ => unexpected("the organization"),
    }
}

fn key_actor(actor: &SignedIn, role: Role) -> Actor {
    Actor { user: actor.user.clone(), role, organization: actor.organization.clone() }
}

fn key_id(id: &str) -> Result<KeyId, Reply> {
    KeyId::parse(id).ok_or_else(not_found)
}

async fn list_keys<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    let filter =
        KeyFilter {
            project: req.query_param("project").filter(|p| !p.is_empty()),
            environment: match req.query_param("environment").filter(|e| !e.is_empty()) {
                Some(e) => {
                    Some(e.parse().map_err(|_| problem(Problem::invalid_field("environment", "live, test or dev")))?)
                }
                None => None,
            },
            status: match req.query_param("status").filter(|s| !s.is_empty()) {
                Some(s) => Some(serde_json::from_value::<KeyStatus>(serde_json::Value::String(s)).map_err(|_| {
                    problem(Problem::invalid_field("status", "active, inactive, expired or deactivated"))
                })?),
                None => None,
            },
            owner: req.query_param("owner").filter(|o| !o.is_empty()),
            include_deactivated: req.query_param("include_deactivated").is_some_and(|v| v == "true" || v == "1"),
            kind: match req.query_param("kind").filter(|k| !k.is_empty()).as_deref() {
                None => None,
                Some("single") => Some(KeyKind::Single),
                Some("pair") => Some(KeyKind::Pair),
                Some(_) => return Err(problem(Problem::invalid_field("kind", "single or pair"))),
            },
        };
    let cursor = req.query_param("cursor").filter(|c| !c.is_empty());
    let request = OrgRequest::ListKeys { actor: actor.user.clone(), filter, cursor, now };
    match org(stores, &actor.organization, request).await? {
        OrgReply::Keys { list } => Ok(Reply::json(200, &list)),
        _ => unexpected("the organization"),
    }
}

async fn create_key<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, now: Timestamp) -> Handled {
    // (2) Parse and validate everything before writing anything.
    let request: CreateKeyRequest = body(req)?;
    let settings = request.validate(now).map_err(problem)?;
    let named = Named { roles: settings.roles.clone(), identity: settings.identity.clone() };
    let Authorized { roles, identity, .. } = authorize(stores, actor, OrgAction::CreateKey, None, named).await?;
    if let Some(slug) = &request.project {
        let projects =
            match org(stores, &actor.organization, OrgRequest::Projects { actor: actor.user.clone() }).await? {
                OrgReply::Projects { projects } => projects,
                _ => return unexpected("the organization"),
            };
        if !projects.iter().any(|p| &p.slug == slug) {
            return Err(problem(Problem::invalid_field(
                "project",
                format!("no project `{slug}` in this organization"),
            )));
        }
    }
    // (3) A fresh key; only its hash is stored, in its own object, which then tells the organization.
    let mut fresh = ApiKey::generate(request.environment).map_err(internal)?;
    fresh.project_label = request.project.clone();
    let record = KeyRecord {
        project: request.project.clone(),
        customers: settings.customers,
        rate_limit: settings.rate_limit,
        expires_at: settings.expires_at,
        allowed_ips: settings.allowed_ips,
        own_organization_only: settings.own_organization_only,
        canary: settings.canary,
        meta: settings.meta,
        usage_limit: settings.usage_limit,
        roles: held_roles(&settings.roles, &roles).map_err(problem)?,
        identity: match settings.identity {
            Some(_) => Some(identity.ok_or_else(|| problem(unknown_identity()))?),
            None => None,
        },
        kind: request.kind,
        ..KeyRecord::issued(&fresh, &actor.organization, &actor.user, settings.name, settings.permissions, now)
    };
    let (record, revision, settled) =
        match key(stores, &fresh.id, KeyRequest::Create { record, audit_id: audit_id()?, now }).await? {
            KeyReply::Committed { record: Some(record), revision, settled, .. } => (record, revision, settled),
            _ => return unexpected("the key's object"),
        };
    let mut view = KeyView::of(&record, now, None, Default::default());
    // A new key has all its uses.
    view.usage.remaining = record.usage_limit.map(|limit| limit.uses);
    view.owner_name = Some(profile(stores, &actor.user, now).await.map(|p| p.name).unwrap_or_default());
    Ok(committed(Reply::json(201, &created(&fresh, record.kind, view)), revision, settled))
}

fn created(key: &ApiKey, kind: KeyKind, record: KeyView) -> CreatedKey {
    match kind {
        KeyKind::Single => CreatedKey::Single { key: key.expose(), record },
        KeyKind::Pair => CreatedKey::Pair { api_key: key.public_start(), api_secret: key.expose_pair_secret(), record },
    }
}

fn view_of(record: &KeyRecord, snapshot: &KeyReply, now: Timestamp) -> KeyView {
    match snapshot {
        KeyReply::Snapshot { usage, summary, .. } => KeyView::of(record, now, usage.last_used_at, *summary),
        _ => KeyView::of(record, now, None, Default::default()),
    }
}

/// The key's record, usage and errors, if the actor may see it (the key's object checks, against its record), and
/// its owner's name.
async fn snapshot<S: Stores>(
    stores: &S,
    actor: &SignedIn,
    id: &str,
    now: Timestamp,
) -> Result<(KeyRecord, KeyReply, Option<String>), Reply> {
    let id = key_id(id)?;
    let (role, owner_name) = role(stores, actor, OrgAction::ListMembers, Some(id)).await?;
    let reply = key(stores, &id, KeyRequest::Snapshot { actor: Some(key_actor(actor, role)), now }).await?;
    match &reply {
        KeyReply::Snapshot { record: Some(record), .. } => Ok((record.clone(), reply, owner_name)),
        _ => Err(not_found()),
    }
}

async fn change_key<S: Stores>(
    stores: &S,
    actor: &SignedIn,
    id: &str,
    mut change: KeyChange,
    now: Timestamp,
) -> Handled {
    let id = key_id(id)?;
    // An edit naming roles carries the organization's definitions of them to the key's object.
    let named = match &change {
        KeyChange::Update { update, .. } => Named {
            roles: update.roles.as_deref().map(validate_role_names).transpose().map_err(problem)?.unwrap_or_default(),
            identity: match &update.identity {
                Some(Some(id)) => Some(validate_identity_id(id).map_err(problem)?),
                _ => None,
            },
        },
        _ => Named::default(),
    };
    let authorized = authorize(stores, actor, OrgAction::ListMembers, Some(id), named).await?;
    let (role, owner_name) = (authorized.role, authorized.owner_name);
    if let KeyChange::Update { roles, identity, .. } = &mut change {
        *roles = authorized.roles;
        *identity = authorized.identity;
    }
    let request = KeyRequest::Change { actor: key_actor(actor, role), change, audit_id: audit_id()?, now };
    match key(stores, &id, request).await? {
        // The change is committed: the answer says so even if KV or the organization learn it a little later.
        KeyReply::Committed { record: Some(record), revision, settled, remaining } => {
            let mut view = KeyView::of(&record, now, None, Default::default());
            view.usage.remaining = remaining;
            view.owner_name = owner_name;
            Ok(committed(Reply::json(200, &view), revision, settled))
        }
        _ => unexpected("the key's object"),
    }
}

async fn key_action<S: Stores>(
    stores: &S,
    req: &Incoming,
    actor: &SignedIn,
    id: &str,
    action: &str,
    now: Timestamp,
) -> Handled {
    let change = match action {
        "revoke" => KeyChange::Revoke,
        "activate" => KeyChange::Activate,
        "deactivate" => KeyChange::Deactivate,
        "regenerate" => return regenerate(stores, req, actor, id, now).await,
        _ => return Err(problem(Problem::not_found("No such key action."))),
    };
    change_key(stores, actor, id, change, now).await
}

/// A new secret for the key, shown once. Once the key's object has committed it, the answer carries it: nothing
/// that fails afterwards (the organization's index, the audit log: both retried by the key's object) loses it.
async fn regenerate<S: Stores>(stores: &S, req: &Incoming, actor: &SignedIn, id: &str, now: Timestamp) -> Handled {
    let request: RegenerateKeyRequest = optional_body(req)?;
    let grace = request.validate().map_err(problem)?;
    let key_id = key_id(id)?;
    let (role, owner_name) = role(stores, actor, OrgAction::ListMembers, Some(key_id)).await?;
    // The environment and kind come from the record: read it (the object checks visibility).
    let current = match key(stores, &key_id, KeyRequest::Snapshot { actor: Some(key_actor(actor, role)), now }).await? {
        KeyReply::Snapshot { record: Some(record), .. } => record,
        _ => return Err(not_found()),
    };
    let fresh = ApiKey {
        project_label: current.project.clone(),
        label: None,
        environment: current.environment,
        id: key_id,
        secret: Secret::generate().map_err(internal)?,
    };
    let change = KeyChange::Regenerate {
        secret_hash: SecretHash::of(&fresh),
        grace_until: (grace > 0).then(|| now.plus_secs(i64::from(grace))),
    };
    let request = KeyRequest::Change { actor: key_actor(actor, role), change, audit_id: audit_id()?, now };
    match key(stores, &key_id, request).await? {
        KeyReply::Committed { record: Some(record), revision, settled, remaining } => {
            let mut view = KeyView::of(&record, now, None, Default::default());
            view.usage.remaining = remaining;
            view.owner_name = owner_name;
            Ok(committed(Reply::json(200, &created(&fresh, record.kind, view)), revision, settled))
        }
        _ => unexpected("the key's object"),
    }
}

async fn delete_key<S: Stores>(stores: &S, actor: &SignedIn, id: &str, now: Timestamp) -> Handled {
    let id = key_id(id)?;
    let (role, _) = role(stores, actor, OrgAction::ListMembers, Some(id)).await?;
    let request = KeyRequest::Delete { actor: key_actor(actor, role), audit_id: audit_id()?, now };
    match key(stores, &id, request).await? {
        KeyReply::Committed { revision, settled, .. } => Ok(committed(Reply::empty(204), revision, settled)),
        _ => unexpected("the key's object"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Leak reports

/// The actor a leak report's revocation is audited under (no user revoked it; managers may activate it again).
pub const LEAK_RESPONSE_ACTOR: &str = "keygate:leak-response";

/// `POST /v1/leaks`: reports of leaked tokens, signed by a configured key (`crate::leaks`). Each token that is a
/// live key (its secret matches) is recorded by its organization, which says whether to revoke it; a leaked console
/// token is signed out at once. The answer labels every report by the token's hash, in the order received.
pub async fn leak_reports<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Reply {
    match leaks(stores, req, config, now).await {
        Ok(reply) | Err(reply) => reply,
    }
}

async fn leaks<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Handled {
    use keygate_shared::hash::SecretHash;
    use keygate_shared::key::ApiKey;
    use keygate_shared::leak::{LeakLabel, LeakReport, LeakResponse, LeakVerdict, MAX_REPORTS, token_hash};

    let Some(keys) = &config.leak_keys else {
        return Err(problem(Problem::new(
            503,
            "MISCONFIGURED",
            "Leak reports are not configured",
            "This deployment trusts no reporter yet: set KEYGATE_LEAK_PUBLIC_KEYS.",
        )));
    };
    if req.body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(problem(Problem::new(413, "PAYLOAD_TOO_LARGE", "Payload too large", "At most 64 KiB.")));
    }
    let signed = match (req.header(crate::leaks::IDENTIFIER_HEADER), req.header(crate::leaks::SIGNATURE_HEADER)) {
        (Some(id), Some(signature)) => keys.verify(id, signature, req.body.as_deref().unwrap_or("").as_bytes()),
        _ => false,
    };
    if !signed {
        return Err(problem(Problem::new(
            401,
            "INVALID_SIGNATURE",
            "Unauthorized",
            "Sign the body with a configured key: Github-Public-Key-Identifier and Github-Public-Key-Signature.",
        )));
    }
    let reports: Vec<LeakReport> = parse_json(req.body.as_deref().unwrap_or(""))?;
    if reports.len() > MAX_REPORTS {
        return Err(problem(Problem::bad_request("INVALID_BODY", "At most 100 reports per request.")));
    }
    let mut verdicts = Vec::with_capacity(reports.len());
    for report in reports {
        let live = match report.token.trim().parse::<ApiKey>() {
            Err(_) => None,
            Ok(key) => match stores.record(&key.id).await.map_err(unavailable)? {
                Some(record) if record.secret_matches(&SecretHash::of(&key), now) => Some(record),
                _ => None,
            },
        };
        if let Some(record) = &live {
            if record.project.as_deref() == Some(keygate_shared::decision::CONSOLE_PROJECT) {
                // A console token: signed out at once, whatever the organization's setting.
                stores
                    .key(&record.id, KeyRequest::EndSession { user: record.owner.clone(), now })
                    .await
                    .map_err(unavailable)?;
            } else {
                let leaked = OrgRequest::Leaked {
                    key: record.id,
                    url: report.url.clone(),
                    source: report.source.clone(),
                    reported_as: report.kind.clone(),
                    audit_id: audit_id()?,
                    now,
                };
                let response = match org(stores, &record.organization, leaked).await? {
                    OrgReply::LeakResponse { response } => response,
                    _ => return unexpected("the organization"),
                };
                if response == Some(LeakResponse::Revoke) {
                    let actor = Actor {
                        user: LEAK_RESPONSE_ACTOR.into(),
                        role: Role::Owner,
                        organization: record.organization.clone(),
                    };
                    let change = KeyRequest::Change { actor, change: KeyChange::Revoke, audit_id: audit_id()?, now };
                    // Refused only when the key is no longer active (revoked meanwhile): nothing left to do.
                    stores.key(&record.id, change).await.map_err(unavailable)?;
                }
            }
        }
        verdicts.push(LeakVerdict {
            token_hash: token_hash(&report.token),
            token_type: report.kind,
            label: if live.is_some() { LeakLabel::TruePositive } else { LeakLabel::FalsePositive },
        });
    }
    Ok(Reply::json(200, &verdicts))
}
