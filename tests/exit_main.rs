//! The global runtime at process exit, used from the process's *main*
//! thread (a `harness = false` test, so `main` here is the real main).
//!
//! The exit hook runs after the main thread's thread-locals are destroyed;
//! it must still drain (no panic, no skipped shutdown). The parent runs
//! this binary again as a child that uses `ebbtide::block_on` and
//! `ebbtide::spawn` on its main thread and returns from `main` with a task
//! still finishing; it asserts the child exited 0, printed no panic, and
//! that the finishing task completed during the exit drain.

use std::process::Command;
use std::time::Duration;

const CHILD: &str = "EBBTIDE_EXIT_MAIN_CHILD";

fn child() {
    let two = ebbtide::block_on(async { 1 + 1 });
    println!("block_on on main: {two}");
    // Still running when main returns: the exit drain lets it finish.
    ebbtide::spawn(async {
        ebbtide::time::sleep(Duration::from_millis(50)).await;
        println!("drained at exit");
    })
    .detach();
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .env("EBBTIDE_EXIT_DRAIN_MS", "5000")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {out:?}");
    assert!(!stderr.contains("panicked"), "panic at exit:\n{stderr}");
    assert!(stdout.contains("block_on on main: 2"), "{stdout}");
    assert!(
        stdout.contains("drained at exit"),
        "the exit hook did not drain:\nstdout: {stdout}\nstderr: {stderr}"
    );
    println!(
        "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out (exit_main)"
    );
}
