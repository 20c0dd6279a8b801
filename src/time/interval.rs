//! Periodic ticks.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{deadline_after, sleep_until, Instant, Sleep};

/// What an [`Interval`] does when ticks were missed (the task was busy, or
/// the machine was suspended, past one or more tick deadlines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up, keeping the
    /// original schedule (`start + k·period`). The default, as in tokio.
    #[default]
    Burst,
    /// When a tick fires a whole period or more late, fire once now and
    /// schedule the next tick one period after *now*: the schedule shifts by
    /// the delay.
    Delay,
    /// Fire once now, then skip to the first tick of the original schedule
    /// that is still in the future.
    Skip,
}

/// Ticks every `period`, the first tick completing immediately.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::Instant;
///
/// ebbtide::block_on(async {
///     let start = Instant::now();
///     let mut every = ebbtide::time::interval(Duration::from_millis(2));
///     for _ in 0..3 {
///         every.tick().await;
///     }
///     assert!(start.elapsed() >= Duration::from_millis(4));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start` (an [`Instant`] or a
/// `std::time::Instant`).
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::{interval_at, Instant};
///
/// ebbtide::block_on(async {
///     let start = Instant::now() + Duration::from_millis(2);
///     let mut every = interval_at(start, Duration::from_millis(3));
///     assert_eq!(every.tick().await, start);
///     assert_eq!(every.tick().await, start + Duration::from_millis(3));
/// });
/// ```
pub fn interval_at(start: impl Into<Instant>, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "ebbtide::time::interval: period must be non-zero"
    );
    Interval {
        sleep: sleep_until(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

/// A stream of ticks; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    /// Sleeps until the next tick's deadline.
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick; returns its scheduled instant.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a tick is consumed only when this resolves.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        std::task::ready!(Pin::new(&mut self.sleep).poll(cx));
        let scheduled = self.sleep.deadline().into_std();
        let now = crate::reactor::now();
        // Saturating: a period too long for `Instant` means "never again".
        let next = match self.missed {
            MissedTickBehavior::Burst => deadline_after(scheduled, self.period),
            MissedTickBehavior::Delay if now > deadline_after(scheduled, self.period) => {
                deadline_after(now, self.period)
            }
            MissedTickBehavior::Delay => deadline_after(scheduled, self.period),
            MissedTickBehavior::Skip => {
                let behind = now.saturating_duration_since(scheduled).as_nanos();
                let periods = behind / self.period.as_nanos() + 1;
                let periods = u32::try_from(periods).unwrap_or(u32::MAX);
                deadline_after(scheduled, self.period.saturating_mul(periods))
            }
        };
        self.sleep.reset(next);
        Poll::Ready(scheduled.into())
    }

    /// Sets what happens to missed ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{interval, MissedTickBehavior};
    ///
    /// let mut every = interval(Duration::from_secs(1));
    /// every.set_missed_tick_behavior(MissedTickBehavior::Skip);
    /// assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Skip);
    /// assert_eq!(every.period(), Duration::from_secs(1));
    /// ```
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The current missed-tick behaviour.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{interval, Instant};
    ///
    /// ebbtide::block_on(async {
    ///     let mut every = interval(Duration::from_millis(2));
    ///     every.tick().await;
    ///     let before = Instant::now();
    ///     every.reset();
    ///     assert!(every.tick().await >= before + Duration::from_millis(2));
    /// });
    /// ```
    pub fn reset(&mut self) {
        self.reset_after(self.period);
    }

    /// Restarts the schedule from now: the next tick completes at once,
    /// the following ones a period apart from it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{interval, Instant};
    ///
    /// ebbtide::block_on(async {
    ///     let mut every = interval(Duration::from_secs(3600));
    ///     every.tick().await;
    ///     every.reset_immediately();
    ///     assert!(every.tick().await <= Instant::now());
    /// });
    /// ```
    pub fn reset_immediately(&mut self) {
        self.reset_at(crate::reactor::now());
    }

    /// Restarts the schedule: the next tick is `after` from now (saturating:
    /// `Duration::MAX` means never), the following ones a period apart.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{interval, Instant};
    ///
    /// ebbtide::block_on(async {
    ///     let mut every = interval(Duration::from_secs(3600));
    ///     every.tick().await;
    ///     let before = Instant::now();
    ///     every.reset_after(Duration::from_millis(2));
    ///     assert!(every.tick().await >= before + Duration::from_millis(2));
    /// });
    /// ```
    pub fn reset_after(&mut self, after: Duration) {
        self.reset_at(deadline_after(crate::reactor::now(), after));
    }

    /// Restarts the schedule: the next tick is at `deadline` (an
    /// [`Instant`] or a `std::time::Instant`; one already past completes at
    /// once), the following ones a period apart.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{interval, Instant};
    ///
    /// ebbtide::block_on(async {
    ///     let mut every = interval(Duration::from_secs(3600));
    ///     every.tick().await;
    ///     let at = Instant::now() + Duration::from_millis(2);
    ///     every.reset_at(at);
    ///     assert_eq!(every.tick().await, at);
    /// });
    /// ```
    pub fn reset_at(&mut self, deadline: impl Into<Instant>) {
        self.sleep.reset(deadline);
    }
}

impl futures_lite::Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}
