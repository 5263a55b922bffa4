//! The platform glue of the control plane: the organizations', users' and bootstrap flag's Durable Object classes
//! over their SQLite storage, KV, calls to the keys' objects (`key_object.rs`), and the rate limiter of failed
//! sign-ins. No decision is made here.

use std::cell::RefCell;
use std::rc::Rc;

use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{KeyEnvelope, KeyEvent, KeyRefusal, KeyReply, KeyRequest};
use keygate_shared::model::KeyRecord;
use keygate_shared::time::Timestamp;
use keygate_shared::webhook;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use worker::{DurableObject, Env, Method, Request, RequestInit, Response, State, durable_object};

use crate::bootstrap::{Bootstrap, BootstrapReply, BootstrapRequest};
use crate::org::{DeliveryOutcome, DueDelivery, Org, OrgError, OrgRequest};
use crate::sql::{Sql, SqlError, SqlValue};
use crate::store::{OrgAnswer, StoreError, Stores};
use crate::user::{User, UserReply, UserRequest};

pub const KV_BINDING: &str = "KEYS";
pub const KEY_OBJECTS: &str = "KEY_OBJECTS";
pub const ORG_OBJECTS: &str = "ORG_OBJECTS";
pub const USER_OBJECTS: &str = "USER_OBJECTS";
pub const BOOTSTRAP: &str = "BOOTSTRAP";
pub const SIGN_IN_LIMITER: &str = "SIGN_IN_LIMITER";

pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// Durable Objects' SQL storage as [`Sql`].
struct DoSql(worker::SqlStorage);

impl Sql for DoSql {
    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<serde_json::Value>, SqlError> {
        let bindings: Vec<worker::SqlStorageValue> = params
            .iter()
            .map(|p| match p {
                SqlValue::Null => worker::SqlStorageValue::Null,
                SqlValue::Integer(i) => worker::SqlStorageValue::Integer(*i),
                SqlValue::Text(t) => worker::SqlStorageValue::String(t.clone()),
            })
            .collect();
        let cursor = self.0.exec(query, bindings).map_err(|e| SqlError(format!("{e} in `{query}`")))?;
        cursor.to_array::<serde_json::Value>().map_err(|e| SqlError(format!("{e} reading `{query}`")))
    }
}

#[wasm_bindgen]
extern "C" {
    type TransactionalStorage;
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(this: &TransactionalStorage, f: &js_sys::Function) -> Result<JsValue, JsValue>;
}

/// Runs `f` over the object's SQL storage in one transaction (`transactionSync`): every statement commits, or —
/// when `f` returns an error — none does.
fn transaction<R: 'static, E: 'static>(
    state: &State,
    f: impl FnOnce(&DoSql) -> Result<R, E> + 'static,
) -> Result<Result<R, E>, worker::Error> {
    let storage = state.storage();
    let db = DoSql(storage.sql());
    let out: Rc<RefCell<Option<Result<R, E>>>> = Rc::new(RefCell::new(None));
    let slot = Rc::clone(&out);
    let closure = Closure::once(move || -> Result<JsValue, JsValue> {
        let result = f(&db);
        let failed = result.is_err();
        *slot.borrow_mut() = Some(result);
        // Throwing rolls the transaction back.
        if failed { Err(JsValue::from_str("keygate: rolled back")) } else { Ok(JsValue::UNDEFINED) }
    });
    let raw: &TransactionalStorage = storage.as_raw().unchecked_ref();
    let thrown = raw.transaction_sync(closure.as_ref().unchecked_ref());
    match out.borrow_mut().take() {
        Some(result) => Ok(result),
        None => Err(worker::Error::RustError(format!("transaction did not run: {thrown:?}"))),
    }
}

