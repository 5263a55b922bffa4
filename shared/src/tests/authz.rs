#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::authz::{Denial, KeyAction, KeyFacts, OrgAction, may_act_on_key, may_act_on_org};
use crate::model::{KeyCreation, OrganizationSettings, Role};

#[test]
fn who_may_act_on_which_key() {
    use Denial::*;
    use KeyAction::*;
    use Role::{Admin, Member, Owner};
    let mine = KeyFacts { owner: "me", revoked_by: None };
    let theirs = KeyFacts { owner: "them", revoked_by: None };
    let mine_revoked_by_admin = KeyFacts { owner: "me", revoked_by: Some("admin") };
    let mine_revoked_by_me = KeyFacts { owner: "me", revoked_by: Some("me") };
    let cases = [
        (Member, mine, View, Ok(())),
        (Member, theirs, View, Err(Hidden)),
        (Member, theirs, Revoke, Err(Hidden)),
        (Member, mine, Edit, Ok(())),
        (Member, mine, Regenerate, Ok(())),
        (Member, mine, Delete, Ok(())),
        (Member, mine_revoked_by_me, Activate, Ok(())),
        (Member, mine_revoked_by_admin, Activate, Err(RevokedByOther)),
        (Admin, theirs, View, Ok(())),
        (Admin, theirs, Revoke, Ok(())),
        (Admin, theirs, Deactivate, Ok(())),
        (Admin, theirs, Delete, Ok(())),
        (Admin, theirs, Edit, Err(OwnerOnly)),
        (Admin, theirs, Regenerate, Err(OwnerOnly)),
        (Admin, mine_revoked_by_admin, Activate, Ok(())),
        (Owner, KeyFacts { owner: "them", revoked_by: Some("them") }, Activate, Ok(())),
        (Owner, theirs, Regenerate, Err(OwnerOnly)),
    ];
    for (role, facts, action, want) in cases {
        assert_eq!(may_act_on_key(role, "me", facts, action), want, "{role:?} {action:?} on {facts:?}");
    }
}

#[test]
fn who_may_act_on_the_organization() {
    use OrgAction::*;
    let open = OrganizationSettings::default();
    let kept = OrganizationSettings { key_creation: KeyCreation::OwnersAndAdmins, ..OrganizationSettings::default() };
    for action in [CreateKey, ListMembers] {
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(may_act_on_org(role, action, &open), Ok(()), "{role:?} {action:?}");
        }
    }
    for settings in [open, kept] {
        let managers =
            [Invite, ManageInvitations, RemoveMember, ManageProjects, DescribePermissions, ReadAllAudit, ViewUsage];
        for action in managers {
            assert_eq!(may_act_on_org(Role::Admin, action, &settings), Ok(()));
            assert_eq!(may_act_on_org(Role::Member, action, &settings), Err(Denial::ManagersOnly));
        }
        for action in [InviteOwner, RemoveOwner, ChangeSettings] {
            assert_eq!(may_act_on_org(Role::Owner, action, &settings), Ok(()));
            assert_eq!(may_act_on_org(Role::Admin, action, &settings), Err(Denial::OwnersOnly));
        }
    }
    // Instrumental's setting: key creation kept to owners and admins.
    assert_eq!(may_act_on_org(Role::Owner, CreateKey, &kept), Ok(()));
    assert_eq!(may_act_on_org(Role::Admin, CreateKey, &kept), Ok(()));
    assert_eq!(may_act_on_org(Role::Member, CreateKey, &kept), Err(Denial::ManagersOnly));
    assert_eq!(may_act_on_org(Role::Member, ListMembers, &kept), Ok(()));
}

/// The README's "Who may do what" table is rendered from the rules: documentation and code cannot disagree.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_readme_table_is_the_rules() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let table = crate::authz::markdown_table();
    assert!(readme.contains(&table), "README.md's permission table differs from the rules; it should read:\n{table}");
}
