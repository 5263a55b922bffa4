//! One line per stage for `cargo xtask dev`, `test` and `setup`: `[3/9] Trunk 0.21.14: compiling (about 6 min on 2
//! cores; once)`, then the time it took; the tools' own output goes to a log file whose path is printed, shown in
//! full only with `--verbose` (or `KEYGATE_VERBOSE=1`), and its last lines when a stage fails. The run ends with the
//! elapsed time. The printer is pure over a clock, so it is tested with a fake one.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where time comes from (a fake one in the tests).
pub trait Clock {
    fn elapsed(&self) -> Duration;
}

/// The real clock, from the start of the run.
#[derive(Debug)]
pub struct Wall(Instant);

impl Clock for Wall {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// `45 s`, `6 min 3 s`, `1 h 2 min`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The stage lines of one run.
#[derive(Debug)]
pub struct Printer<C: Clock, W: Write> {
    clock: C,
    out: W,
    total: usize,
    index: usize,
    stage_started: Duration,
}

impl<C: Clock, W: Write> Printer<C, W> {
    pub fn new(clock: C, out: W, total: usize) -> Self {
        Self { clock, out, total, index: 0, stage_started: Duration::ZERO }
    }

    /// Starts the next stage: `[i/n] what (estimate)`. With `estimate` `None` the stage is expected to be quick.
    pub fn stage(&mut self, what: &str, estimate: Option<&str>) {
        self.index += 1;
        self.stage_started = self.clock.elapsed();
        let estimate = estimate.map(|e| format!(" ({e})")).unwrap_or_default();
        let _ = writeln!(self.out, "[{}/{}] {what}{estimate}", self.index, self.total.max(self.index));
        let _ = self.out.flush();
    }

    /// The current stage is done: `      done in 6 min 3 s` when it took a second or more.
    pub fn done(&mut self) {
        let took = self.clock.elapsed().saturating_sub(self.stage_started);
        if took >= Duration::from_secs(1) {
            let _ = writeln!(self.out, "      done in {}", human(took));
        }
    }

    /// The end of the run: `ready in 21 min 4 s` (or `what` in place of `ready`).
    pub fn finish(&mut self, what: &str) {
        let _ = writeln!(self.out, "{what} in {}", human(self.clock.elapsed()));
        let _ = self.out.flush();
    }
}

/// The run's printer and log, shared by `run()` for every command a stage starts.
pub struct Run {
    pub printer: Printer<Wall, std::io::Stderr>,
    pub log: PathBuf,
    pub verbose: bool,
}

thread_local! {
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

/// Starts a run of `total` stages, logging to `target/xtask/<name>.log` (printed) unless verbose.
pub fn start(name: &str, total: usize) {
    let verbose = std::env::args().any(|a| a == "--verbose" || a == "-v")
        || std::env::var("KEYGATE_VERBOSE").is_ok_and(|v| v == "1");
    let log = crate::root().join("target/xtask").join(format!("{name}.log"));
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = File::create(&log);
    if !verbose {
        eprintln!("The tools' output goes to {} (`--verbose` shows it here).", log.display());
    }
    let printer = Printer::new(Wall(Instant::now()), std::io::stderr(), total);
    RUN.with(|r| *r.borrow_mut() = Some(Run { printer, log, verbose }));
}

/// Starts the next stage of the run (nothing without a run).
pub fn stage(what: &str, estimate: Option<&str>) {
    RUN.with(|r| {
        if let Some(run) = r.borrow_mut().as_mut() {
            run.printer.done_if_started();
            run.printer.stage(what, estimate);
        }
    });
}

/// Ends the run with the elapsed time.
pub fn finish(what: &str) {
    RUN.with(|r| {
        if let Some(run) = r.borrow_mut().as_mut() {
            run.printer.done_if_started();
            run.printer.finish(what);
        }
    });
}

impl<C: Clock, W: Write> Printer<C, W> {
    fn done_if_started(&mut self) {
        if self.index > 0 {
            self.done();
        }
    }
}

/// Where a command's output goes during a run: the log (appended), unless verbose or no run.
pub fn log_file() -> Option<(File, PathBuf)> {
    RUN.with(|r| {
        let run = r.borrow();
        let run = run.as_ref().filter(|run| !run.verbose)?;
        let file = OpenOptions::new().append(true).open(&run.log).ok()?;
        Some((file, run.log.clone()))
    })
}

/// The last `n` lines of the log, for a failure.
pub fn tail(log: &Path, n: usize) -> Vec<String> {
    let Ok(file) = File::open(log) else { return vec![] };
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Fake(Rc<Cell<u64>>);

    impl Clock for Fake {
        fn elapsed(&self) -> Duration {
            Duration::from_secs(self.0.get())
        }
    }

    /// A cold run as the printer shows it: a counter, the estimate, how long each slow stage took, and the total.
    #[test]
    fn each_stage_is_one_line_with_a_counter_an_estimate_and_its_time() {
        let clock = Fake::default();
        let mut out = Vec::new();
        {
            let mut p = Printer::new(clock.clone(), &mut out, 3);
            p.stage("Rust target wasm32-unknown-unknown: installed", None);
            p.done_if_started();
            p.stage("Trunk 0.21.14: compiling", Some("about 6 min on 2 cores; once"));
            clock.0.set(363);
            p.done_if_started();
            p.stage("the console: building", Some("about 2 min"));
            clock.0.set(1264);
            p.done_if_started();
            p.finish("ready");
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "[1/3] Rust target wasm32-unknown-unknown: installed\n\
             [2/3] Trunk 0.21.14: compiling (about 6 min on 2 cores; once)\n      done in 6 min 3 s\n\
             [3/3] the console: building (about 2 min)\n      done in 15 min 1 s\n\
             ready in 21 min 4 s\n"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(human(Duration::from_secs(60)), "1 min 0 s");
        assert_eq!(human(Duration::from_secs(3725)), "1 h 2 min");
    }
}
