//! Timers: a sleep never completes before its deadline, `timeout` drops
//! what it gives up on, intervals keep their schedule (or shift it, as the
//! missed-tick behaviour says), and a million timers cost nothing once
//! dropped. Timing is only ever asserted as an ordering ("not before").

mod common;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{current_thread, drop_flag, watchdog, workers, Flavour};
use ebbtide::runtime::{Handle, Runtime};
use ebbtide::time::{
    interval, interval_at, sleep, sleep_until, timeout, timeout_at, Elapsed, Instant,
    MissedTickBehavior,
};
use futures_lite::future::poll_once;

const MS: Duration = Duration::from_millis(1);

fn many_random_sleeps_never_complete_early(rt: &Runtime, seed: u64) {
    const SLEEPS: usize = 10_000;
    let mut rng = common::Rng::new(seed);
    let durations: Vec<Duration> = (0..SLEEPS)
        .map(|_| Duration::from_micros(rng.below(20_001)))
        .collect();
    let early = rt.block_on(async move {
        let hs: Vec<_> = durations
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                ebbtide::spawn(async move {
                    let start = Instant::now();
                    if i % 2 == 0 {
                        sleep(d).await;
                    } else {
                        let deadline = start + d;
                        sleep_until(deadline).await;
                        assert!(Instant::now() >= deadline);
                    }
                    let elapsed = start.elapsed();
                    (elapsed < d).then_some((i, d, elapsed))
                })
            })
            .collect();
        let mut early = Vec::new();
        for h in hs {
            early.extend(h.await.unwrap());
        }
        early
    });
    assert!(
        early.is_empty(),
        "sleeps completed early (index, requested, elapsed): {early:?}"
    );
    assert_eq!(rt.metrics().timers, 0, "every fired timer left the store");
}

#[test]
fn ten_thousand_random_sleeps_never_complete_early_on_2_workers() {
    watchdog(|| many_random_sleeps_never_complete_early(&workers(2), 1));
}

#[test]
fn ten_thousand_random_sleeps_never_complete_early_on_current_thread() {
    watchdog(|| many_random_sleeps_never_complete_early(&current_thread(), 2));
}

#[test]
fn sleep_on_a_current_thread_runtime_completes_in_block_on_and_in_tasks() {
    watchdog(|| {
        let rt = current_thread();
        let start = Instant::now();
        rt.block_on(sleep(5 * MS));
        assert!(start.elapsed() >= 5 * MS);
        let in_task = rt.block_on(rt.spawn(async {
            let start = Instant::now();
            sleep(3 * MS).await;
            start.elapsed()
        }));
        assert!(in_task.unwrap() >= 3 * MS);
        // Spawned outside block_on: its timer starts when it is first polled.
        let h = rt.spawn(async {
            let start = Instant::now();
            sleep(2 * MS).await;
            start.elapsed()
        });
        assert!(rt.block_on(h).unwrap() >= 2 * MS);
    });
}

#[test]
fn timers_in_the_block_on_future_of_a_multi_thread_runtime_fire() {
    watchdog(|| {
        for workers in [1, 2] {
            let rt = common::workers(workers);
            rt.block_on(async {
                // Sequential sleeps: each waits for the previous deadline.
                let mut last = Instant::now();
                for i in 0..20u32 {
                    let deadline = last + (i % 3) * MS;
                    sleep_until(deadline).await;
                    let now = Instant::now();
                    assert!(now >= deadline);
                    last = now;
                }
                // Concurrent sleeps in one future.
                let start = Instant::now();
                futures_lite::future::zip(sleep(4 * MS), sleep(2 * MS)).await;
                assert!(start.elapsed() >= 4 * MS);
            });
            assert_eq!(rt.metrics().timers, 0);
        }
    });
}

