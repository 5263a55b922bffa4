//! Installing the toolchain (each step skipped when the installed version already matches) and talking to the local
//! Worker once it is up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

use crate::{Result, cmd, root, run};

pub const WORKER_BUILD_VERSION: &str = "0.8.7";
pub const TRUNK_VERSION: &str = "0.21.14";
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const DEV_ADDR: &str = "127.0.0.1:8787";

/// No telemetry, no update checks, no network beyond the registries.
pub const QUIET_ENV: [(&str, &str); 5] = [
    ("WRANGLER_SEND_METRICS", "false"),
    ("WRANGLER_SEND_ERROR_REPORTS", "false"),
    ("CLOUDFLARE_CF_FETCH_ENABLED", "false"),
    ("TRUNK_SKIP_VERSION_CHECK", "true"),
    ("NO_UPDATE_NOTIFIER", "1"),
];

/// Which tools a command needs.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub browser: bool,
}

impl Needs {
    /// Building and running: Rust tools and npm packages.
    pub const BUILD: Needs = Needs { browser: false };
    /// Testing: the above plus Chromium and ChromeDriver.
    pub const ALL: Needs = Needs { browser: true };
}

pub fn cargo_bin() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

/// The stages `setup` counts (with the browser's).
pub const SETUP_STAGES: usize = 6;

pub fn setup(needs: Needs) -> Result {
    wasm_target()?;
    let wasm_bindgen = wasm_bindgen_version()?;
    cargo_install("worker-build", "worker-build", WORKER_BUILD_VERSION, true, "about 3 min on 2 cores; once")?;
    cargo_install("wasm-bindgen-cli", "wasm-bindgen", &wasm_bindgen, false, "about 4 min on 2 cores; once")?;
    cargo_install("trunk", "trunk", TRUNK_VERSION, true, "about 6 min on 2 cores; once")?;
    npm_packages()?;
    if needs.browser {
        browser()?;
    } else {
        crate::progress::stage("Chromium: not needed to run", None);
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = cmd(program).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wasm_target() -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        crate::progress::stage(&format!("Rust target {WASM_TARGET}: installed"), None);
        return Ok(());
    }
    crate::progress::stage(&format!("Rust target {WASM_TARGET}: adding"), Some("about 1 min; once"));
    run(cmd("rustup").args(["target", "add", WASM_TARGET]))
}

/// The wasm-bindgen version in Cargo.lock: wasm-bindgen-cli must be exactly the same.
fn wasm_bindgen_version() -> Result<String> {
    let lock = fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            let version = lines.next().and_then(|l| l.trim().strip_prefix("version = \""));
            if let Some(v) = version.and_then(|v| v.strip_suffix('"')) {
                return Ok(v.to_owned());
            }
        }
    }
    Err(String::from("wasm-bindgen is not in Cargo.lock"))
}

/// `cargo install` unless `<binary> --version` already names `version`.
fn cargo_install(package: &str, binary: &str, version: &str, locked: bool, estimate: &str) -> Result {
    let bin = cargo_bin().join(binary);
    let current = output(&bin.to_string_lossy(), &["--version"]).unwrap_or_default();
    if current.split_whitespace().any(|word| word == version) {
        crate::progress::stage(&format!("{package} {version}: installed"), None);
        return Ok(());
    }
    let estimate = format!("{estimate}, then cached in {}", cargo_bin().display());
    crate::progress::stage(&format!("{package} {version}: compiling"), Some(&estimate));
    let mut c = cmd("cargo");
    c.args(["install", package, "--version", version]);
    if locked {
        c.arg("--locked");
    }
    run(&mut c)
}

/// `npm ci` from the committed lock file, unless node_modules was installed from this very lock file.
fn npm_packages() -> Result {
    let root = root();
    let lock = fs::read(root.join("package-lock.json")).map_err(|e| format!("reading package-lock.json: {e}"))?;
    let stamp = root.join("node_modules/.keygate-lock");
    if fs::read(&stamp).is_ok_and(|s| s == lock) && root.join("node_modules/.bin/wrangler").exists() {
        crate::progress::stage("npm packages (wrangler, binaryen, …): installed", None);
        return Ok(());
    }
    crate::progress::stage("npm packages (wrangler, binaryen, …): npm ci", Some("about 1 min; once"));
    run(cmd("npm").args(["ci", "--no-audit", "--no-fund"]))?;
    fs::write(&stamp, lock).map_err(|e| e.to_string())
}

fn browser() -> Result {
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() {
        crate::progress::stage("Chromium and ChromeDriver: installed", None);
        return Ok(());
    }
    crate::progress::stage("Chromium and ChromeDriver: apt-get", Some("about 2 min; once"));
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]))
}

pub fn chromedriver() -> Result<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromedriver");
    if path.exists() { Ok(path) } else { Err(String::from("chromedriver is not installed (run `cargo xtask setup`)")) }
}

/// Where the local bootstrap secret lives: the control plane's `.dev.vars` (wrangler reads it beside its config).
fn dev_vars() -> PathBuf {
    root().join("control/.dev.vars")
}

/// `control/.dev.vars` holds the local bootstrap secret; made once, random, never committed.
pub fn ensure_dev_vars() -> Result {
    let path = dev_vars();
    if path.exists() {
        return Ok(());
    }
    let mut bytes = [0u8; 24];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).map_err(|e| e.to_string())?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(&path, format!("KEYGATE_BOOTSTRAP_TOKEN=\"kgboot_{token}\"\n")).map_err(|e| e.to_string())
}

fn bootstrap_token() -> Option<String> {
    let vars = fs::read_to_string(dev_vars()).ok()?;
    vars.lines().find_map(|l| l.strip_prefix("KEYGATE_BOOTSTRAP_TOKEN=")).map(|v| v.trim().trim_matches('"').to_owned())
}

/// Waits for the local Worker, bootstraps a fresh store, and prints where the console is and how to sign in.
pub fn announce_when_ready() {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if http(DEV_ADDR, "GET", "/v1/health", &[], "").is_some_and(|(status, _)| status == 200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let saved = root().join(".wrangler/state/console-token");
    let token = bootstrap_token().unwrap_or_default();
    let auth = format!("Bearer {token}");
    let answer = http(DEV_ADDR, "POST", "/admin/v1/bootstrap", &[("authorization", &auth)], "{}");
    let console_token = match answer {
        Some((201, body)) => {
            let token = json_string_field(&body, "console_token");
            if let Some(t) = &token {
                let _ = fs::write(&saved, t);
            }
            token
        }
        _ => fs::read_to_string(&saved).ok(),
    };
    eprintln!();
    eprintln!("  Keygate is running.");
    eprintln!("  Gateway:       http://{DEV_ADDR}/   (send a key as `Authorization: Bearer <key>`)");
    eprintln!("  Console:       http://{DEV_ADDR}/admin/");
    match console_token {
        Some(t) => eprintln!("  Console token: {}", t.trim()),
        None => eprintln!("  Console token: (the store was bootstrapped elsewhere; sign in with the token you kept)"),
    }
    eprintln!();
}

/// The value of a top-level string field in a JSON object, without a JSON dependency.
fn json_string_field(body: &str, field: &str) -> Option<String> {
    let start = body.find(&format!("\"{field}\""))?;
    let rest = &body[start + field.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// A minimal HTTP/1.1 request over loopback: status and body (chunked bodies are decoded).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Some((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
