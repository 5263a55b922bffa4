//! Keygate's chores, as `cargo xtask <command>`:
//!
//! - `dev`: install what is missing, build the console and the Worker, run `wrangler dev` on 127.0.0.1:8787 with
//!   local persistence, bootstrap a fresh store and print the console's address and first console token.
//! - `test`: install what is missing and run every test: native, wasm under node, wasm in headless Chromium, and the
//!   end-to-end suite against real workerd. Ends with one line for the whole suite: `N passed, M failed`.
//! - `lint`: `cargo fmt --check`, clippy with warnings denied, and `shared` built for wasm32.
//! - `bench [--quick]`: criterion benchmarks of `shared`, then Keygate's Worker against a hand-written JavaScript
//!   Worker under loopback load (`bench/README.md`); `bench --admin [--quick]`: the control plane at scale;
//!   `bench --roles [--keys N]`: how long a changed role takes to reach every key that holds it.
//! - `setup`: only the installs. `build-worker [gateway|control]`: what each wrangler config's `[build]` runs (both
//!   Workers when none is named).
//!
//! Every install is skipped when the installed version already matches; nothing is downloaded from outside the
//! package registries (crates.io, npm, Debian).

mod bench;
mod progress;
mod tools;

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => tools::setup(tools::Needs::ALL),
        Some("dev") => dev(),
        Some("test") => test(),
        Some("lint") => lint(),
        Some("build-worker") => match args.get(1).map(String::as_str) {
            None => build_worker(Worker::Gateway).and_then(|()| build_worker(Worker::Control)),
            Some("gateway") => build_worker(Worker::Gateway),
            Some("control") => build_worker(Worker::Control),
            Some(other) => Err(format!("no Worker named `{other}`: gateway or control")),
        },
        Some("bench") => bench::run(&args[1..]),
        Some("build-console") => tools::setup(tools::Needs::BUILD).and_then(|()| build_console()),
        _ => Err(String::from(
            "usage: cargo xtask <dev|test|lint|bench [--quick]|setup|build-worker [gateway|control]|build-console>",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// A command run from the workspace root with the tool environment: no telemetry, local tools first on PATH.
pub fn cmd(program: &str) -> Command {
    let root = root();
    let mut c = Command::new(program);
    c.current_dir(&root);
    let node_bin = root.join("node_modules/.bin");
    let cargo_bin = tools::cargo_bin();
    let path = env::var("PATH").unwrap_or_default();
    c.env("PATH", format!("{}:{}:{path}", node_bin.display(), cargo_bin.display()));
    for (k, v) in tools::QUIET_ENV {
        c.env(k, v);
    }
    c
}

/// Runs a command. During a staged run (`progress`) its output goes to the run's log, and a failure shows the log's
/// last lines and where the rest is; otherwise (or with `--verbose`) it is shown as it comes.
pub fn run(c: &mut Command) -> Result {
    let shown = format!("{c:?}");
    let Some((mut log, path)) = progress::log_file() else {
        eprintln!("$ {shown}");
        let status = c.status().map_err(|e| format!("could not start {shown}: {e}"))?;
        return if status.success() { Ok(()) } else { Err(format!("{shown} failed with {status}")) };
    };
    let _ = writeln!(log, "\n$ {shown}");
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let status = c.stdout(log).stderr(err).status().map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        return Ok(());
    }
    eprintln!("--- the last lines of {} ---", path.display());
    for line in progress::tail(&path, 60) {
        eprintln!("{line}");
    }
    eprintln!("--- (the whole output is in {}) ---", path.display());
    Err(format!("{shown} failed with {status}"))
}

pub fn build_console() -> Result {
    progress::stage("the console (Leptos, Trunk): building", Some("about 4 min the first time, seconds after"));
    run(cmd("cargo").args(["fetch", "--locked"]))?;
    run(cmd("trunk").args(["build", "--release", "--offline"]).env("TRUNK_SKIP_VERSION_CHECK", "true"))
}

/// Keygate's two Workers: the gateway (`verifier/`, the one public address) and the control plane (`control/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    Gateway,
    Control,
}

impl Worker {
    pub const BOTH: [Worker; 2] = [Worker::Gateway, Worker::Control];

    /// The crate's folder.
    pub fn folder(self) -> &'static str {
        match self {
            Worker::Gateway => "verifier",
            Worker::Control => "control",
        }
    }

    /// Its wrangler configuration, from the workspace root.
    pub fn config(self) -> &'static str {
        match self {
            Worker::Gateway => "wrangler.toml",
            Worker::Control => "control/wrangler.toml",
        }
    }
}

/// Builds both Workers (what `dev` and `test` need).
pub fn build_workers() -> Result {
    Worker::BOTH.into_iter().try_for_each(build_worker)
}

