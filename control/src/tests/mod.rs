//! Native tests of the control plane: the admin API through `admin::route` over in-memory objects that run the
//! objects' real logic — the organizations' and users' SQL over an in-memory SQLite, the keys' state machine from
//! `keygate-shared` — with switches that make deliveries and KV writes fail.

mod admin;
mod objects;
mod properties;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::task::{Context, Poll, Waker};

use keygate_shared::api::RecentError;
use keygate_shared::http::{Incoming, Reply};
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{KeyEvent, KeyObjectState, KeyReply, KeyRequest};
use keygate_shared::model::KeyRecord;
use keygate_shared::time::Timestamp;
use serde_json::{Value, json};

use crate::bootstrap::{Bootstrap, BootstrapReply, BootstrapRequest};
use crate::config::Config;
use crate::org::{Org, OrgError, OrgRequest};
use crate::sql::memory::MemorySql;
use crate::store::{OrgAnswer, StoreError, Stores};
use crate::user::{User, UserReply, UserRequest};

/// The fixed "now" of every test; tests that need time to pass move the harness's clock explicitly.
pub const NOW: Timestamp = Timestamp::from_secs(1_795_000_000);

/// Drives a handler's future to completion: over the in-memory stores nothing ever waits on I/O.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("a handler's future stayed pending over the in-memory stores");
}

/// Switches that make parts of storage fail, as the end-to-end suite's `KEYGATE_TEST_FAULTS` does for real.
#[derive(Debug, Default)]
pub struct Faults {
    /// Key objects cannot deliver their events to organizations (the index and audit lag behind).
    pub key_events: Cell<bool>,
    /// KV writes fail.
    pub kv: Cell<bool>,
    /// Every object call fails (storage down).
    pub objects: Cell<bool>,
}

/// In-memory objects with the real logic.
#[derive(Debug, Default)]
pub struct Memory {
    pub kv: RefCell<BTreeMap<String, String>>,
    pub keys: RefCell<BTreeMap<KeyId, (KeyObjectState, VecDeque<RecentError>)>>,
    pub orgs: RefCell<BTreeMap<String, MemorySql>>,
    pub users: RefCell<BTreeMap<String, MemorySql>>,
    pub flag: MemorySql,
    pub failures: RefCell<HashMap<String, u32>>,
    pub faults: Faults,
    /// Object calls made, by kind (to show what a request costs).
    pub calls: RefCell<BTreeMap<&'static str, u32>>,
}

impl Memory {
    fn count(&self, kind: &'static str) {
        *self.calls.borrow_mut().entry(kind).or_default() += 1;
    }

    fn down(&self) -> Result<(), StoreError> {
        if self.faults.objects.get() { Err(StoreError("storage down".into())) } else { Ok(()) }
    }

    /// Runs one organization message in a transaction, then delivers the organization's notices to users.
    pub fn org_handle(&self, organization: &str, request: OrgRequest) -> Result<OrgAnswer, StoreError> {
        let answer = {
            let mut orgs = self.orgs.borrow_mut();
            let db = orgs.entry(organization.to_owned()).or_default();
            match db.transaction(|db| Org { db }.handle(request)) {
                Ok(reply) => Ok(reply),
                Err(OrgError::Refused(r)) => Err(r),
                Err(OrgError::Sql(e)) => return Err(StoreError(e.to_string())),
            }
        };
        self.deliver_notices(organization)?;
        Ok(answer)
    }

    fn deliver_notices(&self, organization: &str) -> Result<(), StoreError> {
        let owed = {
            let orgs = self.orgs.borrow();
            let Some(db) = orgs.get(organization) else { return Ok(()) };
            Org { db }.outbox().map_err(|e| StoreError(e.to_string()))?
        };
        let mut through = None;
        for (seq, user, notice) in owed {
            self.user_handle(&user, UserRequest::Notice { notice })?;
            through = Some(seq);
        }
        if let Some(through) = through {
            let orgs = self.orgs.borrow();
            if let Some(db) = orgs.get(organization) {
                let _ = db.transaction(|db| Org { db }.handle(OrgRequest::Delivered { through }));
            }
        }
        Ok(())
    }

