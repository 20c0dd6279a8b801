//! A [`File`] as a futures-io stream: the op in flight, how its result is
//! applied, and `AsyncRead` / `AsyncWrite` / `AsyncSeek` on top (the
//! protocol is in the module docs of `crate::fs`, "A `File` as a stream").

use std::future::Future;
use std::io::{self, IoSlice, SeekFrom};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use futures_lite::{AsyncRead, AsyncSeek, AsyncWrite};

use super::file::File;
use crate::io::{BufResult, IoBuf};
use crate::runtime::context;

/// A stream read asks for at least this much (unless the max buffer size
/// is smaller), so that small reads (a `BufReader`'s 8 KiB) cost fewer ops.
const READ_AHEAD: usize = 64 * 1024;

/// What an op hands back to its `File` when it completes.
pub(super) enum Done {
    /// A stream read at `start`; `buf` holds the bytes read.
    Read {
        start: u64,
        res: io::Result<usize>,
        buf: Vec<u8>,
    },
    /// A stream write (the position already moved when it was accepted).
    Write { res: io::Result<()>, buf: Vec<u8> },
    /// The file's length, for a `SeekFrom::End` seek.
    Len(io::Result<u64>),
    /// An owned-buffer call's op (its result went to the call): where the
    /// position goes, and an error no caller will see.
    Owned {
        moves_to: Option<u64>,
        err: Option<io::Error>,
    },
}

/// The op in flight of a `File`, owned by the `File`.
pub(super) struct InFlight {
    /// `None` once it completed (or was handed to a task). Only reached
    /// through `&mut` (`Mutex::get_mut`, never locked): the mutex makes a
    /// `File` `Sync` without asking the op's future to be.
    op: Option<Mutex<Pin<Box<dyn Future<Output = Done> + Send>>>>,
    /// Dropped unfinished, the op is handed to a task of the current
    /// runtime to finish: a write the stream accepted must land.
    finish_on_drop: bool,
}

impl InFlight {
    fn new(op: impl Future<Output = Done> + Send + 'static, finish_on_drop: bool) -> InFlight {
        InFlight {
            op: Some(Mutex::new(Box::pin(op))),
            finish_on_drop,
        }
    }

    /// An owned-buffer call's op; a dropped write one still completes.
    pub(super) fn owned(op: impl Future<Output = Done> + Send + 'static) -> InFlight {
        InFlight::new(op, true)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Done> {
        let op = self
            .op
            .as_mut()
            .expect("an op in flight is polled until it completes");
        let op = op.get_mut().unwrap_or_else(PoisonError::into_inner);
        let done = ready!(op.as_mut().poll(cx));
        self.op = None;
        Poll::Ready(done)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(op) = self.op.take() else { return };
        if !self.finish_on_drop {
            // A read's bytes have no taker: dropping the op cancels it
            // (`crate::op`: its buffer stays with the op until acknowledged).
            return;
        }
        // Outside a runtime (or while it shuts down) the op is dropped:
        // the blocking pool's job still runs; an overlapped write may be
        // cancelled.
        if let Ok(shared) = context::current("ebbtide::fs::File's drop") {
            let op = op.into_inner().unwrap_or_else(PoisonError::into_inner);
            drop(shared.spawn(async move {
                op.await;
            }));
        }
    }
}

impl File {
    /// Bytes read ahead and not handed out.
    pub(super) fn unread(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Hands out `n` bytes read ahead.
    pub(super) fn consume(&mut self, n: usize) {
        self.consumed += n;
        if self.consumed == self.buf.len() {
            self.buf.clear();
            self.consumed = 0;
            self.read_ready = false;
        }
    }

    /// Drops the bytes read ahead; the shared cursor moves back to the
    /// position (a `seek(Current(-unread))` on a std file).
    pub(super) fn drop_read_ahead(&mut self) {
        let unread = self.unread() as u64;
        if unread > 0 {
            // Saturating: a clone may have moved the shared cursor back.
            let back = |c: u64| Some(c.saturating_sub(unread));
            let _ = self
                .cursor
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, back);
        }
        self.buf.clear();
        self.consumed = 0;
        self.read_ready = false;
    }

    pub(super) fn take_write_err(&mut self) -> io::Result<()> {
        self.write_err.take().map_or(Ok(()), Err)
    }

    pub(super) fn start(&mut self, op: InFlight) {
        debug_assert!(self.busy.is_none(), "one op in flight at a time");
        self.busy = Some(op);
    }

    /// Waits for the op in flight, if any, and applies its result.
    pub(super) fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(op) = self.busy.as_mut() else {
            return Poll::Ready(());
        };
        let done = ready!(op.poll(cx));
        self.busy = None;
        self.apply(done);
        Poll::Ready(())
    }

