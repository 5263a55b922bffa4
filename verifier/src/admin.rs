//! The admin API under `/admin/v1`: bootstrap, console sign-in, organizations and members, projects, the key
//! lifecycle, usage, recent errors and the audit log. Platform-free over [`Stores`].
//!
//! Each handler reads as steps: (1) sign in, (2) parse and validate, (3) decide who may do what, (4) write through the
//! key's Durable Object (which then writes KV) and the directory, (5) answer.

use keygate_shared::api::{
    AuditAction, AuditEvent, AuditPage, BootstrapRequest, BootstrapResponse, CreateKeyRequest, CreateProjectRequest,
    CreatedKey, InviteMemberRequest, InviteMemberResponse, KeyFilter, KeyList, KeyView, MAX_BODY_BYTES, MemberView,
    ProjectList, RecentErrors, RegenerateKeyRequest, RenameProjectRequest, SessionView, UpdateKeyRequest, UsageSummary,
    memberships_view, validate_email, validate_name,
};
use keygate_shared::decision::{Access, CONSOLE_PROJECT, Demand};
use keygate_shared::hash::{SecretHash, constant_time_eq};
use keygate_shared::key::{ApiKey, KeyId};
use keygate_shared::model::{
    GraceSecret, KeyKind, KeyRecord, KeyStatus, LifecycleAction, Membership, Organization, Permission, Project, Role,
    Transition, User, new_id, valid_slug,
};
use keygate_shared::problem::Problem;
use keygate_shared::time::Timestamp;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::directory::{Directory, DirectoryReply, DirectoryRequest, KeyIndex};
use crate::gateway::{Consult, ORG_HEADER, Refusal, authenticate, presented};
use crate::keyobject::{ObjectReply, ObjectRequest};
use crate::reply::{Incoming, Reply};
use crate::store::Stores;

/// Permissions of console tokens.
pub const CONSOLE_PERMISSION: &str = "admin:*";
const PAGE_SIZE: usize = 50;

type Handled = Result<Reply, Reply>;

fn problem(p: Problem) -> Reply {
    Reply::problem(&p)
}

fn unavailable<E>(_: E) -> Reply {
    Reply::unavailable()
}

fn not_found() -> Reply {
    problem(Problem::not_found("No such key, project or member in this organization."))
}

/// Every admin route, as parsed from method and path. The OpenAPI document lists exactly these (a test checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Bootstrap,
    OpenApi,
    Session,
    CreateOrganization,
    Members,
    InviteMember,
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
    Audit,
}

