//! Unix child processes without std: on Linux, starting a program with
//! `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` on a stack the calling
//! thread keeps for the next spawn (elsewhere, and under Miri, `spawn`
//! says "use std"); everywhere, reaping and killing such a child.
//!
//! glibc's `posix_spawn` (under `std::process::Command::spawn`) maps a new
//! stack for every child and unmaps it after, and the caller then asks for
//! a `pidfd` with one more call. Here the stack is the thread's own,
//! allocated once, and the kernel hands out the `pidfd` with the child, so
//! a spawn costs the parent `clone`, two signal-mask calls and the pipes'
//! calls.
//!
//! # Protocol
//!
//! 1. **Prepare, in the parent.** Everything the child needs is built
//!    before the clone, since the child may not allocate: the `argv` and
//!    `envp` arrays (or the process's `environ`), the candidate paths of
//!    the program (one, or one per `PATH` entry), the working directory,
//!    and the three descriptors the child gets as 0, 1 and 2 (a pipe's
//!    end, `/dev/null`, or the caller's descriptor; each moved above 2 if
//!    it is not, so that placing one never overwrites another).
//! 2. **Block every signal** in the calling thread. The child shares the
//!    parent's memory until it calls `execve`: a signal handler run in it
//!    would run on the parent's data.
//! 3. **Clone.** The calling thread is suspended until the child has
//!    called `execve` successfully or exited (`CLONE_VFORK`). The child,
//!    on the thread's spawn stack:
//!    1. sets every signal with a handler back to `SIG_DFL`, and `SIGPIPE`
//!       too (std's spawn does that: Rust programs ignore `SIGPIPE`);
//!    2. places its descriptors (`dup2`, which clears `FD_CLOEXEC`) and
//!       changes directory;
//!    3. restores the mask the thread had before step 2 (a child inherits
//!       its parent's mask, as with std);
//!    4. `execve`s each candidate path in turn while the error says "not
//!       here" (`ENOENT`, `ENOTDIR`, `EACCES`; `EACCES` is reported if no
//!       candidate ran, as `execvp` does);
//!    5. on failure, stores the error in the shared block and exits 127.
//! 4. **Back in the parent:** restore the signal mask, close the child's
//!    ends, and read the shared block. An error there means the child has
//!    already exited: it is reaped and the error returned. A kernel without
//!    `CLONE_PIDFD` (before 5.2) refuses the clone with `EINVAL`; the
//!    caller then spawns through std (`Ok(None)`).
//!
//! # Why it is sound
//!
//! The child runs while its parent thread is stopped, on a stack nothing
//! else uses (the thread's spawn stack: the thread is stopped for as long
//! as the child uses it), touching only memory prepared in step 1, and it
//! calls only async-signal-safe functions. It shares the thread's TLS, so
//! its `errno` writes land in the stopped thread's `errno`: the parent
//! reads the child's error from the shared block, never from `errno`.
//! `environ` is read without std's environment lock: `std::env::set_var`
//! may only be called while no other thread reads the environment, and
//! spawning a program reads it (as glibc's `posix_spawn` does).

use std::ffi::{c_int, CString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) use linux::spawn;

/// Whether `spawn` can start a program here (else the caller goes to std
/// at once, without building a plan).
pub(crate) const OWN_SPAWN: bool = cfg!(all(target_os = "linux", not(miri)));

/// What becomes one of the child's standard descriptors.
#[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
pub(crate) enum ChildIo<'a> {
    /// The parent's own.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A new pipe; the parent gets the other end.
    Piped,
    /// A duplicate of this descriptor.
    Fd(BorrowedFd<'a>),
}

/// A program to start: what step 1 needs.
#[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
pub(crate) struct SpawnPlan<'a> {
    /// The paths to `execve`, in order.
    pub(crate) paths: Vec<CString>,
    /// The arguments, the program's name first.
    pub(crate) argv: Vec<CString>,
    /// The environment; `None`: the process's own.
    pub(crate) env: Option<Vec<CString>>,
    /// The working directory; `None`: the parent's.
    pub(crate) cwd: Option<CString>,
    /// Descriptors 0, 1, 2.
    pub(crate) stdio: [ChildIo<'a>; 3],
}

/// A started child.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: u32,
    /// Readable once the child exits.
    pub(crate) pidfd: OwnedFd,
    /// The parent's ends of the pipes asked for (stdin's write end,
    /// stdout's and stderr's read ends), blocking.
    pub(crate) pipes: [Option<OwnedFd>; 3],
}

