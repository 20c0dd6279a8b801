//! The test clock: `time::pause` / `resume` / `advance` and
//! `Builder::start_paused`. A paused clock moves only when told to, or
//! jumps to the next timer when the runtime is idle (auto-advance), so
//! every duration asserted here is exact. None of these tests waits for a
//! timer in real time: each runs under the watchdog, which a real one-hour
//! (or 30-year) wait would trip. Scenarios after tokio's
//! `tests/time_pause.rs`.

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{panic_message, quiet_expected_panics, watchdog, workers, Rng};
use ebbtide::runtime::Runtime;
use ebbtide::time::{
    self, interval, interval_at, sleep, sleep_until, timeout, Instant, Interval,
    MissedTickBehavior, Sleep,
};

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

fn paused() -> Runtime {
    Runtime::builder()
        .current_thread()
        .start_paused(true)
        .build()
        .expect("build a paused current-thread runtime")
}

/// Records, in order, the ids of the probes woken.
#[derive(Default)]
struct WakeLog(Mutex<Vec<usize>>);

struct Probe(usize, Arc<WakeLog>);

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.1 .0.lock().unwrap().push(self.0);
    }
}

impl WakeLog {
    fn waker(self: &Arc<Self>, id: usize) -> Waker {
        Waker::from(Arc::new(Probe(id, self.clone())))
    }

    fn take(&self) -> Vec<usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Polls `sleep` once with probe `id`'s waker (registering its timer).
fn poll_with(sleep: &mut Pin<Box<Sleep>>, log: &Arc<WakeLog>, id: usize) -> Poll<()> {
    sleep
        .as_mut()
        .poll(&mut Context::from_waker(&log.waker(id)))
}

/// One `poll_tick` of `every`, with a waker that does nothing.
fn poll_tick(every: &mut Interval) -> Poll<Instant> {
    every.poll_tick(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_one_hour_timeout_fires_at_once_on_a_paused_clock() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let r = timeout(HOUR, std::future::pending::<()>()).await;
            assert!(r.is_err(), "the timeout fired");
            assert_eq!(Instant::now() - start, HOUR, "the clock moved exactly 1 h");
        })
    });
}

#[test]
fn a_paused_clock_stands_still_while_real_time_passes() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            std::thread::sleep(2 * MS);
            ebbtide::yield_now().await;
            assert_eq!(Instant::now(), start);
            assert_eq!(start.elapsed(), Duration::ZERO);
        })
    });
}

#[test]
fn advance_moves_the_clock_by_exactly_the_duration() {
    watchdog(|| {
        paused().block_on(async {
            for d in [
                Duration::from_micros(51_592),
                Duration::from_micros(1),
                MS,
                Duration::from_micros(3_141_592),
                Duration::from_nanos(1),
            ] {
                let before = Instant::now();
                time::advance(d).await;
                assert_eq!(before.elapsed(), d);
            }
        })
    });
}

#[test]
fn advance_fires_exactly_the_timers_due() {
    watchdog(|| {
        paused().block_on(async {
            let log = Arc::new(WakeLog::default());
            let t0 = Instant::now();
            // Registered in scrambled order; deadlines 1 s … 10 s.
            let mut sleeps: Vec<_> = (1..=10)
                .map(|k| Box::pin(sleep_until(t0 + Duration::from_secs(k))))
                .collect();
            for k in [7, 2, 9, 1, 5, 10, 3, 8, 4, 6] {
                assert!(poll_with(&mut sleeps[k - 1], &log, k).is_pending());
            }
            time::advance(Duration::from_secs(5)).await;
            assert_eq!(log.take(), [1, 2, 3, 4, 5], "due by 5 s, in deadline order");
            time::advance(Duration::from_secs(5) - Duration::from_nanos(1)).await;
            assert_eq!(log.take(), [6, 7, 8, 9], "10 s is still a nanosecond away");
            assert!(poll_with(&mut sleeps[9], &log, 10).is_pending());
            time::advance(Duration::from_nanos(1)).await;
            assert_eq!(log.take(), [10]);
            for (i, s) in sleeps.iter_mut().enumerate() {
                assert!(poll_with(s, &log, i + 1).is_ready());
            }
            assert_eq!(Instant::now() - t0, Duration::from_secs(10));
        })
    });
}

