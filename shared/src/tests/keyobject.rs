#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::VecDeque;

use super::{NOW, fresh, record_for};
use crate::api::UpdateKeyRequest;
use crate::authz::Denial;
use crate::decision::CONSOLE_PROJECT;
use crate::keyobject::{
    Actor, KeyChange, KeyEvent, KeyObjectState, KeyRefusal, KeyReply, KeyRequest, MAX_OUTBOX, Report, UsageBatch,
};
use crate::model::{Environment, HeldRole, KeyState, Permission, Role};

fn owner() -> Actor {
    Actor { user: "usr_1".into(), role: Role::Member, organization: "org_a".into() }
}

fn admin() -> Actor {
    Actor { user: "usr_admin".into(), role: Role::Admin, organization: "org_a".into() }
}

/// An object holding a freshly created key (revision 1, its creation owed to KV and to the organization).
fn created() -> KeyObjectState {
    let mut state = KeyObjectState::default();
    let record = record_for(&fresh(Environment::Live));
    let (reply, _) =
        state.handle(&mut VecDeque::new(), KeyRequest::Create { record, audit_id: "evt_0".into(), now: NOW });
    assert!(matches!(reply, KeyReply::Committed { revision: 1, .. }), "{reply:?}");
    state
}

fn change(state: &mut KeyObjectState, actor: Actor, change: KeyChange) -> KeyReply {
    state.handle(&mut VecDeque::new(), KeyRequest::Change { actor, change, audit_id: "evt_x".into(), now: NOW }).0
}

fn rename(name: &str) -> KeyChange {
    KeyChange::Update {
        update: UpdateKeyRequest { name: Some(name.into()), ..UpdateKeyRequest::default() },
        roles: vec![],
        identity: None,
    }
}

/// Two admin changes racing: each is applied to the record as it is when it arrives, so a rename that reached the
/// object after a deactivation never brings the key back.
#[test]
fn a_rename_racing_a_deactivation_never_undoes_it() {
    for first_deactivate in [true, false] {
        let mut state = created();
        let (a, b) =
            if first_deactivate { (KeyChange::Deactivate, rename("x")) } else { (rename("x"), KeyChange::Deactivate) };
        let _ = change(&mut state, owner(), a);
        let second = change(&mut state, owner(), b);
        let record = state.record.as_ref().unwrap();
        assert_eq!(record.state, KeyState::Deactivated, "deactivate first: {first_deactivate}");
        if first_deactivate {
            // A deactivated key is final: the late rename is refused, not applied over it.
            assert!(matches!(second, KeyReply::Refused { refusal: KeyRefusal::Illegal { .. } }), "{second:?}");
        } else {
            assert_eq!(record.name, "x");
        }
    }
}

#[test]
fn every_commit_bumps_the_revision_and_is_owed_to_kv_and_the_organization() {
    let mut state = created();
    assert!(state.kv_owed);
    assert_eq!(state.outbox.events.len(), 1);
    let _ = change(&mut state, owner(), KeyChange::Revoke);
    assert_eq!(state.revision, 2);
    let revisions: Vec<u64> = state
        .outbox
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            KeyEvent::Committed { row, audit } => {
                assert!(audit.is_some(), "a change carries its audit event");
                Some(row.revision)
            }
            _ => None,
        })
        .collect();
    assert_eq!(revisions, [1, 2]);
    // KV is settled only by a write of the current revision.
    let _ = state.handle(&mut VecDeque::new(), KeyRequest::KvWritten { revision: 1 });
    assert!(state.kv_owed, "an older revision's write does not settle a newer one");
    let _ = state.handle(&mut VecDeque::new(), KeyRequest::KvWritten { revision: 2 });
    assert!(!state.kv_owed);
    let through = state.outbox.events[0].0;
    let _ = state.handle(&mut VecDeque::new(), KeyRequest::Delivered { through });
    assert_eq!(state.outbox.events.len(), 1, "only what was delivered leaves the outbox");
}

#[test]
fn changes_wait_when_the_organization_lags_too_far_behind() {
    let mut state = created();
    for n in 0..MAX_OUTBOX {
        let reply = change(&mut state, owner(), rename(&format!("n{n}")));
        if state.outbox.events.len() > MAX_OUTBOX {
            panic!("the outbox grew past its bound");
        }
        let _ = reply;
    }
    let refused = change(&mut state, owner(), rename("one more"));
    assert!(matches!(refused, KeyReply::Refused { refusal: KeyRefusal::Backlog }), "{refused:?}");
    // Requests still pass meanwhile: only admin changes wait.
    let before = state.usage.total;
    let _ = state.handle(
        &mut VecDeque::new(),
        KeyRequest::Report(Report { now: NOW, usage: Some(UsageBatch::one("org_a", NOW)), error: None }),
    );
    assert_eq!(state.usage.total, before + 1);
}