/// No spawn of our own here: the caller spawns through std.
#[cfg(not(all(target_os = "linux", not(miri))))]
pub(crate) fn spawn(_plan: &SpawnPlan<'_>) -> io::Result<Option<Spawned>> {
    Ok(None)
}

/// Reaps child `pid` if it has exited: its raw wait status, or `None` if
/// it still runs.
pub(crate) fn try_reap(pid: u32) -> io::Result<Option<c_int>> {
    let mut status = 0;
    // SAFETY: `status` is valid; `pid` is a child of this process.
    match unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        n if n > 0 => Ok(Some(status)),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Sends `SIGKILL` to child `pid`, which the caller has not reaped (so the
/// pid is still its child's).
pub(crate) fn kill(pid: u32) -> io::Result<()> {
    // SAFETY: a plain syscall with integer arguments.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(all(target_os = "linux", not(miri)))]
mod linux {
    use std::cell::UnsafeCell;
    use std::ffi::{c_int, c_void, CString};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::ptr;
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::{ChildIo, SpawnPlan, Spawned};

    /// The spawn stack's size: the child's frames are `ChildBlock::run` and
    /// libc's `sigaction`, `dup2`, `chdir` and `execve`.
    const STACK_WORDS: usize = 64 * 1024 / 16;

    thread_local! {
        /// This thread's spawn stack (step 3), allocated by its first spawn.
        static STACK: Box<UnsafeCell<[u128; STACK_WORDS]>> =
            Box::new(UnsafeCell::new([0; STACK_WORDS]));
    }

    /// Everything the child reads, and where it writes its error: memory the
    /// parent prepared and keeps alive across the clone.
    struct ChildBlock {
        paths: Vec<*const libc::c_char>,
        argv: *const *const libc::c_char,
        envp: *const *const libc::c_char,
        cwd: *const libc::c_char,
        fds: [RawFd; 3],
        /// The spawning thread's signal mask before step 2, which the child
        /// gets.
        mask: libc::sigset_t,
        /// The child's `errno` when it could not exec; 0 if it did.
        error: AtomicI32,
    }

    extern "C" {
        static environ: *const *const libc::c_char;
    }

    /// Starts `plan`'s program (the module doc's protocol). `Ok(None)`: this
    /// kernel has no `CLONE_PIDFD`; nothing was started.
    pub(crate) fn spawn(plan: &SpawnPlan<'_>) -> io::Result<Option<Spawned>> {
        // Step 1.
        let mut child_ends: Vec<OwnedFd> = Vec::new();
        let mut pipes: [Option<OwnedFd>; 3] = [None, None, None];
        let mut fds = [-1; 3];
        for (i, io) in plan.stdio.iter().enumerate() {
            let fd = match io {
                ChildIo::Inherit => continue,
                ChildIo::Null => {
                    let null = open_null()?;
                    let fd = null.as_raw_fd();
                    child_ends.push(null);
                    fd
                }
                ChildIo::Piped => {
                    let (read, write) = pipe()?;
                    let (theirs, ours) = if i == 0 { (read, write) } else { (write, read) };
                    let fd = theirs.as_raw_fd();
                    child_ends.push(theirs);
                    pipes[i] = Some(ours);
                    fd
                }
                ChildIo::Fd(fd) => fd.as_raw_fd(),
            };
            fds[i] = if fd > 2 {
                fd
            } else {
                let high = dup_above_stdio(fd)?;
                let fd = high.as_raw_fd();
                child_ends.push(high);
                fd
            };
        }
        let argv = pointers(&plan.argv);
        let env = plan.env.as_ref().map(|env| pointers(env));
        let envp = match &env {
            Some(env) => env.as_ptr(),
            // SAFETY: reading the pointer; see the module doc on `environ`.
            None => unsafe { environ },
        };
        let mut block = ChildBlock {
            paths: plan.paths.iter().map(|p| p.as_ptr()).collect(),
            argv: argv.as_ptr(),
            envp,
            cwd: plan.cwd.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            fds,
            mask: empty_sigset(),
            error: AtomicI32::new(0),
        };

        // Steps 2 to 4.
        let mut pidfd: c_int = -1;
        let pid = STACK.with(|stack| {
            let top = stack.get().cast::<u128>().wrapping_add(STACK_WORDS);
            let mut all = empty_sigset();
            // SAFETY: valid sigset pointers for the calls.
            unsafe {
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut block.mask);
            }
            // SAFETY: `top` is the 16-byte aligned end of this thread's spawn
            // stack, which nothing else uses while this thread is stopped
            // (`CLONE_VFORK`); `block` and `pidfd` live until after the child
            // has exec'd or exited; `ChildBlock::run` touches only `block`.
            let pid = unsafe {
                libc::clone(
                    ChildBlock::run,
                    top.cast::<c_void>(),
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
                    ptr::from_ref(&block).cast_mut().cast::<c_void>(),
                    ptr::from_mut(&mut pidfd),
                )
            };
            let err = io::Error::last_os_error();
            // SAFETY: as above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &block.mask, ptr::null_mut()) };
            if pid < 0 {
                Err(err)
            } else {
                Ok(pid)
            }
        });
        drop(child_ends);
        let pid = match pid {
            Ok(pid) => pid,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        };
        // SAFETY: the kernel wrote a new descriptor, which only this owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        match block.error.load(Ordering::Acquire) {
            0 => Ok(Some(Spawned {
                pid: pid as u32,
                pidfd,
                pipes,
            })),
            errno => {
                // The child has exited (it never exec'd): reap it.
                let mut status = 0;
                // SAFETY: `pid` is our unreaped child; `status` is valid.
                while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                    && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                {
                }
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }

    impl ChildBlock {
        /// Step 3, in the child: only async-signal-safe calls, no allocation,
        /// no unwinding.
        extern "C" fn run(arg: *mut c_void) -> c_int {
            // SAFETY: `arg` is the parent's `ChildBlock`, alive and unchanged
            // while the parent is stopped.
            let block = unsafe { &*arg.cast::<ChildBlock>() };
            // SAFETY: the calls take valid pointers to local values.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                for sig in 1..libc::SIGRTMAX() + 1 {
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, ptr::null(), &mut old) != 0 {
                        continue; // libc's own signals, which it does not let us see
                    }
                    if sig == libc::SIGPIPE
                        || (old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
                    {
                        libc::sigaction(sig, &dfl, ptr::null_mut());
                    }
                }
            }
            for (target, &fd) in block.fds.iter().enumerate() {
                // SAFETY: plain descriptor calls.
                if fd >= 0 && unsafe { libc::dup2(fd, target as c_int) } < 0 {
                    return block.fail(errno());
                }
            }
            // SAFETY: `cwd` is null or a C string the parent keeps alive.
            if !block.cwd.is_null() && unsafe { libc::chdir(block.cwd) } < 0 {
                return block.fail(errno());
            }
            // SAFETY: a valid sigset.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &block.mask, ptr::null_mut()) };
            let mut error = libc::ENOENT;
            for &path in &block.paths {
                // SAFETY: NUL-terminated arrays of C strings, kept alive by the
                // parent.
                unsafe { libc::execve(path, block.argv, block.envp) };
                match errno() {
                    libc::ENOENT | libc::ENOTDIR => {}
                    libc::EACCES => error = libc::EACCES,
                    other => return block.fail(other),
                }
            }
            block.fail(error)
        }

        /// Step 3.5.
        fn fail(&self, errno: c_int) -> c_int {
            self.error.store(errno, Ordering::Release);
            // SAFETY: ends the child; `_exit` runs no handlers.
            unsafe { libc::_exit(127) }
        }
    }

    fn errno() -> c_int {
        // SAFETY: the calling thread's `errno` location.
        unsafe { *libc::__errno_location() }
    }

    fn empty_sigset() -> libc::sigset_t {
        // SAFETY: an all-zero `sigset_t` is a valid (empty) set.
        unsafe { std::mem::zeroed() }
    }

    /// A NUL-terminated array of pointers to `strings`.
    fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect()
    }

    fn open_null() -> io::Result<OwnedFd> {
        // SAFETY: a constant C string path.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        owned(fd)
    }

    /// A pipe, both ends close-on-exec and blocking (the child's end must be
    /// blocking; the caller makes its own end non-blocking).
    fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel wrote two new descriptors, owned only here.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// A close-on-exec duplicate of `fd` numbered 3 or above.
    fn dup_above_stdio(fd: RawFd) -> io::Result<OwnedFd> {
        // SAFETY: a descriptor call with integer arguments.
        owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
    }

    fn owned(fd: c_int) -> io::Result<OwnedFd> {
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
