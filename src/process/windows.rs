//! Windows: the exit watcher and the child's pipes, both on the runtime's
//! IOCP port.
//!
//! - **Exits.** The watcher keeps a duplicate of the child's process handle
//!   (its own, whatever std does with the original) and waits for it to be
//!   signalled with a wait op of the completion backend (`crate::op`,
//!   `iocp/wait.rs`): the port waits, not a thread per child. The wait is
//!   submitted by the first poll and again after each `Ready`; dropping it
//!   (with a dropped `Child::wait` future, it stays in the watcher; with the
//!   watcher) withdraws it at once.
//! - **Pipes.** std opens the parent's end of each `Stdio::piped()` for
//!   overlapped I/O, so they are `os::windows::pipe`'s pipes: owned-buffer
//!   reads and writes are overlapped ops; `AsyncRead` fills an internal
//!   buffer with one overlapped read at a time, and `AsyncWrite` copies
//!   into an internal buffer and starts a write that the next write or a
//!   flush waits for.
//! - **A pipe dropped with a write in flight.** On Unix, a write that
//!   returned is in the kernel's pipe buffer and closing the pipe loses
//!   none of it. Here the last `AsyncWrite` write may still be in flight
//!   (the child has not read that far), and cancelling it would lose those
//!   bytes. So a dropped pipe hands that write to a task on its runtime,
//!   which finishes it and then closes the handle: the child reads the
//!   bytes, then end-of-file. At shutdown that task is cancelled like any
//!   other (and the write with it).

use std::future::{poll_fn, Future};
use std::io;
use std::os::windows::io::{AsHandle, OwnedHandle};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::op::{self, Op, OpContext, SharedHandle};
use crate::os::windows::pipe;
use crate::reactor::runtime_gone;
use crate::runtime::{context, Shared};

/// What the portable side names in its "no runtime" errors.
const SPAWN: &str = "ebbtide::process::Command::spawn";

/// The process: std's child, whose `id`, `try_wait` and `kill` the
/// portable side calls.
pub(super) type Proc = std::process::Child;

/// A started process and the parent's ends of its pipes.
pub(super) struct Started {
    pub(super) proc: Proc,
    pub(super) pipes: [Option<io::Result<Pipe>>; 3],
}

impl Started {
    pub(super) fn from_std(mut child: std::process::Child) -> Started {
        let pipes = [
            child.stdin.take().map(Pipe::new),
            child.stdout.take().map(Pipe::new),
            child.stderr.take().map(Pipe::new),
        ];
        Started { proc: child, pipes }
    }
}

/// Starts `cmd`'s process: through std here.
pub(super) fn start(cmd: &mut super::Command) -> io::Result<Started> {
    cmd.spawn_std()
}

/// What tells a waiting `Child` that its process has exited.
pub(super) struct ExitWatch {
    /// A duplicate of the child's process handle: signalled once the
    /// process has exited.
    process: SharedHandle,
    ops: OpContext,
    /// The wait in flight, if one was submitted since the last `Ready`.
    wait: Option<Op<io::Result<()>>>,
}

impl ExitWatch {
    /// A watcher for `child`, made right after it was spawned. An exit
    /// before the first wait is still seen: the handle stays signalled.
    pub(super) fn watch(started: &mut Started) -> io::Result<ExitWatch> {
        let ops = context::current(SPAWN)?.ops.clone();
        let process: OwnedHandle = started.proc.as_handle().try_clone_to_owned()?;
        Ok(ExitWatch {
            process: Arc::new(process),
            ops,
            wait: None,
        })
    }

    /// A process handle stays signalled once the process has exited, so an
    /// exit before the first wait still shows.
    pub(super) fn shows_past_exits(&self) -> bool {
        true
    }

    /// `Ready` once the process has exited (then again at every call, as
    /// its handle stays signalled); registers the waker otherwise.
    pub(super) fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ops.reactor.is_closed() {
            self.wait = None;
            return Poll::Ready(Err(runtime_gone()));
        }
        let (ops, process) = (&self.ops, &self.process);
        let wait = self
            .wait
            .get_or_insert_with(|| op::wait_signalled(ops, process));
        let res = ready!(Pin::new(wait).poll(cx));
        self.wait = None;
        Poll::Ready(res)
    }
}

/// One end of a pipe to the child: an overlapped pipe on the runtime's
/// port.
pub(super) struct Pipe {
    pipe: pipe::Pipe,
    /// The runtime that finishes a write left in flight by a drop.
    shared: Arc<Shared>,
}

impl Pipe {
    fn new(handle: impl Into<OwnedHandle>) -> io::Result<Pipe> {
        let shared = context::current(SPAWN)?;
        // std opened the parent's end for overlapped I/O (module doc).
        let pipe = pipe::Pipe::new(handle.into(), shared.ops.clone());
        Ok(Pipe { pipe, shared })
    }

    pub(super) async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.pipe.read_owned(buf).await
    }

    pub(super) async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.pipe.write_owned(buf).await
    }

    pub(super) async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        self.pipe.write_all_owned(buf).await
    }

    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.pipe.poll_read(cx, buf)
    }

    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pipe.poll_write(cx, buf)
    }

    /// Waits for the write in flight.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pipe.poll_write_done(cx)
    }
}

impl Drop for Pipe {
    /// Hands a write still in flight to a task (module doc).
    fn drop(&mut self) {
        if let Some(mut rest) = self.pipe.split_pending_write() {
            self.shared.spawn(async move {
                let _ = poll_fn(|cx| rest.poll_write_done(cx)).await;
            });
        }
    }
}