impl<'a> Route<'a> {
    /// `path` is the part after `/admin/v1`.
    pub fn parse(method: &str, path: &'a str) -> Option<Route<'a>> {
        let segments: Vec<&'a str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route = match (method, segments.as_slice()) {
            ("POST", ["bootstrap"]) => Route::Bootstrap,
            ("GET", ["openapi.json"]) => Route::OpenApi,
            ("GET", ["session"]) => Route::Session,
            ("POST", ["organizations"]) => Route::CreateOrganization,
            ("GET", ["members"]) => Route::Members,
            ("POST", ["members"]) => Route::InviteMember,
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
            ("GET", ["audit"]) => Route::Audit,
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
            ["GET", "POST", "PATCH", "DELETE"].into_iter().filter(|m| Route::parse(m, path).is_some()).collect();
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
    actor: &Actor,
    route: Route<'_>,
    now: Timestamp,
) -> Handled {
    match route {
        Route::Bootstrap | Route::OpenApi => Err(problem(Problem::internal())),
        Route::Session => session(actor),
        Route::CreateOrganization => create_organization(stores, req, actor, now).await,
        Route::Members => members(actor),
        Route::InviteMember => invite_member(stores, req, config, actor, now).await,
        Route::Projects => projects(actor),
        Route::CreateProject => create_project(stores, req, actor, now).await,
        Route::RenameProject(id) => rename_project(stores, req, actor, id, now).await,
        Route::ListKeys => list_keys(stores, req, actor, now).await,
        Route::CreateKey => create_key(stores, req, actor, now).await,
        Route::GetKey(id) => get_key(stores, actor, id, now).await,
        Route::UpdateKey(id) => update_key(stores, req, actor, id, now).await,
        Route::DeleteKey(id) => delete_key(stores, actor, id, now).await,
        Route::KeyAction(id, action) => key_action(stores, req, actor, id, action, now).await,
        Route::KeyErrors(id) => key_errors(stores, actor, id, now).await,
        Route::KeyUsage(id) => key_usage(stores, actor, id, now).await,
        Route::Audit => audit(req, actor),
    }
}

/// The `cursor` query parameter: a position handed out as a page's `next_cursor` (at most 1,000,000).
fn cursor(req: &Incoming) -> Result<usize, Reply> {
    const MAX_CURSOR: usize = 1_000_000;
    match req.query_param("cursor") {
        None => Ok(0),
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_CURSOR)
            .ok_or_else(|| problem(Problem::invalid_field("cursor", "use the next_cursor of a page"))),
    }
}

/// Parses a JSON body into `T`, refusing unknown fields and naming what is wrong.
fn body<T: DeserializeOwned>(req: &Incoming) -> Result<T, Reply> {
    let text = req.body.as_deref().unwrap_or("");
    if text.trim().is_empty() {
        return Err(problem(Problem::bad_request("INVALID_BODY", "Send a JSON object as the request body.")));
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

async fn directory<S: Stores>(stores: &S) -> Result<Directory, Reply> {
    match stores.directory(&DirectoryRequest::Read).await.map_err(unavailable)? {
        DirectoryReply::Snapshot { directory } => Ok(*directory),
        _ => Err(Reply::unavailable()),
    }
}

async fn change<S: Stores>(stores: &S, request: DirectoryRequest) -> Result<(), Reply> {
    match stores.directory(&request).await.map_err(unavailable)? {
        DirectoryReply::Conflict { detail } => Err(problem(Problem::conflict("CONFLICT", detail))),
        _ => Ok(()),
    }
}

async fn record_audit<S: Stores>(
    stores: &S,
    actor: Option<&str>,
    organization: &str,
    action: AuditAction,
    target: Option<String>,
    detail: String,
    now: Timestamp,
) -> Result<(), Reply> {
    let id = new_id("evt").map_err(|_| problem(Problem::internal()))?;
    let event = AuditEvent {
        id,
        at: now,
        organization: organization.to_owned(),
        actor: actor.map(str::to_owned),
        action,
        target,
        detail,
    };
    change(stores, DirectoryRequest::Audit { event }).await
}

/// Records what the signed-in actor did in their organization.
async fn audit_by<S: Stores>(
    stores: &S,
    actor: &Actor,
    action: AuditAction,
    target: Option<String>,
    detail: String,
    now: Timestamp,
) -> Result<(), Reply> {
    record_audit(stores, Some(&actor.user.id), &actor.organization, action, target, detail, now).await
}

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap and sign-in

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
    let given = req.header("authorization").and_then(keygate_shared::credential::bearer_token).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(Reply::refusal(keygate_shared::decision::Code::NotFound, None));
    }
    // (2) An optional body names the organization and the owner.
    let request: BootstrapRequest = if req.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
        BootstrapRequest { organization_name: None, email: None, name: None }
    } else {
        body(req)?
    };
    let org_name =
        validate_name("organization_name", request.organization_name.as_deref().unwrap_or("My organization"))
            .map_err(problem)?;
    let email = validate_email(request.email.as_deref().unwrap_or("owner@keygate.local")).map_err(problem)?;
    let name = validate_name("name", request.name.as_deref().unwrap_or("Owner")).map_err(problem)?;
    // (3) Only on an empty store.
    if !directory(stores).await?.is_empty() {
        return Err(problem(Problem::conflict(
            "ALREADY_BOOTSTRAPPED",
            "Keygate is already bootstrapped; sign in with a console token.",
        )));
    }
    let internal = |_| problem(Problem::internal());
    let organization = Organization { id: new_id("org").map_err(internal)?, name: org_name, created_at: now };
    let user = User {
        id: new_id("usr").map_err(internal)?,
        email,
        name,
        memberships: vec![Membership { organization: organization.id.clone(), role: Role::Owner }],
        created_at: now,
    };
    // (4) The directory first (it refuses a second bootstrap), then the console token.
    change(stores, DirectoryRequest::Bootstrap { organization: organization.clone(), user: user.clone() }).await?;
    let console_token = issue_console_token(stores, config, &user, &organization.id, now).await?;
    record_audit(stores, Some(&user.id), &organization.id, AuditAction::Bootstrap, None, "bootstrapped".into(), now)
        .await?;
    Ok(Reply::json(201, &BootstrapResponse { console_token, organization, user }))
}

