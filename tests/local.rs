//! `spawn_local`: `!Send` tasks run on the thread that spawned them (inside
//! `block_on` of either flavour, or on the worker whose task spawned them),
//! are cancelled there when that thread stops running the runtime, and
//! `spawn_local` anywhere else panics with a message that says why.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use common::{panic_message, quiet_expected_panics, watchdog, Flavour};
use ebbtide::runtime::Runtime;

const NO_RUNTIME: &str = "spawn_local called on a thread that runs no runtime";

/// Sets an `Rc<Cell<bool>>` (a `!Send` flag) when dropped.
struct RcDropFlag(Rc<Cell<bool>>);

impl Drop for RcDropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_non_send_future_runs_inside_block_on_on_every_flavour() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let me = std::thread::current().id();
            let (sum, ran_on) = rt.block_on(async {
                let shared = Rc::new(RefCell::new(Vec::new()));
                let hs: Vec<_> = (0..100u32)
                    .map(|i| {
                        let shared = shared.clone();
                        ebbtide::spawn_local(async move {
                            ebbtide::yield_now().await;
                            shared.borrow_mut().push(i); // Rc held across an await
                            ebbtide::time::sleep(Duration::from_millis(1)).await;
                            (i, std::thread::current().id())
                        })
                    })
                    .collect();
                let mut ran_on = Vec::new();
                for (i, h) in hs.into_iter().enumerate() {
                    let (v, on) = h.await.unwrap();
                    assert_eq!(v, i as u32);
                    ran_on.push(on);
                }
                let sum: u32 = shared.borrow().iter().sum();
                (sum, ran_on)
            });
            assert_eq!(sum, 99 * 100 / 2, "{name}");
            assert!(
                ran_on.iter().all(|t| *t == me),
                "{name}: a local task left the block_on thread"
            );
        }
    });
}

#[test]
fn a_task_on_a_worker_can_spawn_local_and_the_local_task_stays_on_that_thread() {
    watchdog(|| {
        for f in common::flavours() {
            let name = f.name;
            let ((spawner, local_threads), _) = f.run(async {
                let spawner = std::thread::current().id();
                let hs: Vec<_> = (0..50u32)
                    .map(|i| {
                        ebbtide::spawn_local(async move {
                            let rc = Rc::new(Cell::new(i)); // !Send
                            ebbtide::yield_now().await;
                            rc.set(rc.get() + 1);
                            ebbtide::time::sleep(Duration::from_millis(1)).await;
                            (rc.get(), std::thread::current().id())
                        })
                    })
                    .collect();
                let mut threads = Vec::new();
                for (i, h) in hs.into_iter().enumerate() {
                    let (v, on) = h.await.unwrap();
                    assert_eq!(v, i as u32 + 1);
                    threads.push(on);
                }
                (spawner, threads)
            });
            assert!(
                local_threads.iter().all(|t| *t == spawner),
                "{name}: a local task ran off the thread that spawned it"
            );
        }
    });
}

#[test]
fn spawn_local_outside_a_runtime_panics_with_the_documented_message() {
    quiet_expected_panics();
    watchdog(|| {
        let caught = std::panic::catch_unwind(|| {
            ebbtide::spawn_local(async {});
        });
        let msg = panic_message(&*caught.expect_err("spawn_local outside a runtime panics"));
        assert!(msg.contains(NO_RUNTIME), "{msg}");
        // A `Handle::enter` scope makes a runtime current, but this thread
        // still runs none: nothing would ever poll the task.
        let rt = common::workers(1);
        let _guard = rt.handle().enter();
        let caught = std::panic::catch_unwind(|| {
            ebbtide::spawn_local(async {});
        });
        let msg = panic_message(&*caught.unwrap_err());
        assert!(msg.contains(NO_RUNTIME), "{msg}");
    });
}

#[test]
fn spawn_local_in_a_blocking_job_panics_and_the_job_reports_it() {
    quiet_expected_panics();
    watchdog(|| {
        let rt = common::workers(1);
        let err = rt
            .block_on(rt.spawn_blocking(|| {
                ebbtide::spawn_local(async {});
            }))
            .unwrap_err();
        let msg = panic_message(&*err.into_panic());
        assert!(msg.contains(NO_RUNTIME), "{msg}");
    });
}

