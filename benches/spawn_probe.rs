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

mod common;

use common::probe::{ProbeArgs, Stopwatch};

fn main() {
    let Some(args) = ProbeArgs::parse(1, "spawn_probe ebbtide|smol|tokio N [nested]") else {
        return;
    };
    let (rt, n) = (args.words[0].as_str(), args.n);
    let nested = args.option.as_deref() == Some("nested");
    let clock = Stopwatch::start();
    match rt {
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
    println!("{rt} n={n} {}", clock.elapsed());
}
