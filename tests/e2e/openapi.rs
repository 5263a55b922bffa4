//! The fuzzer-style check of the OpenAPI document, reproducible by the project: every operation of the document is
//! called with its example (valid) body and with bodies generated from it that are not valid (each field left out,
//! `null`, of the wrong type; unknown fields; not an object; not JSON), and with hostile query strings. Every answer
//! passes through `keygate_e2e::openapi::conforms` (it must match the document for its operation and status), and
//! none may be a 5xx.

use keygate_e2e::{Console, Value, json, request};

/// The organization the calls act in (its own, so nothing they create or change touches another test's).
fn fuzzed() -> Console {
    Console::shared_owner().new_organization("Fuzzed")
}

fn document() -> Value {
    serde_json::from_str(include_str!("../../control/src/openapi.json")).unwrap()
}

/// Bodies generated from an example: the example, then each field left out, `null` and of the wrong type, an
/// unknown field, and bodies that are not objects.
fn bodies(example: &Value) -> Vec<String> {
    let mut out = vec![example.to_string()];
    if let Some(fields) = example.as_object() {
        for (name, value) in fields {
            let mut without = fields.clone();
            without.remove(name);
            out.push(Value::Object(without).to_string());
            let wrong = match value {
                Value::String(_) => json!(42),
                Value::Number(_) => json!("forty-two"),
                Value::Bool(_) => json!("yes"),
                Value::Array(_) => json!({"not": "a list"}),
                Value::Object(_) => json!([1, 2, 3]),
                Value::Null => json!({}),
            };
            for replaced in [Value::Null, wrong, json!(-1), json!("x".repeat(5_000))] {
                let mut changed = fields.clone();
                changed.insert(name.clone(), replaced);
                out.push(Value::Object(changed).to_string());
            }
        }
        let mut unknown = fields.clone();
        unknown.insert("is_admin".into(), json!(true));
        out.push(Value::Object(unknown).to_string());
    }
    out.extend(["{}", "[]", "null", "\"text\"", "{\"truncated\": ", "\u{0}\u{1}"].map(str::to_owned));
    out
}

#[test]
fn every_operation_answers_as_the_document_says_to_valid_and_invalid_input() {
    let console = fuzzed();
    let doc = document();
    // Real things for the `{id}` of paths that read or change one (deleting is only ever asked of unknown ids).
    let (_, key_id, _) = console.create_key(&json!({"name": "fuzz target", "environment": "live"}));
    let project = console.call("POST", "/projects", Some(&json!({"slug": "fuzz", "name": "Fuzz"}))).json();
    let mut calls = 0;
    for (template, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            // Signing sessions out or removing members would end the fuzzing console's own access.
            if template == "/admin/v1/sessions/{id}" || (template == "/admin/v1/sessions" && method == "POST") {
                continue;
            }
            let id = match (template.as_str(), method.as_str()) {
                (_, "DELETE") => "ZZZZZZZZZZZZZZ".to_owned(),
                (t, _) if t.starts_with("/admin/v1/keys/") => key_id.clone(),
                (t, _) if t.starts_with("/admin/v1/projects/") => project["id"].as_str().unwrap_or("x").to_owned(),
                (t, _) if t.starts_with("/admin/v1/roles/") => "fuzz-role".to_owned(),
                (t, _) if t.starts_with("/admin/v1/permissions/") => "fuzz:read".to_owned(),
                _ => "ZZZZZZZZZZZZZZ".to_owned(),
            };
            let path = template.replace("{id}", &id);
            let example = &operation["requestBody"]["content"]["application/json"]["schema"]["examples"][0];
            let mut sent: Vec<Option<String>> = if example.is_null() {
                vec![None, Some("{}".into())]
            } else {
                bodies(example).into_iter().map(Some).collect()
            };
            if method == "GET" {
                for query in ["?cursor=%00%FF", "?limit=-1&status=999&environment=moon", "?cursor=9999999999999.ZZZZ"] {
                    let answer = call(&console, &method, &format!("{path}{query}"), None);
                    assert!(answer < 500, "GET {path}{query}: {answer}");
                    calls += 1;
                }
                sent.truncate(1);
            }
            for body in sent {
                let status = call(&console, &method, &path, body.as_deref());
                assert!(status < 500, "{method} {path} with {body:?}: {status}");
                calls += 1;
            }
        }
    }
    assert!(calls > 400, "only {calls} calls");
    eprintln!("{calls} calls, every answer as the document says");
    // Anonymous callers and bad tokens get the document's problems too.
    for token in [None, Some("Bearer kg_live_AAAAAAAAAAAAAA_notavalidsecretatall"), Some("Basic Zm9vOmJhcg==")] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(t) = token {
            headers.push(("authorization", t));
        }
        let answer = request("GET", &format!("{}/admin/v1/keys", console.base), &headers, None);
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
}

/// One call through the fuzzing console (its answer checked against the document by `request`); its status.
fn call(console: &Console, method: &str, path: &str, body: Option<&str>) -> u16 {
    let url = format!("{}{path}", console.base);
    let auth = format!("Bearer {}", console.token);
    let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
    if let Some(org) = &console.acting_for {
        headers.push(("keygate-org", org.as_str()));
    }
    request(method, &url, &headers, body).status
}