#[test]
// The block_on future returns the task's handle on purpose, to await it
// after the task was cancelled.
#[allow(clippy::async_yields_async)]
fn local_tasks_pending_when_block_on_returns_are_cancelled_on_that_thread() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let dropped = Rc::new(Cell::new(false));
            let flag = RcDropFlag(dropped.clone());
            let me = std::thread::current().id();
            let dropped_on = Rc::new(Cell::new(None::<ThreadId>));
            let on = dropped_on.clone();
            let record = OnDrop(move || on.set(Some(std::thread::current().id())));
            let handle = rt.block_on(async move {
                let h = ebbtide::spawn_local(async move {
                    let _flag = flag;
                    let _record = record;
                    std::future::pending::<()>().await
                });
                ebbtide::yield_now().await; // let it start
                h
            });
            assert!(
                dropped.get(),
                "{name}: the pending local task was not dropped"
            );
            assert_eq!(
                dropped_on.get(),
                Some(me),
                "{name}: dropped on another thread"
            );
            // Its handle (Send: it holds no `!Send` state) resolves cancelled.
            let err = rt.block_on(handle).unwrap_err();
            assert!(err.is_cancelled(), "{name}: {err:?}");
        }
    });
}

#[test]
fn local_tasks_never_polled_before_block_on_returns_are_dropped_too() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let dropped = Rc::new(Cell::new(false));
            let flag = RcDropFlag(dropped.clone());
            rt.block_on(async move {
                ebbtide::spawn_local(async move {
                    let _flag = flag; // captured: dropped with the unpolled future
                })
                .detach();
                // Returns without yielding: the task never ran.
            });
            assert!(dropped.get(), "{name}");
        }
    });
}

/// Runs a closure when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn local_tasks_left_on_a_worker_are_dropped_on_that_worker_at_shutdown() {
    watchdog(|| {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let (tx, rx) = mpsc::channel();
        let dropped_on = Arc::new(Mutex::new(None::<ThreadId>));
        let (dropped, guard) = common::drop_flag();
        let d_on = dropped_on.clone();
        // Not awaited from `block_on`: the spawning task runs on a worker.
        rt.spawn(async move {
            let worker = std::thread::current().id();
            let record = OnDrop(move || *d_on.lock().unwrap() = Some(std::thread::current().id()));
            ebbtide::spawn_local(async move {
                let _rc = Rc::new(()); // !Send
                let _guard = guard;
                let _record = record;
                std::future::pending::<()>().await
            })
            .detach();
            tx.send(worker).unwrap();
        });
        let worker = rx.recv_timeout(common::WATCHDOG).unwrap();
        let report = rt.shutdown(Duration::from_millis(20));
        assert!(dropped.load(Ordering::SeqCst), "{report}");
        assert_eq!(
            *dropped_on.lock().unwrap(),
            Some(worker),
            "dropped off its worker"
        );
    });
}

/// Completes once `flag` is set; parks its waker in `slot`.
struct WaitForFlag {
    flag: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for WaitForFlag {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        if self.flag.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn a_local_task_woken_from_another_thread_runs_on_its_own_thread() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let me = std::thread::current().id();
            let flag = Arc::new(AtomicBool::new(false));
            let slot = Arc::new(Mutex::new(None::<Waker>));
            let waker_thread = {
                let (flag, slot) = (flag.clone(), slot.clone());
                std::thread::spawn(move || {
                    let w = loop {
                        if let Some(w) = slot.lock().unwrap().clone() {
                            break w;
                        }
                        std::thread::yield_now();
                    };
                    flag.store(true, Ordering::SeqCst);
                    w.wake();
                })
            };
            let on = rt.block_on(async move {
                let marker = Rc::new(()); // keeps the task !Send
                ebbtide::spawn_local(async move {
                    WaitForFlag { flag, slot }.await;
                    drop(marker);
                    std::thread::current().id()
                })
                .await
                .unwrap()
            });
            waker_thread.join().unwrap();
            assert_eq!(on, me, "{name}");
        }
    });
}

#[test]
fn local_and_send_tasks_interleave_in_one_block_on() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let log = rt.block_on(async {
                let log = Rc::new(RefCell::new(Vec::new()));
                let (tx, rx) = mpsc::channel::<u32>();
                let sender = ebbtide::spawn(async move {
                    for i in 0..20 {
                        tx.send(i).unwrap();
                        ebbtide::time::sleep(Duration::from_micros(200)).await;
                    }
                });
                let l = log.clone();
                let receiver = ebbtide::spawn_local(async move {
                    while l.borrow().len() < 20 {
                        match rx.try_recv() {
                            Ok(v) => l.borrow_mut().push(v),
                            Err(_) => ebbtide::yield_now().await,
                        }
                    }
                });
                sender.await.unwrap();
                receiver.await.unwrap();
                Rc::try_unwrap(log).unwrap().into_inner()
            });
            assert_eq!(log, (0..20).collect::<Vec<_>>(), "{name}");
        }
    });
}
