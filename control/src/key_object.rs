//! The keys' Durable Object class, `KeyObject`: one per key, the exact state of `keygate_shared::keyobject` over the
//! object's storage. It lives in the control plane's Worker with the other objects; the gateway reaches it over a
//! Durable Object binding across scripts (`KEY_OBJECTS`, `script_name = "keygate-control"`) for leases, strict rate
//! limits and usage reports. A class's code runs where its objects live, not in the isolates that call them, so this
//! costs the gateway nothing in size or cold start, and a call costs the same from either Worker.

use std::cell::RefCell;
use std::collections::VecDeque;

use keygate_shared::api::RecentError;
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{KeyEnvelope, KeyEvent, KeyObjectState, KeyReply, KeyRequest};
use keygate_shared::model::KeyRecord;
use serde::Deserialize;
use worker::{DurableObject, Env, Request, Response, State, durable_object};

use crate::runtime::{KV_BINDING, ORG_OBJECTS, call, now};
use crate::store::StoreError;

/// Where KV holds a key's record.
fn kv_key(id: &KeyId) -> String {
    format!("key:{id}")
}
/// A value stored as JSON, or its default when nothing is stored yet. A value that is there but cannot be read is
/// an error.
fn stored<T: Default + for<'de> Deserialize<'de>>(text: Option<String>) -> worker::Result<T> {
    match text {
        None => Ok(T::default()),
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| worker::Error::RustError(format!("unreadable state: {e}")))
        }
    }
}

/// `KEYGATE_TEST_FAULTS` (end-to-end suite only, never set in production): `kv` makes each key object's first KV
/// write after the key's creation fail once; `audit` does the same to its first delivery of events (index rows and
/// audit events) to the organization. Both are then retried by the object's alarm, as any failure would be.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    kv: bool,
    events: bool,
}

fn faults(env: &Env) -> Faults {
    let text = env.var("KEYGATE_TEST_FAULTS").map(|v| v.to_string()).unwrap_or_default();
    Faults { kv: text.split(',').any(|f| f.trim() == "kv"), events: text.split(',').any(|f| f.trim() == "audit") }
}

/// One per key: the exact state (see `keygate_shared::keyobject`). After each message it writes what changed,
/// then delivers what it owes (its record to KV, its events to the organization's object); a delivery that fails
/// is retried by the object's alarm, with backoff, until it holds.
#[durable_object]
#[allow(missing_debug_implementations)] // State and Env print nothing useful.
pub struct KeyObject {
    state: State,
    env: Env,
    loaded: RefCell<Option<(KeyId, KeyObjectState, VecDeque<RecentError>)>>,
    /// Deliveries that failed on purpose so far (`KEYGATE_TEST_FAULTS`).
    injected: RefCell<(bool, bool)>,
    /// When the alarm is set for, as far as this instance knows (so the hot path does not ask storage).
    alarm_at: RefCell<Option<i64>>,
}

impl KeyObject {
    async fn load(&self, id: Option<KeyId>) -> worker::Result<()> {
        if self.loaded.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        // Stored state that cannot be read is an error (the caller answers 503), never a fresh empty state.
        let mut state: KeyObjectState = stored(storage.get::<String>("state").await?)?;
        let errors: VecDeque<RecentError> = stored(storage.get::<String>("errors").await?)?;
        let stored_id: Option<String> = storage.get::<String>("id").await?;
        let id = match (id, stored_id.as_deref().and_then(KeyId::parse)) {
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Err(worker::Error::RustError("a key object without its id".into())),
        };
        if stored_id.is_none() {
            storage.put("id", id.to_string()).await?;
        }
        if state.record.is_none() && state.revision == 0 {
            // A key seeded straight into KV (benchmarks): adopt its record.
            let kv = self.env.kv(KV_BINDING)?;
            let text = kv.get(&kv_key(&id)).text().await.ok().flatten();
            state.record = text.and_then(|t| serde_json::from_str::<KeyRecord>(&t).ok());
        }
        let mut slot = self.loaded.borrow_mut();
        if slot.is_none() {
            *slot = Some((id, state, errors));
        }
        Ok(())
    }

    async fn persist(&self, state_json: Option<String>, errors_json: Option<String>) -> worker::Result<()> {
        let storage = self.state.storage();
        if let Some(json) = state_json {
            storage.put("state", json).await?;
        }
        if let Some(json) = errors_json {
            storage.put("errors", json).await?;
        }
        Ok(())
    }

