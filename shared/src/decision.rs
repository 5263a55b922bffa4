//! The pure decision "may this request pass?", in DESIGN.md's order of checks.
//!
//! - 1: no credential → 401; 2: malformed or bad checksum → 401, no storage read;
//! - 3: wrong environment → 401; 4: project label against the endpoint's project (pure) → 401;
//! - 5: unknown id or secret mismatch → 401, then the project recorded on the key → 401, then revoked, deactivated or
//!   expired → 401;
//! - 6: organization → 403; 7: the route (no rule: `NO_ROUTE`), permission, customer (required when the key is
//!   restricted to customers) → 403;
//! - 8: rate limit → 429 (decided by [`crate::ratelimit`] in the key's Durable Object).
//!
//! One deliberate change from DESIGN.md's order: the key's *recorded* project is compared only after the secret has
//! matched. Comparing it before would let anyone who knows a key id (it is public) learn the key's project by trying
//! labels with a made-up secret. The label-against-endpoint check needs no storage and stays at step 4.
//!
//! The caller reads the clock once and passes `now`; nothing here does I/O.

use serde::{Deserialize, Serialize};

use crate::credential::CredentialError;
use crate::hash::SecretHash;
use crate::key::{ApiKey, KeyId};
use crate::model::{Environment, KeyRecord, KeyState, Permission};
use crate::problem::Problem;
use crate::time::Timestamp;

/// Stable machine codes of the verification outcome (the verify API's `code`, the problem body's `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Valid,
    MissingCredential,
    AmbiguousCredential,
    IncompletePair,
    InvalidFormat,
    WrongEnvironment,
    WrongProject,
    NotFound,
    Revoked,
    Deactivated,
    Expired,
    ForbiddenOrganization,
    InsufficientPermissions,
    NoRoute,
    CustomerRequired,
    CustomerNotAllowed,
    IpNotAllowed,
    RateLimited,
    UsageExceeded,
}

impl Code {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::MissingCredential => "MISSING_CREDENTIAL",
            Self::AmbiguousCredential => "AMBIGUOUS_CREDENTIAL",
            Self::IncompletePair => "INCOMPLETE_PAIR",
            Self::InvalidFormat => "INVALID_FORMAT",
            Self::WrongEnvironment => "WRONG_ENVIRONMENT",
            Self::WrongProject => "WRONG_PROJECT",
            Self::NotFound => "NOT_FOUND",
            Self::Revoked => "REVOKED",
            Self::Deactivated => "DEACTIVATED",
            Self::Expired => "EXPIRED",
            Self::ForbiddenOrganization => "FORBIDDEN_ORGANIZATION",
            Self::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            Self::NoRoute => "NO_ROUTE",
            Self::CustomerRequired => "CUSTOMER_REQUIRED",
            Self::CustomerNotAllowed => "CUSTOMER_NOT_ALLOWED",
            Self::IpNotAllowed => "IP_NOT_ALLOWED",
            Self::RateLimited => "RATE_LIMITED",
            Self::UsageExceeded => "USAGE_EXCEEDED",
        }
    }

    /// The HTTP status of a refusal with this code (200 for `Valid`).
    pub const fn status(self) -> u16 {
        match self {
            Self::Valid => 200,
            Self::AmbiguousCredential | Self::IncompletePair => 400,
            Self::MissingCredential
            | Self::InvalidFormat
            | Self::WrongEnvironment
            | Self::WrongProject
            | Self::NotFound
            | Self::Revoked
            | Self::Deactivated
            | Self::Expired => 401,
            Self::ForbiddenOrganization
            | Self::InsufficientPermissions
            | Self::NoRoute
            | Self::CustomerRequired
            | Self::CustomerNotAllowed
            | Self::IpNotAllowed => 403,
            Self::RateLimited | Self::UsageExceeded => 429,
        }
    }

    pub const fn title(self) -> &'static str {
        match self.status() {
            200 => "Valid",
            400 => "Bad credential",
            401 => "Unauthorized",
            403 => "Forbidden",
            _ => "Too many requests",
        }
    }

    /// What the client should do. Never says whether a given key id exists.
    pub const fn detail(self) -> &'static str {
        match self {
            Self::Valid => "The key is valid.",
            Self::MissingCredential => {
                "Send your API key as `Authorization: Bearer <key>`, as `x-api-key: <key>`, or as an `apikey` + `apisecret` pair."
            }
            Self::AmbiguousCredential => "The request carries two different credentials; send exactly one.",
            Self::IncompletePair => {
                "A legacy key pair needs both the `apikey` and the `apisecret` header; a whole key may be sent as `apikey` alone."
            }
            Self::InvalidFormat => "The credential is not a well-formed Keygate key; copy it again as it was shown.",
            Self::WrongEnvironment => {
                "The key belongs to another environment: use a key created for this endpoint's environment."
            }
            Self::WrongProject => "The key is not valid for this project: use a key of this project.",
            Self::NotFound => "The key is not valid. Check that you copied the current key, or create a new one.",
            Self::Revoked => "The key has been revoked. Ask its owner to activate it, or use another key.",
            Self::Deactivated => "The key has been deactivated for good; create a new key.",
            Self::Expired => "The key has expired; create a new key or ask its owner to extend it.",
            Self::ForbiddenOrganization => {
                "The key may not act for the organization named in `Keygate-Org`: its owner is not a member, or the key is limited to its own organization."
            }
            Self::InsufficientPermissions => "The key lacks the permission this request needs.",
            Self::NoRoute => "No route rule of this endpoint covers this method and path, so no key may call it.",
            Self::CustomerRequired => {
                "The key is restricted to customers: name the customer in the `Keygate-Customer` header."
            }
            Self::CustomerNotAllowed => "The key is restricted to other customers.",
            Self::IpNotAllowed => "The key may not be used from this client address (its IP allowlist).",
            Self::RateLimited => "The key's rate limit is exhausted; retry after the time in `Retry-After`.",
            Self::UsageExceeded => "The key has no uses left; ask its owner for more, or wait for its next refill.",
        }
    }

    /// The `WWW-Authenticate` challenge for 401/400/403 answers (RFC 6750).
    pub fn www_authenticate(self, required: Option<&Permission>) -> Option<String> {
        let challenge = match self {
            Self::Valid
            | Self::RateLimited
            | Self::UsageExceeded
            | Self::ForbiddenOrganization
            | Self::NoRoute
            | Self::CustomerRequired
            | Self::CustomerNotAllowed
            | Self::IpNotAllowed => return None,
            Self::MissingCredential => String::from("Bearer realm=\"keygate\""),
            Self::AmbiguousCredential | Self::IncompletePair => {
                String::from("Bearer realm=\"keygate\", error=\"invalid_request\"")
            }
            Self::InsufficientPermissions => match required {
                Some(p) => format!("Bearer realm=\"keygate\", error=\"insufficient_scope\", scope=\"{p}\""),
                None => String::from("Bearer realm=\"keygate\", error=\"insufficient_scope\""),
            },
            _ => format!("Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"{}\"", self.as_str()),
        };
        Some(challenge)
    }

    /// The problem+json body of a refusal.
    pub fn problem(self) -> Problem {
        Problem::new(self.status(), self.as_str(), self.title(), self.detail())
    }
}