/// What wrangler's `[build]` runs for one Worker. `KEYGATE_SKIP_BUILD=1` skips it when the caller has just built
/// (the e2e suite starts `wrangler dev` several times over one build).
pub fn build_worker(worker: Worker) -> Result {
    if env::var("KEYGATE_SKIP_BUILD").is_ok_and(|v| v == "1") {
        eprintln!("xtask: KEYGATE_SKIP_BUILD=1, using the existing {} build", worker.folder());
        return Ok(());
    }
    let root = root();
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    let module = root.join(worker.folder()).join("build/index_bg.wasm");
    let what = match worker {
        Worker::Gateway => "the gateway Worker (verifier): building",
        Worker::Control => "the control plane Worker (control): building",
    };
    progress::stage(what, Some("about 4 min the first time, under a minute after"));
    match worker {
        Worker::Gateway => build_gateway(&root)?,
        Worker::Control => run(cmd("worker-build")
            .arg("--release")
            .current_dir(root.join(worker.folder()))
            .env("WASM_BINDGEN_BIN", tools::cargo_bin().join("wasm-bindgen"))
            .env("WASM_OPT_BIN", &wasm_opt)
            .env("ESBUILD_BIN", root.join("node_modules/esbuild/bin/esbuild")))?,
    }
    // worker-build keeps the function names (`--debuginfo`); the deployed module does without them. Panics still log
    // their message and source location. The feature list is worker-build's own: with `--all-features` binaryen
    // would emit encodings workerd rejects. `KEYGATE_WASM_NAMES=1` keeps the names (for `bench/run.mjs --profile`).
    let strip = !env::var("KEYGATE_WASM_NAMES").is_ok_and(|v| v == "1");
    let features = [
        "mutable-globals",
        "sign-ext",
        "nontrapping-float-to-int",
        "bulk-memory",
        "multivalue",
        "reference-types",
        "exception-handling",
    ];
    // The control plane's second `-Oz` pass (worker-build ran one with the names still in) finds a little more;
    // the gateway's is its only one.
    run(cmd(&wasm_opt.to_string_lossy())
        .arg("-Oz")
        .args(strip.then_some("--strip-debug"))
        .args(features.map(|f| format!("--enable-{f}")))
        .arg(&module)
        .arg("-o")
        .arg(&module))
}

/// The gateway without worker-build or the `worker` crate: `cargo build`, then wasm-bindgen's ES-module output
/// (`verifier/build/index.js` and `index_bg.wasm`) that `verifier/entry.mjs` imports; wrangler bundles it. The
/// reset-state and abort-handler options make the glue build a fresh instance after a panic (see `entry.mjs`).
fn build_gateway(root: &std::path::Path) -> Result {
    run(cmd("cargo")
        .args(["build", "-p", "verifier", "--release", "--locked", "--target", "wasm32-unknown-unknown"])
        .current_dir(root))?;
    let out = root.join("verifier/build");
    let _ = std::fs::remove_dir_all(&out);
    let keep_names = env::var("KEYGATE_WASM_NAMES").is_ok_and(|v| v == "1");
    run(cmd(&tools::cargo_bin().join("wasm-bindgen").to_string_lossy())
        .arg(root.join("target/wasm32-unknown-unknown/release/verifier.wasm"))
        .arg("--out-dir")
        .arg(&out)
        .args(["--out-name", "index", "--target", "module", "--no-typescript"])
        .args(["--experimental-reset-state-function", "--force-enable-abort-handler"])
        .args(keep_names.then_some("--keep-debug")))?;
    // wasm-bindgen imports the module as a source phase import; wrangler's bundler takes the plain form (a `.wasm`
    // import is a compiled `WebAssembly.Module` either way).
    let glue = out.join("index.js");
    let text = std::fs::read_to_string(&glue).map_err(|e| format!("{}: {e}", glue.display()))?;
    std::fs::write(&glue, text.replace("import source ", "import ")).map_err(|e| format!("{}: {e}", glue.display()))
}

fn dev() -> Result {
    progress::start("dev", tools::SETUP_STAGES + 4);
    tools::setup(tools::Needs::BUILD)?;
    build_console()?;
    build_workers()?;
    tools::ensure_dev_vars()?;
    progress::stage("wrangler dev: starting both Workers on 127.0.0.1:8787", Some("seconds"));
    progress::finish("built");
    let mut wrangler = cmd("npx");
    // Both Workers in one workerd: the first config's (the gateway's) gets the port.
    wrangler
        .args(["wrangler", "dev", "-c", Worker::Gateway.config(), "-c", Worker::Control.config()])
        .args(["--local", "--ip", "127.0.0.1", "--port", "8787"])
        .args(["--persist-to", ".wrangler/state", "--show-interactive-dev-session=false"])
        .env("KEYGATE_SKIP_BUILD", "1");
    let mut child = wrangler.spawn().map_err(|e| format!("could not start wrangler: {e}"))?;
    let announce = std::thread::spawn(tools::announce_when_ready);
    let status = child.wait().map_err(|e| e.to_string())?;
    let _ = announce.join();
    if status.success() { Ok(()) } else { Err(format!("wrangler dev exited with {status}")) }
}

