//! [`EbbtideExecutor`] and [`EbbtideTimer`]: hyper's `Executor` and
//! `Timer` on the current runtime.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::executor::Site;
use crate::runtime::context;
use crate::time::Sleep;

/// hyper's `Executor`: spawns hyper's background futures (HTTP/2 streams
/// and connections) as tasks of the current runtime (the global one
/// outside any), detached.
///
/// Unlike [`spawn`](crate::spawn), it still spawns while the runtime drains
/// (until the drain deadline passes): what hyper spawns then belongs to a
/// connection already being served (an HTTP/2 stream the client opened
/// before the server's `GOAWAY`), so it is in-flight work to finish, not
/// new work. The drain waits for these tasks and its deadline cancels
/// them, like any other task.
///
/// # Examples
///
/// ```
/// use hyper::rt::Executor;
///
/// ebbtide::block_on(async {
///     let (tx, rx) = async_channel::bounded(1);
///     ebbtide::hyper::EbbtideExecutor::new().execute(async move { tx.send(7).await.unwrap() });
///     assert_eq!(rx.recv().await.unwrap(), 7);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EbbtideExecutor {
    _private: (),
}

impl EbbtideExecutor {
    /// An executor for the current runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let exec = ebbtide::hyper::EbbtideExecutor::new();
    /// let builder = hyper::server::conn::http2::Builder::new(exec);
    /// # drop(builder);
    /// ```
    pub fn new() -> EbbtideExecutor {
        EbbtideExecutor { _private: () }
    }
}

impl<F> ::hyper::rt::Executor<F> for EbbtideExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        context::with_current(|shared| match shared {
            Some(shared) => {
                let tasks = &shared.scheduler.tasks;
                let site = Site::caller();
                shared
                    .scheduler
                    .spawn(future, site, || !tasks.is_cancelling())
            }
            None => crate::runtime::global().spawn(future),
        })
        .detach();
    }
}

/// hyper's `Timer` on ebbtide's timers ([`time::Sleep`](crate::time::Sleep)
/// in the reactor's timer store): hyper's header-read timeouts and HTTP/2
/// keep-alive pings. `reset` moves the existing timer instead of
/// allocating a new one.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use hyper::rt::Timer;
///
/// ebbtide::block_on(async {
///     let start = Instant::now();
///     let timer = ebbtide::hyper::EbbtideTimer::new();
///     let mut sleep = timer.sleep(Duration::from_secs(3600));
///     timer.reset(&mut sleep, Instant::now() + Duration::from_millis(5));
///     sleep.await;
///     assert!(start.elapsed() < Duration::from_secs(3600));
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EbbtideTimer {
    _private: (),
}

impl EbbtideTimer {
    /// A timer for the runtime that polls its sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = ebbtide::hyper::EbbtideTimer::new();
    /// let mut builder = hyper::server::conn::http1::Builder::new();
    /// builder.timer(timer);
    /// ```
    pub fn new() -> EbbtideTimer {
        EbbtideTimer { _private: () }
    }
}

impl ::hyper::rt::Timer for EbbtideTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(crate::time::sleep(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(crate::time::sleep_until(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn ::hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(ours) => ours.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// ebbtide's sleep is hyper's `Sleep` (what [`EbbtideTimer`] returns).
impl ::hyper::rt::Sleep for Sleep {}
