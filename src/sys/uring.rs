//! Linux's completion ring: one `io_uring` per runtime, beside the epoll
//! instance of the poller (`epoll.rs`), which keeps waiting in
//! `epoll_wait`.
//!
//! The op layer (`crate::op`'s `uring` backend) submits operations here;
//! the reactor's driver submits what is queued before it waits, and reaps
//! the completions after, with its readiness events.
//!
//! # Protocol
//!
//! 1. **Set up** (`Ring::new`): `io_uring_setup` with 1024 entries (the
//!    completion queue twice that), clamped; the kernel must never drop
//!    completions (`NODROP`) and must support every opcode the op layer
//!    uses (probed; the socket opcodes `RECVMSG`, `SENDMSG`, `ACCEPT` and
//!    `CONNECT` are optional: the probe records which the kernel has, and
//!    an op whose opcode it lacks stays on readiness). Otherwise setup fails and the caller falls back to
//!    plain epoll (or reports the error, when io_uring was asked for). A
//!    non-blocking eventfd is registered with the ring
//!    (`IORING_REGISTER_EVENTFD`: the kernel signals it whenever it posts
//!    completions) and with the epoll instance, edge-triggered, under the
//!    reserved key [`RING_KEY`]; it is never read (every signal is a new
//!    edge).
//! 2. **Submit** (`Ring::push`, any thread): under the submission lock,
//!    the entry goes into the submission queue (if the queue is full, it is
//!    flushed to the kernel first). `push` says whether a driver is blocked
//!    in `epoll_wait` (step 3's flag, set and read under the same lock): if
//!    one is, the pusher submits the queue itself (`Ring::submit`, one
//!    `io_uring_enter`); otherwise the entry waits for the next driver,
//!    which submits everything queued before it waits. An entry is never
//!    left queued behind a driver that is already blocked. The kernel
//!    counts a request as its submitting thread's and cancels a thread's
//!    requests when the thread exits (`-ECANCELED`); the op layer submits
//!    such an op again, since nobody asked for that cancel (`crate::op`'s
//!    io_uring backend, step 2).
//! 3. **Before a wait** (`Ring::before_wait`, the reactor's driver only):
//!    under the submission lock, set the `waiting` flag for a blocking
//!    wait; then, outside it, submit what is queued (one `io_uring_enter`,
//!    only if something is). Say whether completions are already waiting:
//!    then the caller's `epoll_wait` does not block.
//! 4. **Wait**: the poller's one `epoll_wait`, as on the epoll backend. A
//!    completion posted while it blocks signals the eventfd, whose edge
//!    ends the wait; a request whose completion needs the submitting
//!    thread's task work interrupts that thread's wait (`EINTR`, an
//!    ordinary return).
//! 5. **After it** (`Ring::after_wait`): clear the flag and reap every
//!    completion. Completions tagged [`IGNORED_TAG`] (cancel requests) are
//!    dropped; the rest are returned as `(user data, result)` for the op
//!    layer. A completion posted between the reap and the next wait has
//!    left an edge on the eventfd, so that wait returns at once: none is
//!    missed.
//!
//! Why the ring does not do the waiting: waiting in `io_uring_enter` on a
//! ring that polls the epoll descriptor saves one system call per wait,
//! but every readiness event and every cross-thread wake then reaches the
//! driver through the ring's poll of epoll and the kernel's task work, a
//! longer path than `epoll_wait`'s own wake-up: workers parking and waking
//! and readiness-driven requests both got dearer (measured in
//! `docs/benchmarks.md`, "io_uring"). Waiting in epoll keeps readiness and
//! wake-ups exactly as cheap as on the epoll backend; the ring adds a
//! submission call only when ops are queued, and nothing when there are
//! none.
//!
//! Why one ring per runtime behind a lock, rather than one per worker:
//! ebbtide's workers take turns driving the reactor, and any task may
//! move to any worker; one ring is reaped by whoever drives, as the epoll
//! instance is. The submission lock is held only to copy one 64-byte
//! entry; submission system calls are made outside it.
//!
//! Memory the kernel reads or writes for an op (buffers, paths, addresses)
//! is owned by the op layer's slot until the op's completion is reaped;
//! the ring itself lives as long as any op holds it (each op's state holds
//! the reactor, whose poller holds the ring), so a ring with ops never
//! acknowledged is never unmapped.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use io_uring::{opcode, squeue, IoUring, Probe};

