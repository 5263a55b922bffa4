//! "What would this request get?": the gateway's order of checks run on one request, step by step, by the very
//! functions the gateway runs (`credential`, `decision::precheck`, `decision::decide`, `routes`, `http::Reply`), so
//! the console can explain a refusal before anyone sends the request. The gateway adds only what needs live
//! state: the rate limit's and the usage limit's counts (step 8), which the simulation shows as policies.
//!
//! The console has no secret hash (only the key's object does): a simulated key's record carries the hash of the
//! credential simulated, so the simulation assumes the secret is right (see [`record_of`]).

use serde::{Deserialize, Serialize};

use crate::api::{KeyView, RoleInfo};
use crate::decision::{Code, Demand, Endpoint, decide, precheck};
use crate::hash::SecretHash;
use crate::http::{Incoming, Reply, canonical_path};
use crate::model::{HeldRole, KeyRecord, KeyState, KeyStatus};
use crate::routes::RouteTable;
use crate::time::Timestamp;

/// How a step of the order of checks went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// An earlier step decided.
    NotReached,
    /// Decided by live state the simulation does not have (rate and usage limits).
    Live,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// As DESIGN.md numbers them: `1`, `2`, … `6b`, `8`.
    pub number: &'static str,
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// The simulated answer: each step, and the status, code and headers the gateway would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Simulation {
    pub steps: Vec<Step>,
    pub status: u16,
    /// `VALID` for a pass.
    pub code: String,
    pub headers: Vec<(String, String)>,
    /// The problem body of a refusal.
    pub body: String,
}

const STEPS: [(&str, &str); 10] = [
    ("1", "A credential is present (one, not two; a pair whole)"),
    ("2", "The key is well formed and its checksum holds"),
    ("3", "The key's environment is the endpoint's"),
    ("4", "The project label and the endpoint agree with the key's project"),
    ("5", "The key exists, the secret matches, and it is active"),
    ("6", "The organization the request acts for (Keygate-Org)"),
    ("6b", "The client address is in the key's allowlist"),
    ("7", "The route's permission and the customer"),
    ("8", "Rate limit and usage limit (counted live by the key's object)"),
    ("9", "Pass: forwarded with the identity headers"),
];

/// The step a refusal code is decided at.
fn step_of(code: Code) -> usize {
    match code {
        Code::MissingCredential | Code::AmbiguousCredential | Code::IncompletePair => 0,
        Code::InvalidFormat => 1,
        Code::WrongEnvironment => 2,
        Code::WrongProject => 3,
        Code::NotFound | Code::Revoked | Code::Deactivated | Code::Expired => 4,
        Code::ForbiddenOrganization => 5,
        Code::IpNotAllowed => 6,
        Code::InsufficientPermissions | Code::NoRoute | Code::CustomerRequired | Code::CustomerNotAllowed => 7,
        Code::RateLimited | Code::UsageExceeded => 8,
        Code::Valid => 9,
    }
}

