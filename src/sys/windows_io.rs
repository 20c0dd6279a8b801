//! Raw overlapped I/O calls, for the op layer's IOCP backend (which owns
//! the state these pointers point into, and the protocol around them).

use std::io;
use std::os::windows::io::{FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_BROKEN_PIPE, ERROR_HANDLE_EOF, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING,
    ERROR_MORE_DATA, ERROR_PIPE_CONNECTED, HANDLE,
};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
use windows_sys::Win32::System::Threading::CreateEventW;
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult};

pub(crate) use windows_sys::Win32::System::IO::OVERLAPPED;

/// What an overlapped call asks the kernel to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OverlappedCall {
    /// `ReadFile` into a buffer.
    Read,
    /// `WriteFile` from a buffer.
    Write,
    /// `ConnectNamedPipe` (no buffer).
    Connect,
}

/// How a started call went.
pub(crate) enum Started {
    /// The kernel took the op; its event will be signalled when it is over
    /// (also when it finished at once: a synchronous success still signals).
    InFlight,
    /// The kernel did not take the op (or it needs no completion: a pipe
    /// already connected); this is its result, and the event will not be
    /// signalled.
    Done(io::Result<usize>),
}

/// A new manual-reset, unsignalled, unnamed event.
pub(crate) fn create_event() -> io::Result<OwnedHandle> {
    // SAFETY: plain FFI with null attributes and name.
    let raw = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `CreateEventW` returned a new handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

/// An `OVERLAPPED` for an op at file offset `offset` that signals `event`.
pub(crate) fn overlapped(offset: u64, event: HANDLE) -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; all-zero is its documented start.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = offset as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    ov.hEvent = event;
    ov
}

/// Starts `call` on `handle`.
///
/// # Safety
///
/// `handle` is open, `buf` is valid for `len` bytes (written for a read,
/// read for a write; unused for a connect) and `ov` for an `OVERLAPPED`,
/// and all three stay so until the op is over: [`result`] returned `Some`,
/// or the call returned [`Started::Done`].
pub(crate) unsafe fn start(
    call: OverlappedCall,
    handle: HANDLE,
    buf: *mut u8,
    len: usize,
    ov: *mut OVERLAPPED,
) -> Started {
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    // SAFETY: the caller's contract.
    let ok = unsafe {
        match call {
            OverlappedCall::Read => ReadFile(handle, buf, len32, std::ptr::null_mut(), ov),
            OverlappedCall::Write => WriteFile(handle, buf, len32, std::ptr::null_mut(), ov),
            OverlappedCall::Connect => ConnectNamedPipe(handle, ov),
        }
    };
    if ok != 0 {
        return Started::InFlight;
    }
    // SAFETY: plain FFI, right after the failed call.
    match unsafe { GetLastError() } {
        ERROR_IO_PENDING => Started::InFlight,
        ERROR_PIPE_CONNECTED if call == OverlappedCall::Connect => Started::Done(Ok(0)),
        code => Started::Done(map_error(code, 0)),
    }
}

/// The op's result once it is over; `None` while it is still in flight (a
/// spurious signal). Never blocks.
///
/// # Safety
///
/// `handle` is open and `ov` is the `OVERLAPPED` the op was started with.
pub(crate) unsafe fn result(handle: HANDLE, ov: *mut OVERLAPPED) -> Option<io::Result<usize>> {
    let mut n: u32 = 0;
    // SAFETY: the caller's contract; bWait = FALSE never blocks.
    if unsafe { GetOverlappedResult(handle, ov, &mut n, 0) } != 0 {
        return Some(Ok(n as usize));
    }
    // SAFETY: plain FFI, right after the failed call.
    match unsafe { GetLastError() } {
        ERROR_IO_INCOMPLETE => None,
        code => Some(map_error(code, n as usize)),
    }
}

/// Asks the kernel to cancel the op; its completion still follows (with
/// `ERROR_OPERATION_ABORTED`, or success if it won the race). An op already
/// over makes this fail with `ERROR_NOT_FOUND`, which is ignored.
///
/// # Safety
///
/// `handle` is open and `ov` is the `OVERLAPPED` the op was started with.
pub(crate) unsafe fn cancel(handle: HANDLE, ov: *mut OVERLAPPED) {
    // SAFETY: the caller's contract.
    unsafe { CancelIoEx(handle, ov) };
}

/// A failed op's result: the end of a pipe or file is a read of `n` (0)
/// bytes, a partial message read is a read of `n` bytes.
fn map_error(code: u32, n: usize) -> io::Result<usize> {
    match code {
        ERROR_BROKEN_PIPE | ERROR_HANDLE_EOF | ERROR_MORE_DATA => Ok(n),
        _ => Err(io::Error::from_raw_os_error(code as i32)),
    }
}
