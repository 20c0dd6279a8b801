//! Callgrind probe of the compare suite's scheduler rows: ONE workload of
//! `benches/compare.rs` on ONE runtime (ebbtide, smol or tokio), set up as
//! the suite sets it up (2 workers; smol is one `async_executor::Executor`
//! run by 2 threads plus the `block_on` thread), with `N` its size knob.
//! Instructions per operation are the difference of runs of `N` and `2N`
//! divided by the difference of their operation counts (which cancels the
//! runtime's start-up and shutdown):
//!
//! ```text
//! cargo bench --no-run --bench sched_probe
//! valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file=cg.out \
//!     target/release/deps/sched_probe-* ebbtide spawn_many 20000
//! python3 scripts/cg-split.py cg.out
//! ```
//!
//! Usage: `sched_probe RUNTIME WORKLOAD N [WORKERS]`. The probe prints the
//! number of operations it ran (`ops=`), so per-op figures divide by the
//! difference of the two runs' `ops`:
//!
//! - `spawn_many`, `spawn_many_local`, `spawn_many_remote_idle`,
//!   `spawn_many_remote_busy1`, `spawn_one`, `chained_spawn`: one op is
//!   one task spawned, run and joined (or detached, for the chain).
//! - `ping_pong`: one op is one pair (2 tasks, 2 oneshot messages).
//! - `spawn_recursively`: 100 chains, `N / 100` deep; one op is one level
//!   (a spawn awaited by its parent).
//! - `yield_now`: 100 tasks yielding `N / 100` times each; one op is one
//!   yield.
//! - `channels`: a ring of 100 tasks, the token sent round it `N / 100`
//!   times; one op is one message hop (send + receive).
//!
//! The workload bodies are the compare suite's own
//! (`benches/common/sched.rs`), run for one iteration (`spawn_one`: `N`
//! iterations). Under callgrind the threads take turns (`--fair-sched`),
//! so which thread runs what differs from native runs; the instruction
//! counts of the scheduling steps themselves do not. Wake-ups of parked
//! threads are counted as syscalls natively (`perf stat`), not here.
//!
//! For ebbtide the probe also prints the polls its workers made
//! (`worker_polls=`, from `Runtime::metrics`; the rest ran on the
//! `block_on` thread) and their steals, and for `spawn_many_remote_busy1`
//! the passes of the busy loops (`busy_passes=`, one poll each).

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::probe::{ProbeArgs, Stopwatch};
use common::sched::{self, EbbRt, Rt, TokioRt, BUSY_PASSES};
use common::smol_rt::SmolRt;

/// Tasks of `spawn_recursively`, `yield_now` and `channels`.
const TASKS: usize = 100;

/// Runs `workload` of size `n` once on `rt` (the time the body returns
/// is the compare suite's; the probe's is taken by `main`); returns its
/// operation count.
fn run<R: Rt>(rt: &R, workload: &str, n: usize) -> usize {
    let steps = n / TASKS;
    let (_, ops) = match workload {
        "spawn_many_local" => (sched::spawn_many_local(rt, n, 1), n),
        "spawn_many_remote_idle" => (sched::spawn_many_remote_idle(rt, n, 1), n),
        "spawn_many_remote_busy1" => (sched::spawn_many_remote_busy1(rt, n, 1), n),
        "ping_pong" => (sched::ping_pong(rt, n, 1), n),
        "chained_spawn" => (sched::chained_spawn(rt, n, 1), n),
        "spawn_one" => (sched::spawn_one(rt, n as u64), n),
        "spawn_many" => (sched::spawn_many(rt, n, 1), n),
        "spawn_recursively" => (sched::spawn_recursively(rt, TASKS, steps, 1), TASKS * steps),
        "yield_now" => (sched::yield_now(rt, TASKS, steps, 1), TASKS * steps),
        "channels" => (sched::channels(rt, TASKS, steps, 1), steps * (TASKS + 1)),
        other => panic!("unknown workload {other:?}"),
    };
    ops
}

fn main() {
    let Some(args) = ProbeArgs::parse(2, "sched_probe ebbtide|smol|tokio WORKLOAD N [WORKERS]")
    else {
        return;
    };
    let (rt_name, workload, n) = (args.words[0].as_str(), args.words[1].as_str(), args.n);
    let workers = args
        .option
        .map_or(2, |w| w.parse::<usize>().expect("WORKERS: a number"));
    let clock = Stopwatch::start();
    let mut extra = String::new();
    let mut times = None;
    let ops = match rt_name {
        "ebbtide" => {
            let rt = EbbRt::new(workers);
            let ops = run(&rt, workload, n);
            times = Some(clock.elapsed());
            // Workers flush their poll counts when they park: let them.
            std::thread::sleep(Duration::from_millis(50));
            let m = rt.rt.metrics();
            extra = format!(" worker_polls={} steals={}", m.polls, m.steals);
            ops
        }
        "tokio" => run(&TokioRt::new(workers), workload, n),
        "smol" => run(&SmolRt::new(workers), workload, n),
        other => panic!("unknown runtime {other:?}: ebbtide, smol or tokio"),
    };
    let times = times.unwrap_or_else(|| clock.elapsed());
    println!(
        "{rt_name} {workload} n={n} ops={ops} busy_passes={}{extra} {times}",
        BUSY_PASSES.load(Relaxed),
    );
}
