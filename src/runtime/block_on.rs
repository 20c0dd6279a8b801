//! `block_on`: the caller's thread runs a future to completion.
//!
//! 1. Refuse if this thread already runs a runtime (nested `block_on`).
//! 2. Current-thread runtime whose worker slot is free: become worker 0 and
//!    run the worker loop, polling the future whenever its waker fires and
//!    driving the reactor when idle.
//! 3. Otherwise (multi-threaded runtime, or another thread holds the
//!    current-thread slot): poll the future and this thread's `spawn_local`
//!    tasks; while the future is pending, run tasks from the injector (as
//!    smol's `block_on(ex.run(..))` does), and park when there are none; the
//!    workers drive the reactor.
//! 4. Before returning, cancel this thread's pending `spawn_local` tasks (on
//!    this thread, where their `!Send` futures live).

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{context, Shared};
use crate::executor::task;
use crate::executor::{LocalTasks, MainWake, Waiter, Worker};

/// Local tasks run per wake-up before the main future is polled again.
const LOCAL_BATCH: usize = 61;

impl Shared {
    pub(crate) fn block_on<F: Future>(self: &Arc<Self>, future: F) -> F::Output {
        assert!(
            !context::in_runtime_thread(),
            "{}",
            context::NESTED_BLOCK_ON
        );
        let mut future = std::pin::pin!(future);
        if self.config.current_thread {
            if let Some(mut worker) = Worker::claim(self, 0) {
                let ctx = context::enter_runtime_thread(self, Some(worker.local().clone()));
                let main = MainWake::new(worker.waiter().clone(), self.clone());
                let out = worker.run(future.as_mut(), Some(&main));
                worker.release();
                drop(ctx);
                return out.expect("the worker loop returns only when the future completes");
            }
        }
        self.block_on_parked(future)
    }

    /// Step 3.
    fn block_on_parked<F: Future>(
        self: &Arc<Self>,
        mut future: std::pin::Pin<&mut F>,
    ) -> F::Output {
        let (parker, waiter) = Waiter::pair();
        let waiter = Arc::new(waiter);
        let local = Rc::new(LocalTasks::new(self.clone(), waiter.clone()));
        let _ctx = context::enter_runtime_thread(self, Some(local.clone()));
        let main = MainWake::new(waiter, self.clone());
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let out = loop {
            if main.take() {
                if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                    break v;
                }
            }
            let mut ran = 0;
            while ran < LOCAL_BATCH {
                let Some(r) = local.pop() else { break };
                task::run(r);
                ran += 1;
            }
            // Help instead of sleeping: run injector tasks (Send tasks may run
            // on any runtime thread). Saves a cross-thread wake-up when the
            // future waits for a task it just spawned.
            while ran < LOCAL_BATCH && !main.is_set() {
                let Ok(r) = self.scheduler.injector.pop() else {
                    break;
                };
                task::run(r);
                ran += 1;
            }
            if ran == 0 && !main.is_set() {
                parker.park();
            }
        };
        local.shutdown(); // step 4
        out
    }
}
