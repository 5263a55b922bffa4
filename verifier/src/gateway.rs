//! The hot path: authenticate a request in DESIGN.md's order of checks, then say how to answer it. Also the verify
//! API (`POST /v1/verify`) and `GET /v1/whoami`. Platform-free: storage comes in through [`Stores`].

use keygate_shared::api::{RateLimitStatus, RecentError, VerifyRequest, VerifyResponse, WhoAmI};
use keygate_shared::credential::{self, CredentialError};
use keygate_shared::decision::{Access, Claim, Code, Demand, Endpoint, decide, needs_memberships, precheck};
use keygate_shared::http::{Incoming, Reply, is_under};
use keygate_shared::key::{ApiKey, KeyId};
use keygate_shared::keyobject::{Admit, Authorization, Authorize, GatewayReply, GatewayRequest};
use keygate_shared::model::{KeyRecord, Permission, RateLimitPolicy};
use keygate_shared::problem::Problem;
use keygate_shared::ratelimit::RateDecision;
use keygate_shared::requestlog::LoggedRequest;
use keygate_shared::time::Timestamp;

use crate::config::Config;
use crate::store::{StoreError, Stores, lease_ask, lease_keep, lease_take};

/// The header naming the organization a request acts for (Instill's requester header).
pub const ORG_HEADER: &str = "keygate-org";
/// The header naming the customer a request acts on.
pub const CUSTOMER_HEADER: &str = "keygate-customer";
/// The client's address as Cloudflare reports it (it replaces any value the client sends), for IP allowlists.
pub const CLIENT_IP_HEADER: &str = "cf-connecting-ip";
/// A usage-limited key's uses left, on its answers.
pub const REMAINING_HEADER: &str = "keygate-remaining";

/// A request that passed: who is calling, and the rate limit's state when the key has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub record: KeyRecord,
    pub organization: String,
    pub rate: Option<(RateLimitPolicy, RateDecision)>,
    /// Whether the key's object saw this request (and counted it in the key's usage).
    pub counted: bool,
    /// The customer the request named and the key allows (forwarded as `Keygate-Customer`).
    pub customer: Option<String>,
    /// A usage-limited key's uses left after this request.
    pub remaining: Option<u64>,
}

/// A request the key's object did not see: the caller counts it in the isolate's usage batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncounted {
    pub id: KeyId,
    pub organization: String,
}

impl Pass {
    /// An admission from this isolate's lease of the key's limit: the key's object did not see it.
    pub fn leased(
        record: KeyRecord,
        organization: String,
        policy: RateLimitPolicy,
        decision: RateDecision,
        demand: Demand<'_>,
    ) -> Self {
        let customer = demand.customer.map(str::to_owned);
        Self { record, organization, rate: Some((policy, decision)), counted: false, customer, remaining: None }
    }

    /// Counts an admission of the key's identity's shared limit: the answer's rate-limit headers show whichever of
    /// the key's and the identity's limits has fewer requests left.
    pub fn shared_limit(&mut self, policy: RateLimitPolicy, decision: RateDecision) {
        if self.rate.as_ref().is_none_or(|(_, own)| decision.remaining < own.remaining) {
            self.rate = Some((policy, decision));
        }
    }

    /// `Keygate-Remaining` for a usage-limited key.
    pub fn remaining_header(&self) -> Option<(String, String)> {
        self.remaining.map(|n| (REMAINING_HEADER.to_owned(), n.to_string()))
    }

    pub fn uncounted(&self) -> Option<Uncounted> {
        (!self.counted).then(|| Uncounted { id: self.record.id, organization: self.organization.clone() })
    }
}

/// A refusal, and what to log on the key when it is one of the key holder's own requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The order of checks' code; `None` when storage did not answer and nothing was decided (503).
    pub code: Option<Code>,
    pub reply: Reply,
    /// Set when the caller proved it holds the key (the error goes to the key's recent errors).
    pub key: Option<(Claim, String)>,
    /// Set when the secret matched, whatever the refusal (rate limits too): the request goes to the key's log.
    pub logged: Option<Subject>,
}