#[test]
fn who_may_change_what_is_checked_against_the_record() {
    let mut state = created();
    let stranger = Actor { user: "usr_2".into(), role: Role::Member, organization: "org_a".into() };
    let elsewhere = Actor { organization: "org_z".into(), ..admin() };
    let cases: Vec<(Actor, KeyChange, Option<KeyRefusal>)> = vec![
        (stranger, KeyChange::Revoke, Some(KeyRefusal::Denied { denial: Denial::Hidden })),
        (elsewhere, KeyChange::Revoke, Some(KeyRefusal::NotFound)),
        (admin(), rename("admin's"), Some(KeyRefusal::Denied { denial: Denial::OwnerOnly })),
        (admin(), KeyChange::Revoke, None),
        (owner(), KeyChange::Activate, Some(KeyRefusal::Denied { denial: Denial::RevokedByOther })),
        (admin(), KeyChange::Activate, None),
    ];
    for (actor, what, want) in cases {
        let label = format!("{actor:?} {what:?}");
        let reply = change(&mut state, actor, what);
        match want {
            Some(refusal) => assert_eq!(reply, KeyReply::Refused { refusal }, "{label}"),
            None => assert!(matches!(reply, KeyReply::Committed { .. }), "{label}: {reply:?}"),
        }
    }
}

#[test]
fn only_its_user_signs_a_console_token_out() {
    let mut state = KeyObjectState::default();
    let mut record = record_for(&fresh(Environment::Live));
    record.project = Some(CONSOLE_PROJECT.into());
    let _ = state.handle(&mut VecDeque::new(), KeyRequest::Create { record, audit_id: "evt".into(), now: NOW });
    assert!(state.outbox.events.is_empty(), "console tokens are no organization's keys");
    let other = state.handle(&mut VecDeque::new(), KeyRequest::EndSession { user: "usr_2".into(), now: NOW }).0;
    assert_eq!(other, KeyReply::Refused { refusal: KeyRefusal::NotFound });
    let own = state.handle(&mut VecDeque::new(), KeyRequest::EndSession { user: "usr_1".into(), now: NOW }).0;
    assert!(matches!(own, KeyReply::Committed { record: None, .. }));
    assert!(state.record.is_none() && state.kv_owed, "gone, and its removal owed to KV");
    // Console tokens cannot be changed as keys.
    let reply = change(&mut state, owner(), KeyChange::Revoke);
    assert_eq!(reply, KeyReply::Refused { refusal: KeyRefusal::NotFound });
}

#[test]
fn usage_summaries_go_out_after_a_quiet_moment_and_at_most_every_five_seconds() {
    use crate::keyobject::usage_due;
    let at = |ms: i64| Some(NOW.plus_millis(ms));
    let cases = [
        // (changed, pushed) → due
        ((None, None), None),
        ((at(0), None), at(2_000)),
        ((at(10_000), at(0)), at(12_000)),
        ((at(1_000), at(0)), at(5_000)),
        ((at(40_000), at(0)), at(30_000)),
    ];
    for ((changed, pushed), want) in cases {
        assert_eq!(usage_due(changed, pushed), want, "changed {changed:?}, pushed {pushed:?}");
    }

    let mut state = created();
    let report = |state: &mut KeyObjectState, at| {
        let _ = state.handle(
            &mut VecDeque::new(),
            KeyRequest::Report(Report { now: at, usage: Some(UsageBatch::one("org_a", at)), error: None }),
        );
    };
    report(&mut state, NOW);
    assert!(!state.queue_usage(NOW.plus_millis(1_000), 0), "not while usage is still moving");
    assert!(state.queue_usage(NOW.plus_secs(2), 0), "after two quiet seconds");
    report(&mut state, NOW.plus_secs(3));
    assert!(!state.queue_usage(NOW.plus_secs(6), 0), "never twice within five seconds");
    assert!(state.queue_usage(NOW.plus_secs(7), 0));
    let usage_events = state.outbox.events.iter().filter(|(_, e)| matches!(e, KeyEvent::Usage { .. })).count();
    assert_eq!(usage_events, 1, "a newer summary replaces one not yet sent");
    assert!(state.next_wake(NOW.plus_secs(7)).is_some(), "an owed delivery wakes the object");
}

