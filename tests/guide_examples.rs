//! The guide's runnable examples (`docs/guide.md`: "TLS", "WebSockets")
//! run to the end: each is a server and its clients in one process, and
//! exits 0 only when every echo matched; each client reports its messages
//! and the shutdown report says no task was cancelled.
//!
//! The examples are the binaries `cargo test` builds beside the test
//! binaries (`target/<profile>/examples/`). Run alone
//! (`cargo test --test guide_examples`), cargo does not build them: the
//! test then builds the one it needs with `cargo build --example`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::watchdog;

/// The example's binary, built if it is missing.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary> → target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    assert!(bin.exists(), "no example binary at {}", bin.display());
    bin
}

/// Runs the example's binary `bin` to its end (killed after 20 s: a
/// hang); returns its stdout, asserting it exited 0.
fn run_example(name: &str, bin: PathBuf) -> String {
    let mut child = Command::new(&bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts `stdout` has one line per client saying what it echoed, and a
/// shutdown report with nothing cancelled.
fn assert_clients_served(name: &str, stdout: &str, per_client: &str) {
    for id in 0..3 {
        let line = format!("{name}: client {id}: {per_client}");
        assert!(stdout.contains(&line), "no {line:?} in:\n{stdout}");
    }
    let report = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}: shutdown in")))
        .unwrap_or_else(|| panic!("no shutdown report in:\n{stdout}"));
    assert!(report.contains(" 0 cancelled"), "{report}");
}

#[test]
fn tls_echo_example_echoes_every_client_over_tls_and_exits_0() {
    // Built (if missing) outside the watchdog: a build is not a hang.
    let bin = example_binary("tls_echo");
    let stdout = watchdog(move || run_example("tls_echo", bin));
    assert_clients_served("tls_echo", &stdout, "3 lines echoed");
}

#[test]
fn websocket_echo_example_echoes_every_client_message_and_exits_0() {
    let bin = example_binary("websocket_echo");
    let stdout = watchdog(move || run_example("websocket_echo", bin));
    assert_clients_served("websocket_echo", &stdout, "2 messages echoed");
}