/// A key that proved itself on a request: the request goes to its log, kept by `owner`, its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: KeyId,
    pub owner: String,
    /// The organization the request acted for.
    pub acting: String,
}

impl Subject {
    /// Console tokens are not keys of the console's lists: their requests are not logged.
    fn of(record: &KeyRecord, acting: &str) -> Option<Self> {
        (record.project.as_deref() != Some(keygate_shared::decision::CONSOLE_PROJECT)).then(|| Self {
            id: record.id,
            owner: record.organization.clone(),
            acting: acting.to_owned(),
        })
    }
}

impl Pass {
    /// Whose log this request goes to.
    pub fn subject(&self) -> Option<Subject> {
        Subject::of(&self.record, &self.organization)
    }
}

/// A request-log line (`keygate_shared::requestlog`): the request line without its query, what was answered, and
/// how long it took since `started`.
pub fn log_line(
    req: &Incoming,
    subject: &Subject,
    status: u16,
    code: Option<&str>,
    started: Timestamp,
    now: Timestamp,
) -> LoggedRequest {
    LoggedRequest {
        id: String::new(),
        at: started,
        key_id: subject.id.to_string(),
        method: req.method.clone(),
        path: req.path.clone(),
        status,
        code: code.map(str::to_owned),
        latency_ms: u32::try_from(now.millis().saturating_sub(started.millis())).unwrap_or(u32::MAX),
        client_ip: req.header(CLIENT_IP_HEADER).map(str::to_owned),
        organization: subject.acting.clone(),
        user_agent: None,
        country: None,
        permission: None,
    }
}

impl Refusal {
    fn new(code: Code, required: Option<&Permission>) -> Self {
        Self { code: Some(code), reply: Reply::refusal(code, required), key: None, logged: None }
    }

    /// A canary key was used: refused as unknown, but its request is logged (its organization records the trip).
    pub fn tripped(&self) -> bool {
        self.code == Some(Code::NotFound) && self.logged.is_some()
    }

    fn storage(_: StoreError) -> Self {
        Self { code: None, reply: Reply::unavailable(), key: None, logged: None }
    }
}

/// Whether the key's object must be consulted even without a rate limit (console sign-in: revocation at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consult {
    WhenRateLimited,
    Always,
}

/// Steps 1–4, which need no storage: the claim a well-formed credential makes, or the refusal.
pub fn check_presented(
    presented: Result<ApiKey, CredentialError>,
    endpoint: &Endpoint,
    demand: Demand<'_>,
) -> Result<Claim, Refusal> {
    precheck(presented, endpoint).map_err(|code| Refusal::new(code, demand.access.permission()))
}

/// What steps 5–7 say about a claim once its record has been read.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// Done: the request passes without asking the key's object.
    Pass(Pass),
    /// Step 8 is needed: the key's object re-checks its authoritative state and applies the rate limit.
    Consult { record: KeyRecord, organization: String },
}

/// Steps 5–7: the pure decision on the record read for `claim` (`None`: no such key), with the key owner's
/// organizations when [`needs_memberships`] asked for them.
pub fn check_record(
    claim: &Claim,
    record: Option<KeyRecord>,
    endpoint: &Endpoint,
    demand: Demand<'_>,
    memberships: &[String],
    consult: Consult,
    now: Timestamp,
) -> Result<Checked, Refusal> {
    let grant = match decide(claim, record.as_ref(), endpoint, demand, memberships, now) {
        Ok(grant) => grant,
        Err(code) => {
            let mut refusal = Refusal::new(code, demand.access.permission());
            // Every code but NOT_FOUND is decided after the secret matched; so is a canary's NOT_FOUND (a trip).
            let proved = code != Code::NotFound
                || record.as_ref().is_some_and(|r| r.canary && r.id == claim.id && r.secret_matches(&claim.hash, now));
            if proved && let Some(r) = &record {
                refusal.logged = Subject::of(r, demand.organization.unwrap_or(&r.organization));
            }
            if matches!(
                code,
                Code::ForbiddenOrganization
                    | Code::InsufficientPermissions
                    | Code::NoRoute
                    | Code::CustomerRequired
                    | Code::CustomerNotAllowed
                    | Code::IpNotAllowed
            ) && let Some(r) = &record
            {
                refusal.key = Some((claim.clone(), r.organization.clone()));
            }
            return Err(refusal);
        }
    };
    // `decide` grants only with a record; without one the key is unknown.
    let Some(record) = record else { return Err(Refusal::new(Code::NotFound, demand.access.permission())) };
    if !grant.rate_limited && consult == Consult::WhenRateLimited {
        let customer = demand.customer.map(str::to_owned);
        return Ok(Checked::Pass(Pass {
            record,
            organization: grant.organization,
            rate: None,
            counted: false,
            customer,
            remaining: None,
        }));
    }
    Ok(Checked::Consult { record, organization: grant.organization })
}

