//! Memory per idle task: RSS growth with N tasks parked, ebbtide vs tokio
//! vs smol.
//!
//! `cargo bench --bench memory [-- --quick] [--tasks N]`
//!
//! Each runtime is measured in a child process of its own (this binary run
//! again with `--child RUNTIME`), so allocator state from one runtime never
//! flatters another. A child builds its runtime with 2 workers, reads its
//! RSS (`/proc/self/statm`, Linux), spawns N tasks that each count their
//! first poll and then wait forever on a future that never wakes (parked,
//! as an idle connection's task would be), waits until all N were polled,
//! reads RSS again, and prints the difference divided by N. The tasks' own
//! state is the same for every runtime: one `Arc` clone and the
//! `async` block's state machine.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::smol_rt::SmolRt;

const RUNTIMES: [&str; 3] = ["ebbtide", "tokio", "smol"];

#[cfg(target_os = "linux")]
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Elsewhere `main` skips the measurement before any child runs.
#[cfg(not(target_os = "linux"))]
fn rss_bytes() -> u64 {
    unreachable!("the memory bench measures RSS through Linux /proc")
}

/// The task every runtime parks: counts its first poll, then never wakes.
async fn parked(polled: Arc<AtomicUsize>) {
    polled.fetch_add(1, Ordering::Relaxed);
    std::future::pending::<()>().await;
}

/// RSS before spawning `n` parked tasks through `spawn` and after all of
/// them were polled once.
fn growth(n: usize, mut spawn: impl FnMut(Arc<AtomicUsize>)) -> (u64, u64) {
    let polled = Arc::new(AtomicUsize::new(0));
    let before = rss_bytes();
    for _ in 0..n {
        spawn(polled.clone());
    }
    let start = Instant::now();
    while polled.load(Ordering::Relaxed) < n {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "tasks never polled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (before, rss_bytes())
}

fn child(runtime: &str, n: usize) {
    let (before, after) = match runtime {
        "ebbtide" => {
            let rt = ebbtide::runtime::Runtime::builder()
                .worker_threads(2)
                .build()
                .unwrap();
            let rss = growth(n, |polled| rt.spawn(parked(polled)).detach());
            std::mem::forget(rt); // the process exits; teardown is not measured
            rss
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            let rss = growth(n, |polled| drop(rt.spawn(parked(polled))));
            std::mem::forget(rt);
            rss
        }
        "smol" => {
            let rt = SmolRt::new(2);
            let rss = growth(n, |polled| rt.ex.spawn(parked(polled)).detach());
            std::mem::forget(rt);
            rss
        }
        other => panic!("unknown runtime {other}"),
    };
    let per_task = after.saturating_sub(before) as f64 / n as f64;
    println!("{per_task:.1}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quick = args.iter().any(|a| a == "--quick");
    let n: usize = arg("--tasks")
        .map(|s| s.parse().expect("--tasks N"))
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    if let Some(rt) = arg("--child") {
        child(&rt, n);
        return;
    }
    if !std::path::Path::new("/proc/self/statm").exists() {
        println!("memory: needs Linux /proc; skipped");
        return;
    }
    println!("memory per idle task, {n} tasks parked, 2 workers (RSS growth / N)");
    let mut results = Vec::new();
    for rt in RUNTIMES {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--child", rt, "--tasks", &n.to_string()])
            .output()
            .expect("run child");
        assert!(out.status.success(), "{rt} child failed: {out:?}");
        let bytes: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("child prints bytes per task");
        println!("  {rt:8} {bytes:8.1} bytes/task");
        results.push(bytes);
    }
    println!(
        "  ratio ebbtide/tokio {:.2}, ebbtide/smol {:.2} (lower is better)",
        results[0] / results[1],
        results[0] / results[2]
    );
}