#[test]
fn a_sleep_made_before_an_advance_keeps_its_deadline() {
    // tokio's `sleep_no_poll` / `advance_after_poll`: whether or not the
    // sleep was polled before the clock moved, it is due at its deadline.
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let log = Arc::new(WakeLog::default());
            let mut polled = Box::pin(sleep_until(start + 300 * MS));
            let mut unpolled = Box::pin(sleep_until(start + 300 * MS));
            assert!(poll_with(&mut polled, &log, 0).is_pending());
            time::advance(100 * MS).await;
            assert!(poll_with(&mut polled, &log, 0).is_pending());
            assert!(poll_with(&mut unpolled, &log, 1).is_pending());
            time::advance(200 * MS).await;
            assert_eq!(log.take(), [0, 1]);
            assert!(polled.is_elapsed() && unpolled.is_elapsed());
        })
    });
}

/// Spawns sleeps of scrambled lengths; returns, in completion order, each
/// one's length and the clock's reading when it completed.
fn sleeps_under_auto_advance(seed: u64, n: u64) -> Vec<(Duration, Duration)> {
    paused().block_on(async move {
        let start = Instant::now();
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut rng = Rng::new(seed);
        let mut lengths: Vec<u64> = (1..=n).map(|k| k * 997).collect();
        for i in (1..lengths.len()).rev() {
            lengths.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let handles: Vec<_> = lengths
            .into_iter()
            .map(|us| {
                let done = done.clone();
                ebbtide::spawn(async move {
                    let d = Duration::from_micros(us);
                    sleep(d).await;
                    done.lock().unwrap().push((d, start.elapsed()));
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        let done = std::mem::take(&mut *done.lock().unwrap());
        done
    })
}

#[test]
fn sleep_ordering_under_auto_advance() {
    let order = watchdog(|| sleeps_under_auto_advance(7, 200));
    assert_eq!(order.len(), 200);
    for (length, woke_at) in &order {
        assert_eq!(
            woke_at, length,
            "each sleep completes exactly at its deadline"
        );
    }
    assert!(
        order.windows(2).all(|w| w[0].0 < w[1].0),
        "sleeps complete in deadline order"
    );
    let again = watchdog(|| sleeps_under_auto_advance(7, 200));
    assert_eq!(order, again, "a paused run is deterministic");
}

#[test]
fn interval_ticks_on_the_paused_clock() {
    // tokio's `interval`: ticks are due on the schedule `start + k·period`,
    // and missed ones burst, however the clock was moved.
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            time::advance(MS).await;
            let mut every = interval_at(start, 300 * MS);
            assert_eq!(poll_tick(&mut every), Poll::Ready(start));
            assert!(poll_tick(&mut every).is_pending());
            time::advance(100 * MS).await;
            assert!(poll_tick(&mut every).is_pending());
            time::advance(200 * MS).await;
            assert_eq!(poll_tick(&mut every), Poll::Ready(start + 300 * MS));
            assert!(poll_tick(&mut every).is_pending());
            time::advance(400 * MS).await;
            assert_eq!(poll_tick(&mut every), Poll::Ready(start + 600 * MS));
            assert!(poll_tick(&mut every).is_pending());
            time::advance(500 * MS).await;
            assert_eq!(poll_tick(&mut every), Poll::Ready(start + 900 * MS));
            assert_eq!(poll_tick(&mut every), Poll::Ready(start + 1200 * MS));
            assert!(poll_tick(&mut every).is_pending());
            // Awaited ticks auto-advance to each deadline in turn.
            for k in 5..10 {
                assert_eq!(every.tick().await, start + k * 300 * MS);
                assert_eq!(Instant::now(), start + k * 300 * MS);
            }
        })
    });
}

#[test]
fn missed_ticks_are_counted_on_the_paused_clock() {
    // Ticks missed while the clock jumped 35 ms: `Skip` resumes on the
    // original schedule after the present, `Delay` one period after it.
    watchdog(|| {
        paused().block_on(async {
            for (behavior, next) in [
                (MissedTickBehavior::Burst, 20),
                (MissedTickBehavior::Skip, 40),
                (MissedTickBehavior::Delay, 45),
            ] {
                let start = Instant::now();
                let mut every = interval(10 * MS);
                every.set_missed_tick_behavior(behavior);
                assert_eq!(every.tick().await, start);
                time::advance(35 * MS).await;
                assert_eq!(every.tick().await, start + 10 * MS, "{behavior:?}");
                assert_eq!(every.tick().await, start + next * MS, "{behavior:?}");
            }
        })
    });
}

#[test]
fn interval_reset_restarts_a_period_from_now() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let mut every = interval(10 * MS);
            assert_eq!(every.tick().await, start);
            time::advance(4 * MS).await;
            every.reset();
            assert_eq!(every.tick().await, start + 14 * MS);
            assert_eq!(every.tick().await, start + 24 * MS);
        })
    });
}