#[test]
fn timers_fire_from_several_concurrent_block_on_callers() {
    watchdog(|| {
        let rt = Arc::new(workers(2));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        for i in 0..10u32 {
                            let d = ((t + i) % 4) * MS;
                            let start = Instant::now();
                            sleep(d).await;
                            assert!(start.elapsed() >= d);
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn timeout_returns_elapsed_and_drops_the_inner_future() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let (dropped, guard) = drop_flag();
                let start = Instant::now();
                let r = timeout(5 * MS, async move {
                    let _guard = guard;
                    std::future::pending::<u32>().await
                })
                .await;
                assert_eq!(r, Err::<u32, Elapsed>(timeout_error().await), "{name}");
                assert!(start.elapsed() >= 5 * MS, "{name}: timed out early");
                assert!(
                    dropped.load(Ordering::SeqCst),
                    "{name}: inner future dropped"
                );
                // Same with an absolute deadline, around a long sleep.
                let deadline = Instant::now() + 3 * MS;
                let r = timeout_at(deadline, sleep(Duration::from_secs(3600))).await;
                assert!(r.is_err(), "{name}");
                assert!(Instant::now() >= deadline, "{name}: timed out early");
            });
            assert_eq!(rt.metrics().timers, 0, "{name}: both timers removed");
        }
    });
}

/// An `Elapsed` value, to compare against.
async fn timeout_error() -> Elapsed {
    timeout(Duration::ZERO, std::future::pending::<()>())
        .await
        .unwrap_err()
}

#[test]
fn elapsed_says_what_happened_and_converts_to_timed_out() {
    watchdog(|| {
        let e = common::current_thread().block_on(timeout_error());
        assert_eq!(e.to_string(), "deadline has elapsed");
        assert_eq!(format!("{e:?}"), "Elapsed");
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    });
}

#[test]
fn timeout_returns_the_output_when_the_future_finishes_first() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                assert_eq!(timeout(Duration::from_secs(60), async { 7 }).await, Ok(7));
                let r = timeout(Duration::from_secs(60), async {
                    sleep(2 * MS).await;
                    8
                })
                .await;
                assert_eq!(r, Ok(8), "{name}");
                let task = ebbtide::spawn(async { 9 });
                let r = timeout_at(Instant::now() + Duration::from_secs(60), task).await;
                assert_eq!(r.unwrap().unwrap(), 9, "{name}");
                assert_eq!(
                    Handle::current().metrics().timers,
                    0,
                    "{name}: the unfired timeouts were removed"
                );
            });
        }
    });
}

#[test]
fn a_sleep_of_duration_max_never_fires_and_does_not_overflow() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let r = timeout(2 * MS, sleep(Duration::MAX)).await;
            assert!(r.is_err());
        });
        assert_eq!(rt.metrics().timers, 0);
    });
}

#[test]
fn a_sleep_polled_outside_a_runtime_panics_with_a_clear_message() {
    common::quiet_expected_panics();
    watchdog(|| {
        let s = sleep(MS); // creating it is fine anywhere
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            futures_lite::future::block_on(poll_once(s))
        }));
        let msg = common::panic_message(&*caught.unwrap_err());
        assert!(msg.contains("polled outside a runtime"), "{msg}");
    });
}

#[test]
fn sleep_reset_moves_the_deadline_both_ways() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let mut s = sleep(Duration::from_secs(3600));
            assert!(poll_once(&mut s).await.is_none());
            let earlier = Instant::now() + 2 * MS;
            s.reset(earlier);
            assert_eq!(s.deadline(), earlier);
            (&mut s).await;
            assert!(Instant::now() >= earlier && s.is_elapsed());
            let later = Instant::now() + 3 * MS;
            s.reset(later);
            (&mut s).await;
            assert!(Instant::now() >= later);
        });
        assert_eq!(rt.metrics().timers, 0);
    });
}

#[test]
fn interval_ticks_n_times_at_start_plus_k_periods() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let period = 2 * MS;
                let before = Instant::now();
                let mut every = interval(period);
                assert_eq!(every.period(), period);
                assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Burst);
                let mut ticks = Vec::new();
                for _ in 0..10 {
                    let t = every.tick().await;
                    assert!(
                        Instant::now() >= t,
                        "{name}: a tick fired before its instant"
                    );
                    ticks.push(t);
                }
                let start = ticks[0];
                assert!(start >= before, "{name}: the first tick is now");
                for (k, t) in ticks.iter().enumerate() {
                    assert_eq!(*t, start + period * k as u32, "{name}: tick {k}");
                }
            });
        }
    });
}

#[test]
fn interval_is_a_stream_of_increasing_instants() {
    watchdog(|| {
        use futures_lite::StreamExt;
        let rt = workers(2);
        let ticks: Vec<Instant> =
            rt.block_on(async { interval(MS).take(20).collect::<Vec<_>>().await });
        assert_eq!(ticks.len(), 20);
        assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
    });
}

