//! Linux's completion ring: one `io_uring` per runtime, inside the epoll
//! poller (`epoll.rs`), which waits in it instead of in `epoll_wait`.
//!
//! The op layer (`crate::op`'s `uring` backend) submits operations here;
//! the reactor waits here and gets, with its readiness events, the
//! completions of those operations. Readiness stays in the epoll instance:
//! the ring polls the epoll descriptor, so every readiness source, the
//! notification eventfd included, works unchanged on this backend.
//!
//! # Protocol
//!
//! 1. **Set up** (`Ring::new`): `io_uring_setup` with 1024 entries (the
//!    completion queue twice that), clamped; the kernel must have the
//!    extended wait argument (a timeout in the wait itself, 5.11), never
//!    drop completions (`NODROP`), and support every opcode the op layer
//!    uses (probed). Otherwise setup fails and the caller falls back to
//!    plain epoll (or reports the error, when io_uring was asked for).
//! 2. **Submit** (`Ring::push`, any thread): under the submission lock,
//!    the entry goes into the submission queue (if the queue is full, it is
//!    flushed to the kernel first). `push` says whether a driver is blocked
//!    in the ring (step 3's flag, set and read under the same lock): if
//!    one is, the pusher submits the queue itself (`Ring::submit`, one
//!    `io_uring_enter`); otherwise the entry waits for the next wait of any
//!    driver, which submits everything queued in the same system call as
//!    it waits. An entry is never left queued behind a driver that is
//!    already blocked. The kernel counts a request as its submitting
//!    thread's and cancels a thread's requests when the thread exits
//!    (`-ECANCELED`); the op layer submits such an op again, since nobody
//!    asked for that cancel (`crate::op`'s io_uring backend, step 2).
//! 3. **Wait** (`Ring::wait`, the reactor's driver only): under the
//!    submission lock, arm the epoll poll if it is not armed (a one-shot
//!    `POLL_ADD` of the epoll descriptor, tag [`EPOLL_TAG`]) and, for a
//!    blocking wait, set the `waiting` flag. Then one `io_uring_enter`
//!    that submits the queue and waits for one completion, with the
//!    timeout in the call (never early: the kernel's timer). A zero
//!    timeout does not enter the kernel at all unless entries are queued:
//!    completions are posted to the queue by the kernel's task work, which
//!    runs as soon as the submitting thread is interrupted, so the queue is
//!    read as it is. `ETIME` and `EINTR` are ordinary returns.
//! 4. **Reap**: every completion is read. The epoll tag means "epoll has
//!    events": the poll is one-shot, so it is re-armed by the next wait
//!    (where its submission costs nothing extra), and the caller collects
//!    the events with a zero-timeout `epoll_wait`. A one-shot poll re-armed
//!    while epoll still has events (level-triggered sources, or more than
//!    one `epoll_wait` can return) completes at once, so none is lost.
//!    Completions tagged [`IGNORED_TAG`] (cancel requests) are dropped. The
//!    rest are returned as `(user data, result)` for the op layer.
//! 5. **Wake** (`Poller::notify`, unchanged): one write to the eventfd
//!    registered in epoll; epoll becomes readable, the ring's poll of it
//!    completes, and the blocked `io_uring_enter` returns. Still one system
//!    call, only when no notification is pending, and async-signal-safe.
//!
//! Why one ring per runtime behind a lock, rather than one per worker:
//! ebbtide's workers take turns driving the reactor, and any task may
//! move to any worker; with a ring per worker, a completion would arrive
//! at a ring nobody waits in unless every worker waits in its own, which
//! costs a wake-up per idle worker. One ring has one waiter, like the
//! epoll instance. The submission lock is held only to copy one 64-byte
//! entry; submission system calls are made outside it.
//!
//! Memory the kernel reads or writes for an op (buffers, paths, addresses)
//! is owned by the op layer's slot until the op's completion is reaped;
//! the ring itself lives as long as any op holds it (`Arc<Ring>` in each
//! op's state), so a ring with ops never acknowledged is never unmapped.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::Completion;

/// User data of the ring's poll of the epoll descriptor (step 3). Op keys
/// use at most 62 bits, so the top bit never belongs to an op.
pub(crate) const EPOLL_TAG: u64 = 1 << 63;
/// User data of entries whose completion nobody waits for (cancel
/// requests): reaped and dropped (step 4).
pub(crate) const IGNORED_TAG: u64 = (1 << 63) | 1;

/// Submission-queue entries (the completion queue has twice as many).
const ENTRIES: u32 = 1024;