/// Runs a gateway request (headers with lowercase names) through the order of checks. `record`: the stored record
/// of the presented key's id (`None`: no such key); `memberships`: the organizations the key's owner belongs to.
pub fn simulate(
    req: &Incoming,
    extra_headers: &[String],
    routes: &RouteTable,
    endpoint: &Endpoint,
    record: Option<&KeyRecord>,
    memberships: &[String],
    now: Timestamp,
) -> Simulation {
    let path = match canonical_path(&req.path) {
        Ok(path) => path.into_owned(),
        Err(reply) => {
            let code = serde_json::from_str::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Simulation {
                steps: Vec::new(),
                status: reply.status,
                code,
                headers: reply.headers,
                body: reply.body,
            };
        }
    };
    let demand = Demand {
        access: routes.access(&req.method, &path),
        organization: req.header("keygate-org"),
        customer: req.header("keygate-customer"),
        client_ip: req.header("cf-connecting-ip"),
    };
    let decided = precheck(crate::credential::authenticate_headers(&req.headers, extra_headers), endpoint)
        .and_then(|claim| decide(&claim, record, endpoint, demand, memberships, now));
    let at = match &decided {
        Ok(_) => 8,
        Err(code) => step_of(*code),
    };
    let mut steps: Vec<Step> = STEPS
        .iter()
        .enumerate()
        .map(|(i, (number, check))| Step {
            number,
            check,
            outcome: match i.cmp(&at) {
                std::cmp::Ordering::Less => Outcome::Passed,
                std::cmp::Ordering::Equal => Outcome::Failed,
                std::cmp::Ordering::Greater => Outcome::NotReached,
            },
            detail: String::new(),
        })
        .collect();
    let permission = demand.access.permission();
    match &decided {
        Err(code) => {
            steps[at].detail = format!("{}: {}", code.as_str(), code.problem().detail);
            let reply = Reply::refusal(*code, permission);
            Simulation {
                steps,
                status: reply.status,
                code: code.as_str().to_owned(),
                headers: reply.headers,
                body: reply.body,
            }
        }
        Ok(grant) => {
            let record = record.expect("a grant has a record");
            steps[5].detail = format!("acts for {}", grant.organization);
            steps[7].detail = match permission {
                Some(p) => format!("needs {p}: held"),
                None => "the route needs no permission".into(),
            };
            let mut live = Vec::new();
            if let Some(policy) = record.rate_limit {
                live.push(format!("{} requests per {} s", policy.requests, policy.window_seconds));
            }
            if let Some(limit) = record.usage_limit {
                live.push(format!("{} uses", limit.uses));
            }
            if let Some(identity) = record.identity.as_ref().and_then(|i| i.rate_limit) {
                live.push(format!("the identity's {} per {} s", identity.requests, identity.window_seconds));
            }
            steps[8].outcome = if live.is_empty() { Outcome::Passed } else { Outcome::Live };
            steps[8].detail = if live.is_empty() {
                "no limit".into()
            } else {
                format!("{}: passes while requests remain, else 429", live.join(", "))
            };
            steps[9].outcome = Outcome::Passed;
            let permissions: Vec<&str> = record.effective_permissions().map(|p| p.as_str()).collect();
            let headers = vec![
                ("keygate-key-id".to_owned(), record.id.to_string()),
                ("keygate-organization".to_owned(), grant.organization.clone()),
                ("keygate-permissions".to_owned(), permissions.join(",")),
            ];
            Simulation { steps, status: 200, code: Code::Valid.as_str().to_owned(), headers, body: String::new() }
        }
    }
}

/// A record for the simulation from what the admin API shows of a key and the organization's roles (the
/// permissions its roles grant), with the hash of the credential being simulated (the console never holds the real
/// one: the simulation assumes the secret is right).
pub fn record_of(view: &KeyView, roles: &[RoleInfo], secret_hash: SecretHash) -> KeyRecord {
    let state = match view.status {
        KeyStatus::Inactive => KeyState::Revoked,
        KeyStatus::Deactivated => KeyState::Deactivated,
        KeyStatus::Active | KeyStatus::Expired => KeyState::Active,
    };
    KeyRecord {
        id: view.id,
        organization: view.organization.clone(),
        project: view.project.clone(),
        environment: view.environment,
        name: view.name.clone(),
        owner: view.owner.clone(),
        permissions: view.permissions.clone(),
        customers: view.customers.clone(),
        rate_limit: view.rate_limit,
        expires_at: view.expires_at,
        state,
        kind: view.kind,
        created_at: view.created_at,
        updated_at: view.updated_at,
        secret_hash,
        grace: None,
        revoked_by: None,
        allowed_ips: view.allowed_ips.clone(),
        own_organization_only: view.own_organization_only,
        canary: view.canary,
        meta: view.meta.clone(),
        usage_limit: view.usage_limit,
        roles: view
            .roles
            .iter()
            .map(|name| HeldRole {
                name: name.clone(),
                permissions: roles.iter().find(|r| r.name == *name).map(|r| r.permissions.clone()).unwrap_or_default(),
            })
            .collect(),
        identity: view.identity.clone(),
    }
}
