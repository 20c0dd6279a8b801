//! `#[ebbtide::main]` and `#[ebbtide::test]`: the runtime each builds, the
//! body's output returned, and a test that leaks work failing.
//!
//! The compile errors of bad arguments are checked by `tests/macros_ui.rs`.
#![cfg(feature = "macros")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ebbtide::__private::{run_test, Options};
use ebbtide::runtime::Handle;

use common::{drop_flag, panic_message};

/// Shadows std's `Result` in this file: the expansion must not name it.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Aborts the process if still armed after `common::WATCHDOG` (a hang in
/// the body or in the runtime's shutdown after it); `#[ebbtide::test]`
/// bodies run on the test's own thread, so `common::watchdog` cannot wrap
/// them.
struct Watchdog(Arc<(Mutex<bool>, Condvar)>);

fn watchdog() -> Watchdog {
    let armed = Arc::new((Mutex::new(true), Condvar::new()));
    let watched = armed.clone();
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    std::thread::spawn(move || {
        let (lock, cvar) = &*watched;
        let guard = lock.lock().unwrap();
        let (guard, _) = cvar
            .wait_timeout_while(guard, common::WATCHDOG, |armed| *armed)
            .unwrap();
        if *guard {
            eprintln!(
                "watchdog: {name} did not finish within {:?}",
                common::WATCHDOG
            );
            std::process::abort();
        }
    });
    Watchdog(armed)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.0 .0.lock().unwrap() = false;
        self.0 .1.notify_all();
    }
}

#[ebbtide::test]
async fn a_test_runs_its_tasks_on_a_current_thread_runtime_of_its_own() {
    let _w = watchdog();
    assert_eq!(Handle::current().metrics().workers, 1);
    let here = std::thread::current().id();
    let tasks: Vec<_> = (0..10u64)
        .map(|i| ebbtide::spawn(async move { (i * i, std::thread::current().id()) }))
        .collect();
    let mut sum = 0;
    for t in tasks {
        let (square, thread) = t.await.unwrap();
        assert_eq!(
            thread, here,
            "a current-thread runtime runs tasks on the test thread"
        );
        sum += square;
    }
    assert_eq!(sum, 285);
    assert_eq!(Handle::current().metrics().spawned_tasks, 10);
}

/// Three: not a likely core count (the default).
#[ebbtide::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_multi_thread_test_gets_the_worker_threads_it_asks_for() {
    let _w = watchdog();
    assert_eq!(Handle::current().metrics().workers, 3);
    assert_eq!(ebbtide::spawn(async { 3 }).await.unwrap(), 3);
}

#[ebbtide::test]
async fn a_test_returns_the_bodys_result_and_question_mark_works() -> Result<()> {
    let _w = watchdog();
    let n: u32 = ebbtide::spawn_blocking(|| "7".parse::<u32>()).await??;
    assert_eq!(n, 7);
    Ok(())
}

#[ebbtide::test]
async fn local_tasks_run_in_a_test() {
    let _w = watchdog();
    let shared = std::rc::Rc::new(5); // !Send
    let h = ebbtide::spawn_local({
        let shared = shared.clone();
        async move { *shared + 1 }
    });
    assert_eq!(h.await.unwrap(), 6);
}

#[ebbtide::test(start_paused = true)]
async fn a_test_with_start_paused_runs_on_a_paused_clock() {
    assert_eq!(Handle::current().metrics().workers, 1);
    // The clock is paused from the start: a minute-long timeout fires when
    // every task is idle, with the clock exactly one minute on (on a real
    // clock it would take a minute and end a little later).
    let start = ebbtide::time::Instant::now();
    let timed = ebbtide::time::timeout(
        std::time::Duration::from_secs(60),
        std::future::pending::<()>(),
    )
    .await;
    assert!(timed.is_err());
    assert_eq!(start.elapsed(), std::time::Duration::from_secs(60));
}

/// The whole prelude's `Result` and `Option` shadowed where the attribute
/// expands.
mod shadowed_prelude {
    #[allow(dead_code)]
    struct Option;
    #[allow(dead_code)]
    type Result = ();

    #[ebbtide::test(worker_threads = 1, flavor = "multi_thread", drain_timeout = "1s")]
    async fn the_expansion_needs_nothing_from_the_users_scope() {}
}

#[ebbtide::main]
async fn main_on_the_default_flavor() -> std::result::Result<usize, String> {
    let workers = Handle::current().metrics().workers;
    ebbtide::spawn(async move { workers })
        .await
        .map_err(|e| e.to_string())
}

#[test]
fn main_runs_a_multi_thread_runtime_and_returns_the_bodys_output() {
    let _w = watchdog();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(main_on_the_default_flavor(), Ok(cores));
}

