//! A poller for Miri, which cannot run epoll's `timerfd`: a condvar that
//! `notify` signals and `wait` sleeps on. It registers no I/O handles
//! (`add_with_mode` fails), so under Miri the executor, timers, JoinHandle
//! and blocking pool are checked, not sockets.

use std::io;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use polling::{Event, PollMode};

use super::RawSource;

/// Whether events say a stream's read side is closed: no events at all.
pub(crate) const REPORTS_READ_CLOSED: bool = false;

/// Stand-in for `polling::Poller`.
#[derive(Debug, Default)]
pub(crate) struct Poller {
    notified: Mutex<bool>,
    cond: Condvar,
}

/// Stand-in for `polling::Events`: always empty.
#[derive(Debug, Default)]
pub(crate) struct Events(Vec<Event>);

impl Events {
    pub(crate) fn new() -> Events {
        Events(Vec::new())
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.0.iter().copied()
    }
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "ebbtide: I/O sources are not available under Miri",
    )
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        Ok(Poller::default())
    }

    pub(crate) fn supports_edge(&self) -> bool {
        true
    }

    pub(crate) fn notify(&self) -> io::Result<()> {
        *self.notified.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_one();
        Ok(())
    }

    pub(crate) fn wait(
        &self,
        _events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let mut notified = self.notified.lock().unwrap_or_else(|e| e.into_inner());
        if !*notified {
            notified = match timeout {
                Some(t) => {
                    self.cond
                        .wait_timeout(notified, t)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.cond.wait(notified).unwrap_or_else(|e| e.into_inner()),
            };
        }
        *notified = false;
        Ok(0)
    }

    /// # Safety
    ///
    /// None needed: nothing is registered.
    pub(crate) unsafe fn add_with_mode(
        &self,
        _: RawSource,
        _: Event,
        _: PollMode,
    ) -> io::Result<()> {
        Err(unsupported())
    }

    pub(crate) fn modify_with_mode<S>(&self, _: S, _: Event, _: PollMode) -> io::Result<()> {
        Err(unsupported())
    }

    pub(crate) fn delete<S>(&self, _: S) -> io::Result<()> {
        Err(unsupported())
    }
}

/// Under Miri every request gets the stand-in; it reports itself as the
/// readiness backend (`Epoll`), since it has no completions.
pub(crate) fn new_poller(_requested: super::IoBackend) -> io::Result<(Poller, super::IoBackend)> {
    Ok((Poller::new()?, super::IoBackend::Epoll))
}

/// No poller here reports completions with its events (IOCP's are
/// readiness-shaped events under keys the op layer claims).
pub(crate) fn completions(_events: &Events) -> &[super::Completion] {
    &[]
}