/// The submission entry type, for the op layer to build.
pub(crate) use io_uring::squeue::Entry;
/// The opcodes and argument types, for the op layer to build entries.
pub(crate) use io_uring::{opcode as ops, types as args};

/// State under the submission lock.
struct Sq {
    /// The epoll poll is in the ring (armed and not yet completed).
    epoll_armed: bool,
}

/// One io_uring with its locks (see the module doc).
pub(crate) struct Ring {
    ring: IoUring,
    sq: Mutex<Sq>,
    /// Held while the completion queue is read (only the reactor's driver
    /// reads it, so this lock is never contended; it keeps the unsafe
    /// shared access sound whoever calls).
    cq: Mutex<()>,
    /// Step 2: a driver is blocked (or about to block) in `io_uring_enter`.
    waiting: AtomicBool,
    epoll_fd: RawFd,
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
    opcode::PollAdd::CODE,
    opcode::AsyncCancel::CODE,
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Fsync::CODE,
    opcode::OpenAt::CODE,
    opcode::Close::CODE,
    opcode::Recv::CODE,
    opcode::Send::CODE,
];

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("ebbtide: this kernel's io_uring lacks {what}"),
    )
}

impl Ring {
    /// Step 1, for the epoll instance `epoll_fd` (which must outlive the
    /// ring).
    pub(crate) fn new(epoll_fd: RawFd) -> io::Result<Ring> {
        // `dontfork`: a forked child shares no ring memory with its parent.
        let ring = IoUring::builder()
            .setup_clamp()
            .setup_cqsize(ENTRIES * 2)
            .dontfork()
            .build(ENTRIES)?;
        let params = ring.params();
        if !params.is_feature_ext_arg() {
            return Err(unsupported("timed waits (IORING_FEAT_EXT_ARG, Linux 5.11)"));
        }
        if !params.is_feature_nodrop() {
            return Err(unsupported("IORING_FEAT_NODROP (Linux 5.5)"));
        }
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if let Some(code) = REQUIRED.iter().find(|&&c| !probe.is_supported(c)) {
            return Err(unsupported(&format!("opcode {code}")));
        }
        Ok(Ring {
            ring,
            sq: Mutex::new(Sq { epoll_armed: false }),
            cq: Mutex::new(()),
            waiting: AtomicBool::new(false),
            epoll_fd,
        })
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

    /// Steps 3 and 4: waits up to `timeout` (`None`: until something
    /// completes), appends the ops' completions to `out`, and says whether
    /// the epoll instance has events to collect.
    pub(crate) fn wait(
        &self,
        out: &mut Vec<Completion>,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        let block = timeout != Some(Duration::ZERO);
        let poll = opcode::PollAdd::new(types::Fd(self.epoll_fd), libc::POLLIN as u32)
            .build()
            .user_data(EPOLL_TAG);
        let queued = self.with_sq(|state, sq| {
            if !state.epoll_armed {
                // SAFETY: the entry holds no pointer; the epoll descriptor
                // outlives the ring (`new`'s contract).
                unsafe { self.push_in(sq, &poll) }?;
                state.epoll_armed = true;
            }
            if block {
                self.waiting.store(true, Ordering::SeqCst);
            }
            io::Result::Ok(!sq.is_empty())
        })?;
        let res = if !block {
            if queued {
                self.ring.submitter().submit().map(drop)
            } else {
                Ok(())
            }
        } else {
            let res = match timeout {
                None => self.ring.submitter().submit_and_wait(1),
                Some(t) => {
                    let ts = types::Timespec::new()
                        .sec(t.as_secs())
                        .nsec(t.subsec_nanos());
                    let args = types::SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args)
                }
            };
            self.waiting.store(false, Ordering::SeqCst);
            res.map(drop)
        };
        match res {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        Ok(self.reap(out))
    }

    /// Step 4.
    fn reap(&self, out: &mut Vec<Completion>) -> bool {
        let _cq_lock = self.cq.lock().unwrap_or_else(|e| e.into_inner());
        let mut epoll = false;
        // SAFETY: the completion lock makes this the queue's only reader.
        let cq = unsafe { self.ring.completion_shared() };
        for cqe in cq {
            match cqe.user_data() {
                EPOLL_TAG => {
                    epoll = true;
                    if !cqueue::more(cqe.flags()) {
                        self.lock_sq().epoll_armed = false;
                    }
                }
                IGNORED_TAG => {}
                user_data => out.push(Completion {
                    key: user_data as usize,
                    result: cqe.result(),
                }),
            }
        }
        epoll
    }
}