/// The recent-errors log keeps at most 100 entries per key (the oldest go first) and none older than 14 days.
#[test]
fn recent_errors_keep_100_per_key_for_14_days() {
    use crate::api::RecentError;
    use crate::keyobject::{ERROR_RETENTION_MS, MAX_ERRORS};
    let mut state = KeyObjectState::default();
    let mut errors = VecDeque::new();
    let error = |n: i64, at: crate::time::Timestamp| RecentError {
        at,
        method: "POST".into(),
        path: format!("/streams/{n}"),
        status: 403,
        code: "INSUFFICIENT_PERMISSIONS".into(),
        request_preview: String::new(),
        response_preview: String::new(),
    };
    for n in 0..150 {
        let at = NOW.plus_millis(n);
        let _ =
            state.handle(&mut errors, KeyRequest::Report(Report { now: at, usage: None, error: Some(error(n, at)) }));
    }
    assert_eq!(MAX_ERRORS, 100);
    assert_eq!(errors.len(), 100);
    assert_eq!(errors.front().map(|e| e.path.as_str()), Some("/streams/50"), "the oldest went first");
    assert_eq!(errors.back().map(|e| e.path.as_str()), Some("/streams/149"));
    // Fourteen days after the last of them, a new error leaves only itself.
    let later = NOW.plus_millis(149 + ERROR_RETENTION_MS + 1);
    let _ = state
        .handle(&mut errors, KeyRequest::Report(Report { now: later, usage: None, error: Some(error(999, later)) }));
    assert_eq!(errors.len(), 1, "entries older than 14 days are gone");
    assert_eq!(ERROR_RETENTION_MS, 14 * 86_400_000);
}

fn role(name: &str, permissions: &[&str]) -> HeldRole {
    HeldRole { name: name.into(), permissions: permissions.iter().map(|p| Permission::try_from(*p).unwrap()).collect() }
}

fn give_roles(state: &mut KeyObjectState, names: &[&str], defined: &[HeldRole]) -> KeyReply {
    let update =
        UpdateKeyRequest { roles: Some(names.iter().map(|n| (*n).to_owned()).collect()), ..Default::default() };
    change(state, owner(), KeyChange::Update { update, roles: defined.to_vec(), identity: None })
}

/// A key takes a role with the definition its organization gave; naming one the organization did not define is
/// refused and changes nothing.
#[test]
fn a_key_holds_the_roles_its_organization_defined_and_no_other() {
    let mut state = created();
    let billing = role("billing", &["invoices:read", "invoices:write"]);
    let reply = give_roles(&mut state, &["billing"], std::slice::from_ref(&billing));
    assert!(matches!(reply, KeyReply::Committed { .. }), "{reply:?}");
    assert_eq!(state.record.as_ref().unwrap().roles, std::slice::from_ref(&billing));
    let revision = state.revision;
    let reply = give_roles(&mut state, &["billing", "ghost"], std::slice::from_ref(&billing));
    assert!(
        matches!(&reply, KeyReply::Refused { refusal: KeyRefusal::Invalid { problem } } if problem.field.as_deref() == Some("roles")),
        "{reply:?}"
    );
    assert_eq!(state.revision, revision, "a refused change commits nothing");
    assert_eq!(state.record.as_ref().unwrap().roles, [billing]);
}

/// The organization's role changes reach the key in revision order: a newer definition replaces the held one, a
/// deleted role is dropped, a late (older) message changes nothing, and each change is committed (KV and the index
/// learn it) without an audit event of its own.
#[test]
fn role_changes_apply_in_revision_order_and_a_late_one_changes_nothing() {
    let mut state = created();
    let _ = give_roles(
        &mut state,
        &["billing", "support"],
        &[role("billing", &["invoices:read"]), role("support", &["tickets:read"])],
    );
    let before = state.revision;
    let sync = |state: &mut KeyObjectState, revision: u64, roles: Vec<(String, Option<Vec<Permission>>)>| {
        state.handle(&mut VecDeque::new(), KeyRequest::Sync { revision, roles, identity: None }).0
    };
    let wider = role("billing", &["invoices:read", "invoices:write"]);
    let reply = sync(&mut state, 5, vec![("billing".into(), Some(wider.permissions.clone()))]);
    assert!(matches!(reply, KeyReply::Committed { .. }), "{reply:?}");
    assert_eq!(state.revision, before + 1);
    assert!(state.kv_owed);
    match state.outbox.events.back() {
        Some((_, KeyEvent::Committed { row, audit: None })) => assert_eq!(row.roles[0], wider),
        other => panic!("expected an index row without audit, got {other:?}"),
    }
    // A message of an older revision arrives late: nothing changes.
    let reply = sync(&mut state, 4, vec![("billing".into(), Some(vec![]))]);
    assert_eq!(reply, KeyReply::Done);
    assert_eq!(state.record.as_ref().unwrap().roles[0], wider);
    // The support role is deleted: the key drops it, and keeps billing (not named: left as it is).
    let reply = sync(&mut state, 6, vec![("support".into(), None)]);
    assert!(matches!(reply, KeyReply::Committed { .. }), "{reply:?}");
    assert_eq!(state.record.as_ref().unwrap().roles, [wider]);
    // The same definition again: the revision is remembered, nothing is committed.
    let revision = state.revision;
    let same = state.record.as_ref().unwrap().roles[0].permissions.clone();
    assert_eq!(sync(&mut state, 7, vec![("billing".into(), Some(same))]), KeyReply::Done);
    assert_eq!((state.revision, state.sync_revision), (revision, 7));
}