/// One message to the object `name` of `binding`, answered as JSON (any other status than 200 is an error).
pub(crate) async fn call<T: Serialize, R: for<'de> Deserialize<'de>>(
    env: &Env,
    binding: &str,
    name: &str,
    path: &str,
    message: &T,
) -> Result<R, StoreError> {
    let err = |e: worker::Error| StoreError(e.to_string());
    let stub = env.durable_object(binding).and_then(|ns| ns.id_from_name(name)?.get_stub()).map_err(err)?;
    let body = serde_json::to_string(message).map_err(|e| StoreError(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request = Request::new_with_init(&format!("https://object.keygate{path}"), &init).map_err(err)?;
    let mut response = stub.fetch_with_request(request).await.map_err(err)?;
    if response.status_code() != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(StoreError(format!("{binding} answered {}: {text}", response.status_code())));
    }
    response.json().await.map_err(err)
}

/// [`Stores`] over the Worker's bindings.
pub struct WorkerStores {
    pub env: Env,
}

impl Stores for WorkerStores {
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let kv = self.env.kv(KV_BINDING).map_err(|e| StoreError(e.to_string()))?;
        let text = kv.get(&format!("key:{id}")).text().await.map_err(|e| StoreError(e.to_string()))?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError(format!("bad record {id}: {e}")))).transpose()
    }

    async fn key(&self, id: &KeyId, request: KeyRequest) -> Result<KeyReply, StoreError> {
        call(&self.env, KEY_OBJECTS, id.as_str(), "/", &KeyEnvelope { id: *id, request }).await
    }

    async fn org(&self, organization: &str, request: OrgRequest) -> Result<OrgAnswer, StoreError> {
        call(&self.env, ORG_OBJECTS, organization, "/", &request).await
    }

    async fn user(&self, user: &str, request: UserRequest) -> Result<UserReply, StoreError> {
        call(&self.env, USER_OBJECTS, user, "/", &request).await
    }

    async fn bootstrap(&self, request: BootstrapRequest) -> Result<BootstrapReply, StoreError> {
        call(&self.env, BOOTSTRAP, "bootstrap", "/", &request).await
    }

    async fn sign_in_failed(&self, source: &str) -> bool {
        match self.env.rate_limiter(SIGN_IN_LIMITER) {
            Ok(limiter) => limiter.limit(format!("sign-in:{source}")).await.is_ok_and(|o| !o.success),
            Err(_) => false,
        }
    }
}

/// A message body, parsed by serde_json from its text (not through JavaScript values: key metadata is kept as raw
/// JSON, which only serde_json's own parser can hand over).
pub async fn json_body<T: serde::de::DeserializeOwned>(req: &mut Request) -> worker::Result<T> {
    Ok(serde_json::from_str(&req.text().await?)?)
}

fn json_response<T: Serialize>(value: &T) -> worker::Result<Response> {
    Response::from_json(value)
}

/// Backoff for retried deliveries: 1 s, 2 s, 4 s … at most a minute.
fn backoff_ms(attempt: u32) -> i64 {
    1_000i64.saturating_mul(1i64 << attempt.min(6)).min(60_000)
}

// -----------------------------------------------------------------------------------------------------------------
// The organization's object

#[durable_object]
#[allow(missing_debug_implementations)] // State and Env print nothing useful.
pub struct OrgObject {
    state: State,
    env: Env,
    failures: RefCell<u32>,
    /// Role changes owed to keys are being delivered by the alarm (so a request does not set it again).
    syncing: RefCell<bool>,
}

impl OrgObject {
    /// Delivers what the organization owes its members' objects; on a failure the alarm retries.
    async fn deliver(&self) -> worker::Result<()> {
        let state = &self.state;
        let owed =
            transaction(state, |db| Org { db }.outbox())?.map_err(|e| worker::Error::RustError(e.to_string()))?;
        if owed.is_empty() {
            *self.failures.borrow_mut() = 0;
            return Ok(());
        }
        let mut through = None;
        for (seq, user, notice) in owed {
            let request = UserRequest::Notice { notice };
            match call::<_, UserReply>(&self.env, USER_OBJECTS, &user, "/", &request).await {
                Ok(_) => through = Some(seq),
                Err(e) => {
                    worker::console_error!("keygate: notice to {user} failed, retrying: {e}");
                    break;
                }
            }
        }
        if let Some(through) = through {
            let done = OrgRequest::Delivered { through };
            let _ = transaction(state, move |db| Org { db }.handle(done))?;
        }
        let more = transaction(state, |db| Org { db }.outbox())?.map(|o| !o.is_empty()).unwrap_or(true);
        if more {
            let attempt = {
                let mut failures = self.failures.borrow_mut();
                *failures += 1;
                *failures
            };
            self.arm(backoff_ms(attempt)).await?;
        } else {
            *self.failures.borrow_mut() = 0;
        }
        Ok(())
    }
}

