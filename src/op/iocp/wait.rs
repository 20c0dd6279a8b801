//! Waits for a handle to be signalled, on the same port as the overlapped
//! ops: how `crate::process` hears that a child exited, with no thread of
//! its own per child. A process handle is signalled once the process has
//! exited and stays signalled, so a wait submitted after the exit still
//! completes.
//!
//! A wait is an op of the op table (`crate::op`) with less in the kernel's
//! hands than an overlapped one: no `OVERLAPPED`, no buffer, no event of
//! its own. The steps, against `iocp.rs`'s:
//!
//! 1. **Submit.** The slot owns the state: a reference to the handle to
//!    wait for (which keeps it open) and the reactor. The handle itself is
//!    registered with the port (`add_waitable`, one-shot) under the key
//!    `COMPLETION_KEY_BIT | WAIT_KEY_BIT | slot key` (the poller then wakes
//!    its waiting thread, as in `iocp.rs`'s step 1); if that fails, the op
//!    completes at once with the error. `polling` keys waitables by handle,
//!    so a handle has at most one wait in flight: the caller's part
//!    (`process::ExitWatch` holds one wait at a time).
//! 2. **Complete.** The port's packet arrives once the handle is signalled
//!    and goes through `iocp.rs`'s step 3: the registration is removed,
//!    then the op completes with `Ok(())` and its state, the handle
//!    reference last, is dropped. A signalled process handle stays
//!    signalled, so a packet is never spurious.
//! 3. **Cancel.** Dropping the future marks the slot cancelling and, under
//!    the table's lock, calls the state's `cancel`: `remove_waitable`,
//!    which withdraws the wait on the handle. After that nothing of the op
//!    is in the kernel's hands: the kernel writes no memory for a wait, and
//!    the one thing it used, the handle, is still open, held by the state
//!    until the wait was withdrawn. So the cancel is its own
//!    acknowledgement (`Cancel::Acknowledged`): the table frees the slot
//!    and drops the state at once. That is why dropping a wait is safe
//!    without waiting for a packet, and why a dropped wait for a child
//!    that never exits does not hold up the shutdown's settle step.
//! 4. **A late packet.** A handle signalled just before the cancel may
//!    have its packet queued on the port already; it arrives after the
//!    slot was freed. `WAIT_KEY_BIT` marks it as a wait's, and the backend
//!    ignores it rather than counting a stale completion (`iocp.rs`,
//!    step 5); nothing is written through it either way.

use std::io;
use std::os::windows::io::RawHandle;
use std::sync::Arc;

use polling::{Event, PollMode};

use super::super::future::{ended, Ended};
use super::super::table::{Cancel, Erased, OwnedState};
use super::super::Op;
use super::{finish_now, packet_key, waitable, OpContext, PortState, SharedHandle};
use crate::reactor::Reactor;

/// Poller keys of waits carry this bit too (step 4).
pub(super) const WAIT_KEY_BIT: usize = 1 << 63;

/// What a wait's slot owns (step 1).
struct Wait {
    /// The handle the port waits on; open while this lives.
    handle: SharedHandle,
    /// Whose port the handle is registered with, to withdraw the wait
    /// (step 3).
    reactor: Arc<Reactor>,
}

impl PortState for Wait {
    fn waitable(&self) -> RawHandle {
        self.handle.as_raw_handle()
    }

    /// Step 2: signalled is final.
    fn outcome(&self) -> Option<io::Result<usize>> {
        Some(Ok(0))
    }
}

impl OwnedState for Wait {
    /// Step 3.
    fn cancel(&self, _key: super::OpKey) -> Cancel {
        let _ = self
            .reactor
            .poller()
            .remove_waitable(waitable(self.waitable()));
        Cancel::Acknowledged
    }

    fn finish(self: Box<Self>, res: io::Result<usize>) -> Erased {
        ended(Ended::Returned(res.map(drop)))
    }
}

/// Waits until `handle` is signalled (steps 1–2); the future resolves to
/// `Ok(())` then, or to the error of registering the wait.
pub(crate) fn wait_signalled(ctx: &OpContext, handle: &SharedHandle) -> Op<io::Result<()>> {
    let ops = &ctx.table;
    let poller = ctx.reactor.poller();
    let key = ops.submit_owned(Box::new(Wait {
        handle: handle.clone(),
        reactor: ctx.reactor.clone(),
    }));
    let event = Event::readable(packet_key(key) | WAIT_KEY_BIT);
    // SAFETY: the handle stays open while the slot's state holds it, and
    // the state is dropped only after `remove_waitable` (steps 2–3).
    let registered =
        unsafe { poller.add_waitable(handle.as_raw_handle(), event, PollMode::Oneshot) };
    if let Err(e) = registered {
        finish_now(poller, ops, key, Err(e), false);
    }
    Op::new(ops, key)
}