impl From<CredentialError> for Code {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Missing => Code::MissingCredential,
            CredentialError::Ambiguous => Code::AmbiguousCredential,
            CredentialError::IncompletePair => Code::IncompletePair,
            CredentialError::Malformed(_) => Code::InvalidFormat,
        }
    }
}

/// The reserved project of console tokens: they sign in to the admin API and pass nowhere else.
pub const CONSOLE_PROJECT: &str = "keygate-console";

/// The endpoint's side of the check, from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Endpoint {
    pub environment: Environment,
    /// When set, only keys of this project (or of every project of [`Endpoint::organization`]) pass.
    pub project: Option<String>,
    /// The organization whose project this endpoint serves: a project slug is unique only within its organization,
    /// so keys of other organizations are refused even when their project has the same slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

impl Endpoint {
    /// An endpoint of `environment` serving every project.
    pub fn any_project(environment: Environment) -> Self {
        Self { environment, project: None, organization: None }
    }
}

/// What a route asks of a key (`KEYGATE_ROUTES`, see [`crate::routes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access<'a> {
    /// Any valid key: no route rules are configured, a rule says `-`, or one of Keygate's own routes.
    #[default]
    Open,
    /// The route needs this permission.
    Permission(&'a Permission),
    /// Route rules are configured and none covers the request: refused (fail closed).
    Unrouted,
}

impl<'a> Access<'a> {
    /// The permission named in an `insufficient_scope` challenge.
    pub fn permission(self) -> Option<&'a Permission> {
        match self {
            Self::Permission(p) => Some(p),
            Self::Open | Self::Unrouted => None,
        }
    }
}

/// What the request asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand<'a> {
    /// What the route needs.
    pub access: Access<'a>,
    /// The organization named by `Keygate-Org`.
    pub organization: Option<&'a str>,
    /// The customer the request acts on.
    pub customer: Option<&'a str>,
    /// The client's address as Cloudflare reports it (`CF-Connecting-IP`), for keys with an IP allowlist.
    pub client_ip: Option<&'a str>,
}

/// A request that passed every check up to the rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The organization the request acts for (usage is attributed to it).
    pub organization: String,
    /// Whether the key's Durable Object must still be asked (step 8): it applies the rate limit and counts a
    /// usage-limited key's uses.
    pub rate_limited: bool,
}

/// What a presented key claims, with the secret already hashed: all the later checks need, and safe to pass to the
/// key's Durable Object (the plaintext secret goes no further than the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub id: KeyId,
    pub environment: Environment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_label: Option<String>,
    pub hash: SecretHash,
}