/// What a round of deliveries of definitions left owed.
enum Owed {
    Nothing,
    /// Progress was made; more is owed.
    More,
    /// Nothing could be delivered (a key's object failed or is backed up): try again later.
    Stuck,
}

impl OrgObject {
    /// Sends keys their definitions (roles, identity) as they now are, a batch at a time, for at most a few batches (the alarm comes back
    /// at once for the rest, later after a batch that made no progress).
    async fn sync(&self) -> worker::Result<Owed> {
        let state = &self.state;
        for _ in 0..4 {
            let owed = transaction(state, |db| Org { db }.key_syncs())?
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            if owed.is_empty() {
                return Ok(Owed::Nothing);
            }
            // The batch's keys at once: each is its own object, so their changes do not wait on one another.
            let calls = owed.into_iter().map(|sync| async move {
                let request = KeyRequest::Sync {
                    revision: u64::try_from(sync.revision).unwrap_or(0),
                    roles: sync.roles,
                    identity: sync.identity,
                };
                let envelope = KeyEnvelope { id: sync.key, request };
                match call::<_, KeyReply>(&self.env, KEY_OBJECTS, sync.key.as_str(), "/", &envelope).await {
                    // A key with too much owed to the organization takes the change on a later round.
                    Ok(KeyReply::Refused { refusal: KeyRefusal::Backlog }) => None,
                    Ok(_) => Some((sync.key.to_string(), sync.revision)),
                    Err(e) => {
                        worker::console_error!("keygate: definitions of {} failed, retrying: {e}", sync.key);
                        None
                    }
                }
            });
            let done: Vec<(String, i64)> = futures_util::future::join_all(calls).await.into_iter().flatten().collect();
            if done.is_empty() {
                return Ok(Owed::Stuck);
            }
            let synced = OrgRequest::Synced { done };
            transaction(state, move |db| Org { db }.handle(synced))?
                .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        }
        Ok(Owed::More)
    }

    /// Sets the alarm to deliver changed definitions, unless it is already on it.
    async fn schedule_sync(&self) -> worker::Result<()> {
        if *self.syncing.borrow() {
            return Ok(());
        }
        let owed = transaction(&self.state, |db| Org { db }.sync_owed())?
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        if owed {
            *self.syncing.borrow_mut() = true;
            self.arm(0).await?;
        }
        Ok(())
    }
}

impl OrgObject {
    /// Posts the webhook deliveries that are due, a batch at once (each its own request, awaited together), for a
    /// few batches; answers when the next waiting delivery is due.
    async fn post_webhooks(&self) -> worker::Result<Option<Timestamp>> {
        let state = &self.state;
        let fail = |e: SqlError| worker::Error::RustError(e.to_string());
        for _ in 0..4 {
            let at = now();
            let due = transaction(state, move |db| Org { db }.due_deliveries(at))?.map_err(fail)?;
            if due.is_empty() {
                break;
            }
            let outcomes: Vec<DeliveryOutcome> = futures_util::future::join_all(due.into_iter().map(post)).await;
            let at = now();
            transaction(state, move |db| Org { db }.delivery_outcomes(&outcomes, at))?.map_err(fail)?;
        }
        transaction(state, |db| Org { db }.next_delivery())?.map_err(fail)
    }

    /// Sets the alarm to ring within `ms`, unless it already rings sooner.
    async fn arm(&self, ms: i64) -> worker::Result<()> {
        let storage = self.state.storage();
        let ms = ms.max(0);
        if storage.get_alarm().await?.is_some_and(|at| at <= now().millis() + ms) {
            return Ok(());
        }
        storage.set_alarm(std::time::Duration::from_millis(ms as u64)).await
    }