/// Steps 1–8 for a presented credential: the key's own checks and limits, then its identity's shared limit.
pub async fn authenticate<S: Stores>(
    stores: &S,
    presented: Result<ApiKey, CredentialError>,
    endpoint: &Endpoint,
    demand: Demand<'_>,
    consult: Consult,
    now: Timestamp,
) -> Result<Pass, Refusal> {
    let pass = authenticate_key(stores, presented, endpoint, demand, consult, now).await?;
    admit_identity(stores, pass, now).await
}

/// The last part of step 8 for a key of an identity with a shared rate limit: one admission of the identity's
/// limit, from this isolate's lease of it (leased policies) or from the identity's object. The key's own limit
/// was counted first; a request the identity refuses is a 429 like the key's own.
async fn admit_identity<S: Stores>(stores: &S, mut pass: Pass, now: Timestamp) -> Result<Pass, Refusal> {
    let Some((limiter, policy)) = shared_limit(&pass.record) else {
        return Ok(pass);
    };
    let leased = policy.leased();
    if leased && let Some(decision) = lease_take(stores, &limiter, &policy, now) {
        pass.shared_limit(policy, decision);
        return Ok(pass);
    }
    let lease = if leased { lease_ask(stores, &limiter, &policy) } else { None };
    let message = GatewayRequest::Admit(Admit { policy, lease, now });
    match stores.object(&limiter, &message).await.map_err(Refusal::storage)? {
        GatewayReply::Authorized(Authorization {
            code: Code::Valid, rate: Some((policy, decision)), lease, ..
        }) => {
            if leased {
                lease_keep(stores, limiter, Some((policy, &decision, lease)));
            }
            let mut decision = decision;
            decision.remaining = decision.remaining.saturating_add(lease.map_or(0, |l| l.count));
            pass.shared_limit(policy, decision);
            Ok(pass)
        }
        GatewayReply::Authorized(Authorization { code: Code::RateLimited, rate, .. }) => {
            if leased && let Some(decision) = lease_take(stores, &limiter, &policy, now) {
                pass.shared_limit(policy, decision);
                return Ok(pass);
            }
            let mut refusal = Refusal::new(Code::RateLimited, None);
            refusal.logged = pass.subject();
            refusal.reply = refusal.reply.with_rate(rate.as_ref());
            Err(refusal)
        }
        _ => Err(Refusal::storage(StoreError("unexpected answer from the identity's limiter".into()))),
    }
}

/// The limit a key shares with the other keys of its identity, and the id it is counted under.
pub fn shared_limit(record: &KeyRecord) -> Option<(KeyId, RateLimitPolicy)> {
    record.identity.as_ref().and_then(|i| Some((i.limiter()?, i.rate_limit?)))
}

