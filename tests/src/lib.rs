//! The end-to-end harness: starts `wrangler dev` with both Workers (the gateway and the control plane, real
//! workerd, real KV and Durable Objects) on a free loopback port with its state in a temporary folder, and talks to
//! it over HTTP.
//!
//! `cargo xtask test` builds the console and both Workers first; the harness starts wrangler with
//! `KEYGATE_SKIP_BUILD=1` so each start reuses that build. Variables reach both Workers through a copy of each
//! wrangler configuration written beside the original (`wrangler.e2e-<port>.toml`; wrangler's `--var` reaches only
//! the first Worker), removed when the Worker stops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

/// The bootstrap secret of the test Workers, unless `control/.dev.vars` (made by `cargo xtask dev`) sets one:
/// wrangler reads that file beside the configuration, and it wins over `[vars]`.
pub fn bootstrap_token() -> String {
    let vars = std::fs::read_to_string(root().join("control/.dev.vars")).unwrap_or_default();
    vars.lines()
        .find_map(|l| l.strip_prefix("KEYGATE_BOOTSTRAP_TOKEN="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| String::from("kgboot_e2e_only_token"))
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Settings of one `wrangler dev`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `--var NAME:VALUE` overrides of wrangler.toml's `[vars]`.
    pub vars: Vec<(String, String)>,
    /// The state folder; a fresh temporary one when `None`.
    pub state: Option<PathBuf>,
}

/// A running `wrangler dev`. Dropping it stops wrangler and workerd.
#[derive(Debug)]
pub struct Worker {
    pub base: String,
    pub state: PathBuf,
    child: Child,
    // Closing this pipe makes the wrapper shell stop wrangler's whole process group.
    stdin: Option<ChildStdin>,
    /// The generated configurations, removed on drop.
    configs: Vec<PathBuf>,
}

/// The wrangler configurations of both Workers, from the workspace root: the gateway's first (it gets the port).
const CONFIGS: [&str; 2] = ["wrangler.toml", "control/wrangler.toml"];

/// A copy of `config` beside it, with `vars` set in its `[vars]` table (replacing the same names) and without its
/// `[build]` table: the suite runs the build `cargo xtask test` made, and a build command would also make wrangler
/// watch the sources and restart the Workers mid-test when a file changes.
fn config_with_vars(config: &str, port: u16, vars: &[(String, String)]) -> PathBuf {
    let original = root().join(config);
    let text = std::fs::read_to_string(&original).expect("a wrangler configuration");
    let mut out = String::new();
    let mut in_vars = false;
    let mut in_build = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_vars = trimmed == "[vars]";
            in_build = trimmed == "[build]";
            if in_build {
                continue;
            }
            out.push_str(line);
            out.push('\n');
            if in_vars {
                for (name, value) in vars {
                    out.push_str(&format!("{name} = {}\n", serde_json::Value::String(value.clone())));
                }
            }
            continue;
        }
        let overridden = in_vars && vars.iter().any(|(name, _)| trimmed.starts_with(&format!("{name} ")));
        if !overridden && !in_build {
            out.push_str(line);
            out.push('\n');
        }
    }
    let name = original.file_name().and_then(|n| n.to_str()).unwrap_or("wrangler.toml").replace(".toml", "");
    let copy = original.with_file_name(format!("{name}.e2e-{port}.toml"));
    std::fs::write(&copy, out).expect("write a wrangler configuration");
    copy
}

impl Worker {
    pub fn start(config: Config) -> Worker {
        let port = free_port();
        let state = config.state.clone().unwrap_or_else(|| temp_dir("state"));
        let mut vars = vec![("KEYGATE_BOOTSTRAP_TOKEN".to_owned(), bootstrap_token())];
        vars.extend(config.vars.iter().cloned());
        let configs: Vec<PathBuf> = CONFIGS.iter().map(|c| config_with_vars(c, port, &vars)).collect();
        let mut script = String::from("exec 3<&0; setsid npx wrangler dev");
        for c in &configs {
            script.push_str(&format!(" -c '{}'", c.display()));
        }
        script.push_str(&format!(
            " --local --ip 127.0.0.1 --port {port} --persist-to '{}' --show-interactive-dev-session=false \
             --log-level info",
            state.display()
        ));
        // Wrangler runs in its own process group; when our stdin closes (test process gone or Worker dropped),
        // the whole group is stopped.
        script.push_str(" </dev/null & pid=$!; cat <&3 >/dev/null; kill -TERM -$pid 2>/dev/null; sleep 1; kill -KILL -$pid 2>/dev/null; wait");
        let log_path = state.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("wrangler log file");
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .current_dir(root())
            .env("KEYGATE_SKIP_BUILD", "1")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env(
                "PATH",
                format!("{}:{}", root().join("node_modules/.bin").display(), std::env::var("PATH").unwrap_or_default()),
            )
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start wrangler dev");
        let stdin = child.stdin.take();
        let worker = Worker { base: format!("http://127.0.0.1:{port}"), state, child, stdin, configs };
        worker.wait_ready(&log_path);
        worker
    }

