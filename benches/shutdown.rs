//! Time to shut down a runtime holding N idle tasks (half parked on a 1-hour
//! timer, half on a channel that never receives), ebbtide vs tokio, same
//! process, same machine.
//!
//! `cargo bench --bench shutdown` (`-- --quick`: 10k and 100k only).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

/// Idle task `i` of a runtime: even ones park on a 1-hour `sleep` (the
/// runtime's own timer), odd ones on a channel that never receives.
async fn idle_task<S: Future>(
    i: usize,
    started: Arc<AtomicUsize>,
    rx: smol::channel::Receiver<()>,
    sleep: impl FnOnce(Duration) -> S,
) {
    started.fetch_add(1, Ordering::Relaxed);
    if i % 2 == 0 {
        sleep(Duration::from_secs(3600)).await;
    } else {
        let _ = rx.recv().await;
    }
}

/// Spawns `n` idle tasks through `spawn` and waits until each has parked.
/// Returns the channel's sender: the channel-parked tasks stay parked while
/// the caller holds it.
#[must_use]
fn spawn_idle<S: Future + Send + 'static>(
    n: usize,
    mut spawn: impl FnMut(Pin<Box<dyn Future<Output = ()> + Send>>),
    sleep: fn(Duration) -> S,
) -> smol::channel::Sender<()> {
    let started = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = smol::channel::bounded::<()>(1);
    for i in 0..n {
        spawn(Box::pin(idle_task(i, started.clone(), rx.clone(), sleep)));
    }
    while started.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    tx
}

/// ebbtide: spawn `n` idle tasks, then time `shutdown(0)` (or drop).
fn ebbtide(n: usize, by_drop: bool) -> Duration {
    let rt = ebbtide::runtime::Runtime::builder()
        .worker_threads(2)
        .drain_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let _tx = spawn_idle(n, |task| rt.spawn(task).detach(), ebbtide::time::sleep);
    let t = Instant::now();
    if by_drop {
        drop(rt);
        return t.elapsed();
    }
    let report = rt.shutdown(Duration::ZERO);
    let elapsed = t.elapsed();
    assert_eq!(report.cancelled as usize, n, "{report}");
    elapsed
}

/// tokio: spawn `n` idle tasks, then time the runtime's drop.
fn tokio(n: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let _tx = spawn_idle(n, |task| drop(rt.spawn(task)), tokio::time::sleep);
    let t = Instant::now();
    drop(rt);
    t.elapsed()
}

/// The median, min and max of `v`.
fn med_min_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    let (min, max) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    (common::median(&mut v), min, max)
}

/// `median (min–max)` of `samples`, in ms.
fn spread(samples: &[Duration]) -> String {
    let (med, min, max) = med_min_max(samples.iter().map(|d| d.as_secs_f64() * 1e3).collect());
    format!("{med:.2} ms ({min:.2}–{max:.2})")
}

/// `median (min–max)` of the per-round ratios `num[i] / den[i]`.
fn ratio_spread(num: &[Duration], den: &[Duration]) -> String {
    let ratios = num
        .iter()
        .zip(den)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64());
    let (med, min, max) = med_min_max(ratios.collect());
    format!("{med:.2} ({min:.2}–{max:.2})")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    println!(
        "shutdown of a runtime with N idle tasks (2 workers), {ROUNDS} rounds; \
         cells: median (min–max) over the rounds; ratios: median (min–max) of \
         the rounds' ratios"
    );
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
        println!(
            "| {n} | {} | {} | {} | {} | {} |",
            spread(&e_sd),
            spread(&e_drop),
            spread(&t_drop),
            ratio_spread(&e_sd, &t_drop),
            ratio_spread(&e_drop, &t_drop)
        );
    }
}