/// Creates a console token for `user`: a key of the reserved console project with `admin:*`.
async fn issue_console_token<S: Stores>(
    stores: &S,
    config: &Config,
    user: &User,
    organization: &str,
    now: Timestamp,
) -> Result<String, Reply> {
    let mut key = ApiKey::generate(config.endpoint.environment).map_err(|_| problem(Problem::internal()))?;
    key.project_label = None;
    let permissions = vec![Permission::try_from(CONSOLE_PERMISSION).map_err(|_| problem(Problem::internal()))?];
    let name = format!("Console token of {}", user.email);
    let record = KeyRecord {
        project: Some(CONSOLE_PROJECT.to_owned()),
        ..KeyRecord::issued(&key, organization, user, name, permissions, now)
    };
    put_record(stores, &record).await?;
    change(stores, DirectoryRequest::AddKey { index: KeyIndex::of(&record, true) }).await?;
    Ok(key.expose())
}

async fn put_record<S: Stores>(stores: &S, record: &KeyRecord) -> Result<(), Reply> {
    stores.object(&record.id, &ObjectRequest::Put { record: record.clone() }).await.map_err(unavailable)?;
    Ok(())
}

/// The signed-in user, the organization they act for, and their role there.
#[derive(Debug)]
pub struct Actor {
    pub user: User,
    pub organization: String,
    pub role: Role,
    pub directory: Directory,
}

async fn sign_in<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Result<Actor, Reply> {
    let access = Permission::try_from("admin:access").map_err(|_| problem(Problem::internal()))?;
    let demand = Demand { access: Access::Permission(&access), organization: req.header(ORG_HEADER), customer: None };
    let credential = presented(req, config);
    let claimed_id = credential.as_ref().ok().map(|k| k.id);
    let endpoint = config.console_endpoint();
    match authenticate(stores, credential, &endpoint, demand, Consult::Always, now).await {
        Ok(pass) => {
            let directory = directory(stores).await?;
            let user = directory.user(&pass.record.owner).cloned().ok_or_else(not_found)?;
            let role = user.role_in(&pass.organization).ok_or_else(not_found)?;
            Ok(Actor { user, organization: pass.organization, role, directory })
        }
        // Storage did not answer: nothing was decided.
        Err(Refusal { code: None, reply, .. }) => Err(reply),
        Err(Refusal { code: Some(code), .. }) => {
            // Failed sign-ins are audited in the organization of the key they named, when it exists.
            if let Some(id) = claimed_id
                && let Ok(Some(record)) = stores.record(&id).await
            {
                let detail = format!("console sign-in refused: {}", code.as_str());
                let _ = record_audit(
                    stores,
                    None,
                    &record.organization,
                    AuditAction::SignInFailed,
                    Some(id.to_string()),
                    detail,
                    now,
                )
                .await;
            }
            let mut p = code.problem();
            p.detail = match code {
                keygate_shared::decision::Code::MissingCredential => {
                    "Sign in with a console token: `Authorization: Bearer <console token>`.".into()
                }
                keygate_shared::decision::Code::ForbiddenOrganization => {
                    "You are not a member of the organization named in `Keygate-Org`.".into()
                }
                _ => "This console token is not valid: check that you copied it whole, or ask an owner for a new one."
                    .into(),
            };
            let mut reply = Reply::problem(&p);
            if let Some(challenge) = code.www_authenticate(None) {
                reply.headers.push(("www-authenticate".into(), challenge));
            }
            Err(reply)
        }
    }
}