    fn wait_ready(&self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if get(&self.url("/v1/health"), &[]).status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        panic!("wrangler dev did not answer on {} within 120 s; its log:\n{tail}", self.base);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops this wrangler and starts another on the same state folder (state must survive).
    pub fn restart(self, config: Config) -> Worker {
        let state = self.state.clone();
        drop(self);
        Worker::start(Config { state: Some(state), ..config })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        for config in &self.configs {
            let _ = std::fs::remove_file(config);
        }
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

/// The Worker shared by the tests of one run (started on first use, stopped when the test process exits). Its
/// rate-limited passes say who admitted them (`KEYGATE_TEST_TRACE=1`: the isolate's lease, or the key's object).
pub fn shared() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        let leak_keys = serde_json::json!({"public_keys": [{"key_identifier": leaks::KEY_ID, "key": leaks::PUBLIC}]});
        let vars =
            vec![("KEYGATE_TEST_TRACE".into(), "1".into()), ("KEYGATE_LEAK_PUBLIC_KEYS".into(), leak_keys.to_string())];
        Worker::start(Config { vars, ..Config::default() })
    })
}

/// A reporter of leaks the shared Worker trusts (`KEYGATE_LEAK_PUBLIC_KEYS`), as GitHub's secret scanning signs
/// its alerts. A key made for these tests only.
pub mod leaks {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::DecodePrivateKey;

    pub const KEY_ID: &str = "keygate-e2e-reporter";
    pub const PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiGcEA+l4d8g9C4/h
H/MPTTdSCOmmGGrOWCwXAyh/miuhRANCAAROjyoEYxOA3xy081dClYNK0xfFGetD
TTmoMCe3X9AyVb6IaOKXTjpIMZMrOygv/KjEPJ6kxCZUt1JPJD9CVoAr
-----END PRIVATE KEY-----";
    pub const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETo8qBGMTgN8ctPNXQpWDStMXxRnr
Q005qDAnt1/QMlW+iGjil046SDGTKzsoL/yoxDyepMQmVLdSTyQ/QlaAKw==
-----END PUBLIC KEY-----";

    /// `Github-Public-Key-Signature` of `body`.
    pub fn sign(body: &str) -> String {
        let key = SigningKey::from_pkcs8_pem(PRIVATE).expect("the test key");
        let signature: Signature = key.sign(body.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// With `KEYGATE_TEST_TRACE=1`: who admitted a rate-limited pass (`lease` or `object`).
pub const ADMITTED_BY: &str = "keygate-test-admitted-by";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

pub fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("keygate-e2e-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// An HTTP answer: status, headers (lowercase names) and body text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an RFC 9457 refusal with this status and stable code, and returns its body.
    pub fn expect_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "body: {}", self.body);
        let body = self.json();
        assert_eq!(body["code"], code, "body: {}", self.body);
        assert_eq!(body["status"], status);
        body
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).redirects(0).build())
}

pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            return Answer { status: 0, headers: vec![], body: t.to_string() };
        }
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = response.header(&n).unwrap_or_default().to_owned();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    let body = response.into_string().unwrap_or_default();
    let answer = Answer { status, headers, body };
    openapi::conforms(method, url, &answer);
    answer
}

/// Every answer of the admin API, `/v1/verify` and `/v1/whoami` that any test receives is checked against the
/// served OpenAPI document (`control/src/openapi.json`): its body against the schema of its operation and status
/// (a problem against `Problem`), so the document cannot drift from what Keygate answers.
pub mod openapi {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use serde_json::Value;

    use super::Answer;