#[test]
fn interval_reset_immediately_ticks_now_then_a_period_later() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let mut every = interval(HOUR);
            assert_eq!(every.tick().await, start);
            time::advance(7 * MS).await;
            every.reset_immediately();
            assert_eq!(poll_tick(&mut every), Poll::Ready(start + 7 * MS));
            assert_eq!(every.tick().await, start + 7 * MS + HOUR);
            assert_eq!(Instant::now(), start + 7 * MS + HOUR);
        })
    });
}

#[test]
fn interval_reset_after_ticks_after_the_given_delay() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let mut every = interval(10 * MS);
            assert_eq!(every.tick().await, start);
            time::advance(2 * MS).await;
            every.reset_after(30 * MS);
            time::advance(29 * MS).await;
            assert!(poll_tick(&mut every).is_pending(), "not before 30 ms");
            assert_eq!(every.tick().await, start + 32 * MS);
            assert_eq!(every.tick().await, start + 42 * MS, "then every period");
            // Saturating: `Duration::MAX` means "not in this test's lifetime".
            every.reset_after(Duration::MAX);
            time::advance(HOUR).await;
            assert!(poll_tick(&mut every).is_pending());
        })
    });
}

#[test]
fn interval_reset_at_ticks_at_the_given_instant() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let mut every = interval(10 * MS);
            assert_eq!(every.tick().await, start);
            every.reset_at(start + 55 * MS);
            assert_eq!(every.tick().await, start + 55 * MS);
            assert_eq!(every.tick().await, start + 65 * MS);
            // A deadline already past ticks at once, with its own instant.
            every.reset_at(start + MS);
            assert_eq!(poll_tick(&mut every), Poll::Ready(start + MS));
            // A std instant is accepted too.
            every.reset_at((start + HOUR).into_std());
            assert_eq!(every.tick().await, start + HOUR);
        })
    });
}

#[test]
fn pausing_a_multi_thread_runtime_panics() {
    quiet_expected_panics();
    watchdog(|| {
        let rt = workers(1);
        let msg = rt.block_on(async {
            let r = std::panic::catch_unwind(time::pause);
            panic_message(&*r.expect_err("pause panics"))
        });
        assert!(
            msg.contains("time::pause needs a current-thread runtime"),
            "{msg}"
        );
        // Not paused: a sleep waits in real time, which the timeout shows.
        let r = rt.block_on(async { timeout(5 * MS, sleep(HOUR)).await });
        assert!(r.is_err());
        let err = Runtime::builder()
            .worker_threads(1)
            .start_paused(true)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("needs current_thread"), "{err}");
    });
}

