//! `block_on`: the caller's thread runs a future to completion.
//!
//! 1. Refuse if this thread already runs a runtime (nested `block_on`).
//! 2. Set up what lives for the whole call: the runtime context, this
//!    thread's `spawn_local` tasks, and the future's wake flag.
//! 3. Current-thread runtime whose worker slot is free: become worker 0 and
//!    run the worker loop, polling the future whenever its waker fires and
//!    driving the reactor when idle. The future's and the local tasks' wakes
//!    are retargeted to the slot's waiter first.
//! 4. Otherwise (multi-threaded runtime, or another thread holds the
//!    current-thread slot): poll the future and this thread's `spawn_local`
//!    tasks; while the future is pending and some worker is idle, run tasks
//!    from the injector (as smol's `block_on(ex.run(..))` does), and park
//!    when there are none (or every worker is busy: they drain it). On a
//!    current-thread runtime, wait for the slot meanwhile: when its holder
//!    gives it back (its `block_on` returned), go to step 3.
//! 5. However it ends (also by a panic of the future), the worker slot is
//!    given back and this thread's pending `spawn_local` tasks are cancelled
//!    on this thread, where their `!Send` futures live.
//!
//! Polls of the future, as of the tasks this thread runs, are timed for
//! stall reports (`executor::stall`); the future's site is where
//! `block_on` was called.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking::Parker;

use super::{context, Shared};
use crate::executor::{LocalTasks, MainWake, PollClock, Waiter, Worker};

/// Tasks run per wake-up before the main future is polled again.
const BATCH: usize = 61;

/// Step 5 for the parked path (the worker path releases in `Worker::drop`).
struct CancelLocalsOnDrop(Rc<LocalTasks>);

impl Drop for CancelLocalsOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl Shared {
    #[track_caller]
    pub(crate) fn block_on<F: Future>(self: &Arc<Self>, future: F) -> F::Output {
        let site = std::panic::Location::caller();
        assert!(
            !context::in_runtime_thread(),
            "{}",
            context::NESTED_BLOCK_ON
        );
        let mut future = std::pin::pin!(future);
        // Step 2.
        let (parker, waiter) = Waiter::pair();
        let waiter = Arc::new(waiter);
        let local = Rc::new(LocalTasks::new(self.scheduler.clone(), waiter.clone()));
        let _ctx = context::enter_runtime_thread(self, Some(local.clone()));
        let _cancel_locals = CancelLocalsOnDrop(local.clone());
        let main = MainWake::at(waiter.clone(), self.reactor.clone(), Some(site));
        loop {
            if self.config.current_thread {
                // Step 3.
                if let Some(mut worker) = Worker::claim(&self.scheduler, 0, Some(local.clone())) {
                    main.retarget(worker.waiter().clone());
                    main.wake_by_ref_flag();
                    return worker
                        .run(future.as_mut(), Some(&main))
                        .expect("the worker loop returns only when the future completes");
                }
            }
            // Step 4.
            if let Some(out) =
                self.block_on_parked(future.as_mut(), &parker, &waiter, &local, &main)
            {
                return out;
            }
        }
    }

    /// Step 4; `None` when a current-thread runtime's slot became free.
    fn block_on_parked<F: Future>(
        self: &Arc<Self>,
        mut future: Pin<&mut F>,
        parker: &Parker,
        waiter: &Arc<Waiter>,
        local: &LocalTasks,
        main: &Arc<MainWake>,
    ) -> Option<F::Output> {
        let waker = main.waker();
        let mut cx = Context::from_waker(&waker);
        let sched = &self.scheduler;
        let stall = &sched.stall;
        let mut clock = PollClock::start(stall);
        loop {
            if main.take() {
                let _budget = crate::coop::Scope::task();
                let poll = future.as_mut().poll(&mut cx);
                main.polled(&mut clock, stall);
                if let Poll::Ready(v) = poll {
                    return Some(v);
                }
            }
            let mut ran = 0;
            while ran < BATCH {
                let Some(r) = local.pop() else { break };
                clock.run(stall, r);
                ran += 1;
            }
            // Help instead of sleeping: Send tasks may run on any runtime
            // thread. Saves a cross-thread wake-up when the future waits for
            // a task it just spawned. Only while some worker is idle: when
            // all are busy they drain the injector anyway, and one more
            // thread taking from it only adds contention (its tasks' yields
            // go back through the injector) and oversubscribes the cores
            // (measured in `docs/benchmarks.md`, `yield_now/2w`).
            while ran < BATCH && !main.is_set() && sched.idle_workers() > 0 {
                let Ok(r) = sched.injector.pop() else { break };
                clock.run(stall, r);
                ran += 1;
            }
            if ran > 0 || main.is_set() {
                continue;
            }
            if self.config.current_thread {
                sched.wait_for_slot(waiter);
                if sched.slot_is_free(0) {
                    return None;
                }
            }
            parker.park();
            clock.restart();
        }
    }
}
