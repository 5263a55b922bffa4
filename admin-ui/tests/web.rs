//! Component tests in headless Chromium (`cargo xtask test` runs them with ChromeDriver).

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> leptos::web_sys::Document {
    leptos::prelude::document()
}

#[wasm_bindgen_test]
async fn the_console_page_renders() {
    leptos::mount::mount_to_body(admin_ui::App);
    leptos::task::tick().await;
    let heading = document().query_selector("h1").unwrap().expect("an h1");
    assert_eq!(heading.text_content().as_deref(), Some("Keygate"));
}