#[test]
fn pause_outside_a_runtime_panics_with_the_usual_message() {
    quiet_expected_panics();
    let r = std::panic::catch_unwind(time::pause);
    let msg = panic_message(&*r.expect_err("pause panics"));
    assert!(
        msg.contains("ebbtide::time::pause called outside a runtime"),
        "{msg}"
    );
    let r = std::panic::catch_unwind(|| futures_lite::future::block_on(time::advance(MS)));
    let msg = panic_message(&*r.expect_err("advance panics"));
    assert!(msg.contains("called outside a runtime"), "{msg}");
}

#[test]
fn misuse_of_a_running_or_paused_clock_panics_clearly() {
    quiet_expected_panics();
    watchdog(|| {
        let rt = common::current_thread();
        rt.block_on(async {
            let r = AssertUnwindSafe(time::advance(MS));
            let msg = panic_message(&*futures_lite::FutureExt::catch_unwind(r).await.unwrap_err());
            assert!(msg.contains("the clock is not paused"), "{msg}");
            let msg = panic_message(&*std::panic::catch_unwind(time::resume).unwrap_err());
            assert!(msg.contains("the clock is not paused"), "{msg}");
            time::pause();
            let msg = panic_message(&*std::panic::catch_unwind(time::pause).unwrap_err());
            assert!(msg.contains("paused already"), "{msg}");
        });
    });
}

#[test]
fn pause_in_a_spawned_task_pauses_the_runtime() {
    watchdog(|| {
        common::current_thread().block_on(async {
            ebbtide::spawn(async { time::pause() }).await.unwrap();
            let start = Instant::now();
            sleep(HOUR).await;
            assert_eq!(start.elapsed(), HOUR);
        })
    });
}

#[test]
fn resume_returns_to_real_time() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            time::advance(HOUR).await;
            time::resume();
            let real = std::time::Instant::now();
            let resumed = Instant::now();
            assert!(resumed >= start + HOUR, "the skipped hour stays skipped");
            sleep(20 * MS).await;
            // No auto-advance: the sleep took its time in real time, and the
            // clock ran along with it.
            assert!(real.elapsed() >= 20 * MS, "{:?}", real.elapsed());
            assert!(resumed.elapsed() >= 20 * MS);
            // Pausing again stops it where it stands.
            time::pause();
            let here = Instant::now();
            sleep(HOUR).await;
            assert_eq!(here.elapsed(), HOUR);
        })
    });
}

#[test]
fn io_still_wakes_a_paused_runtime() {
    watchdog(|| {
        paused().block_on(async {
            let sock = ebbtide::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = sock.local_addr().unwrap();
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let start = Instant::now();
            // 1. A read pending and no timer: the runtime parks as usual, and
            //    a datagram sent later from another thread wakes it.
            let thread = std::thread::spawn({
                let sender = sender.try_clone().unwrap();
                move || {
                    std::thread::sleep(10 * MS);
                    sender.send_to(b"late", addr).unwrap();
                }
            });
            let mut buf = [0; 16];
            let (n, _) = sock.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"late");
            assert_eq!(Instant::now(), start, "the clock did not move");
            thread.join().unwrap();
            // 2. A read pending behind a one-hour timeout, and a datagram
            //    that arrives before the runtime idles: the read wins, the
            //    clock does not jump.
            let sock = Arc::new(sock);
            let reader = ebbtide::spawn({
                let sock = sock.clone();
                async move {
                    let mut buf = [0; 16];
                    let r = timeout(HOUR, sock.recv_from(&mut buf)).await;
                    r.map(|r| buf[..r.unwrap().0].to_vec())
                }
            });
            ebbtide::yield_now().await; // the reader registers its interest
            sender.send_to(b"first", addr).unwrap();
            let got = reader.await.unwrap();
            assert_eq!(
                got.as_deref(),
                Ok(&b"first"[..]),
                "the read beat the timeout"
            );
            assert_eq!(Instant::now(), start, "the clock did not move");
        })
    });
}

