//! Time to shut down a runtime holding N idle tasks (half parked on a 1-hour
//! timer, half on a channel that never receives), ebbtide vs tokio, same
//! process, same machine.
//!
//! `cargo bench --bench shutdown` (`-- --quick`: 10k and 100k only).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

/// The channel-parked half: waits for a message that never comes.
async fn park_on_channel(started: Arc<AtomicUsize>, rx: smol::channel::Receiver<()>) {
    started.fetch_add(1, Ordering::Relaxed);
    let _ = rx.recv().await;
}

fn wait_started(started: &AtomicUsize, n: usize) {
    while started.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// ebbtide: spawn `n` idle tasks, then time `shutdown(0)` (or drop).
fn ebbtide(n: usize, by_drop: bool) -> Duration {
    let rt = ebbtide::runtime::Runtime::builder()
        .worker_threads(2)
        .drain_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let (_tx, rx) = smol::channel::bounded::<()>(1);
    for i in 0..n {
        let (started, rx) = (started.clone(), rx.clone());
        rt.spawn(async move {
            if i % 2 == 0 {
                started.fetch_add(1, Ordering::Relaxed);
                ebbtide::time::sleep(Duration::from_secs(3600)).await;
            } else {
                park_on_channel(started, rx).await;
            }
        });
    }
    wait_started(&started, n);
    let t = Instant::now();
    if by_drop {
        drop(rt);
    } else {
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(report.cancelled as usize, n, "{report}");
        let el = t.elapsed();
        drop(rt);
        return el;
    }
    t.elapsed()
}

/// tokio: spawn `n` idle tasks, then time the runtime's drop.
fn tokio(n: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let (_tx, rx) = smol::channel::bounded::<()>(1);
    for i in 0..n {
        let (started, rx) = (started.clone(), rx.clone());
        rt.spawn(async move {
            if i % 2 == 0 {
                started.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(3600)).await;
            } else {
                park_on_channel(started, rx).await;
            }
        });
    }
    wait_started(&started, n);
    let t = Instant::now();
    drop(rt);
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    println!("shutdown of a runtime with N idle tasks (2 workers), median of {ROUNDS} rounds");
    println!(
        "| N | ebbtide shutdown(0) | ebbtide drop | tokio drop | shutdown/tokio | drop/tokio |"
    );
    println!("|--:|--:|--:|--:|--:|--:|");
    for &n in sizes {
        let mut e_sd = Vec::new();
        let mut e_drop = Vec::new();
        let mut t_drop = Vec::new();
        for _ in 0..ROUNDS {
            e_sd.push(ebbtide(n, false));
            e_drop.push(ebbtide(n, true));
            t_drop.push(tokio(n));
        }
        let (a, b, c) = (median(e_sd), median(e_drop), median(t_drop));
        println!(
            "| {n} | {a:.2?} | {b:.2?} | {c:.2?} | {:.2} | {:.2} |",
            a.as_secs_f64() / c.as_secs_f64(),
            b.as_secs_f64() / c.as_secs_f64()
        );
    }
}