/// Steps 1–8 of the key itself.
async fn authenticate_key<S: Stores>(
    stores: &S,
    presented: Result<ApiKey, CredentialError>,
    endpoint: &Endpoint,
    demand: Demand<'_>,
    consult: Consult,
    now: Timestamp,
) -> Result<Pass, Refusal> {
    let claim = check_presented(presented, endpoint, demand)?;
    // One KV read (or an isolate-cache hit).
    let record = stores.record(&claim.id).await.map_err(Refusal::storage)?;
    // A second one (cached too) only when the request names another organization than the key's.
    let memberships = match &record {
        Some(r) if needs_memberships(r, demand) => {
            stores.memberships(&r.owner).await.map_err(Refusal::storage)?.organizations
        }
        _ => Vec::new(),
    };
    let checked = check_record(&claim, record, endpoint, demand, &memberships, consult, now)?;
    let (record, granted_organization) = match checked {
        Checked::Pass(pass) => return Ok(pass),
        Checked::Consult { record, organization } => (record, organization),
    };
    // 8, leased: an admission from this isolate's lease, with no object call (never for a usage-limited key: its
    // object counts every use).
    let leased =
        record.rate_limit.filter(|p| p.leased() && consult == Consult::WhenRateLimited && record.usage_limit.is_none());
    if let Some(policy) = leased
        && let Some(decision) = lease_take(stores, &claim.id, &policy, now)
    {
        return Ok(Pass::leased(record, granted_organization, policy, decision, demand));
    }
    let lease = leased.and_then(|policy| lease_ask(stores, &claim.id, &policy));
    // 8: the key's object re-checks its authoritative state and applies the limit (and leases a share of it).
    let message = GatewayRequest::Authorize(Authorize {
        claim: claim.clone(),
        endpoint: endpoint.clone(),
        permission: demand.access.permission().cloned(),
        organization: demand.organization.map(str::to_owned),
        customer: demand.customer.map(str::to_owned),
        client_ip: demand.client_ip.map(str::to_owned),
        memberships,
        lease,
        now,
    });
    match stores.object(&claim.id, &message).await.map_err(Refusal::storage)? {
        GatewayReply::Authorized(Authorization {
            code: Code::Valid,
            organization,
            rate,
            record: authoritative,
            lease: granted,
            remaining,
            ..
        }) => {
            if let Some((policy, decision)) = rate.as_ref().filter(|_| leased.is_some()) {
                lease_keep(stores, claim.id, Some((*policy, decision, granted)));
            }
            // What remains includes this isolate's own lease (the object counted it as spent already).
            let rate = rate.map(|(policy, mut decision)| {
                decision.remaining = decision.remaining.saturating_add(granted.map_or(0, |l| l.count));
                (policy, decision)
            });
            Ok(Pass {
                record: authoritative.unwrap_or(record),
                organization: organization.unwrap_or(granted_organization),
                rate,
                counted: true,
                customer: demand.customer.map(str::to_owned),
                remaining,
            })
        }
        GatewayReply::Authorized(Authorization { code, rate, .. }) => {
            if let Some(policy) = leased {
                if code == Code::RateLimited {
                    // A request that asked at the same time may have brought a lease back meanwhile: this
                    // isolate's share of the limit, counted already, so this request may draw on it.
                    if let Some(decision) = lease_take(stores, &claim.id, &policy, now) {
                        return Ok(Pass::leased(record, granted_organization, policy, decision, demand));
                    }
                } else {
                    lease_keep(stores, claim.id, None);
                }
            }
            // A request refused for the rate limit (or for a spent usage limit) is not logged as an error
            // (Instrumental keeps only the failures of requests that were authenticated and not rate limited).
            let mut refusal = Refusal::new(code, demand.access.permission());
            refusal.logged = Subject::of(&record, &granted_organization);
            refusal.reply = refusal.reply.with_rate(rate.as_ref());
            if code == Code::UsageExceeded {
                refusal.reply.headers.push((REMAINING_HEADER.to_owned(), "0".to_owned()));
            }
            if !matches!(code, Code::RateLimited | Code::UsageExceeded) {
                refusal.key = Some((claim, granted_organization));
            }
            Err(refusal)
        }
        _ => Err(Refusal::storage(StoreError("unexpected answer from the key's object".into()))),
    }
}

