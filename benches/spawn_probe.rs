//! Callgrind probe of the spawn path: on one thread, a `block_on` future
//! spawns `N` empty tasks and awaits each handle, on ebbtide's
//! current-thread runtime, smol's `Executor` run by the same thread, or
//! tokio's current-thread runtime. Instructions per task are the
//! difference of runs of `N` and `2N` tasks divided by `N` (which cancels
//! the runtime's fixed costs); the share of the dependencies both ebbtide
//! and smol use (async-task, concurrent-queue) is read from the profile:
//!
//! ```text
//! cargo bench --no-run --bench spawn_probe
//! valgrind --tool=callgrind target/release/deps/spawn_probe-* ebbtide 100000
//! callgrind_annotate callgrind.out.<pid> | grep -E 'async_task|concurrent_queue'
//! ```
//!
//! With a third argument `nested`, a spawned task does the spawning and
//! awaiting instead of the `block_on` future (tasks awaiting tasks).
//!
//! One thread, so the counts are those of the spawn, schedule, run and
//! join steps themselves, not of workers waking or stealing (the compare
//! suite's rows measure those, in wall time).

use std::time::{Duration, Instant};

/// CPU time of this process (zero where not measured).
#[cfg(unix)]
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant the
    // kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (rt, n, nested) = match &args[1..] {
        [rt, n, rest @ ..] => (
            rt.clone(),
            n.parse::<usize>().expect("N: a number"),
            rest.first().is_some_and(|m| m == "nested"),
        ),
        _ => {
            eprintln!("usage: spawn_probe ebbtide|smol|tokio N [nested]");
            return;
        }
    };
    let (wall, cpu) = (Instant::now(), cpu_time());
    match rt.as_str() {
        "ebbtide" => {
            let rt = ebbtide::runtime::Runtime::builder()
                .current_thread()
                .build()
                .unwrap();
            let work = async move {
                let handles: Vec<_> = (0..n).map(|_| ebbtide::spawn(async {})).collect();
                for h in handles {
                    h.await.unwrap();
                }
            };
            rt.block_on(async {
                if nested {
                    ebbtide::spawn(work).await.unwrap();
                } else {
                    work.await;
                }
            });
        }
        "smol" => {
            // Leaked: a task that spawns on it needs a `'static` executor.
            let ex: &'static async_executor::Executor =
                Box::leak(Box::new(async_executor::Executor::new()));
            let work = async move {
                let handles: Vec<_> = (0..n).map(|_| ex.spawn(async {})).collect();
                for h in handles {
                    h.await;
                }
            };
            futures_lite::future::block_on(ex.run(async {
                if nested {
                    ex.spawn(work).await;
                } else {
                    work.await;
                }
            }));
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let work = async move {
                let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
                for h in handles {
                    h.await.unwrap();
                }
            };
            rt.block_on(async {
                if nested {
                    tokio::spawn(work).await.unwrap();
                } else {
                    work.await;
                }
            });
        }
        other => panic!("unknown runtime {other:?}: ebbtide, smol or tokio"),
    }
    println!(
        "{rt} n={n} wall={:.2}ms cpu={:.2}ms",
        wall.elapsed().as_secs_f64() * 1e3,
        (cpu_time() - cpu).as_secs_f64() * 1e3
    );
}