    fn user_handle(&self, user: &str, request: UserRequest) -> Result<UserReply, StoreError> {
        let mut users = self.users.borrow_mut();
        let db = users.entry(user.to_owned()).or_default();
        let reply = db.transaction(|db| User { db }.handle(request)).map_err(|e| StoreError(e.to_string()))?;
        if !self.faults.kv.get()
            && let Some((id, organizations, revision)) =
                (User { db: &*db }).owed_kv().map_err(|e| StoreError(e.to_string()))?
        {
            self.kv
                .borrow_mut()
                .insert(format!("user:{id}"), serde_json::to_string(&organizations).unwrap_or_default());
            let _ = db.transaction(|db| User { db }.handle(UserRequest::KvWritten { revision }));
        }
        Ok(reply)
    }

    /// Delivers what a key's object owes: its events to the organization, its record to KV (the runtime's job).
    pub fn flush_key(&self, id: &KeyId) {
        let (events, kv) = {
            let keys = self.keys.borrow();
            let Some((state, _)) = keys.get(id) else { return };
            let events: Vec<(u64, KeyEvent)> = state.outbox.events.iter().cloned().collect();
            let kv = state.kv_owed.then(|| (state.revision, state.record.clone()));
            (events, kv)
        };
        if let Some((revision, record)) = kv
            && !self.faults.kv.get()
        {
            match record {
                Some(r) => {
                    self.kv.borrow_mut().insert(format!("key:{id}"), serde_json::to_string(&r).unwrap_or_default())
                }
                None => self.kv.borrow_mut().remove(&format!("key:{id}")),
            };
            self.key_message(id, KeyRequest::KvWritten { revision });
        }
        if events.is_empty() || self.faults.key_events.get() {
            return;
        }
        let organization = events[0].1.organization().to_owned();
        let through = events.last().map(|(seq, _)| *seq).unwrap_or(0);
        let batch: Vec<KeyEvent> = events.into_iter().map(|(_, e)| e).collect();
        if self.org_handle(&organization, OrgRequest::KeyEvents { events: batch }).is_ok_and(|a| a.is_ok()) {
            self.key_message(id, KeyRequest::Delivered { through });
        }
    }

    fn key_message(&self, id: &KeyId, request: KeyRequest) -> KeyReply {
        let mut keys = self.keys.borrow_mut();
        let (state, errors) = keys.entry(*id).or_default();
        state.handle(errors, request).0
    }
}

impl Stores for Memory {
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.down()?;
        self.count("kv");
        let kv = self.kv.borrow();
        kv.get(&format!("key:{id}")).map(|t| serde_json::from_str(t).map_err(|e| StoreError(e.to_string()))).transpose()
    }

    async fn key(&self, id: &KeyId, request: KeyRequest) -> Result<KeyReply, StoreError> {
        self.down()?;
        self.count("key");
        let mut reply = self.key_message(id, request);
        self.flush_key(id);
        if let KeyReply::Committed { settled, .. } = &mut reply {
            *settled = self.keys.borrow().get(id).is_some_and(|(state, _)| state.settled());
        }
        Ok(reply)
    }

    async fn org(&self, organization: &str, request: OrgRequest) -> Result<OrgAnswer, StoreError> {
        self.down()?;
        self.count("org");
        self.org_handle(organization, request)
    }

    async fn user(&self, user: &str, request: UserRequest) -> Result<UserReply, StoreError> {
        self.down()?;
        self.count("user");
        self.user_handle(user, request)
    }

    async fn bootstrap(&self, request: BootstrapRequest) -> Result<BootstrapReply, StoreError> {
        self.down()?;
        self.count("bootstrap");
        self.flag.transaction(|db| Bootstrap { db }.handle(request)).map_err(|e| StoreError(e.to_string()))
    }

    async fn sign_in_failed(&self, source: &str) -> bool {
        let mut failures = self.failures.borrow_mut();
        let n = failures.entry(source.to_owned()).or_default();
        *n += 1;
        *n > crate::config::SIGN_IN_FAILURES_PER_MINUTE
    }
}