fn lint() -> Result {
    tools::setup(tools::Needs::BUILD)?;
    run(cmd("cargo").args(["fmt", "--all", "--check"]))?;
    run(cmd("cargo").args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    run(cmd("cargo")
        .args(["clippy", "-p", "admin-ui", "-p", "verifier", "-p", "control", "--target", "wasm32-unknown-unknown"])
        .args(["--all-targets", "--locked", "--", "-D", "warnings"]))?;
    run(cmd("cargo").args(["build", "-p", "keygate-shared", "--target", "wasm32-unknown-unknown", "--locked"]))?;
    run(cmd("cargo").args(["doc", "-p", "keygate-shared", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"))
}

/// One step of the test suite: its name, its command, and the counts read from its output.
struct Step {
    name: &'static str,
    passed: u64,
    failed: u64,
    ok: bool,
}

fn test() -> Result {
    progress::start("test", tools::SETUP_STAGES + 3);
    tools::setup(tools::Needs::ALL)?;
    build_console()?;
    build_workers()?;
    progress::finish("ready to test");

    let wasm = "wasm32-unknown-unknown";
    let chromedriver = tools::chromedriver()?;
    let steps = [
        counted(
            "native (cargo test --workspace)",
            cmd("cargo").args(["test", "--workspace", "--exclude", "keygate-e2e", "--locked"]),
        ),
        counted(
            "wasm under node (keygate-shared)",
            cmd("cargo").args(["test", "-p", "keygate-shared", "--lib", "--target", wasm, "--locked"]),
        ),
        counted(
            "wasm in headless Chromium (admin-ui)",
            cmd("cargo")
                .args(["test", "-p", "admin-ui", "--target", wasm, "--locked"])
                .env("CHROMEDRIVER", &chromedriver)
                .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
        ),
        counted(
            "end-to-end (wrangler dev + workerd)",
            cmd("cargo").args(["test", "-p", "keygate-e2e", "--locked", "--", "--test-threads=1"]),
        ),
        counted(
            "browser end-to-end (Chromium + console)",
            cmd("node").args(["--test", "--test-reporter=spec", "tests/browser/"]).env("KEYGATE_SKIP_BUILD", "1"),
        ),
        counted(
            "generated client (OpenAPI → TypeScript)",
            cmd("node").args(["--test", "--test-reporter=spec", "tests/client/"]).env("KEYGATE_SKIP_BUILD", "1"),
        ),
    ];
    eprintln!("screenshots of the console: {}", root().join("tests/screenshots").display());

    eprintln!();
    eprintln!("Test suite:");
    let (mut passed, mut failed) = (0, 0);
    let mut all_ok = true;
    for s in &steps {
        let verdict = match (s.ok, s.passed) {
            (false, _) => "FAILED",
            (true, 0) => "FAILED (ran no test)",
            (true, _) => "ok",
        };
        eprintln!("  {:<44} {:>5} passed, {:>3} failed  {verdict}", s.name, s.passed, s.failed);
        passed += s.passed;
        failed += s.failed;
        all_ok &= s.ok && s.passed > 0;
    }
    // A step that failed without reporting a failing test (a build error, a crash) still counts as a failure.
    let failed = if all_ok { failed } else { failed.max(1) };
    println!("{passed} passed, {failed} failed");
    if all_ok && failed == 0 { Ok(()) } else { Err(String::from("the test suite failed")) }
}

/// Runs a test command, echoing its output, and adds up its `test result:` lines.
fn counted(name: &'static str, c: &mut Command) -> Step {
    eprintln!("\n=== {name}\n$ {c:?}");
    let child = c.stdout(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("could not start: {e}");
            return Step { name, passed: 0, failed: 0, ok: false };
        }
    };
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::result::Result::ok) {
            println!("{line}");
            if let Some((p, f)) = parse_test_result(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    Step { name, passed, failed, ok }
}

/// Reads `test result: ok. 12 passed; 0 failed; ...` (cargo test and wasm-bindgen-test-runner alike), and node's
/// test runner summary lines `ℹ pass 12` / `ℹ fail 0`.
fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let trimmed = line.trim();
    if let Some(n) = trimmed.strip_prefix("ℹ pass ") {
        return n.trim().parse().ok().map(|n| (n, 0));
    }
    if let Some(n) = trimmed.strip_prefix("ℹ fail ") {
        return n.trim().parse().ok().map(|n| (0, n));
    }
    let rest = trimmed.strip_prefix("test result: ")?;
    let number_before = |word: &str| -> Option<u64> {
        let end = rest.find(word)?;
        rest[..end].trim_end().rsplit([' ', '.']).next()?.parse().ok()
    };
    Some((number_before(" passed")?, number_before(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::parse_test_result;

    #[test]
    fn reads_cargo_and_wasm_bindgen_summaries() {
        assert_eq!(parse_test_result("test result: ok. 40 passed; 0 failed; 0 ignored; 0 measured"), Some((40, 0)));
        assert_eq!(parse_test_result("test result: FAILED. 3 passed; 2 failed; 0 ignored"), Some((3, 2)));
        assert_eq!(parse_test_result("running 40 tests"), None);
        assert_eq!(parse_test_result("ℹ pass 13"), Some((13, 0)));
        assert_eq!(parse_test_result("ℹ fail 1"), Some((0, 1)));
    }
}