use super::Completion;

/// User data of entries whose completion nobody waits for (cancel
/// requests): reaped and dropped (step 5). Op keys use at most 62 bits, so
/// the top bit never belongs to an op.
pub(crate) const IGNORED_TAG: u64 = (1 << 63) | 1;

/// The epoll key of the ring's eventfd (step 1); never a source key.
pub(crate) const RING_KEY: u64 = u64::MAX - 1;

/// Submission-queue entries (the completion queue has twice as many).
const ENTRIES: u32 = 1024;

/// The submission entry type, for the op layer to build.
pub(crate) use io_uring::squeue::Entry;
/// The opcodes and argument types, for the op layer to build entries.
pub(crate) use io_uring::{opcode as ops, types as args};

/// State under the submission lock (the queue itself is the kernel's
/// shared memory; the lock guards every view of it).
struct Sq;

/// One io_uring with its locks (see the module doc).
pub(crate) struct Ring {
    ring: IoUring,
    sq: Mutex<Sq>,
    /// Held while the completion queue is read (only the reactor's driver
    /// reads it, so this lock is never contended; it keeps the unsafe
    /// shared access sound whoever calls).
    cq: Mutex<()>,
    /// Step 2: a driver is blocked (or about to block) in `epoll_wait`.
    waiting: AtomicBool,
    /// Step 1: signalled by the kernel when it posts completions;
    /// registered with the ring and with the epoll instance.
    _eventfd: OwnedFd,
    /// Step 1's probe: bit `n` is set when the kernel has opcode `n`
    /// (opcodes below 64; the op layer asks with [`Ring::supports`]).
    opcodes: u64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("entries", &self.ring.params().sq_entries())
            .finish()
    }
}

/// The opcodes the op layer submits (step 1's probe).
const REQUIRED: &[u8] = &[
    opcode::AsyncCancel::CODE,
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Fsync::CODE,
    opcode::OpenAt::CODE,
    opcode::Close::CODE,
    opcode::Recv::CODE,
    opcode::Send::CODE,
];

/// The optional opcodes (step 1): sockets' datagram, accept and connect
/// ops, which stay on readiness on a kernel without them.
const OPTIONAL: &[u8] = &[
    opcode::RecvMsg::CODE,
    opcode::SendMsg::CODE,
    opcode::Accept::CODE,
    opcode::Connect::CODE,
];

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("ebbtide: this kernel's io_uring lacks {what}"),
    )
}