    fn document() -> &'static Value {
        static DOC: OnceLock<Value> = OnceLock::new();
        DOC.get_or_init(|| {
            serde_json::from_str(include_str!("../../control/src/openapi.json")).expect("the OpenAPI document")
        })
    }

    /// The document's path template for a concrete path (`{id}` matches one segment).
    pub fn template(path: &str) -> Option<&'static str> {
        let wanted: Vec<&str> = path.split('/').collect();
        document()["paths"].as_object()?.keys().map(String::as_str).find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == wanted.len()
                && parts.iter().zip(&wanted).all(|(t, w)| t == w || (*t == "{id}" && !w.is_empty()))
        })
    }

    /// The schema an answer's body must match, if the document has the operation.
    fn schema_for(method: &str, template: &str, status: u16) -> Option<(String, Value)> {
        let operation = &document()["paths"][template][method.to_ascii_lowercase()];
        let responses = operation.get("responses")?;
        let status = status.to_string();
        let response = responses.get(&status).or_else(|| responses.get("default"))?;
        let content = response.get("content")?;
        let (media, body) = content.as_object()?.iter().next()?;
        Some((media.clone(), body["schema"].clone()))
    }

    fn validator(key: String, schema: &Value) -> Arc<jsonschema::Validator> {
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Arc::clone(v);
        }
        let mut root = schema.clone();
        root["components"] = document()["components"].clone();
        let built = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("the document's schema for {key} does not build: {e}"));
        let built = Arc::new(built);
        cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::clone(&built));
        built
    }

    /// Panics, naming the operation and every mismatch, when `answer` does not match the document.
    pub fn conforms(method: &str, url: &str, answer: &Answer) {
        if answer.status == 0 {
            return;
        }
        let path = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path = path.find('/').map_or("/", |i| &path[i..]);
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let Some(template) = template(path) else { return };
        let Some((media, schema)) = schema_for(method, template, answer.status) else {
            if document()["paths"][template].get(method.to_ascii_lowercase()).is_some() && answer.status != 204 {
                panic!(
                    "{method} {template} answered {} with a body the document does not describe: {}",
                    answer.status, answer.body
                );
            }
            return;
        };
        let content_type = answer.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with(&media),
            "{method} {template} answered {} as `{content_type}`, the document says `{media}`: {}",
            answer.status,
            answer.body
        );
        let Ok(body) = serde_json::from_str::<Value>(&answer.body) else {
            panic!("{method} {template} answered {} with a body that is not JSON: {}", answer.status, answer.body);
        };
        let key = format!("{method} {template} {}", answer.status);
        let errors: Vec<String> = validator(key.clone(), &schema)
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{key}: the answer does not match the OpenAPI document: {errors:?}\n{}",
            answer.body
        );
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    request("GET", url, headers, None)
}

pub fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request("POST", url, &all, Some(&body.to_string()))
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request(method, url, &all, Some(&body.to_string()))
}

/// A signed-in console user of a Worker: bootstrap once, then the admin API with the console token.
#[derive(Debug, Clone)]
pub struct Console {
    pub base: String,
    pub token: String,
    pub organization: String,
    pub user: String,
    /// Sent as `Keygate-Org` when set.
    pub acting_for: Option<String>,
}

impl Console {
    /// Bootstraps a fresh Worker (its first owner).
    pub fn bootstrap(worker: &Worker) -> Console {
        let answer = post_json(
            &worker.url("/admin/v1/bootstrap"),
            &[("authorization", &format!("Bearer {}", bootstrap_token()))],
            &json!({"organization_name": "Acme", "email": "owner@acme.test", "name": "Olive Owner"}),
        );
        assert_eq!(answer.status, 201, "bootstrap: {}", answer.body);
        let body = answer.json();
        Console {
            base: worker.base.clone(),
            token: body["console_token"].as_str().expect("console_token").to_owned(),
            organization: body["organization"]["id"].as_str().expect("organization id").to_owned(),
            user: body["user"]["id"].as_str().expect("user id").to_owned(),
            acting_for: None,
        }
    }