    /// Announces the expiries due now (queuing their webhooks), then sets the alarm for the next one.
    async fn expiries(&self) -> worker::Result<()> {
        let fail = |e: SqlError| worker::Error::RustError(e.to_string());
        let at = now();
        // One transaction on every request of the object: announce what is due, then find the next one.
        let next = transaction(&self.state, move |db| {
            let org = Org { db };
            // More due than one round announces: come back at once.
            if org.announce_expiries(at)? { Ok(Some(at)) } else { org.next_expiry(at) }
        })?
        .map_err(fail)?;
        match next {
            Some(next) if next == at => self.arm(50).await,
            Some(next) => self.arm(next.millis() - now().millis()).await,
            None => Ok(()),
        }
    }

    /// Sets the alarm for the next webhook delivery, if one waits.
    async fn schedule_webhooks(&self) -> worker::Result<()> {
        let next = transaction(&self.state, |db| Org { db }.next_delivery())?
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        match next {
            Some(at) => self.arm(at.millis() - now().millis()).await,
            None => Ok(()),
        }
    }
}

/// One attempt of a delivery: signed at the moment it is sent, redirects not followed, at most 10 s awaited.
async fn post(delivery: DueDelivery) -> DeliveryOutcome {
    use futures_util::future::{Either, select};
    let outcome =
        |status: Option<u16>, error: Option<String>| DeliveryOutcome { id: delivery.id.clone(), status, error };
    let mut secrets = vec![delivery.secret.as_str()];
    secrets.extend(delivery.previous_secret.as_deref());
    let signature = webhook::sign_with(&secrets, now(), delivery.body.as_bytes());
    let headers = worker::Headers::new();
    let set = [
        ("content-type", "application/json"),
        ("user-agent", "Keygate-Webhooks/1"),
        ("keygate-webhook-id", delivery.id.as_str()),
        ("keygate-event", delivery.event_type.as_str()),
        ("keygate-signature", signature.as_str()),
    ];
    for (name, value) in set {
        if let Err(e) = headers.set(name, value) {
            return outcome(None, Some(e.to_string()));
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(worker::RequestRedirect::Manual)
        .with_body(Some(delivery.body.clone().into()));
    let request = match Request::new_with_init(&delivery.url, &init) {
        Ok(request) => request,
        Err(e) => return outcome(None, Some(e.to_string())),
    };
    let controller = worker::AbortController::default();
    let signal = controller.signal();
    let fetch = worker::Fetch::Request(request);
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let timeout = Box::pin(worker::Delay::from(std::time::Duration::from_millis(u64::from(webhook::TIMEOUT_MS))));
    match select(sent, timeout).await {
        Either::Left((Ok(response), _)) => outcome(Some(response.status_code()), None),
        Either::Left((Err(e), _)) => outcome(None, Some(format!("Could not reach the receiver: {e}"))),
        Either::Right(((), _)) => {
            controller.abort();
            outcome(None, Some("The receiver did not answer within 10 s.".into()))
        }
    }
}

impl DurableObject for OrgObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, failures: RefCell::new(0), syncing: RefCell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let request: OrgRequest = if req.path() == "/key-events" {
            OrgRequest::KeyEvents { events: json_body::<Vec<KeyEvent>>(&mut req).await? }
        } else {
            json_body(&mut req).await?
        };
        let state = &self.state;
        let answer: OrgAnswer = match transaction(state, move |db| Org { db }.handle(request))? {
            Ok(reply) => Ok(reply),
            Err(OrgError::Refused(refusal)) => Err(refusal),
            Err(OrgError::Sql(e)) => return Response::error(format!("organization storage: {e}"), 500),
        };
        // Members learn at once in the common case; the alarm retries otherwise.
        if let Err(e) = self.deliver().await {
            worker::console_error!("keygate: organization outbox: {e}");
        }
        // Keys learn changed roles and identities from the alarm, so this answer does not wait for them.
        if let Err(e) = self.schedule_sync().await {
            worker::console_error!("keygate: definition changes: {e}");
        }
        // Expiries are announced by the alarm when they come.
        if let Err(e) = self.expiries().await {
            worker::console_error!("keygate: expiries: {e}");
        }
        // Webhooks too are posted by the alarm.
        if let Err(e) = self.schedule_webhooks().await {
            worker::console_error!("keygate: webhooks: {e}");
        }
        json_response(&answer)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        *self.syncing.borrow_mut() = true;
        let synced = self.sync().await;
        self.deliver().await?;
        if let Err(e) = self.expiries().await {
            worker::console_error!("keygate: expiries: {e}");
            self.arm(5_000).await?;
        }
        match self.post_webhooks().await {
            Ok(Some(at)) => self.arm(at.millis() - now().millis()).await?,
            Ok(None) => {}
            Err(e) => {
                worker::console_error!("keygate: webhooks: {e}");
                self.arm(5_000).await?;
            }
        }
        let again = match synced {
            Ok(Owed::Nothing) => None,
            Ok(Owed::More) => Some(50),
            Ok(Owed::Stuck) => Some(5_000),
            Err(e) => {
                worker::console_error!("keygate: definition changes: {e}");
                Some(5_000)
            }
        };
        match again {
            None => *self.syncing.borrow_mut() = false,
            Some(ms) => self.arm(ms).await?,
        }
        Response::ok("ok")
    }
}