impl Ring {
    /// Step 1, beside the epoll instance `epoll_fd`, which gets the ring's
    /// eventfd under [`RING_KEY`].
    pub(crate) fn new(epoll_fd: RawFd) -> io::Result<Ring> {
        // `dontfork`: a forked child shares no ring memory with its parent.
        let ring = IoUring::builder()
            .setup_clamp()
            .setup_cqsize(ENTRIES * 2)
            .dontfork()
            .build(ENTRIES)?;
        if !ring.params().is_feature_nodrop() {
            return Err(unsupported("IORING_FEAT_NODROP (Linux 5.5)"));
        }
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if let Some(code) = REQUIRED.iter().find(|&&c| !probe.is_supported(c)) {
            return Err(unsupported(&format!("opcode {code}")));
        }
        let opcodes = OPTIONAL
            .iter()
            .filter(|&&c| c < 64 && probe.is_supported(c))
            .fold(0u64, |mask, &c| mask | 1 << c);
        // SAFETY: a plain system call; the descriptor is owned at once.
        let eventfd = unsafe {
            let fd = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: RING_KEY,
        };
        // SAFETY: `ev` is valid for the call; the kernel checks both
        // descriptors.
        if unsafe { libc::epoll_ctl(epoll_fd, libc::EPOLL_CTL_ADD, eventfd.as_raw_fd(), &mut ev) }
            < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            ring,
            sq: Mutex::new(Sq),
            cq: Mutex::new(()),
            waiting: AtomicBool::new(false),
            _eventfd: eventfd,
            opcodes,
        })
    }

    /// Whether the kernel has the optional opcode `code` (step 1's probe).
    pub(crate) fn supports(&self, code: u8) -> bool {
        code < 64 && self.opcodes & (1 << code) != 0
    }

    fn lock_sq(&self) -> MutexGuard<'_, Sq> {
        // Nothing panics under this lock but a full queue's submit error,
        // which leaves the queue consistent.
        self.sq.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 2: queues `entry`, and says whether a driver is blocked in
    /// the ring (the caller must then submit, `Ring::submit`). An
    /// error means the entry is not in the queue (no room could be made
    /// for it); `Ok` means the kernel will see it.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid (and its memory unused by
    /// anyone else, for memory the kernel writes) until the completion
    /// with `entry`'s user data is reaped by [`Ring::wait`], or forever if
    /// it never is.
    pub(crate) unsafe fn push(&self, entry: &squeue::Entry) -> io::Result<bool> {
        // SAFETY: the caller keeps the entry's memory valid (this fn's
        // contract).
        self.with_sq(|_, sq| unsafe { self.push_in(sq, entry) })
    }

    /// Runs `f` with the submission queue, under the submission lock. The
    /// queue view writes its tail back to the kernel when it is dropped,
    /// so it is dropped here, before the lock is released: a view dropped
    /// after would write a stale tail over entries pushed meanwhile, and
    /// the kernel would read entries again that it already took. Every
    /// access to the queue goes through here.
    fn with_sq<R>(&self, f: impl FnOnce(&mut Sq, &mut squeue::SubmissionQueue<'_>) -> R) -> R {
        let mut guard = self.lock_sq();
        // SAFETY: the lock makes this view the queue's only one.
        let mut sq = unsafe { self.ring.submission_shared() };
        let out = f(&mut guard, &mut sq);
        drop(sq);
        drop(guard);
        out
    }

    /// Pushes `entry` into `sq` (inside `with_sq`), making room by
    /// submitting if the queue is full; then says whether a driver is
    /// blocked (step 2: read under the lock the driver sets it under).
    ///
    /// # Safety
    ///
    /// As for [`Ring::push`].
    unsafe fn push_in(
        &self,
        sq: &mut squeue::SubmissionQueue<'_>,
        entry: &squeue::Entry,
    ) -> io::Result<bool> {
        // SAFETY: the caller's contract.
        while unsafe { sq.push(entry) }.is_err() {
            // Full: hand the queue to the kernel, which takes the entries
            // during the call, then look at the queue again.
            sq.sync();
            if let Err(e) = self.ring.submitter().submit() {
                if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EINTR)) {
                    return Err(e);
                }
            }
            sq.sync();
        }
        Ok(self.waiting.load(Ordering::SeqCst))
    }

    /// Step 2: hands every queued entry to the kernel now (a pusher, when
    /// a driver is blocked in the ring).
    pub(crate) fn submit(&self) -> io::Result<()> {
        match self.ring.submitter().submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EINTR)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands every queued entry to the kernel now, if any is queued (when
    /// the descriptor a queued entry names may be closed next). Under
    /// completion-queue pressure (`EBUSY`) entries can stay queued.
    pub(crate) fn flush(&self) {
        if self.with_sq(|_, sq| !sq.is_empty()) {
            let _ = self.submit();
        }
    }

    /// Step 3, for a wait that blocks (`block`) or polls: sets the flag,
    /// submits what is queued, and says whether completions are already
    /// waiting (then the wait must not block).
    pub(crate) fn before_wait(&self, block: bool) -> bool {
        let queued = self.with_sq(|_, sq| {
            if block {
                self.waiting.store(true, Ordering::SeqCst);
            }
            !sq.is_empty()
        });
        if queued {
            // An error leaves the entries queued for the next wait (or a
            // pusher): `EBUSY`/`EAGAIN` under completion-queue pressure.
            let _ = self.submit();
        }
        let _cq_lock = self.cq.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the completion lock makes this the queue's only view.
        !unsafe { self.ring.completion_shared() }.is_empty()
    }

    /// Step 5: clears the flag and appends the ops' completions to `out`.
    pub(crate) fn after_wait(&self, out: &mut Vec<Completion>) {
        self.waiting.store(false, Ordering::SeqCst);
        self.reap(out);
    }

    /// Step 5's reaping.
    fn reap(&self, out: &mut Vec<Completion>) {
        let _cq_lock = self.cq.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the completion lock makes this the queue's only view.
        let cq = unsafe { self.ring.completion_shared() };
        for cqe in cq {
            match cqe.user_data() {
                IGNORED_TAG => {}
                user_data => out.push(Completion {
                    key: user_data as usize,
                    result: cqe.result(),
                }),
            }
        }
    }
}
