//! Regression scenarios from real event-loop bugs (DESIGN.md, "Seed
//! scenarios"). The signal (Crochet) and IOCP (asyncio) seeds arrive with
//! `ebbtide::signal` and the overlapped backend.

mod common;
use common::watchdog_for as watchdog;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbtide::io::Async;
use ebbtide::runtime::Runtime;
use ebbtide::time::{interval, sleep};

const CHILD_ENV: &str = "EBBTIDE_SEED_CHILD_FILE";

/// The child half of the libev seed: runs only when re-invoked by
/// `libev_exit_with_global_runtime_drains_and_exits_cleanly`.
#[test]
fn libev_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // not the child: nothing to do
    };
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
        // A detached writer, and a task that records the drain.
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
    // Returning from the test returns from the harness's `main`: the exit
    // hook drains and shuts the global runtime down.
}

fn append(path: &str, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

#[test]
fn libev_exit_with_global_runtime_drains_and_exits_cleanly() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ebbtide-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.txt");
    let _ = std::fs::remove_file(&file);
    let exe = std::env::current_exe().unwrap();
    let file2 = file.clone();
    let out = watchdog(Duration::from_secs(30), move || {
        Command::new(exe)
            .args(["--exact", "libev_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &file2)
            .env("EBBTIDE_EXIT_DRAIN_MS", "100")
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "child panicked:\n{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines().any(|l| l == "drained"),
        "no drain at exit:\n{text}"
    );
    assert!(
        text.lines().filter(|l| l.starts_with("tick ")).count() >= 2,
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `begin_shutdown()` from another thread stops a busy runtime: intake
/// stops at once and `shutdown` cancels the busy loops.
#[test]
fn begin_shutdown_from_another_thread_stops_a_busy_runtime() {
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let polls = Arc::new(AtomicU64::new(0));
        for _ in 0..8 {
            let polls = polls.clone();
            rt.spawn(async move {
                loop {
                    polls.fetch_add(1, Ordering::Relaxed);
                    ebbtide::yield_now().await;
                }
            });
        }
        while polls.load(Ordering::Relaxed) < 1000 {
            std::thread::yield_now();
        }
        let handle = rt.handle().clone();
        let stopped = Arc::new(AtomicBool::new(false));
        let s = stopped.clone();
        std::thread::spawn(move || {
            handle.begin_shutdown();
            s.store(true, Ordering::SeqCst);
        })
        .join()
        .unwrap();
        assert!(stopped.load(Ordering::SeqCst));
        assert!(rt.handle().try_spawn(async {}).is_err());
        let report = rt.shutdown(Duration::from_millis(50));
        assert_eq!(report.cancelled, 8, "{report}");
        assert_eq!(report.workers_leaked, 0, "{report}");
    });
}
