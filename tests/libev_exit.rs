//! The libev seed (`tests/seeds.rs` lists the seeds): a program that uses
//! the global runtime with an open listener, a pending read, a running
//! interval and a busy writer returns from its *real* `main`; the exit hook
//! drains (timers still work while draining), shuts the runtime down, and
//! nothing of the runtime runs after that. A `harness = false` test, so
//! `main` here is the process's main, as in `tests/exit_main.rs`.
//!
//! The parent runs this binary again as the child (`EBBTIDE_SEED_CHILD_FILE`
//! names the file the child writes to) and asserts on what the child wrote
//! and how it exited:
//!
//! - it exited 0 and printed no panic;
//! - the writer ticked (the tasks ran), and the drain task wrote `drained`
//!   after `shutdown_requested()` and a sleep: the hook drained, with timers
//!   working;
//! - `exited` is the last line: it is written by an `atexit` handler
//!   registered before the runtime's own hook, so it runs after that hook
//!   returned (handlers run in reverse order), and no task of the runtime
//!   wrote anything after it.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ebbtide::io::Async;
use ebbtide::time::{interval, sleep};

const CHILD_ENV: &str = "EBBTIDE_SEED_CHILD_FILE";
/// The child must have exited by then (its drain is 100 ms).
const HANG: Duration = Duration::from_secs(30);
const TEST: &str = "libev_exit_with_global_runtime_drains_and_exits_cleanly";

/// The child's output file, for its `atexit` handler.
static OUT: OnceLock<String> = OnceLock::new();

extern "C" {
    // C89 `atexit`, as the runtime's exit hook uses it.
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn after_teardown() {
    if let Some(path) = OUT.get() {
        append(path, "exited\n");
    }
}

fn append(path: &str, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

fn child(path: String) {
    OUT.set(path.clone()).unwrap();
    // SAFETY: `after_teardown` is a plain `extern "C" fn()` that does not
    // unwind on this path (it only appends to a file that exists by then).
    assert_eq!(unsafe { atexit(after_teardown) }, 0);
    ebbtide::block_on(async move {
        // An open listener with a pending accept.
        let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        ebbtide::spawn(async move {
            let _ = listener.read_with(|l| l.accept()).await;
        });
        // A pending read on a connected socket.
        let stream = Async::new(TcpStream::connect(addr).unwrap()).unwrap();
        ebbtide::spawn(async move {
            let mut buf = [0u8; 16];
            let _ = stream
                .read_with(|mut s| std::io::Read::read(&mut s, &mut buf))
                .await;
        });
        // A running interval.
        ebbtide::spawn(async {
            let mut ticks = interval(Duration::from_millis(2));
            loop {
                ticks.tick().await;
            }
        });
        // A writer that never stops by itself, and a task that records the
        // drain.
        let p = path.clone();
        ebbtide::spawn(async move {
            for i in 0.. {
                append(&p, &format!("tick {i}\n"));
                sleep(Duration::from_millis(5)).await;
            }
        });
        ebbtide::spawn(async move {
            ebbtide::runtime::shutdown_requested().await;
            sleep(Duration::from_millis(10)).await; // timers work while draining
            append(&path, "drained\n");
        });
        sleep(Duration::from_millis(30)).await;
    });
    // Returning from `main`: the exit hook drains and shuts the global
    // runtime down, then `after_teardown` runs.
}

fn main() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(path);
        return;
    }
    let dir = std::env::temp_dir().join(format!("ebbtide-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.txt");
    let _ = std::fs::remove_file(&file);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &file)
        .env("EBBTIDE_EXIT_DRAIN_MS", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the child");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("the child did not exit within {HANG:?}: a hang at exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "child panicked:\n{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().filter(|l| l.starts_with("tick ")).count() >= 2,
        "the tasks did not run:\n{text}"
    );
    assert!(lines.contains(&"drained"), "no drain at exit:\n{text}");
    assert_eq!(
        lines.last(),
        Some(&"exited"),
        "the runtime's exit hook did not finish first, or a task ran after it:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out ({TEST})");
}