/// The key an admin request changes, if it is a key change (`PATCH`/`DELETE /admin/v1/keys/{id}`, `POST
/// /admin/v1/keys/{id}/<action>`): the gateway forgets its cached record once the control plane has answered.
pub fn changed_key(method: &str, path: &str) -> Option<KeyId> {
    let rest = path.strip_prefix("/admin/v1/keys/")?;
    let mut parts = rest.split('/');
    let id = KeyId::parse(parts.next()?)?;
    let changes = matches!(
        (method, parts.next(), parts.next()),
        ("PATCH" | "DELETE", None, None) | ("POST", Some("revoke" | "activate" | "deactivate" | "regenerate"), None)
    );
    changes.then_some(id)
}

/// Whether a path belongs to the gateway: everything but the console and the admin API (`/admin`) and Keygate's own
/// routes (`/v1`).
pub fn is_gateway_path(path: &str) -> bool {
    !is_under(path, "/admin") && !is_under(path, "/v1")
}

/// Reads the credential of a request (only the headers the extraction needs were copied into `req`).
pub fn presented(req: &Incoming, config: &Config) -> Result<ApiKey, CredentialError> {
    credential::authenticate_headers(&req.headers, &config.extra_headers)
}

/// The demand of a gateway request: its route's permission, `Keygate-Org`, `Keygate-Customer`.
pub fn gateway_demand<'a>(req: &'a Incoming, config: &'a Config) -> Demand<'a> {
    Demand {
        access: config.routes.access(&req.method, &req.path),
        organization: req.header(ORG_HEADER),
        customer: req.header(CUSTOMER_HEADER),
        client_ip: req.header(CLIENT_IP_HEADER),
    }
}

/// Identity headers added to a forwarded request (and shown by the echo).
pub fn identity_headers(pass: &Pass) -> Vec<(String, String)> {
    let r = &pass.record;
    let permissions: Vec<&str> = r.effective_permissions().map(Permission::as_str).collect();
    let mut headers = vec![
        ("keygate-key-id".to_owned(), r.id.to_string()),
        ("keygate-project".to_owned(), r.project.clone().unwrap_or_else(|| "*".into())),
        ("keygate-organization".to_owned(), pass.organization.clone()),
        ("keygate-permissions".to_owned(), permissions.join(",")),
        ("keygate-environment".to_owned(), r.environment.to_string()),
    ];
    if !r.customers.is_empty() {
        headers.push(("keygate-customers".to_owned(), r.customers.join(",")));
    }
    if !r.roles.is_empty() {
        headers.push(("keygate-roles".to_owned(), r.role_names().join(",")));
    }
    if let Some(customer) = &pass.customer {
        headers.push(("keygate-customer".to_owned(), customer.clone()));
    }
    if let Some(meta) = &r.meta {
        headers.push((keygate_shared::meta::META_HEADER.to_owned(), meta.header_value()));
    }
    if let Some(identity) = &r.identity {
        headers.push(("keygate-identity".to_owned(), identity.external_id.clone()));
        if let Some(meta) = &identity.meta {
            headers.push(("keygate-identity-meta".to_owned(), meta.header_value()));
        }
    }
    headers
}

/// The answer of the gateway when no origin is configured: a JSON echo of the caller's identity.
pub fn echo(req: &Incoming, pass: &Pass) -> Reply {
    /// Fields in alphabetical order, as the answer has always listed them.
    #[derive(serde::Serialize)]
    struct Echo<'a> {
        authenticated: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        customer: Option<&'a str>,
        environment: keygate_shared::model::Environment,
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<&'a keygate_shared::model::KeyIdentity>,
        key_id: &'a keygate_shared::key::KeyId,
        #[serde(skip_serializing_if = "Option::is_none")]
        meta: Option<&'a keygate_shared::meta::KeyMeta>,
        method: &'a str,
        name: &'a str,
        note: &'a str,
        organization: &'a str,
        path: &'a str,
        permissions: Vec<&'a Permission>,
        project: &'a Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    }
    let r = &pass.record;
    let body = Echo {
        authenticated: true,
        customer: pass.customer.as_deref(),
        environment: r.environment,
        identity: r.identity.as_ref(),
        key_id: &r.id,
        meta: r.meta.as_ref(),
        method: &req.method,
        name: &r.name,
        note: "No ORIGIN_URL is configured, so Keygate answers with the identity it would forward.",
        organization: &pass.organization,
        path: &req.path,
        permissions: r.effective_permissions().collect(),
        project: &r.project,
        roles: r.role_names(),
    };
    let mut reply = Reply::json(200, &body).with_rate(pass.rate.as_ref());
    reply.headers.extend(pass.remaining_header());
    reply
}