/// An interval whose schedule started `behind` ago: its first ticks were
/// missed before it was ever polled.
fn late_interval(
    behind: Duration,
    period: Duration,
    b: MissedTickBehavior,
) -> (Instant, ebbtide::time::Interval) {
    let start = Instant::now() - behind;
    let mut every = interval_at(start, period);
    every.set_missed_tick_behavior(b);
    assert_eq!(every.missed_tick_behavior(), b);
    (start, every)
}

#[test]
fn burst_fires_missed_ticks_back_to_back_on_the_original_schedule() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let period = 10 * MS;
            let (start, mut every) = late_interval(35 * MS, period, MissedTickBehavior::Burst);
            for k in 0..6u32 {
                let t = every.tick().await;
                assert_eq!(t, start + period * k, "tick {k}");
                assert!(Instant::now() >= t);
            }
        });
    });
}

#[test]
fn delay_shifts_the_schedule_by_the_delay() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let period = 10 * MS;
            let (start, mut every) = late_interval(35 * MS, period, MissedTickBehavior::Delay);
            let before_first = Instant::now();
            assert_eq!(
                every.tick().await,
                start,
                "the overdue tick fires once, now"
            );
            let second = every.tick().await;
            // Not start + period (long past): one period after the late tick.
            assert!(second >= before_first + period, "{:?}", second - start);
            assert!(Instant::now() >= second);
            let mut prev = second;
            for _ in 0..4 {
                let t = every.tick().await;
                assert!(t >= prev + period, "Delay never bursts");
                assert!(Instant::now() >= t);
                prev = t;
            }
        });
    });
}

#[test]
fn skip_fires_once_then_resumes_at_the_next_scheduled_instant() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let period = 10 * MS;
            let (start, mut every) = late_interval(35 * MS, period, MissedTickBehavior::Skip);
            let before_first = Instant::now();
            assert_eq!(
                every.tick().await,
                start,
                "the overdue tick fires once, now"
            );
            let after_first = Instant::now();
            let second = every.tick().await;
            // On the original grid (start + m·period) ...
            let offset = second - start;
            assert_eq!(
                offset.as_nanos() % period.as_nanos(),
                0,
                "{offset:?} is off the grid"
            );
            let m = offset.as_nanos() / period.as_nanos();
            assert!(m >= 4, "ticks 1..=3 were skipped, got m = {m}");
            // ... the first grid point after the late tick, not a later one.
            assert!(second > before_first, "{offset:?}");
            assert!(
                second - period <= after_first,
                "{offset:?} skipped a future tick"
            );
            // Back on schedule afterwards.
            let third = every.tick().await;
            assert_eq!((third - start).as_nanos() % period.as_nanos(), 0);
            assert!(third > second);
        });
    });
}

#[test]
fn interval_reset_restarts_the_schedule_one_period_from_now() {
    watchdog(|| {
        let rt = workers(1);
        rt.block_on(async {
            let period = 5 * MS;
            let mut every = interval(period);
            every.tick().await;
            let before = Instant::now();
            every.reset();
            let t = every.tick().await;
            assert!(t >= before + period);
            assert!(Instant::now() >= t);
        });
    });
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn interval_of_zero_panics() {
    let _ = interval(Duration::ZERO);
}

#[test]
fn a_million_timers_registered_then_dropped_leave_no_timer_behind() {
    // All registered at once (about 3 s in a debug build).
    let count = 1_000_000;
    watchdog(move || {
        let rt = workers(2);
        rt.block_on(async move {
            let handle = Handle::current();
            let mut sleeps = Vec::with_capacity(count);
            for i in 0..count {
                let mut s =
                    sleep(Duration::from_secs(3600) + Duration::from_nanos(i as u64 % 1000));
                // One poll registers it with the runtime's timer store.
                assert!(poll_once(&mut s).await.is_none());
                sleeps.push(s);
            }
            assert_eq!(handle.metrics().timers, count);
            // Cancel them in an order unlike their insertion.
            let mut rng = common::Rng::new(3);
            while !sleeps.is_empty() {
                let i = rng.below(sleeps.len() as u64) as usize;
                drop(sleeps.swap_remove(i));
                if sleeps.len() % 4096 == 0 {
                    ebbtide::yield_now().await;
                }
            }
            assert_eq!(handle.metrics().timers, 0);
        });
        assert_eq!(rt.metrics().timers, 0);
        // And the runtime still times things.
        let start = Instant::now();
        rt.block_on(sleep(2 * MS));
        assert!(start.elapsed() >= 2 * MS);
    });
}

#[test]
fn timers_dropped_inside_tasks_of_every_flavour_are_removed() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let hs: Vec<_> = (0..1_000)
                    .map(|i| {
                        ebbtide::spawn(async move {
                            let mut s = sleep(Duration::from_secs(60 + i));
                            assert!(poll_once(&mut s).await.is_none());
                            ebbtide::yield_now().await;
                            drop(s);
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            });
            assert_eq!(rt.metrics().timers, 0, "{name}");
        }
    });
}