#[test]
fn a_blocking_job_holds_back_auto_advance() {
    // While a `spawn_blocking` job runs, the clock does not jump to the
    // next timer: the job's result wins over a one-hour timeout, as it
    // would in real time.
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let job = ebbtide::spawn_blocking(|| {
                std::thread::sleep(20 * MS);
                7
            });
            let r = timeout(HOUR, job).await;
            assert_eq!(r.expect("the job beat the timeout").unwrap(), 7);
            assert_eq!(Instant::now(), start, "the clock did not move");
            // File operations run on the same pool (or complete as events).
            let path = std::env::temp_dir().join(format!("ebbtide-pause-{}", std::process::id()));
            std::fs::write(&path, b"contents").unwrap();
            let r = timeout(HOUR, ebbtide::fs::read(&path)).await;
            std::fs::remove_file(&path).unwrap();
            assert_eq!(r.expect("the read beat the timeout").unwrap(), b"contents");
            // Once the pool is idle, the clock jumps again.
            sleep(HOUR).await;
            assert_eq!(start.elapsed(), HOUR);
        })
    });
}

#[test]
fn a_wake_from_another_thread_reaches_a_paused_runtime() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let (tx, rx) = std::sync::mpsc::channel::<Waker>();
            let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let thread = std::thread::spawn({
                let woken = woken.clone();
                move || {
                    let waker = rx.recv().unwrap();
                    std::thread::sleep(5 * MS);
                    woken.store(true, std::sync::atomic::Ordering::SeqCst);
                    waker.wake();
                }
            });
            let mut tx = Some(tx);
            std::future::poll_fn(|cx| {
                if woken.load(std::sync::atomic::Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                if let Some(tx) = tx.take() {
                    tx.send(cx.waker().clone()).unwrap();
                }
                Poll::Pending
            })
            .await;
            thread.join().unwrap();
            assert_eq!(Instant::now(), start, "no timer, so the clock did not move");
        })
    });
}

#[test]
fn advance_with_duration_max_saturates() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            let hour = ebbtide::spawn(sleep(HOUR));
            let never = ebbtide::spawn(sleep(Duration::MAX));
            ebbtide::yield_now().await; // both register their timers
            time::advance(Duration::MAX).await;
            hour.await.unwrap();
            let moved = start.elapsed();
            assert!(moved > Duration::from_secs(86_400 * 365 * 29), "{moved:?}");
            time::advance(Duration::MAX).await;
            assert!(start.elapsed() > moved, "a second one moves it further");
            // Timers keep working on the far-out clock.
            let here = Instant::now();
            sleep(HOUR).await;
            assert_eq!(here.elapsed(), HOUR);
            assert!(timeout(Duration::MAX, async { 7 }).await.is_ok());
            drop(never);
        })
    });
}

#[test]
fn start_paused_through_the_builder() {
    watchdog(|| {
        let rt = paused();
        let (before, after) = rt.block_on(async {
            let before = Instant::now();
            std::thread::sleep(2 * MS);
            (before, Instant::now())
        });
        assert_eq!(before, after, "the clock starts paused");
        // `start_paused(false)` is the default: real time.
        let rt = Runtime::builder()
            .current_thread()
            .start_paused(false)
            .build()
            .unwrap();
        rt.block_on(async {
            let before = Instant::now();
            std::thread::sleep(2 * MS);
            assert!(before.elapsed() >= 2 * MS);
        });
    });
}

#[test]
fn a_paused_runtime_drains_on_its_own_clock() {
    // Shutdown's drain deadline is real time from now carried over to the
    // paused clock, even one advanced a day ahead of real time: a task due
    // in ten minutes completes within an hour's drain, one due in a day is
    // cancelled, and neither is waited for in real time (the watchdog).
    watchdog(|| {
        let rt = paused();
        rt.block_on(async {
            time::advance(Duration::from_secs(86_400)).await;
            ebbtide::spawn(sleep(10 * 60 * 1000 * MS));
            ebbtide::spawn(sleep(Duration::from_secs(86_400)));
            ebbtide::yield_now().await;
        });
        let report = rt.shutdown(HOUR);
        assert_eq!((report.completed, report.cancelled), (1, 1), "{report}");
    });
}