/// A recent-error entry for a request of this key: the request line, the headers that are safe to show and a
/// preview of the request's body, and a preview of the answer's body. Never holds the credential: the credential
/// headers are left out, and the credential and credential-named fields are redacted from both bodies
/// ([`keygate_shared::preview`]); every field is cut to its bound ([`RecentError::bounded`]).
pub fn error_entry(
    req: &Incoming,
    status: u16,
    code: &str,
    request_body: &str,
    response_body: &str,
    now: Timestamp,
) -> RecentError {
    let mut request_preview = format!("{} {}", req.method, req.path);
    if !req.query.is_empty() {
        request_preview.push('?');
        request_preview.push_str(&req.query);
    }
    let mut secrets: Vec<&str> = Vec::new();
    for (name, value) in &req.headers {
        if name == ORG_HEADER || name == CUSTOMER_HEADER {
            request_preview.push_str(&format!("\n{name}: {value}"));
        } else if name != CLIENT_IP_HEADER {
            secrets.push(value.trim());
            secrets.extend(keygate_shared::credential::bearer_token(value));
        }
    }
    // The credential goes here; credential-named fields are redacted by the key's object before it stores the entry.
    use keygate_shared::preview::{cut, redact_credentials};
    let max = RecentError::MAX_REQUEST_PREVIEW;
    let mut request_preview = redact_credentials(&request_preview, &secrets);
    if !request_body.is_empty() {
        request_preview.push_str("\n\n");
        request_preview.push_str(&redact_credentials(request_body, &secrets));
    }
    let request_preview = cut(&request_preview, max);
    let response_preview = cut(&redact_credentials(response_body, &secrets), RecentError::MAX_RESPONSE_PREVIEW);
    RecentError {
        at: now,
        method: req.method.clone(),
        path: req.path.clone(),
        status,
        code: code.to_owned(),
        request_preview,
        response_preview,
    }
    .bounded()
}

/// What `verify` and `whoami` answer, with what the runtime still owes: the requests the keys' objects did not
/// count, and a canary key's trip to log (with the caller's user agent and country, which only the runtime reads).
#[derive(Debug)]
pub struct Answered {
    pub reply: Reply,
    pub uncounted: Vec<Uncounted>,
    pub trip: Option<Trip>,
}

/// A canary key's use: its request-log line, for the key's organization (`owner`), which records the trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub owner: String,
    pub line: LoggedRequest,
}

impl Trip {
    /// The trip `refusal` is, if it is one: the line of the request `req` as the gateway logs it.
    fn of(refusal: &Refusal, req: &Incoming, now: Timestamp) -> Option<Self> {
        let subject = refusal.logged.as_ref().filter(|_| refusal.tripped())?;
        let line = log_line(req, subject, refusal.reply.status, Some(Code::NotFound.as_str()), now, now);
        Some(Self { owner: subject.owner.clone(), line })
    }
}