#[ebbtide::main(flavor = "current_thread")]
async fn main_that_fails() -> Result<()> {
    let missing = ebbtide::fs::read("/this/path/does/not/exist/ebbtide").await;
    missing?;
    unreachable!("the read fails");
}

#[test]
fn main_returns_the_bodys_error() {
    let _w = watchdog();
    let err = main_that_fails().unwrap_err();
    let io = err.downcast_ref::<std::io::Error>().expect("the io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

static DRAINED: AtomicBool = AtomicBool::new(false);
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Its task outlives the default drain (1 s), not this one.
#[ebbtide::main(drain_timeout = "30s")]
async fn main_leaving_a_task_longer_than_the_default_drain() {
    ebbtide::spawn(async {
        ebbtide::time::sleep(Duration::from_millis(1200)).await;
        DRAINED.store(true, Ordering::SeqCst);
    });
}

/// Its task would finish within the default drain (1 s), not this one.
#[ebbtide::main(drain_timeout = "0ms")]
async fn main_leaving_a_task_shorter_than_the_default_drain() {
    ebbtide::spawn(async {
        ebbtide::time::sleep(Duration::from_millis(100)).await;
        CANCELLED.store(true, Ordering::SeqCst); // never: cancelled first
    });
}

#[test]
fn main_drains_its_tasks_for_the_drain_timeout_it_is_given() {
    let _w = watchdog();
    main_leaving_a_task_longer_than_the_default_drain();
    assert!(
        DRAINED.load(Ordering::SeqCst),
        "drained for up to 30 s: the task finished"
    );
    main_leaving_a_task_shorter_than_the_default_drain();
    assert!(
        !CANCELLED.load(Ordering::SeqCst),
        "no drain: the task was cancelled"
    );
}

/// Holds a task in `poll` on a worker thread for a bounded time, so the
/// shutdown after the test body has to leave it behind.
async fn stuck_task(started: Arc<AtomicBool>) {
    // The thread in `block_on` also runs queued tasks while a worker is
    // idle: move on until a worker polls this one.
    let on_worker = || {
        std::thread::current()
            .name()
            .is_some_and(|n| n.contains("-worker-"))
    };
    while !on_worker() {
        ebbtide::yield_now().await;
    }
    started.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(10));
}

/// Yields until `flag` is set (no timer: with its only worker stuck, a
/// multi-thread runtime's timers wait for that worker).
async fn until(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        ebbtide::yield_now().await;
    }
}

#[ebbtide::test(flavor = "multi_thread", worker_threads = 1, drain_timeout = "0ms")]
#[should_panic(expected = "could not stop all its work")]
async fn a_test_whose_task_is_stuck_at_shutdown_fails() {
    common::quiet_expected_panics();
    let _w = watchdog();
    let started = Arc::new(AtomicBool::new(false));
    ebbtide::spawn(stuck_task(started.clone()));
    until(&started).await;
}

#[ebbtide::test(drain_timeout = "0ms")]
#[should_panic(expected = "could not stop all its work")]
async fn a_test_whose_blocking_job_outlives_shutdown_fails() {
    let _w = watchdog();
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    ebbtide::spawn_blocking(move || {
        flag.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(3));
    });
    until(&started).await;
}

fn current_thread(drain: Duration) -> Options {
    Options {
        multi_thread: false,
        worker_threads: None,
        start_paused: false,
        drain_timeout: Some(drain),
    }
}

#[test]
fn run_test_panics_with_the_shutdown_report_when_a_task_leaks() {
    let _w = watchdog();
    let options = Options {
        multi_thread: true,
        worker_threads: Some(1),
        ..current_thread(Duration::ZERO)
    };
    let started = Arc::new(AtomicBool::new(false));
    let body = {
        let started = started.clone();
        async move {
            ebbtide::spawn(stuck_task(started.clone()));
            until(&started).await;
            "the body's output"
        }
    };
    let run = std::panic::AssertUnwindSafe(|| run_test(options, body));
    let payload = std::panic::catch_unwind(run).unwrap_err();
    let msg = panic_message(&*payload);
    assert!(msg.contains("could not stop all its work"), "{msg}");
    // The report's Display: the stuck task, and its worker left running.
    assert!(msg.contains("0 cancelled, 1 leaked"), "{msg}");
    assert!(msg.contains("1 workers left running"), "{msg}");
}

#[test]
fn run_test_returns_the_output_and_cancels_tasks_left_pending() {
    let _w = watchdog();
    let (dropped, guard) = drop_flag();
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let output = run_test(current_thread(Duration::from_millis(1)), async move {
        ebbtide::spawn(async move {
            let _guard = guard;
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await
        });
        ebbtide::yield_now().await; // lets the task start
        42
    });
    assert_eq!(output, 42);
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the pending task was cancelled, not leaked"
    );
}