impl Claim {
    pub fn of(key: &ApiKey) -> Self {
        Self {
            id: key.id,
            environment: key.environment,
            project_label: key.project_label.clone(),
            hash: SecretHash::of(key),
        }
    }
}

/// Steps 1–4: everything that needs no storage. Returns the key's claim (secret hashed) to look up.
pub fn precheck(presented: Result<ApiKey, CredentialError>, endpoint: &Endpoint) -> Result<Claim, Code> {
    // 1–2. No credential, two credentials, half a pair, malformed or bad checksum.
    let key = presented.map_err(Code::from)?;
    // 3. A staging key on the production API (or any other mix) fails.
    if key.environment != endpoint.environment {
        return Err(Code::WrongEnvironment);
    }
    // 4. A project label that contradicts the endpoint's project.
    if let (Some(label), Some(project)) = (&key.project_label, &endpoint.project)
        && label != project
    {
        return Err(Code::WrongProject);
    }
    Ok(Claim::of(&key))
}

/// Whether a request for `demand` needs the key owner's organizations to be decided: it names another
/// organization than the key's own with `Keygate-Org` (the caller reads them, then calls [`decide`] with them).
pub fn needs_memberships(record: &KeyRecord, demand: Demand<'_>) -> bool {
    !record.own_organization_only && demand.organization.is_some_and(|org| org != record.organization)
}

/// Steps 5–7, given the stored record (`None`: no key has that id) and, when [`needs_memberships`] says so, the
/// organizations the key's owner belongs to (empty otherwise).
pub fn decide(
    key: &Claim,
    record: Option<&KeyRecord>,
    endpoint: &Endpoint,
    demand: Demand<'_>,
    memberships: &[String],
    now: Timestamp,
) -> Result<Grant, Code> {
    // 5. Unknown id and wrong secret look the same to the client.
    let record = match record {
        Some(r) if r.id == key.id && r.environment == key.environment && r.secret_matches(&key.hash, now) => r,
        _ => return Err(Code::NotFound),
    };
    // A canary is refused exactly as an unknown key is: the caller cannot tell (the gateway records the trip).
    if record.canary {
        return Err(Code::NotFound);
    }
    // 4, with the record: console tokens pass only where the endpoint is the console's.
    let console_key = record.project.as_deref() == Some(CONSOLE_PROJECT);
    if console_key != (endpoint.project.as_deref() == Some(CONSOLE_PROJECT)) {
        return Err(Code::WrongProject);
    }
    // An endpoint of one organization's project serves only that organization's keys.
    if endpoint.organization.as_ref().is_some_and(|o| *o != record.organization) {
        return Err(Code::WrongProject);
    }
    // The label and the endpoint must both agree with the key's project, if it has one.
    if let Some(project) = &record.project {
        let label_differs = key.project_label.as_ref().is_some_and(|l| l != project);
        let endpoint_differs = endpoint.project.as_ref().is_some_and(|p| p != project);
        if label_differs || endpoint_differs {
            return Err(Code::WrongProject);
        }
    }
    // 5, lifecycle: revoked and deactivated keys stop; expiry is derived from `now`.
    match record.state {
        KeyState::Revoked => return Err(Code::Revoked),
        KeyState::Deactivated => return Err(Code::Deactivated),
        KeyState::Active if record.is_expired(now) => return Err(Code::Expired),
        KeyState::Active => {}
    }
    // 6. The organization the request acts for: the key's own, or one its owner belongs to (unless the key is
    // locked to its own).
    let organization = match demand.organization {
        None => record.organization.clone(),
        Some(org) if org == record.organization => org.to_owned(),
        Some(org) if !record.own_organization_only && memberships.iter().any(|o| o == org) => org.to_owned(),
        Some(_) => return Err(Code::ForbiddenOrganization),
    };
    // 6b. Where the request comes from, for a key with an IP allowlist.
    if !crate::net::allowed(&record.allowed_ips, demand.client_ip) {
        return Err(Code::IpNotAllowed);
    }
    // 7. Scope: the route's permission (a route no rule covers is refused), then the customer: a key restricted to
    // customers must name one of them.
    match demand.access {
        Access::Open => {}
        Access::Permission(required) if record.has_permission(required) => {}
        Access::Permission(_) => return Err(Code::InsufficientPermissions),
        Access::Unrouted => return Err(Code::NoRoute),
    }
    match demand.customer {
        None if !record.customers.is_empty() => return Err(Code::CustomerRequired),
        Some(customer) if !record.allows_customer(customer) => return Err(Code::CustomerNotAllowed),
        _ => {}
    }
    // 8 happens in the key's Durable Object when the key has a policy.
    Ok(Grant { organization, rate_limited: record.rate_limit.is_some() || record.usage_limit.is_some() })
}