    /// The owner of the shared Worker (bootstrapped on first use).
    pub fn shared_owner() -> &'static Console {
        static OWNER: OnceLock<Console> = OnceLock::new();
        OWNER.get_or_init(|| Console::bootstrap(shared()))
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let url = format!("{}/admin/v1{path}", self.base);
        let auth = self.auth();
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(org) = &self.acting_for {
            headers.push(("keygate-org", org.as_str()));
        }
        match body {
            Some(b) => send(method, &url, &headers, b),
            None => request(method, &url, &headers, None),
        }
    }

    /// The audit log's actions on `target` (a key, identity or webhook id), newest first.
    pub fn audit_actions(&self, target: &str) -> Vec<String> {
        let page = self.call("GET", "/audit", None).json();
        page["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e["target"] == target)
                    .filter_map(|e| e["action"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates a key and returns (full key, id, answer body).
    pub fn create_key(&self, spec: &Value) -> (String, String, Value) {
        let answer = self.call("POST", "/keys", Some(spec));
        assert_eq!(answer.status, 201, "create key: {}", answer.body);
        let body = answer.json();
        let key = body["key"].as_str().map(str::to_owned).unwrap_or_default();
        let id = body["record"]["id"].as_str().expect("record id").to_owned();
        (key, id, body)
    }

    /// `POST /v1/verify` of `body` at this console's Worker, as a service holding a fresh `keys:verify` key of this
    /// console's organization would call it.
    pub fn verify(&self, body: &Value) -> Answer {
        let spec = json!({"name": "verifier", "environment": "live", "permissions": ["keys:verify"]});
        let (service, _, _) = self.create_key(&spec);
        post_json(&format!("{}/v1/verify", self.base), &[("authorization", &format!("Bearer {service}"))], body)
    }

    /// Ensures a project exists (creating it if needed).
    pub fn project(&self, slug: &str) {
        let answer = self.call("POST", "/projects", Some(&json!({"slug": slug, "name": slug})));
        assert!(answer.status == 201 || answer.status == 409, "project: {}", answer.body);
    }

    pub fn action(&self, id: &str, action: &str) -> Answer {
        self.call("POST", &format!("/keys/{id}/{action}"), Some(&json!({})))
    }

    /// Creates an organization of this user's: this console, acting for it (`Keygate-Org`).
    pub fn new_organization(&self, name: &str) -> Console {
        let created = self.call("POST", "/organizations", Some(&json!({"name": name})));
        assert_eq!(created.status, 201, "create organization: {}", created.body);
        let id = created.json()["id"].as_str().expect("an organization id").to_owned();
        Console { acting_for: Some(id), ..self.clone() }
    }

    /// Invites `email` as `role`: the invitation's one-time code.
    pub fn invite_code(&self, email: &str, role: &str) -> String {
        let answer = self.call("POST", "/invitations", Some(&json!({"email": email, "name": email, "role": role})));
        assert_eq!(answer.status, 201, "invite: {}", answer.body);
        answer.json()["code"].as_str().expect("an invitation code").to_owned()
    }

    /// Invites a new member and redeems the invitation for them: a console of the new member.
    pub fn invite(&self, email: &str, role: &str) -> Console {
        let code = self.invite_code(email, role);
        Console::redeem(&self.base, &code)
    }

    /// Redeems an invitation code as a new user.
    pub fn redeem(base: &str, code: &str) -> Console {
        let answer = post_json(&format!("{base}/admin/v1/invitations/redeem"), &[], &json!({"code": code}));
        assert_eq!(answer.status, 201, "redeem: {}", answer.body);
        let body = answer.json();
        Console {
            base: base.to_owned(),
            token: body["console_token"].as_str().expect("console_token").to_owned(),
            organization: body["organization"]["id"].as_str().expect("organization id").to_owned(),
            user: body["user"]["id"].as_str().expect("user id").to_owned(),
            acting_for: None,
        }
    }
}

/// Polls `check` every 100 ms for up to 10 s (the shared Worker's revocation bound: its isolate cache and KV; the
/// request log's queue delay).
pub fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_within(what, 10, check);
}

/// Polls `check` every 100 ms for up to `seconds`.
pub fn eventually_within(what: &str, seconds: u32, mut check: impl FnMut() -> bool) {
    for _ in 0..seconds * 10 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what}: not within {seconds} s");
}

/// Calls the gateway with `key` as a Bearer token.
pub fn gateway(base: &str, method: &str, path: &str, key: &str) -> Answer {
    request(method, &format!("{base}{path}"), &[("authorization", &format!("Bearer {key}"))], None)
}

/// Sends one HTTP/1.1 request written by hand, for what an HTTP client would tidy up first: paths with dot segments,
/// repeated slashes or escapes, and chunked bodies. `head` is the request line and headers without the blank line;
/// `chunks` are sent with `Transfer-Encoding: chunked` when given. Writing stops quietly when the server answers
/// early and closes. Returns the answer and how many body bytes were written.
pub fn raw(base: &str, head: &str, chunks: Option<&mut dyn Iterator<Item = Vec<u8>>>) -> (Answer, usize) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the worker");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut text = format!("{head}\r\nhost: {addr}\r\nconnection: close\r\n");
    if chunks.is_some() {
        text.push_str("transfer-encoding: chunked\r\n");
    }
    text.push_str("\r\n");
    let mut sent = 0usize;
    let mut ok = stream.write_all(text.as_bytes()).is_ok();
    if let Some(chunks) = chunks {
        for chunk in chunks {
            if !ok {
                break;
            }
            ok = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_ok()
                && stream.write_all(&chunk).is_ok()
                && stream.write_all(b"\r\n").is_ok();
            if ok {
                sent += chunk.len();
            }
        }
        if ok {
            let _ = stream.write_all(b"0\r\n\r\n");
        }
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    (parse_response(&response), sent)
}

/// Reads an HTTP/1.1 answer (a `Content-Length` or chunked body, or one that ends when the connection closes).
fn parse_response(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 || after.len() < size || !after.is_char_boundary(size) {
                break;
            }
            body.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
        body
    } else {
        rest.to_owned()
    };
    Answer { status, headers, body }
}

