use serde_json::json;
use super::*;

#[test]
fn probe() {
    let h = Harness::new();
    let c = h.bootstrap();
    let r = h.admin(request("POST", "/admin/v1/keys").bearer(&c.token).json(json!({"name":"k"})));
    println!("missing env: {} {}", r.status, r.body);
    let r = h.admin(request("POST", "/admin/v1/keys").bearer(&c.token).json(json!({"name":"k","environment":"live","permissions":"data:read"})));
    println!("perm string: {} {}", r.status, r.body);
    let r = h.admin(request("POST", "/admin/v1/keys").bearer(&c.token).body("[1]"));
    println!("array: {} {}", r.status, r.body);
    let k = h.create_key(&c.token, json!({"rate_limit":{"requests":3,"window_seconds":60},"expires_at":"2030-01-01T00:00:00Z"}));
    let r = h.admin(request("PATCH", &format!("/admin/v1/keys/{}", k.id)).bearer(&c.token).json(json!({"rate_limit":null,"expires_at":null})));
    println!("patch null: {} {}", r.status, r.body);
    let r = h.admin(request("PATCH", &format!("/admin/v1/keys/{}", k.id)).bearer(&c.token).json(json!({})));
    println!("patch empty: {} {}", r.status, r.body);
    let r = h.admin(request("GET", "/admin/v1/admin/v1/session").bearer(&c.token));
    println!("double prefix: {} {}", r.status, r.body);
    let r = h.admin(request("GET", "/admin/v1/keys?status=bogus").bearer(&c.token));
    println!("bad status: {} {}", r.status, r.body);
    let r = h.admin(request("GET", "/admin/v1/bootstrap").bearer(&c.token));
    println!("GET bootstrap: {} {}", r.status, r.body);
    let r = h.admin(request("POST", "/admin/v1/members").bearer(&c.token).json(json!({"email":"OWNER@keygate.local","name":"x","role":"member"})));
    println!("invite self: {} {}", r.status, r.body);
    let r = h.admin(request("POST", "/admin/v1/projects").bearer(&c.token).json(json!({"slug":"keygate-console","name":"x"})));
    println!("console slug: {} {}", r.status, r.body);
    let r = h.admin(request("GET", "/admin/v1/session").bearer(&c.token).header("x-api-key", &c.token));
    println!("two same creds: {} {}", r.status, r.body);
}