fn session(actor: &Actor) -> Handled {
    let organizations = memberships_view(&actor.user, &actor.directory.organizations);
    let organization = organizations.iter().find(|o| o.id == actor.organization).cloned().ok_or_else(not_found)?;
    Ok(Reply::json(
        200,
        &SessionView {
            user: MemberView::of(&actor.user, actor.role),
            organization,
            organizations,
            known_permissions: {
                let mut known: Vec<String> = actor
                    .directory
                    .keys
                    .iter()
                    .filter(|k| k.organization == actor.organization && !k.console)
                    .flat_map(|k| k.permissions.iter().cloned())
                    .collect();
                known.sort();
                known.dedup();
                known
            },
        },
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Organizations, members, projects

fn require_manager(actor: &Actor) -> Result<(), Reply> {
    if actor.role.manages_organization() {
        Ok(())
    } else {
        Err(problem(Problem::new(
            403,
            "FORBIDDEN",
            "Forbidden",
            "Only owners and admins of the organization may do this.",
        )))
    }
}

async fn create_organization<S: Stores>(stores: &S, req: &Incoming, actor: &Actor, now: Timestamp) -> Handled {
    let request: keygate_shared::api::CreateOrganizationRequest = body(req)?;
    let name = validate_name("name", &request.name).map_err(problem)?;
    let organization =
        Organization { id: new_id("org").map_err(|_| problem(Problem::internal()))?, name, created_at: now };
    change(
        stores,
        DirectoryRequest::AddOrganization { organization: organization.clone(), owner: actor.user.id.clone() },
    )
    .await?;
    let mut user = actor.user.clone();
    user.memberships.push(Membership { organization: organization.id.clone(), role: Role::Owner });
    refresh_owner_organizations(stores, &actor.directory, &user, now).await?;
    record_audit(
        stores,
        Some(&actor.user.id),
        &organization.id,
        AuditAction::CreateOrganization,
        None,
        organization.name.clone(),
        now,
    )
    .await?;
    Ok(Reply::json(201, &organization))
}

fn members(actor: &Actor) -> Handled {
    let members: Vec<MemberView> = actor
        .directory
        .users
        .iter()
        .filter_map(|u| u.role_in(&actor.organization).map(|role| MemberView::of(u, role)))
        .collect();
    Ok(Reply::json(200, &serde_json::json!({ "members": members })))
}

async fn invite_member<S: Stores>(
    stores: &S,
    req: &Incoming,
    config: &Config,
    actor: &Actor,
    now: Timestamp,
) -> Handled {
    require_manager(actor)?;
    let request: InviteMemberRequest = body(req)?;
    let email = validate_email(&request.email).map_err(problem)?;
    let name = validate_name("name", &request.name).map_err(problem)?;
    if request.role == Role::Owner && actor.role != Role::Owner {
        return Err(problem(Problem::invalid_field("role", "only owners may invite owners")));
    }
    let membership = Membership { organization: actor.organization.clone(), role: request.role };
    let existing = actor.directory.users.iter().find(|u| u.email == email).cloned();
    if existing.as_ref().is_some_and(|u| u.role_in(&actor.organization).is_some()) {
        return Err(problem(Problem::conflict("ALREADY_MEMBER", "This user is already a member of the organization.")));
    }
    let user = match existing {
        Some(mut u) => {
            u.memberships.push(membership);
            u
        }
        None => User {
            id: new_id("usr").map_err(|_| problem(Problem::internal()))?,
            email,
            name,
            memberships: vec![membership],
            created_at: now,
        },
    };
    change(stores, DirectoryRequest::AddUser { user: user.clone() }).await?;
    refresh_owner_organizations(stores, &actor.directory, &user, now).await?;
    let console_token = issue_console_token(stores, config, &user, &actor.organization, now).await?;
    audit_by(
        stores,
        actor,
        AuditAction::InviteMember,
        Some(user.id.clone()),
        format!("{} as {}", user.email, request.role.as_str()),
        now,
    )
    .await?;
    Ok(Reply::json(201, &InviteMemberResponse { member: MemberView::of(&user, request.role), console_token }))
}

/// Keys carry their owner's organizations (so `Keygate-Org` is checked with one read); when a user joins an
/// organization, their keys learn it.
async fn refresh_owner_organizations<S: Stores>(
    stores: &S,
    directory: &Directory,
    user: &User,
    now: Timestamp,
) -> Result<(), Reply> {
    let organizations: Vec<String> = user.memberships.iter().map(|m| m.organization.clone()).collect();
    for index in directory.keys.iter().filter(|k| k.owner == user.id) {
        let Ok((mut record, _)) = snapshot(stores, &index.id, now).await else { continue };
        if record.owner_organizations != organizations {
            record.owner_organizations = organizations.clone();
            put_record(stores, &record).await?;
        }
    }
    Ok(())
}

fn projects(actor: &Actor) -> Handled {
    let projects: Vec<Project> =
        actor.directory.projects.iter().filter(|p| p.organization == actor.organization).cloned().collect();
    Ok(Reply::json(200, &ProjectList { projects }))
}

async fn create_project<S: Stores>(stores: &S, req: &Incoming, actor: &Actor, now: Timestamp) -> Handled {
    require_manager(actor)?;
    let request: CreateProjectRequest = body(req)?;
    if !valid_slug(&request.slug) || request.slug == CONSOLE_PROJECT {
        return Err(problem(Problem::invalid_field(
            "slug",
            "a slug is 1-63 characters of a-z, 0-9 and - (and not `keygate-console`)",
        )));
    }
    let name = validate_name("name", &request.name).map_err(problem)?;
    let project = Project {
        id: new_id("prj").map_err(|_| problem(Problem::internal()))?,
        organization: actor.organization.clone(),
        slug: request.slug,
        name,
        created_at: now,
    };
    change(stores, DirectoryRequest::AddProject { project: project.clone() }).await?;
    audit_by(stores, actor, AuditAction::CreateProject, Some(project.slug.clone()), project.name.clone(), now).await?;
    Ok(Reply::json(201, &project))
}

async fn rename_project<S: Stores>(stores: &S, req: &Incoming, actor: &Actor, id: &str, now: Timestamp) -> Handled {
    require_manager(actor)?;
    let request: RenameProjectRequest = body(req)?;
    let name = validate_name("name", &request.name).map_err(problem)?;
    let mut project = actor
        .directory
        .projects
        .iter()
        .find(|p| p.organization == actor.organization && (p.id == id || p.slug == id))
        .cloned()
        .ok_or_else(not_found)?;
    change(stores, DirectoryRequest::RenameProject { id: project.id.clone(), name: name.clone() }).await?;
    audit_by(
        stores,
        actor,
        AuditAction::RenameProject,
        Some(project.slug.clone()),
        format!("{} → {name}", project.name),
        now,
    )
    .await?;
    project.name = name;
    Ok(Reply::json(200, &project))
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

/// The key `id` if the actor may see it: same organization (else 404, so ids do not leak), and either their own key
/// or a manager's view.
fn visible_key<'a>(actor: &'a Actor, id: &str) -> Result<&'a KeyIndex, Reply> {
    let id = KeyId::parse(id).ok_or_else(not_found)?;
    let index = actor.directory.key(&id).ok_or_else(not_found)?;
    let visible = index.organization == actor.organization
        && !index.console
        && (index.owner == actor.user.id || actor.role.manages_all_keys());
    if visible { Ok(index) } else { Err(not_found()) }
}

async fn snapshot<S: Stores>(stores: &S, id: &KeyId, now: Timestamp) -> Result<(KeyRecord, ObjectReply), Reply> {
    let reply = stores.object(id, &ObjectRequest::Snapshot { now }).await.map_err(unavailable)?;
    match &reply {
        ObjectReply::Snapshot { record: Some(record), .. } => Ok((record.clone(), reply.clone())),
        _ => Err(not_found()),
    }
}

fn view(actor: &Actor, record: &KeyRecord, snapshot: &ObjectReply, now: Timestamp) -> KeyView {
    let (last_used, summary) = match snapshot {
        ObjectReply::Snapshot { usage, summary, .. } => (usage.last_used_at, *summary),
        _ => (None, UsageSummary::default()),
    };
    let mut v = KeyView::of(record, now, last_used, summary);
    v.owner_name = actor.directory.user(&record.owner).map(|u| u.name.clone());
    v
}

async fn list_keys<S: Stores>(stores: &S, req: &Incoming, actor: &Actor, now: Timestamp) -> Handled {
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
        };
    let offset = cursor(req)?;
    let mut ids: Vec<&KeyIndex> = actor
        .directory
        .keys
        .iter()
        .filter(|k| k.organization == actor.organization && !k.console)
        .filter(|k| actor.role.manages_all_keys() || k.owner == actor.user.id)
        .collect();
    ids.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let mut keys = Vec::new();
    let mut next_cursor = None;
    let mut matched = 0usize;
    for index in ids {
        let Ok((record, snap)) = snapshot(stores, &index.id, now).await else { continue };
        let v = view(actor, &record, &snap, now);
        if !filter.matches(&v) {
            continue;
        }
        if matched >= offset {
            if keys.len() == PAGE_SIZE {
                next_cursor = Some(offset.saturating_add(PAGE_SIZE).to_string());
                break;
            }
            keys.push(v);
        }
        matched += 1;
    }
    Ok(Reply::json(200, &KeyList { keys, next_cursor }))
}

async fn create_key<S: Stores>(stores: &S, req: &Incoming, actor: &Actor, now: Timestamp) -> Handled {
    // (2) Parse and validate everything before writing anything.
    let request: CreateKeyRequest = body(req)?;
    let settings = request.validate(now).map_err(problem)?;
    if let Some(slug) = &request.project
        && actor.directory.project_by_slug(&actor.organization, slug).is_none()
    {
        return Err(problem(Problem::invalid_field("project", format!("no project `{slug}` in this organization"))));
    }
    // (4) A fresh key; only its hash is stored.
    let key = ApiKey::generate(request.environment).map_err(|_| problem(Problem::internal()))?;
    let record = KeyRecord {
        project: request.project.clone(),
        customers: settings.customers,
        rate_limit: settings.rate_limit,
        expires_at: settings.expires_at,
        kind: request.kind,
        ..KeyRecord::issued(&key, &actor.organization, &actor.user, settings.name, settings.permissions, now)
    };
    put_record(stores, &record).await?;
    change(stores, DirectoryRequest::AddKey { index: KeyIndex::of(&record, false) }).await?;
    audit_by(stores, actor, AuditAction::Create, Some(key.id.to_string()), record.name.clone(), now).await?;
    let view = {
        let mut v = KeyView::of(&record, now, None, UsageSummary::default());
        v.owner_name = Some(actor.user.name.clone());
        v
    };
    Ok(Reply::json(201, &created(&key, record.kind, view)))
}

fn created(key: &ApiKey, kind: KeyKind, record: KeyView) -> CreatedKey {
    match kind {
        KeyKind::Single => CreatedKey::Single { key: key.expose(), record },
        KeyKind::Pair => CreatedKey::Pair { api_key: key.public_start(), api_secret: key.expose_pair_secret(), record },
    }
}

async fn get_key<S: Stores>(stores: &S, actor: &Actor, id: &str, now: Timestamp) -> Handled {
    let index = visible_key(actor, id)?;
    let (record, snap) = snapshot(stores, &index.id, now).await?;
    Ok(Reply::json(200, &view(actor, &record, &snap, now)))
}

fn require_owner(actor: &Actor, index: &KeyIndex) -> Result<(), Reply> {
    if index.owner == actor.user.id {
        Ok(())
    } else {
        Err(problem(Problem::new(
            403,
            "NOT_KEY_OWNER",
            "Forbidden",
            "Only the key's owner may rename, edit or regenerate it.",
        )))
    }
}

fn illegal(e: keygate_shared::model::IllegalTransition) -> Reply {
    problem(Problem::conflict("ILLEGAL_TRANSITION", e.describe()))
}

async fn update_key<S: Stores>(stores: &S, req: &Incoming, actor: &Actor, id: &str, now: Timestamp) -> Handled {
    let index = visible_key(actor, id)?;
    require_owner(actor, index)?;
    let request: UpdateKeyRequest = body(req)?;
    let (record, _) = snapshot(stores, &index.id, now).await?;
    record.state.apply(LifecycleAction::Edit).map_err(illegal)?;
    let next = request.apply_to(&record, now).map_err(problem)?;
    put_record(stores, &next).await?;
    if next.permissions != record.permissions {
        change(stores, DirectoryRequest::AddKey { index: KeyIndex::of(&next, false) }).await?;
    }
    let action = if request.name.is_some()
        && request == (UpdateKeyRequest { name: request.name.clone(), ..Default::default() })
    {
        AuditAction::Rename
    } else {
        AuditAction::Update
    };
    let detail =
        if record.name != next.name { format!("{} → {}", record.name, next.name) } else { next.name.clone() };
    audit_by(stores, actor, action, Some(index.id.to_string()), detail, now).await?;
    let (record, snap) = snapshot(stores, &index.id, now).await?;
    Ok(Reply::json(200, &view(actor, &record, &snap, now)))
}

async fn key_action<S: Stores>(
    stores: &S,
    req: &Incoming,
    actor: &Actor,
    id: &str,
    action: &str,
    now: Timestamp,
) -> Handled {
    let (action, audit) = match action {
        "revoke" => (LifecycleAction::Revoke, AuditAction::Revoke),
        "activate" => (LifecycleAction::Activate, AuditAction::Activate),
        "deactivate" => (LifecycleAction::Deactivate, AuditAction::Deactivate),
        "regenerate" => (LifecycleAction::Regenerate, AuditAction::Regenerate),
        _ => return Err(problem(Problem::not_found("No such key action."))),
    };
    let index = visible_key(actor, id)?;
    if action == LifecycleAction::Regenerate {
        require_owner(actor, index)?;
    }
    let grace = if action == LifecycleAction::Regenerate {
        let request: RegenerateKeyRequest = if req.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
            RegenerateKeyRequest::default()
        } else {
            body(req)?
        };
        request.validate().map_err(problem)?
    } else {
        0
    };
    let (mut record, _) = snapshot(stores, &index.id, now).await?;
    let Transition::To(state) = record.state.apply(action).map_err(illegal)? else {
        return Err(problem(Problem::internal()));
    };
    record.state = state;
    record.updated_at = now;
    let mut fresh = None;
    if action == LifecycleAction::Regenerate {
        // Same id and configuration, a new secret.
        let key = ApiKey {
            project_label: None,
            label: None,
            environment: record.environment,
            id: record.id,
            secret: keygate_shared::key::Secret::generate().map_err(|_| problem(Problem::internal()))?,
        };
        record.grace = (grace > 0)
            .then(|| GraceSecret { secret_hash: record.secret_hash, until: now.plus_secs(i64::from(grace)) });
        record.secret_hash = SecretHash::of(&key);
        fresh = Some(key);
    }
    put_record(stores, &record).await?;
    let detail =
        if grace > 0 { format!("{} (previous secret valid for {grace} s)", record.name) } else { record.name.clone() };
    audit_by(stores, actor, audit, Some(index.id.to_string()), detail, now).await?;
    let (record, snap) = snapshot(stores, &index.id, now).await?;
    let v = view(actor, &record, &snap, now);
    match fresh {
        Some(key) => Ok(Reply::json(200, &created(&key, record.kind, v))),
        None => Ok(Reply::json(200, &v)),
    }
}