/// Runs a task that polls an hour-long `Sleep` (shared behind a mutex) once
/// and then waits only on it, while another thread, once the task has
/// polled, moves its deadline to what `new_deadline` returns. Returns when
/// the task completes, with the deadline that was set.
fn reset_from_another_thread(rt: &Runtime, new_deadline: fn() -> Instant) -> Instant {
    let shared = Arc::new(std::sync::Mutex::new(Box::pin(ebbtide::time::sleep(
        Duration::from_secs(3600),
    ))));
    let (polled_tx, polled_rx) = std::sync::mpsc::channel();
    let s = shared.clone();
    let sleeper = rt.spawn(std::future::poll_fn(move |cx| {
        let polled = s.lock().unwrap().as_mut().poll(cx);
        let _ = polled_tx.send(());
        polled
    }));
    let resetter = std::thread::spawn(move || {
        polled_rx.recv().unwrap();
        let deadline = new_deadline();
        shared.lock().unwrap().as_mut().reset(deadline);
        deadline
    });
    rt.block_on(sleeper).unwrap();
    resetter.join().unwrap()
}

fn reset_runtimes() -> [Runtime; 2] {
    [
        Runtime::builder().current_thread().build().unwrap(),
        Runtime::builder().worker_threads(2).build().unwrap(),
    ]
}

/// A pending `Sleep` whose deadline another thread moves earlier fires at
/// the new deadline, with nothing else polling its task (tokio's
/// `reset_future_sleep_after_notify` / async-io's timer `set_at` scenario).
#[test]
fn a_sleep_reset_from_another_thread_fires_at_the_new_deadline() {
    watchdog(|| {
        for rt in reset_runtimes() {
            let deadline =
                reset_from_another_thread(&rt, || Instant::now() + Duration::from_millis(20));
            assert!(Instant::now() >= deadline, "never early");
        }
    });
}

/// A reset to a deadline already past fires at once (the next turn).
#[test]
fn a_sleep_reset_into_the_past_fires_without_another_poll() {
    watchdog(|| {
        for rt in reset_runtimes() {
            reset_from_another_thread(&rt, Instant::now);
        }
    });
}

/// `Duration::MAX` means "never": an interval with it ticks once (at its
/// start) and then stays pending, without overflowing an `Instant`.
#[test]
fn an_interval_of_duration_max_ticks_once_then_never() {
    watchdog(|| {
        let rt = Runtime::builder().current_thread().build().unwrap();
        rt.block_on(async {
            for missed in [
                ebbtide::time::MissedTickBehavior::Burst,
                ebbtide::time::MissedTickBehavior::Delay,
                ebbtide::time::MissedTickBehavior::Skip,
            ] {
                let mut every = ebbtide::time::interval(Duration::MAX);
                every.set_missed_tick_behavior(missed);
                every.tick().await;
                let second = ebbtide::time::timeout(Duration::from_millis(5), every.tick()).await;
                assert!(second.is_err(), "{missed:?}: no second tick");
                every.reset();
                let again = ebbtide::time::timeout(Duration::from_millis(5), every.tick()).await;
                assert!(again.is_err(), "{missed:?}: reset to MAX never ticks");
            }
            let deadline = ebbtide::time::sleep(Duration::MAX).deadline();
            assert!(deadline > Instant::now() + Duration::from_secs(86_400 * 365));
        });
    });
}

// What a store that files deadlines by bucket and sorts a bucket once it
// begins can get wrong: order and earliness across buckets far apart, a
// deadline moved across buckets, and a timer cancelled (or its `Sleep`
// moved) while its bucket is being fired. All on the paused clock, which
// jumps to the next timer when the runtime is idle, so hours pass at once.

fn paused() -> Runtime {
    Runtime::builder()
        .current_thread()
        .start_paused(true)
        .build()
        .expect("build a paused current-thread runtime")
}