/// One HTTP/1.1 request as a loopback server reads it: headers have lowercase names, in order; the body is read by
/// `Content-Length`, at most 1 MiB.
struct ReadRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &std::net::TcpStream) -> std::io::Result<ReadRequest> {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push((k, v.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    Ok(ReadRequest { method, target, headers, body })
}

/// A loopback HTTP origin that answers every request with a JSON echo of what it received (and 500 on paths with
/// `/fail`).
pub mod origin {
    use std::io::Write;
    use std::net::TcpListener;

    /// Starts the origin on a free loopback port; returns its base URL. It serves until the test process ends.
    pub fn start() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = serve(stream);
                });
            }
        });
        format!("http://{addr}")
    }

    fn serve(mut stream: std::net::TcpStream) -> std::io::Result<()> {
        let super::ReadRequest { method, target, headers: pairs, body } = super::read_request(&stream)?;
        let headers: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        let status = if target.contains("/fail") { "500 Internal Server Error" } else { "200 OK" };
        let echo = serde_json::json!({
            "method": method,
            "target": target,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string();
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{echo}",
            echo.len()
        )?;
        stream.flush()
    }
}

/// A loopback webhook receiver: it keeps every request it gets and answers 200, or 500 to as many requests as it is
/// told to fail (an injected failure).
pub mod receiver {
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// One request the receiver got, and the status it answered.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
        pub answered: u16,
    }

    impl Received {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }

        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
        }
    }

    #[derive(Debug, Clone)]
    pub struct Receiver {
        pub url: String,
        received: Arc<Mutex<Vec<Received>>>,
        fail: Arc<AtomicUsize>,
    }

    impl Receiver {
        /// Starts a receiver on a free loopback port; it serves until the test process ends.
        pub fn start() -> Receiver {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
            let url = format!("http://{}", listener.local_addr().expect("receiver addr"));
            let receiver = Receiver { url, received: Arc::default(), fail: Arc::default() };
            let shared = receiver.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let _ = shared.serve(stream);
                    });
                }
            });
            receiver
        }

        /// The next `n` requests are answered 500.
        pub fn fail_next(&self, n: usize) {
            self.fail.store(n, Ordering::SeqCst);
        }

        pub fn received(&self) -> Vec<Received> {
            self.received.lock().map(|r| r.clone()).unwrap_or_default()
        }

        fn serve(&self, mut stream: std::net::TcpStream) -> std::io::Result<()> {
            let super::ReadRequest { target, headers, body, .. } = super::read_request(&stream)?;
            let failing = self.fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            let (answered, status) = if failing { (500, "500 Internal Server Error") } else { (200, "200 OK") };
            if let Ok(mut received) = self.received.lock() {
                received.push(Received { target, headers, body, answered });
            }
            write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")?;
            stream.flush()
        }
    }
}