/// `POST /v1/verify`: the caller authenticates with a service token holding `keys:verify`; the key in the body is
/// checked like a gateway request (and counts against its limit and in its usage). Also answers the requests the
/// keys' objects did not count (the caller's, and the verified key's when it passed).
pub async fn verify<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Answered {
    let answered = |reply: Reply, uncounted: Vec<Uncounted>| Answered { reply, uncounted, trip: None };
    let Ok(verify_permission) = Permission::try_from("keys:verify") else {
        return answered(Reply::problem(&Problem::internal()), Vec::new());
    };
    let caller = Demand {
        access: Access::Permission(&verify_permission),
        client_ip: req.header(CLIENT_IP_HEADER),
        ..Demand::default()
    };
    let mut uncounted = Vec::new();
    match authenticate(stores, presented(req, config), &config.endpoint, caller, Consult::WhenRateLimited, now).await {
        Ok(pass) => uncounted.extend(pass.uncounted()),
        Err(refusal) => return answered(refusal.reply, uncounted),
    }
    let body: VerifyRequest = match serde_json::from_str(req.body.as_deref().unwrap_or("")) {
        Ok(body) => body,
        Err(e) => {
            let problem = Problem::bad_request("INVALID_BODY", format!("Invalid JSON body: {e}"));
            return answered(Reply::problem(&problem), uncounted);
        }
    };
    let permission = match body.permission.as_deref().map(Permission::try_from).transpose() {
        Ok(p) => p,
        Err(e) => return answered(Reply::problem(&Problem::invalid_field("permission", e.to_string())), uncounted),
    };
    let demand = Demand {
        access: permission.as_ref().map_or(Access::Open, Access::Permission),
        organization: body.organization.as_deref(),
        customer: body.customer.as_deref(),
        // The verified key's client is the caller's client: the caller names its address.
        client_ip: body.client_ip.as_deref(),
    };
    let key = body.key.parse::<ApiKey>().map_err(CredentialError::Malformed);
    let mut trip = None;
    let answer = match authenticate(stores, key, &config.endpoint, demand, Consult::WhenRateLimited, now).await {
        Ok(pass) => {
            uncounted.extend(pass.uncounted());
            let mut out = VerifyResponse::new(Code::Valid, Some(&pass.record));
            out.organization = Some(pass.organization);
            out.remaining = pass.remaining;
            out.rate_limit = pass.rate.map(|(_, d)| RateLimitStatus {
                limit: d.limit,
                remaining: d.remaining,
                reset_seconds: d.reset_seconds,
            });
            out
        }
        Err(refusal @ Refusal { code: Some(code), .. }) => {
            // A canary verified is a trip like a canary at the gateway: its client is the one the caller names.
            trip = Trip::of(&refusal, req, now).map(|mut trip| {
                trip.line.client_ip = body.client_ip.clone().or(trip.line.client_ip);
                trip
            });
            VerifyResponse::new(code, None)
        }
        Err(refusal) => return answered(refusal.reply, uncounted),
    };
    Answered { reply: Reply::json(200, &answer), uncounted, trip }
}

/// `GET /v1/whoami`: which key is this, and of which project (Instrumental's project recovery). Also answers the
/// request when the key's object did not count it.
pub async fn whoami<S: Stores>(stores: &S, req: &Incoming, config: &Config, now: Timestamp) -> Answered {
    match authenticate(
        stores,
        presented(req, config),
        &config.endpoint,
        Demand { client_ip: req.header(CLIENT_IP_HEADER), ..Demand::default() },
        Consult::WhenRateLimited,
        now,
    )
    .await
    {
        Ok(pass) => {
            let uncounted = pass.uncounted();
            let remaining = pass.remaining_header();
            let r = &pass.record;
            let mut reply = Reply::json(
                200,
                &WhoAmI {
                    key_id: r.id,
                    name: r.name.clone(),
                    project: r.project.clone(),
                    environment: r.environment,
                    organization: pass.organization,
                    meta: r.meta.clone(),
                },
            )
            .with_rate(pass.rate.as_ref());
            reply.headers.extend(remaining);
            Answered { reply, uncounted: uncounted.into_iter().collect(), trip: None }
        }
        Err(refusal) => {
            let trip = Trip::of(&refusal, req, now);
            Answered { reply: refusal.reply, uncounted: Vec::new(), trip }
        }
    }
}