// -----------------------------------------------------------------------------------------------------------------
// A user's object

#[durable_object]
#[allow(missing_debug_implementations)] // State and Env print nothing useful.
pub struct UserObject {
    state: State,
    env: Env,
    failures: RefCell<u32>,
}

impl UserObject {
    /// Writes the user's organizations to KV (`user:<id>`) when they changed; on a failure the alarm retries.
    async fn write_kv(&self) -> worker::Result<()> {
        let state = &self.state;
        let owed =
            transaction(state, |db| User { db }.owed_kv())?.map_err(|e| worker::Error::RustError(e.to_string()))?;
        let Some((id, organizations, revision)) = owed else { return Ok(()) };
        let kv = self.env.kv(KV_BINDING)?;
        let written = match kv.put(&format!("user:{id}"), serde_json::to_string(&organizations)?) {
            Ok(put) => put.execute().await.map_err(|e| worker::Error::RustError(e.to_string())),
            Err(e) => Err(worker::Error::RustError(e.to_string())),
        };
        match written {
            Ok(()) => {
                *self.failures.borrow_mut() = 0;
                let _ = transaction(state, move |db| User { db }.handle(UserRequest::KvWritten { revision }))?;
            }
            Err(e) => {
                worker::console_error!("keygate: KV write of user:{id} failed, retrying: {e}");
                let attempt = {
                    let mut failures = self.failures.borrow_mut();
                    *failures += 1;
                    *failures
                };
                self.state.storage().set_alarm(std::time::Duration::from_millis(backoff_ms(attempt) as u64)).await?;
            }
        }
        Ok(())
    }
}

impl DurableObject for UserObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, failures: RefCell::new(0) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let request: UserRequest = json_body(&mut req).await?;
        let state = &self.state;
        let reply = match transaction(state, move |db| User { db }.handle(request))? {
            Ok(reply) => reply,
            Err(e) => return Response::error(format!("user storage: {e}"), 500),
        };
        if let Err(e) = self.write_kv().await {
            worker::console_error!("keygate: user KV: {e}");
        }
        json_response(&reply)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.write_kv().await?;
        Response::ok("ok")
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The bootstrap flag

#[durable_object]
#[allow(missing_debug_implementations)] // State prints nothing useful.
pub struct BootstrapObject {
    state: State,
}

impl DurableObject for BootstrapObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let request: BootstrapRequest = json_body(&mut req).await?;
        let state = &self.state;
        match transaction(state, move |db| Bootstrap { db }.handle(request))? {
            Ok(reply) => json_response(&reply),
            Err(e) => Response::error(format!("bootstrap storage: {e}"), 500),
        }
    }
}