/// An identity's limiter object counts its shared limit exactly; a changed policy starts a fresh count; an object
/// that holds a key never serves as a limiter.
#[test]
fn an_identitys_limiter_counts_its_shared_limit_and_nothing_else() {
    use crate::decision::Code;
    use crate::keyobject::{Admit, Authorization};
    use crate::model::RateLimitPolicy;
    let admit = |state: &mut KeyObjectState, policy: RateLimitPolicy| match state
        .handle(&mut VecDeque::new(), KeyRequest::Admit(Admit { policy, lease: None, now: NOW }))
        .0
    {
        KeyReply::Authorized(Authorization { code, rate, .. }) => (code, rate.map(|(_, d)| d.remaining)),
        other => panic!("{other:?}"),
    };
    let mut limiter = KeyObjectState::default();
    let two = RateLimitPolicy::per(2, 60);
    assert_eq!(admit(&mut limiter, two), (Code::Valid, Some(1)));
    assert_eq!(admit(&mut limiter, two), (Code::Valid, Some(0)));
    assert_eq!(admit(&mut limiter, two).0, Code::RateLimited);
    assert_eq!(admit(&mut limiter, RateLimitPolicy::per(3, 60)), (Code::Valid, Some(2)), "a new policy counts afresh");
    let mut key = created();
    assert_eq!(admit(&mut key, two), (Code::NotFound, None));
}

/// An identity's new definition reaches a key that still belongs to it, and only such a key.
#[test]
fn an_identity_change_reaches_its_keys_and_only_them() {
    use crate::keyobject::IdentitySync;
    use crate::model::KeyIdentity;
    let identity = |id: &str, name: &str| KeyIdentity {
        id: id.into(),
        external_id: "cus_1".into(),
        name: name.into(),
        meta: None,
        rate_limit: None,
    };
    let mut state = created();
    let update = UpdateKeyRequest { identity: Some(Some("idn_AAAAAAAAAAAAAA".into())), ..Default::default() };
    let first = identity("idn_AAAAAAAAAAAAAA", "One");
    let reply = change(&mut state, owner(), KeyChange::Update { update, roles: vec![], identity: Some(first.clone()) });
    assert!(matches!(reply, KeyReply::Committed { .. }), "{reply:?}");
    let sync = |state: &mut KeyObjectState, revision: u64, identity: IdentitySync| {
        state.handle(&mut VecDeque::new(), KeyRequest::Sync { revision, roles: vec![], identity: Some(identity) }).0
    };
    // Another identity's change does not touch the key.
    let other = IdentitySync { id: "idn_BBBBBBBBBBBBBB".into(), now: Some(identity("idn_BBBBBBBBBBBBBB", "Two")) };
    assert_eq!(sync(&mut state, 1, other), KeyReply::Done);
    assert_eq!(state.record.as_ref().unwrap().identity, Some(first));
    let renamed = identity("idn_AAAAAAAAAAAAAA", "One, renamed");
    let reply = sync(&mut state, 2, IdentitySync { id: renamed.id.clone(), now: Some(renamed.clone()) });
    assert!(matches!(reply, KeyReply::Committed { .. }), "{reply:?}");
    assert_eq!(state.record.as_ref().unwrap().identity, Some(renamed.clone()));
    // Deleted (while the key was being given it): the key leaves it.
    let reply = sync(&mut state, 3, IdentitySync { id: renamed.id.clone(), now: None });
    assert!(matches!(reply, KeyReply::Committed { .. }), "{reply:?}");
    assert_eq!(state.record.as_ref().unwrap().identity, None);
    // Naming an identity the organization did not give is refused.
    let update = UpdateKeyRequest { identity: Some(Some("idn_CCCCCCCCCCCCCC".into())), ..Default::default() };
    let reply = change(&mut state, owner(), KeyChange::Update { update, roles: vec![], identity: None });
    assert!(
        matches!(&reply, KeyReply::Refused { refusal: KeyRefusal::Invalid { problem } } if problem.field.as_deref() == Some("identity")),
        "{reply:?}"
    );
}