    /// Handles one message with no await between the decision and the state change (exact under concurrency),
    /// then stores what changed.
    async fn apply(&self, request: KeyRequest) -> worker::Result<KeyReply> {
        let (reply, state_json, errors_json) = {
            let mut slot = self.loaded.borrow_mut();
            let Some((_, state, errors)) = slot.as_mut() else {
                return Err(worker::Error::RustError("key object not loaded".into()));
            };
            let (reply, changes) = state.handle(errors, request);
            let state_json = changes.state.then(|| serde_json::to_string(state)).transpose()?;
            let errors_json = changes.errors.then(|| serde_json::to_string(errors)).transpose()?;
            (reply, state_json, errors_json)
        };
        self.persist(state_json, errors_json).await?;
        Ok(reply)
    }

    /// Writes behind what the object owes, then sets the alarm for what is still owed (or a usage summary due).
    async fn deliver(&self) -> worker::Result<()> {
        let faults = faults(&self.env);
        let (id, kv, events) = {
            let slot = self.loaded.borrow();
            let Some((id, state, _)) = slot.as_ref() else { return Ok(()) };
            let kv = state.kv_owed.then(|| (state.revision, state.record.clone()));
            let events: Vec<(u64, KeyEvent)> = state.outbox.events.iter().cloned().collect();
            (*id, kv, events)
        };
        if let Some((revision, record)) = kv {
            let fail = faults.kv && revision > 1 && !self.injected.borrow().0;
            self.injected.borrow_mut().0 |= fail;
            let kv_store = self.env.kv(KV_BINDING)?;
            let written = if fail {
                Err(worker::Error::RustError("injected KV failure (KEYGATE_TEST_FAULTS=kv)".into()))
            } else {
                match &record {
                    Some(r) => match kv_store.put(&kv_key(&id), serde_json::to_string(r)?) {
                        Ok(put) => put.execute().await.map_err(|e| worker::Error::RustError(e.to_string())),
                        Err(e) => Err(worker::Error::RustError(e.to_string())),
                    },
                    None => kv_store.delete(&kv_key(&id)).await.map_err(|e| worker::Error::RustError(e.to_string())),
                }
            };
            match written {
                Ok(()) => {
                    self.apply(KeyRequest::KvWritten { revision }).await?;
                }
                Err(e) => worker::console_error!("keygate: KV write of {id} failed, retrying: {e}"),
            }
        }
        if let Some((through, _)) = events.last() {
            let through = *through;
            let organization = events[0].1.organization().to_owned();
            let after_creation = self.loaded.borrow().as_ref().is_some_and(|(_, state, _)| state.revision > 1);
            let fail = faults.events && after_creation && !self.injected.borrow().1;
            self.injected.borrow_mut().1 |= fail;
            let batch: Vec<&KeyEvent> = events.iter().map(|(_, e)| e).collect();
            let sent: Result<serde_json::Value, StoreError> = if fail {
                Err(StoreError("injected delivery failure (KEYGATE_TEST_FAULTS=audit)".into()))
            } else {
                call(&self.env, ORG_OBJECTS, &organization, "/key-events", &batch).await
            };
            match sent {
                Ok(_) => {
                    self.apply(KeyRequest::Delivered { through }).await?;
                }
                Err(e) => {
                    worker::console_error!("keygate: events of {id} to {organization} failed, retrying: {e}");
                    let mut slot = self.loaded.borrow_mut();
                    if let Some((_, state, _)) = slot.as_mut() {
                        state.outbox.failures = state.outbox.failures.saturating_add(1);
                    }
                }
            }
        }
        let now = now();
        let wake = self.loaded.borrow().as_ref().and_then(|(_, state, _)| state.next_wake(now));
        if let Some(at) = wake {
            let scheduled = *self.alarm_at.borrow();
            if scheduled.is_none_or(|s| s > at.millis()) {
                let delay = u64::try_from((at.millis() - now.millis()).max(0)).unwrap_or(0);
                self.state.storage().set_alarm(std::time::Duration::from_millis(delay)).await?;
                *self.alarm_at.borrow_mut() = Some(at.millis());
            }
        }
        Ok(())
    }
}

impl DurableObject for KeyObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            loaded: RefCell::new(None),
            injected: RefCell::new((false, false)),
            alarm_at: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let KeyEnvelope { id, request } = crate::runtime::json_body(&mut req).await?;
        self.load(Some(id)).await?;
        let mut reply = self.apply(request).await?;
        // What a change owes goes out at once in the common case (read-your-writes for the console); the alarm
        // covers failures and usage summaries. With nothing owed this costs no storage call.
        if let Err(e) = self.deliver().await {
            worker::console_error!("keygate: delivery of {id}: {e}");
        }
        if let KeyReply::Committed { settled, .. } = &mut reply {
            *settled = self.loaded.borrow().as_ref().is_some_and(|(_, state, _)| state.settled());
        }
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        *self.alarm_at.borrow_mut() = None;
        self.load(None).await?;
        self.apply(KeyRequest::Tick { now: now() }).await?;
        self.deliver().await?;
        Response::ok("ok")
    }
}
