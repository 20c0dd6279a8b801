//! The cooperative budget (`crate::coop`): a task whose resources are
//! always ready still yields, so a timeout around it fires and the other
//! tasks of its thread run; `task::unconstrained` opts out. Scenarios of
//! tokio's `tests/coop_budget.rs` and `rt_common::coop`, on a
//! current-thread runtime, where a task that never yields would stop
//! everything (the watchdog turns that into a failure).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{current_thread, watchdog};
use ebbtide::net::UdpSocket;
use ebbtide::time::{sleep, timeout};

/// A socket sending to itself: every `send_to` and `recv_from` is ready.
async fn always_ready_udp_loop(stop: Arc<AtomicBool>) -> usize {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let mut buf = [0u8; 8];
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        socket.send_to(b"ping", me).await.unwrap();
        socket.recv_from(&mut buf).await.unwrap();
        rounds += 1;
    }
    rounds
}

#[test]
fn an_always_ready_future_does_not_starve_a_timeout() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            let spin = async {
                loop {
                    sleep(Duration::ZERO).await; // due at once, every time
                }
            };
            assert!(timeout(Duration::from_millis(10), spin).await.is_err());
            let never = Arc::new(AtomicBool::new(false));
            let io = always_ready_udp_loop(never);
            assert!(timeout(Duration::from_millis(10), io).await.is_err());
        });
    });
}

#[test]
fn a_task_looping_over_ready_io_lets_the_other_tasks_of_its_thread_run() {
    watchdog(|| {
        let rt = current_thread();
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let spinner = ebbtide::spawn(always_ready_udp_loop(stop.clone()));
            let ticker = {
                let ticks = ticks.clone();
                ebbtide::spawn(async move {
                    for _ in 0..100 {
                        ticks.fetch_add(1, Ordering::SeqCst);
                        ebbtide::yield_now().await;
                    }
                })
            };
            ticker.await.unwrap();
            stop.store(true, Ordering::Relaxed);
            let rounds = spinner.await.unwrap();
            assert!(rounds > 0);
        });
        assert_eq!(ticks.load(Ordering::SeqCst), 100);
    });
}

#[test]
fn unconstrained_never_yields_for_its_budget() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            for constrained in [true, false] {
                let sibling_ran = Arc::new(AtomicBool::new(false));
                let flag = sibling_ran.clone();
                let sibling = ebbtide::spawn(async move { flag.store(true, Ordering::SeqCst) });
                let ran_meanwhile = {
                    let sibling_ran = sibling_ran.clone();
                    let work = async move {
                        for _ in 0..1_000 {
                            sleep(Duration::ZERO).await;
                        }
                        sibling_ran.load(Ordering::SeqCst)
                    };
                    if constrained {
                        ebbtide::spawn(work).await.unwrap()
                    } else {
                        ebbtide::spawn(ebbtide::task::unconstrained(work))
                            .await
                            .unwrap()
                    }
                };
                sibling.await.unwrap();
                // 1,000 ready timers are ~8 budgets: a constrained loop
                // yields and the sibling runs in between; an unconstrained
                // one finishes first.
                assert_eq!(ran_meanwhile, constrained, "constrained = {constrained}");
            }
        });
    });
}
