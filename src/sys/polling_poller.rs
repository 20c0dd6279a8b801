//! The `polling` crate's poller (kqueue on macOS and the BSDs, IOCP with
//! AFD polling on Windows), as the reactor's `Poller`.

pub(crate) use polling::{Events, Poller};

/// `polling`'s backends do not report a closed read side with the event
/// (no `EPOLLRDHUP`): see `REPORTS_READ_CLOSED` in `sys/mod.rs`.
pub(crate) const REPORTS_READ_CLOSED: bool = false;

use std::io;

use super::IoBackend;

/// The platform's one backend (`Auto` resolves to it); Linux's cannot be
/// asked for here.
pub(crate) fn new_poller(requested: IoBackend) -> io::Result<(Poller, IoBackend)> {
    let native = if cfg!(windows) {
        IoBackend::Iocp
    } else {
        IoBackend::Kqueue
    };
    if requested != IoBackend::Auto && requested != native {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("ebbtide: the {requested:?} I/O backend is not available on this platform (it has {native:?})"),
        ));
    }
    Ok((Poller::new()?, native))
}

/// No poller here reports completions with its events (IOCP's are
/// readiness-shaped events under keys the op layer claims).
pub(crate) fn completions(_events: &Events) -> &[super::Completion] {
    &[]
}
