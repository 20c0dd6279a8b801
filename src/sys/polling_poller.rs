//! The `polling` crate's poller (kqueue on macOS and the BSDs, IOCP with
//! AFD polling on Windows), as the reactor's `Poller`.

pub(crate) use polling::{Events, Poller};

/// `polling`'s backends do not report a closed read side with the event
/// (no `EPOLLRDHUP`): see `REPORTS_READ_CLOSED` in `sys/mod.rs`.
pub(crate) const REPORTS_READ_CLOSED: bool = false;