/// The configuration of every test: the live environment and the bootstrap token `boot`.
pub fn config() -> Config {
    Config::from_vars(|name| match name {
        "KEYGATE_BOOTSTRAP_TOKEN" => Some("boot".into()),
        _ => None,
    })
    .expect("the test configuration is valid")
}

/// A request; `target` may carry a query string after `?`.
pub fn request(method: &str, target: &str) -> Incoming {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Incoming { method: method.into(), path: path.into(), query: query.into(), headers: vec![], body: None }
}

/// Builder steps for [`Incoming`], so each case stays on one line.
pub trait Build: Sized {
    fn header(self, name: &str, value: &str) -> Self;
    fn body(self, text: &str) -> Self;

    fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn org(self, organization: &str) -> Self {
        self.header(crate::admin::ORG_HEADER, organization)
    }

    fn json(self, value: Value) -> Self {
        self.body(&value.to_string())
    }
}

impl Build for Incoming {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    fn body(mut self, text: &str) -> Self {
        self.body = Some(text.to_owned());
        self
    }
}

/// The JSON body of an answer (problem bodies included).
pub fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", reply.body))
}

/// The stable `code` of a problem body, or an empty string for a success.
pub fn code_of(reply: &Reply) -> String {
    if reply.body.is_empty() || reply.status < 400 {
        return String::new();
    }
    json_of(reply)["code"].as_str().unwrap_or_default().to_owned()
}

/// Asserts an answer's status and, for problems, its `code` (`""` when the answer is not a problem).
#[track_caller]
pub fn check(name: &str, reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{name}: body {}", reply.body);
    assert_eq!(code_of(reply), code, "{name}: code");
}

/// Asserts that an answer is a success with a JSON body (or none), or an RFC 9457 problem whose `status` is the
/// answer's status.
#[track_caller]
pub fn assert_well_formed(reply: &Reply) {
    if reply.status >= 400 {
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{reply:?}");
        let body = json_of(reply);
        assert_eq!(body["status"], reply.status, "{reply:?}");
        assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{reply:?}");
        assert!(body["detail"].as_str().is_some(), "{reply:?}");
    } else if !reply.body.is_empty() {
        let _ = json_of(reply);
    }
}

/// The in-memory objects, the configuration and a clock that only moves when a test moves it.
#[derive(Debug)]
pub struct Harness {
    pub memory: Memory,
    pub config: Config,
    pub clock: Cell<Timestamp>,
}

/// A signed-in console user, for one-line requests.
#[derive(Debug, Clone)]
pub struct Client<'h> {
    pub h: &'h Harness,
    pub token: String,
    pub user: String,
    pub organization: String,
    /// Sent as `Keygate-Org` when set.
    pub acting_for: Option<String>,
}

impl Harness {
    pub fn new() -> Self {
        Self { memory: Memory::default(), config: config(), clock: Cell::new(NOW) }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.get()
    }

    pub fn advance_secs(&self, secs: i64) {
        self.clock.set(self.now().plus_secs(secs));
    }

    pub fn admin(&self, req: Incoming) -> Reply {
        block_on(crate::admin::route(&self.memory, &req, &self.config, self.now()))
    }

