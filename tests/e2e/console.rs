use keygate_e2e::{get, shared};

#[test]
fn the_console_is_served_with_its_wasm() {
    let worker = shared();
    let page = get(&worker.url("/admin/"), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(page.body.contains("<title>Keygate console</title>"), "{}", page.body);
    // Trunk writes the hashed wasm file name into the page; the Worker's assets must serve it.
    let wasm = page
        .body
        .split(['"', '\''])
        .find(|s| s.starts_with("/admin/") && s.ends_with(".wasm"))
        .unwrap_or_else(|| panic!("no wasm in {}", page.body));
    let module = get(&worker.url(wasm), &[]);
    assert_eq!(module.status, 200);
    assert_eq!(module.header("content-type"), Some("application/wasm"));
}
