//! The end-to-end harness: starts `wrangler dev` (real workerd, real KV and Durable Objects) on a free loopback
//! port with its state in a temporary folder, and talks to it over HTTP.
//!
//! `cargo xtask test` builds the console and the Worker first; the harness starts wrangler with
//! `KEYGATE_SKIP_BUILD=1` so each start reuses that build.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

/// Where the bootstrap route's secret is set for the test Worker.
pub const BOOTSTRAP_TOKEN: &str = "kgboot_e2e_only_token";

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
}

impl Worker {
    pub fn start(config: Config) -> Worker {
        let port = free_port();
        let state = config.state.clone().unwrap_or_else(|| temp_dir("state"));
        let mut script = format!(
            "exec 3<&0; setsid npx wrangler dev --local --ip 127.0.0.1 --port {port} --persist-to '{}' \
             --show-interactive-dev-session=false --log-level info",
            state.display()
        );
        script.push_str(&format!(" --var KEYGATE_BOOTSTRAP_TOKEN:{BOOTSTRAP_TOKEN}"));
        for (k, v) in &config.vars {
            script.push_str(&format!(" --var '{k}:{v}'"));
        }
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
        let worker = Worker { base: format!("http://127.0.0.1:{port}"), state, child, stdin };
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

/// The Worker shared by the tests of one run (started on first use, stopped when the test process exits).
pub fn shared() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| Worker::start(Config::default()))
}

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
    Answer { status, headers, body }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    request("GET", url, headers, None)
}

pub fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request("POST", url, &all, Some(&body.to_string()))
}
