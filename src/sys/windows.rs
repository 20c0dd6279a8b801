//! Windows primitives: sockets, non-blocking mode, positional file I/O,
//! thread exit. Socket readiness comes from `polling`'s IOCP poller (AFD
//! polling); overlapped file and pipe operations are the op layer's
//! completion backend, which registers with the same port.

use std::io;
use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, RawSocket};

/// The raw handle the poller registers: a `SOCKET`.
pub(crate) type RawSource = RawSocket;

/// An I/O object the reactor can register: anything that owns a socket.
pub trait AsSourceHandle: AsSocket {}
impl<T: AsSocket> AsSourceHandle for T {}

/// Raw socket of `io`.
pub(crate) fn raw(io: &impl AsSourceHandle) -> RawSource {
    io.as_socket().as_raw_socket()
}

/// Borrows `raw` for a `modify`/`delete` call.
///
/// # Safety
///
/// `raw` must be an open socket for the whole lifetime of the returned value.
pub(crate) unsafe fn borrow<'a>(raw: RawSource) -> BorrowedSocket<'a> {
    // SAFETY: the caller guarantees `raw` stays open while borrowed.
    unsafe { BorrowedSocket::borrow_raw(raw) }
}

/// Puts `io` in non-blocking mode (`FIONBIO`).
pub(crate) fn set_nonblocking(io: &impl AsSourceHandle) -> io::Result<()> {
    use windows_sys::Win32::Networking::WinSock::{ioctlsocket, FIONBIO, SOCKET_ERROR};
    let mut on: u32 = 1;
    // SAFETY: the socket is open (borrowed from `io` for this call) and `on`
    // is a valid u32 that outlives the call.
    let rc = unsafe { ioctlsocket(raw(io) as _, FIONBIO, &mut on) };
    if rc == SOCKET_ERROR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// No read here can promise not to wait: always the blocking pool (or an
/// overlapped read).
pub(crate) fn read_file_at_cached(
    _file: &std::fs::File,
    _spare: &mut [std::mem::MaybeUninit<u8>],
    _pos: u64,
) -> Option<io::Result<usize>> {
    None
}

/// Positional read for the blocking pool (`ReadFile` with an offset; it
/// moves the file cursor, as Windows always does for synchronous handles).
pub(crate) fn read_file_at(file: &std::fs::File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// Positional write for the blocking pool (`WriteFile` with an offset).
pub(crate) fn write_file_at(file: &std::fs::File, buf: &[u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(file, buf, pos)
}

/// See the backend contract: the thread's handle is signalled only once the
/// thread has left the loader's exit notifications, so a zero-timeout wait
/// on it says whether `join` would return at once.
pub(crate) fn thread_has_exited(thread: &std::thread::JoinHandle<()>) -> bool {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
    use windows_sys::Win32::System::Threading::WaitForSingleObject;
    // SAFETY: the handle is owned by `thread`, open while it is borrowed;
    // a zero-timeout wait neither blocks nor changes it.
    let waited = unsafe { WaitForSingleObject(thread.as_raw_handle(), 0) };
    thread.is_finished() && waited == WAIT_OBJECT_0
}

/// Options a listening TCP socket gets before `bind`: none. (Windows'
/// `SO_REUSEADDR` would let another socket steal the port, and a port in
/// `TIME_WAIT` can be bound again anyway.)
pub(crate) fn prepare_listener(socket: &socket2::Socket) -> io::Result<()> {
    let _ = socket;
    Ok(())
}

/// Whether a non-blocking `connect` error means "started, not finished"
/// (`WSAEWOULDBLOCK`).
pub(crate) fn connect_in_progress(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Files opened by `ebbtide::fs` use overlapped I/O (the op layer's
/// completion backend).
pub(crate) fn prepare_file_options(opts: &mut std::fs::OpenOptions) -> bool {
    use std::os::windows::fs::OpenOptionsExt;
    opts.custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OVERLAPPED);
    true
}

/// A monotonic clock for the stall detector, read once per task poll, in
/// nanoseconds since the first call (`Instant`, i.e.
/// `QueryPerformanceCounter`).
pub(crate) fn coarse_clock() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// How far [`coarse_clock`] may lag real time, in nanoseconds.
pub(crate) fn coarse_clock_resolution() -> u64 {
    1_000
}