    fn apply(&mut self, done: Done) {
        match done {
            Done::Read { start, res, buf } => {
                self.buf = buf;
                self.consumed = 0;
                match res {
                    Ok(_) => {
                        let end = start + self.buf.len() as u64;
                        self.cursor.store(end, Ordering::Release);
                        self.read_ready = true;
                    }
                    Err(e) => {
                        self.buf.clear();
                        self.read_err = Some(e);
                    }
                }
            }
            Done::Write { res, mut buf } => {
                buf.clear();
                self.buf = buf;
                self.consumed = 0;
                if let Err(e) = res {
                    self.write_err = Some(e);
                }
            }
            Done::Len(len) => self.seek_len = Some(len),
            Done::Owned { moves_to, err } => {
                if let Some(pos) = moves_to {
                    self.cursor.store(pos, Ordering::Release);
                }
                if let Some(e) = err {
                    self.write_err = Some(e);
                }
            }
        }
        if let Some(pos) = self.reposition.take() {
            // A `set_position` made while the op was in flight.
            self.buf.clear();
            self.consumed = 0;
            self.read_ready = false;
            self.read_err = None;
            self.seek_len = None;
            self.cursor.store(pos, Ordering::Release);
        }
    }

    /// Starts a read of at least `want` bytes (within the buffer limits)
    /// at the cursor, into this `File`'s buffer.
    fn start_read(&mut self, want: usize) {
        let want = want.clamp(READ_AHEAD.min(self.max_buf), self.max_buf);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(want);
        self.consumed = 0;
        self.seek_len = None;
        let start = self.cursor.load(Ordering::Acquire);
        let handle = self.handle.clone();
        let op = async move {
            let BufResult(res, buf) = handle.read_at(buf.slice(..want), start).await;
            let buf = buf.into_inner();
            Done::Read { start, res, buf }
        };
        self.start(InFlight::new(op, false));
    }

    /// Accepts `bufs`' bytes (up to the max buffer size) into this `File`'s
    /// buffer and starts writing them at the position.
    fn start_write(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> usize {
        self.drop_read_ahead();
        self.read_err = None;
        self.seek_len = None;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for b in bufs {
            let room = self.max_buf - buf.len();
            buf.extend_from_slice(&b[..b.len().min(room)]);
            if b.len() >= room {
                break;
            }
        }
        let n = buf.len();
        let pos = self.cursor.fetch_add(n as u64, Ordering::AcqRel);
        let handle = self.handle.clone();
        let op = async move {
            let BufResult(res, buf) = handle.write_all_at(buf, pos).await;
            Done::Write { res, buf }
        };
        self.start(InFlight::new(op, true));
        // Submit now; the result is for the next operation.
        let _ = self.poll_idle(cx);
        n
    }

    fn start_len(&mut self) {
        let handle = self.handle.clone();
        let op = async move { Done::Len(handle.run(|f| f.metadata()).await.map(|m| m.len())) };
        self.start(InFlight::new(op, false));
    }

    fn poll_write_slices(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_idle(cx));
        self.take_write_err()?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        Poll::Ready(Ok(self.start_write(cx, bufs)))
    }
}

fn bad_seek() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "ebbtide::fs::File: seek to a negative position or past u64::MAX",
    )
}

/// Reads hand out the bytes read ahead, or read at least 64 KiB ahead.
/// A read dropped while its op is in flight loses nothing: the `File`
/// keeps the op, and its bytes go to the next read.
impl AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_idle(cx));
        this.take_write_err()?;
        if let Some(e) = this.read_err.take() {
            return Poll::Ready(Err(e));
        }
        if this.unread() == 0 && !this.read_ready {
            this.start_read(out.len());
            ready!(this.poll_idle(cx));
            if let Some(e) = this.read_err.take() {
                return Poll::Ready(Err(e));
            }
        }
        // Read ahead, or the result of the read that just completed (no
        // bytes: the end of the file).
        let n = this.unread().min(out.len());
        out[..n].copy_from_slice(&this.buf[this.consumed..this.consumed + n]);
        this.consume(n);
        Poll::Ready(Ok(n))
    }
}

/// Writes are accepted into the buffer and written by one op at a time:
/// `Ready(n)` means the bytes are the `File`'s to write; `poll_flush` (and
/// `poll_close`, which only flushes) waits for them and returns their error.
impl AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_slices(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_slices(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_idle(cx));
        Poll::Ready(this.take_write_err())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// A seek waits for the op in flight and drops the bytes read ahead;
/// `SeekFrom::Current` counts from the position (bytes handed out), and
/// `SeekFrom::End` reads the length with an op. Seeking past the end is
/// allowed (a later write leaves a hole).
impl AsyncSeek for File {
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        ready!(this.poll_idle(cx));
        this.take_write_err()?;
        this.read_err = None;
        let target = match pos {
            SeekFrom::Start(pos) => Some(pos),
            SeekFrom::Current(delta) => this.position().checked_add_signed(delta),
            SeekFrom::End(delta) => {
                if this.seek_len.is_none() {
                    this.start_len();
                    ready!(this.poll_idle(cx));
                }
                let len = this.seek_len.take().expect("the length op completed")?;
                len.checked_add_signed(delta)
            }
        };
        let target = target.ok_or_else(bad_seek)?;
        this.drop_read_ahead();
        this.cursor.store(target, Ordering::Release);
        Poll::Ready(Ok(target))
    }
}