    /// Bootstraps the empty store and returns the first owner.
    pub fn bootstrap(&self) -> Client<'_> {
        let reply = self.admin(request("POST", "/admin/v1/bootstrap").bearer("boot"));
        assert_eq!(reply.status, 201, "bootstrap: {}", reply.body);
        let body = json_of(&reply);
        Client {
            h: self,
            token: body["console_token"].as_str().expect("a console token").to_owned(),
            user: body["user"]["id"].as_str().expect("a user id").to_owned(),
            organization: body["organization"]["id"].as_str().expect("an organization id").to_owned(),
            acting_for: None,
        }
    }

    /// Everything stored, as text: to show that a refused request changed nothing.
    pub fn stored(&self) -> String {
        let dump = |db: &MemorySql| -> String {
            let conn = db.conn.borrow();
            let mut out = String::new();
            let mut tables = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
            let names: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            for table in names {
                let mut rows = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
                let n = rows.column_count();
                let text: Vec<String> = rows
                    .query_map([], |r| {
                        Ok((0..n)
                            .map(|i| format!("{:?}", r.get_ref(i).map(|v| v.to_owned())))
                            .collect::<Vec<_>>()
                            .join("|"))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                out.push_str(&format!("{table}: {text:?}\n"));
            }
            out
        };
        let orgs: Vec<String> = self.memory.orgs.borrow().iter().map(|(k, db)| format!("{k}:\n{}", dump(db))).collect();
        let users: Vec<String> =
            self.memory.users.borrow().iter().map(|(k, db)| format!("{k}:\n{}", dump(db))).collect();
        // Console tokens' objects count every sign-in (their usage), so they are left out; keys are not.
        let keys: Vec<String> = self
            .memory
            .keys
            .borrow()
            .iter()
            .filter(|(_, (state, _))| {
                state
                    .record
                    .as_ref()
                    .is_none_or(|r| r.project.as_deref() != Some(keygate_shared::decision::CONSOLE_PROJECT))
            })
            .map(|(id, state)| format!("{id}: {state:?}"))
            .collect();
        format!("{:?}\n{keys:?}\n{orgs:?}\n{users:?}", self.memory.kv.borrow())
    }
}

impl<'h> Client<'h> {
    /// The same user acting for another organization (`Keygate-Org`).
    pub fn in_org(&self, org: &str) -> Self {
        Self { acting_for: Some(org.to_owned()), ..self.clone() }
    }

    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req = request(method, &format!("/admin/v1/{path}")).bearer(&self.token);
        if let Some(org) = &self.acting_for {
            req = req.org(org);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.h.admin(req)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: Value) -> Reply {
        self.send("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None)
    }

    pub fn act(&self, id: &str, action: &str) -> Reply {
        self.post(&format!("keys/{id}/{action}"), json!({}))
    }

    /// Creates a key (`settings` merged over a live key named `k`): its full text and id.
    pub fn create_key(&self, settings: Value) -> (String, String) {
        let mut body = json!({ "name": "k", "environment": "live" });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), settings.as_object()) {
            body.extend(extra.clone());
        }
        let reply = self.post("keys", body);
        assert_eq!(reply.status, 201, "create key: {}", reply.body);
        let body = json_of(&reply);
        (body["key"].as_str().unwrap_or_default().to_owned(), body["record"]["id"].as_str().expect("an id").to_owned())
    }

    /// Invites `email` as `role` and returns the code (shown once).
    pub fn invite(&self, email: &str, role: &str) -> String {
        let reply = self.post("invitations", json!({ "email": email, "name": email, "role": role }));
        assert_eq!(reply.status, 201, "invite {email}: {}", reply.body);
        json_of(&reply)["code"].as_str().expect("a code").to_owned()
    }

    /// Invites a new user and redeems the invitation for them: a client of the new member.
    pub fn invite_new(&self, email: &str, role: &str) -> Client<'h> {
        let code = self.invite(email, role);
        redeem(self.h, &code)
    }
}

/// Redeems an invitation code as a new user.
pub fn redeem<'h>(h: &'h Harness, code: &str) -> Client<'h> {
    let reply = h.admin(request("POST", "/admin/v1/invitations/redeem").json(json!({ "code": code })));
    assert_eq!(reply.status, 201, "redeem: {}", reply.body);
    let body = json_of(&reply);
    Client {
        h,
        token: body["console_token"].as_str().expect("a console token").to_owned(),
        user: body["user"]["id"].as_str().expect("a user id").to_owned(),
        organization: body["organization"]["id"].as_str().expect("an organization").to_owned(),
        acting_for: None,
    }
}

/// The same key with another secret: the id exists, the secret does not match.
pub fn other_secret(key: &str) -> String {
    let key: keygate_shared::ApiKey = key.parse().expect("a well-formed key");
    key.with_new_secret().expect("randomness").expose()
}
