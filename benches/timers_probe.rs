//! Callgrind probe of the timer store: `N` sleeps inserted, then all fired
//! by the runtime's driver, on a current-thread runtime, for ebbtide or
//! tokio. Instructions per timer are the difference of runs of `N` and `2N`
//! timers divided by `N` (which cancels the runtime's fixed costs):
//!
//! ```text
//! cargo bench --no-run --bench timers_probe
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/timers_probe-* ebbtide 100000
//! ```
//!
//! With a third argument `cancel`, the sleeps are dropped after their
//! first poll instead of fired (insert + cancel). With `tasks`, each sleep
//! is a task of its own, spawned and awaited by `block_on` (the compare
//! suite's `timers_fire` on one thread: spawn, insert, fire, wake, join).
//!
//! One task creates the sleeps (deadlines 20–30 ms ahead, in a scattered
//! order), polls each once (insert), blocks its thread until every deadline
//! passed, and returns `Pending`: the runtime's driver then fires all of
//! them, and the task's second pass sees each one complete. The probe
//! prints the wall and CPU time of that work (wall time to confirm; the
//! instruction counts decide).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::probe::{ProbeArgs, Stopwatch};

/// Deadline offsets: `n` values spread over 10 ms, in a scattered order,
/// starting late enough (1 s + 30 µs per timer, for callgrind's slowness)
/// that none is due before every sleep was polled once.
fn offsets(n: usize) -> Vec<Duration> {
    let start = Duration::from_secs(1) + Duration::from_micros(30 * n as u64);
    (0..n)
        .map(|i| {
            let j = (i as u64 * 7919) % n as u64;
            start + Duration::from_nanos(10_000_000 * j / n as u64)
        })
        .collect()
}

/// Polls every sleep once, blocks past the last deadline, then completes on
/// the pass after the driver fired them.
///
/// The sleeps stay where the vector holds them (no box each: a box per
/// sleep made the counts vary by up to ~150 instructions per timer with
/// the allocator's consolidation of freed boxes, which has nothing to do
/// with either timer store).
///
/// With `cancel`, the sleeps are dropped after the first pass instead
/// (insert + cancel, the compare suite's `timers` rows).
async fn insert_then_fire<S: Future<Output = ()>>(mut sleeps: Vec<S>, last: Instant, cancel: bool) {
    let mut first = true;
    std::future::poll_fn(|cx| {
        let mut pending = 0;
        for s in &mut sleeps {
            // SAFETY: `sleeps` is neither grown nor moved from while its
            // elements live (it is dropped in place at the end), so each
            // sleep stays at this address from its first poll to its drop.
            let s = unsafe { Pin::new_unchecked(s) };
            pending += usize::from(s.poll(cx).is_pending());
        }
        if first {
            first = false;
            assert_eq!(pending, sleeps.len(), "a sleep completed before it was due");
            if cancel {
                return Poll::Ready(());
            }
            let t = Instant::now();
            std::thread::sleep(last.saturating_duration_since(t) + Duration::from_millis(1));
            SLEPT.with(|s| s.set(t.elapsed()));
            return Poll::Pending;
        }
        assert_eq!(pending, 0, "the driver fired every due sleep at once");
        Poll::Ready(())
    })
    .await
}

thread_local! {
    // How long the task blocked its thread (not the store's time).
    static SLEPT: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

fn main() {
    let Some(args) = ProbeArgs::parse(1, "timers_probe ebbtide|tokio N [cancel|tasks]") else {
        return;
    };
    let (rt, n) = (args.words[0].as_str(), args.n);
    let mode = args.option.as_deref().unwrap_or("");
    let cancel = mode == "cancel";
    let offs = offsets(n);
    let span = offs.iter().max().copied().unwrap_or_default();
    let clock = Stopwatch::start();
    match rt {
        "ebbtide" if mode == "tasks" => {
            let rt = ebbtide::runtime::Runtime::builder()
                .current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let now = ebbtide::time::Instant::now();
                let handles: Vec<_> = offs
                    .iter()
                    .map(|&d| ebbtide::spawn(ebbtide::time::sleep_until(now + d)))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            });
        }
        "tokio" if mode == "tasks" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async {
                let now = tokio::time::Instant::now();
                let handles: Vec<_> = offs
                    .iter()
                    .map(|&d| tokio::spawn(tokio::time::sleep_until(now + d)))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            });
        }
        "ebbtide" => {
            let rt = ebbtide::runtime::Runtime::builder()
                .current_thread()
                .build()
                .unwrap();
            rt.block_on(ebbtide::task::unconstrained(async {
                let now = ebbtide::time::Instant::now();
                insert_then_fire(
                    offs.iter()
                        .map(|&d| ebbtide::time::sleep_until(now + d))
                        .collect(),
                    (now + span).into_std(),
                    cancel,
                )
                .await
            }));
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(tokio::task::unconstrained(async {
                let now = tokio::time::Instant::now();
                insert_then_fire(
                    offs.iter()
                        .map(|&d| tokio::time::sleep_until(now + d))
                        .collect(),
                    (now + span).into_std(),
                    cancel,
                )
                .await
            }));
        }
        other => panic!("unknown runtime {other:?}: ebbtide or tokio"),
    }
    let mut times = clock.elapsed();
    times.wall = times.wall.saturating_sub(SLEPT.with(|s| s.get()));
    println!("{rt} n={n} {times}");
}
