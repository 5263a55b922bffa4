//! Least privilege through workerd: the permissions a key's passing requests needed reach its organization with
//! the request log, and `GET /keys/{id}/suggestions` shows them (the 30-day suggestions themselves are tested with
//! a fake clock in `control/src/tests/objects.rs` and `shared/src/tests/privilege.rs`).

use keygate_e2e::{Console, eventually, gateway, json, shared};

#[test]
fn the_permissions_a_keys_passing_requests_used_are_observed() {
    let owner = Console::shared_owner();
    let (key, id, _) = owner
        .create_key(&json!({"name": "observed", "environment": "live", "permissions": ["data:read", "billing:read"]}));
    assert_eq!(gateway(&shared().base, "GET", "/data/one", &key).status, 200);
    assert_eq!(gateway(&shared().base, "GET", "/data/two", &key).status, 200);
    // Refused (the key lacks data:write): it used nothing.
    assert_eq!(gateway(&shared().base, "POST", "/streams/s", &key).status, 403);
    eventually("the uses are observed", || {
        let list = owner.call("GET", &format!("/keys/{id}/suggestions"), None).json();
        list["observed"].as_array().is_some_and(|o| o.len() == 1 && o[0]["requests"] == 2)
    });
    let list = owner.call("GET", &format!("/keys/{id}/suggestions"), None).json();
    assert_eq!(list["observed"][0]["permission"], "data:read", "{list}");
    assert_eq!(list["suggestions"], json!([]), "a new key gets no suggestion yet: {list}");

    // A plain member does not see another member's key, nor what it used.
    let member = owner.invite(&format!("lp-member-{}@x.test", std::process::id()), "member");
    let member_here = Console { acting_for: Some(owner.organization.clone()), ..member };
    member_here.call("GET", &format!("/keys/{id}/suggestions"), None).expect_problem(404, "NOT_FOUND");
}