#[test]
fn ten_thousand_deadlines_from_a_millisecond_to_ten_hours_fire_in_order_and_never_early() {
    watchdog(|| {
        const SLEEPS: usize = 10_000;
        let mut rng = common::Rng::new(0x5eed);
        let offsets: Vec<Duration> = (0..SLEEPS)
            .map(|_| MS + Duration::from_micros(rng.below(10 * 3_600_000_000)))
            .collect();
        let rt = paused();
        let fired = rt.block_on(async move {
            let start = Instant::now();
            let order = Arc::new(std::sync::Mutex::new(Vec::with_capacity(SLEEPS)));
            let hs: Vec<_> = offsets
                .iter()
                .map(|&d| {
                    let order = order.clone();
                    ebbtide::spawn(async move {
                        sleep_until(start + d).await;
                        let now = Instant::now();
                        assert!(now >= start + d, "a timer fired early");
                        order.lock().unwrap().push(d);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            let fired = std::mem::take(&mut *order.lock().unwrap());
            fired
        });
        assert_eq!(fired.len(), SLEEPS);
        assert!(
            fired.windows(2).all(|w| w[0] <= w[1]),
            "timers fired in deadline order"
        );
        assert_eq!(rt.metrics().timers, 0);
    });
}

#[test]
fn a_deadline_moved_earlier_or_later_across_buckets_fires_at_the_new_deadline() {
    watchdog(|| {
        paused().block_on(async {
            let start = Instant::now();
            // Registered hours out, moved to milliseconds, and back.
            for (first, moved) in [
                (Duration::from_secs(10 * 3600), 5 * MS),
                (5 * MS, Duration::from_secs(2 * 3600)),
                (
                    Duration::from_secs(3600),
                    Duration::from_secs(7200) + 3 * MS,
                ),
            ] {
                let t0 = Instant::now();
                let mut s = Box::pin(sleep_until(t0 + first));
                assert!(poll_once(s.as_mut()).await.is_none(), "registered");
                s.as_mut().reset(t0 + moved);
                s.await;
                assert_eq!(Instant::now(), t0 + moved, "fired at the new deadline");
            }
            assert!(Instant::now() > start);
        });
    });
}

#[test]
fn a_sleep_moved_later_after_its_timer_fired_waits_for_the_new_deadline() {
    watchdog(|| {
        paused().block_on(async {
            let t0 = Instant::now();
            let mut first = Box::pin(sleep_until(t0 + MS));
            let mut moved = Box::pin(sleep_until(t0 + MS));
            assert!(poll_once(first.as_mut()).await.is_none());
            assert!(poll_once(moved.as_mut()).await.is_none());
            // Both fire together; `moved` is moved before it is polled again.
            first.await;
            moved.as_mut().reset(t0 + 10 * MS);
            assert!(
                poll_once(moved.as_mut()).await.is_none(),
                "the old timer's firing does not complete the moved sleep"
            );
            moved.await;
            assert_eq!(Instant::now(), t0 + 10 * MS);
        });
    });
}

#[test]
fn timers_cancelled_while_their_bucket_fires_are_gone_and_the_rest_fire() {
    watchdog(|| {
        let rt = paused();
        let woken = rt.block_on(async {
            let t0 = Instant::now();
            // 200 sleeps in one bucket; the task woken first (deadline 1 ms)
            // drops every third, all due later in that bucket (too few for
            // the store to sweep their stale entries at once).
            let mut sleeps: Vec<Option<std::pin::Pin<Box<ebbtide::time::Sleep>>>> = (0..200)
                .map(|i| {
                    Some(Box::pin(sleep_until(
                        t0 + MS + i * Duration::from_micros(10),
                    )))
                })
                .collect();
            for s in sleeps.iter_mut().flatten() {
                assert!(poll_once(s.as_mut()).await.is_none());
            }
            sleeps[0].as_mut().unwrap().await;
            sleeps[0] = None;
            for (i, s) in sleeps.iter_mut().enumerate() {
                if i % 3 == 1 {
                    *s = None;
                }
            }
            assert_eq!(
                Handle::current().metrics().timers,
                132,
                "cancelled ones left"
            );
            let mut woken = 0;
            for s in sleeps.into_iter().flatten() {
                s.await;
                woken += 1;
            }
            woken
        });
        assert_eq!((woken, rt.metrics().timers), (132, 0));
    });
}
