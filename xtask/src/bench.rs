//! `cargo xtask bench [--quick] [--no-build] [run.mjs options]`: the performance comparison of issue 6.
//!
//! 1. The criterion benchmarks of `keygate-shared` (`shared/benches/pure_path.rs`: parse + checksum, SHA-256, the
//!    decision, the pure path, a rate-limit step), with short settings.
//! 2. `node bench/run.mjs`: Keygate's release Worker, a hand-written JavaScript Worker (`bench/js-worker`) and a
//!    constant-answer Worker (`bench/floor-worker`) in their own Miniflare instances on loopback, loaded with wrk in
//!    alternating A/B rounds; prints a Markdown table (requests/s, p50, p99, CPU per request and above the floor,
//!    Rust/JS ratios, the `.wasm` size and the cold start).
//!
//! `--admin` runs the control plane's benchmark instead (`node bench/admin.mjs`): the admin API's latency in a small
//! and a large organization and among many organizations, and workerd's memory while one organization grows through
//! the API (both Workers under `wrangler dev`, large states seeded with `KEYGATE_TEST_SEED=1`).
//!
//! `--quick` is the smoke run (seconds; every scenario once; fails on any unexpected status). The Worker is rebuilt
//! first when `verifier/`, `shared/` or the lock file changed since the last build (`--no-build` skips that). Other
//! arguments go to `bench/run.mjs` (e.g. `--connections 1,4`, `--cycles 7`, `--json out.json`).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::{Result, cmd, root, tools};

const WRK: &str = "/usr/bin/wrk";

pub fn run(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    let no_build = args.iter().any(|a| a == "--no-build");
    if args.iter().any(|a| a == "--roles") {
        tools::setup(tools::Needs::BUILD)?;
        if !no_build {
            crate::build_workers()?;
        }
        let passed = args.iter().filter(|a| *a != "--roles" && *a != "--no-build");
        return crate::run(cmd("node").arg("bench/roles.mjs").args(passed));
    }
    if args.iter().any(|a| a == "--admin") {
        tools::setup(tools::Needs::BUILD)?;
        if !no_build {
            crate::build_workers()?;
            if !root().join("admin-ui/dist/admin/index.html").exists() {
                crate::build_console()?;
            }
        }
        let passed = args.iter().filter(|a| *a != "--admin" && *a != "--no-build");
        return crate::run(cmd("node").arg("bench/admin.mjs").args(passed));
    }
    let passed: Vec<&String> = args.iter().filter(|a| *a != "--no-build").collect();

    tools::setup(tools::Needs::BUILD)?;
    wrk()?;
    worker(no_build)?;

    // (a) The pure path, natively.
    let (warm_up, measurement) = if quick { ("0.2", "0.5") } else { ("1", "3") };
    crate::run(cmd("cargo").args(["bench", "-p", "keygate-shared", "--bench", "pure_path", "--locked", "--"]).args([
        "--warm-up-time",
        warm_up,
        "--measurement-time",
        measurement,
        "--noplot",
    ]))?;

    // (b) The Workers under load.
    crate::run(cmd("node").arg("bench/run.mjs").args(passed))
}

/// wrk from Debian, when it is missing.
fn wrk() -> Result {
    if Path::new(WRK).exists() {
        return Ok(());
    }
    let install = || crate::run(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "wrk"]));
    install().or_else(|_| {
        crate::run(Command::new("apt-get").arg("update"))?;
        install()
    })
}

/// Builds each release Worker (the gateway, and the control plane its rate-limited keys call) when it is missing or
/// older than its sources.
fn worker(no_build: bool) -> Result {
    crate::Worker::BOTH.into_iter().try_for_each(|w| one_worker(w, no_build))
}

fn one_worker(worker: crate::Worker, no_build: bool) -> Result {
    let root = root();
    let folder = worker.folder();
    let built =
        ["build/index.js", "build/index_bg.wasm"].iter().map(|f| modified(&root.join(folder).join(f))).min().flatten();
    let Some(built) = built else {
        eprintln!("xtask: no {folder} build yet: building it");
        return crate::build_worker(worker);
    };
    let sources = [
        format!("{folder}/src"),
        format!("{folder}/Cargo.toml"),
        "shared/src".into(),
        "shared/Cargo.toml".into(),
        "glue/src".into(),
        "Cargo.toml".into(),
        "Cargo.lock".into(),
    ];
    let newest = sources.iter().filter_map(|s| newest(&root.join(s))).max();
    match newest {
        Some(changed) if changed > built && no_build => {
            eprintln!("xtask: the {folder} build is older than its sources; measuring it anyway (--no-build)");
            Ok(())
        }
        Some(changed) if changed > built => {
            eprintln!("xtask: the {folder} build is older than its sources: rebuilding it");
            crate::build_worker(worker)
        }
        _ => Ok(()),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time under `path` (a file or a folder), skipping the unit-test folders that the release
/// Worker does not contain.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "tests")
        .filter_map(|e| newest(&e.path()))
        .max()
}