async fn delete_key<S: Stores>(stores: &S, actor: &Actor, id: &str, now: Timestamp) -> Handled {
    let index = visible_key(actor, id)?;
    let (record, _) = snapshot(stores, &index.id, now).await?;
    record.state.apply(LifecycleAction::Delete).map_err(illegal)?;
    stores.object(&index.id, &ObjectRequest::Delete).await.map_err(unavailable)?;
    change(stores, DirectoryRequest::RemoveKey { id: index.id }).await?;
    audit_by(stores, actor, AuditAction::Delete, Some(index.id.to_string()), record.name.clone(), now).await?;
    Ok(Reply { status: 204, headers: vec![], body: String::new() })
}

async fn key_errors<S: Stores>(stores: &S, actor: &Actor, id: &str, now: Timestamp) -> Handled {
    let index = visible_key(actor, id)?;
    match snapshot(stores, &index.id, now).await?.1 {
        ObjectReply::Snapshot { errors, .. } => Ok(Reply::json(200, &RecentErrors { errors })),
        _ => Err(not_found()),
    }
}

async fn key_usage<S: Stores>(stores: &S, actor: &Actor, id: &str, now: Timestamp) -> Handled {
    let index = visible_key(actor, id)?;
    match snapshot(stores, &index.id, now).await?.1 {
        ObjectReply::Snapshot { usage, .. } => Ok(Reply::json(200, &usage)),
        _ => Err(not_found()),
    }
}

fn audit(req: &Incoming, actor: &Actor) -> Handled {
    let offset = cursor(req)?;
    let events: Vec<AuditEvent> =
        actor.directory.audit.iter().rev().filter(|e| e.organization == actor.organization).cloned().collect();
    let page: Vec<AuditEvent> = events.iter().skip(offset).take(PAGE_SIZE).cloned().collect();
    let next_cursor =
        (events.len() > offset.saturating_add(PAGE_SIZE)).then(|| offset.saturating_add(PAGE_SIZE).to_string());
    Ok(Reply::json(200, &AuditPage { events: page, next_cursor }))
}
