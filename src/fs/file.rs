//! [`File`]: an open file, its positional calls, its owned-buffer calls
//! at its position, and the calls that wait for its op in flight. The
//! stream traits and the op in flight are in `stream.rs`.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::stream::{Done, InFlight};
use super::{current, run, run_buf, run_buf_on, OpenOptions};
use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::op;
use crate::sys;

/// The largest buffer a stream read or write uses unless
/// [`File::set_max_buf_size`] says otherwise (as tokio's `File`).
pub(super) const DEFAULT_MAX_BUF: usize = 2 * 1024 * 1024;

/// An open file: positional owned-buffer I/O, and a stream (futures-io
/// `AsyncRead`, `AsyncWrite`, `AsyncSeek`) with a buffer of its own.
///
/// The position is the `File`'s (see the [module docs](crate::fs) for the
/// stream's protocol and what a dropped future does). It is shared, as
/// std's cursor is, with the `File`s [`try_clone`](File::try_clone) makes.
/// [`read_owned`](File::read_owned), [`write_all_owned`](File::write_all_owned),
/// the stream traits, [`position`](File::position) and
/// [`set_position`](File::set_position) all use and move that one position,
/// and each waits for the op the one before it started: they mix freely.
/// [`read_at`](File::read_at), [`write_at`](File::write_at) and
/// [`write_all_at`](File::write_all_at) neither use nor move it.
///
/// # Examples
///
/// ```
/// use ebbtide::fs::File;
/// use ebbtide::io::BufResult;
///
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-{}", std::process::id()));
///     let file = File::options()
///         .read(true)
///         .write(true)
///         .create(true)
///         .truncate(true)
///         .open(&path)
///         .await?;
///     let BufResult(res, _) = file.write_at(b"hello world".to_vec(), 0).await;
///     res?;
///     let BufResult(n, buf) = file.read_at(Vec::with_capacity(5), 6).await;
///     assert_eq!(n?, 5);
///     assert_eq!(buf, b"world");
///     ebbtide::fs::remove_file(&path).await?;
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// As a stream:
///
/// ```
/// use ebbtide::fs::File;
/// use futures_lite::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use std::io::SeekFrom;
///
/// ebbtide::block_on(async {
///     let path = std::env::temp_dir().join(format!("ebbtide-doc-stream-{}", std::process::id()));
///     let mut file = File::options()
///         .read(true)
///         .write(true)
///         .create(true)
///         .truncate(true)
///         .open(&path)
///         .await?;
///     file.write_all(b"hello stream").await?;
///     file.seek(SeekFrom::Start(6)).await?;
///     let mut rest = String::new();
///     file.read_to_string(&mut rest).await?;
///     assert_eq!(rest, "stream");
///     ebbtide::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    /// The handle every op clones.
    pub(super) handle: Handle,
    /// Where the next stream op starts, shared with this file's
    /// `try_clone`s as the OS shares a cursor between duplicated handles.
    /// It is past the bytes read ahead into `buf` (as the OS cursor is past
    /// a `BufReader`'s): the position is `cursor - unread()`.
    pub(super) cursor: Arc<AtomicU64>,
    /// Bytes read ahead, handed out from `consumed` on. Empty while a
    /// stream read or write is in flight: that op owns the allocation.
    pub(super) buf: Vec<u8>,
    /// How many of `buf`'s bytes were handed out.
    pub(super) consumed: usize,
    /// The op in flight, at most one; the `File` owns it, whoever started
    /// it, so a dropped future never leaves one behind unordered.
    pub(super) busy: Option<InFlight>,
    /// `buf` holds the result of a completed read not all handed out yet
    /// (no bytes at all: that read found the end of the file).
    pub(super) read_ready: bool,
    /// The error of a read that completed while no read waited for it,
    /// for the next read.
    pub(super) read_err: Option<io::Error>,
    /// The error of an accepted write (or of a dropped `write_all_owned`
    /// or `set_len`), for the next operation.
    pub(super) write_err: Option<io::Error>,
    /// The length a `SeekFrom::End` seek asked for, when its op completed
    /// before the seek was polled again.
    pub(super) seek_len: Option<io::Result<u64>>,
    /// A `set_position` made while an op was in flight: applied when it
    /// completes (after the op's own move).
    pub(super) reposition: Option<u64>,
    /// The largest buffer one stream op uses.
    pub(super) max_buf: usize,
}

/// The part of a `File` that ops clone and own: the std file and how to
/// reach it.
#[derive(Clone, Debug)]
pub(super) struct Handle {
    /// The std file; each op holds a clone until the op is over.
    file: Arc<std::fs::File>,
    /// Opened for the completion backend (overlapped I/O on Windows): reads
    /// and writes go to the kernel as ops instead of the blocking pool.
    overlapped: bool,
    /// How many more reads skip the inline cached read, after one the
    /// page cache could not serve ([`read_cached`]).
    skip_inline: Arc<AtomicU8>,
}

/// The reads of a file that skip the inline cached read after one that
/// missed the page cache ([`read_cached`]).
const SKIP_AFTER_MISS: u8 = 7;

impl Handle {
    fn new(file: Arc<std::fs::File>, overlapped: bool) -> Handle {
        Handle {
            file,
            overlapped,
            skip_inline: Arc::default(),
        }
    }
}

/// The largest read [`File::read_at`] tries on the task's thread (64 KiB:
/// a copy of a few microseconds).
const INLINE_READ_MAX: usize = 64 << 10;

/// The read of [`File::read_at`] (and of the stream's read-ahead) that
/// skips the pool: where the OS can read without waiting for the disk
/// (`sys::read_file_at_cached`: the page cache on Linux), the read runs
/// here, on the task's thread, at the cost of a `pread` instead of two
/// thread hand-offs. `None`: the data is not cached (or the OS cannot
/// tell), go to the pool.
///
/// Only reads of at most [`INLINE_READ_MAX`] bytes try it: a larger copy
/// would hold the worker (and every task queued behind it) for longer
/// than the pool's hand-off costs. It takes one unit of the task's
/// cooperative budget first (`crate::coop`), as a socket operation does: a
/// loop over cached reads is always ready, and must still let the worker's
/// other tasks run.
///
/// An attempt that misses costs a system call for nothing, so after a miss
/// the next [`SKIP_AFTER_MISS`] reads of the file go straight to the ring
/// or the pool (a file read mostly from the disk then pays one attempt per
/// eight reads; one read mostly from the cache misses rarely and is
/// barely affected).
async fn read_cached<B: IoBufMut>(
    file: &std::fs::File,
    buf: &mut B,
    pos: u64,
) -> Option<io::Result<usize>> {
    if buf.buf_capacity() - buf.buf_len() > INLINE_READ_MAX {
        return None;
    }
    std::future::poll_fn(crate::coop::poll_proceed).await;
    let res = sys::read_file_at_cached(file, buf.spare_mut(), pos)?;
    if let Ok(n) = res {
        // SAFETY: the OS wrote `n` bytes, at most the spare capacity's
        // length, into the spare capacity.
        unsafe { buf.advance_init(n) };
    }
    Some(res)
}

/// Reads at `pos` into `buf`'s spare capacity; grows its length by the
/// count. Runs on a pool thread.
fn read_into<B: IoBufMut>(file: &std::fs::File, buf: &mut B, pos: u64) -> io::Result<usize> {
    let spare = buf.spare_zeroed();
    if spare.is_empty() {
        return Ok(0);
    }
    let n = sys::read_file_at(file, spare, pos)?;
    // SAFETY: the OS wrote `n` bytes (at most `spare.len()`) into the spare
    // capacity, which `spare_zeroed` had initialized anyway.
    unsafe { buf.advance_init(n) };
    Ok(n)
}

fn write_all_at(file: &std::fs::File, mut bytes: &[u8], mut pos: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match sys::write_file_at(file, bytes, pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Handle {
    /// A positional read: inline when the pages are cached (not for a
    /// file opened for overlapped I/O, whose reads the port does at no
    /// hand-off cost), else through the completion backend (overlapped
    /// I/O on Windows, the ring on Linux's io_uring backend), else on the
    /// blocking pool.
    pub(super) async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let mut buf = buf;
        let spare = buf.buf_capacity() - buf.buf_len();
        if !self.overlapped && spare > 0 && spare <= INLINE_READ_MAX {
            let skip = self.skip_inline.load(Ordering::Relaxed);
            if skip > 0 {
                // A heuristic: a lost update between readers is harmless.
                self.skip_inline.store(skip - 1, Ordering::Relaxed);
            } else if let Some(res) = read_cached(&self.file, &mut buf, pos).await {
                return BufResult(res, buf);
            } else {
                self.skip_inline.store(SKIP_AFTER_MISS, Ordering::Relaxed);
            }
        }
        let ops = match current() {
            Ok(s) => s,
            Err(e) => return BufResult(Err(e), buf),
        };
        if buf.buf_len() < buf.buf_capacity() {
            match op::read_file_at(&ops, &self.file, self.overlapped, buf, pos) {
                Ok(op) => return op.await,
                Err(b) => buf = b,
            }
        }
        let file = self.file.clone();
        run_buf_on(&ops, buf, move |buf| read_into(&file, buf, pos)).await
    }

    /// A positional write: through the completion backend if there is one
    /// for this file, else on the blocking pool.
    pub(super) async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let ops = match current() {
            Ok(s) => s,
            Err(e) => return BufResult(Err(e), buf),
        };
        let buf = match op::write_file_at(&ops, &self.file, self.overlapped, buf, pos) {
            Ok(op) => return op.await,
            Err(buf) => buf,
        };
        let file = self.file.clone();
        run_buf_on(&ops, buf, move |buf| {
            sys::write_file_at(&file, buf.as_init(), pos)
        })
        .await
    }

    /// Whether this file's positional ops go through a completion backend
    /// (one op per chunk the kernel takes) rather than the blocking pool.
    fn completes(&self) -> bool {
        self.overlapped || current().is_ok_and(|ops| ops.completes_files())
    }

    /// `fsync` (`data_only`: `fdatasync`) through the completion backend
    /// where it has one, else on the blocking pool.
    pub(super) async fn sync(&self, data_only: bool) -> io::Result<()> {
        if let Some(op) = op::sync_file(&current()?, &self.file, data_only) {
            return op.await;
        }
        if data_only {
            self.run(|f| f.sync_data()).await
        } else {
            self.run(|f| f.sync_all()).await
        }
    }

    pub(super) async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        if self.completes() {
            // One completion-backend write per chunk the kernel takes.
            let total = buf.buf_len();
            let mut done = 0;
            let mut slice = buf.slice(..total);
            while done < total {
                let BufResult(res, s) = self.write_at(slice, pos + done as u64).await;
                let buf = s.into_inner();
                match res {
                    Ok(0) => return BufResult(Err(io::ErrorKind::WriteZero.into()), buf),
                    Ok(n) => done += n,
                    Err(e) => return BufResult(Err(e), buf),
                }
                slice = buf.slice(done..total);
            }
            return BufResult(Ok(()), slice.into_inner());
        }
        let file = self.file.clone();
        run_buf(buf, move |buf| write_all_at(&file, buf.as_init(), pos)).await
    }

    /// Runs `f` on the std file on the blocking pool.
    pub(super) async fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    {
        let file = self.file.clone();
        run(move || f(&file)).await
    }
}

impl File {
    /// A `File` at the start of `file` (or where `overlapped` says the
    /// completion backend takes its ops).
    pub(super) fn from_parts(file: std::fs::File, overlapped: bool) -> File {
        File::with_cursor(
            Handle::new(Arc::new(file), overlapped),
            Arc::new(AtomicU64::new(0)),
        )
    }

    fn with_cursor(handle: Handle, cursor: Arc<AtomicU64>) -> File {
        File {
            handle,
            cursor,
            buf: Vec::new(),
            consumed: 0,
            busy: None,
            read_ready: false,
            read_err: None,
            write_err: None,
            seek_len: None,
            reposition: None,
            max_buf: DEFAULT_MAX_BUF,
        }
    }

    /// Opens a file for reading.
    ///
    /// # Errors
    ///
    /// The OS error of `open`, or the "outside a runtime" error.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncReadExt;
    ///
    /// ebbtide::block_on(async {
    ///     let mut file = ebbtide::fs::File::open("Cargo.toml").await?;
    ///     let mut text = String::new();
    ///     file.read_to_string(&mut text).await?;
    ///     assert!(text.starts_with("[package]"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) a file for writing.
    ///
    /// # Errors
    ///
    /// As for [`open`](File::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-create-file-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all(b"created").await?;
    ///     file.close().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"created");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Options to open a file with.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let file = ebbtide::fs::File::options().read(true).open("Cargo.toml").await?;
    ///     # drop(file);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file; the position starts at its cursor (0 if it
    /// cannot seek). Its reads and writes go to the blocking pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncReadExt;
    /// use std::io::{Seek, SeekFrom};
    ///
    /// ebbtide::block_on(async {
    ///     let mut std_file = std::fs::File::open("Cargo.toml")?;
    ///     std_file.seek(SeekFrom::Start(1))?;
    ///     let mut file = ebbtide::fs::File::from_std(std_file);
    ///     assert_eq!(file.position(), 1);
    ///     let mut head = [0; 7];
    ///     file.read_exact(&mut head).await?;
    ///     assert_eq!(&head, b"package");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(mut file: std::fs::File) -> File {
        let pos = file.stream_position().unwrap_or(0);
        let file = File::from_parts(file, false);
        file.cursor.store(pos, Ordering::Relaxed);
        file
    }

    /// The std file, if no op holds its handle (no op in flight, no job of
    /// a dropped positional call still running, no other reference);
    /// otherwise `self` back. The std file's cursor is set to this `File`'s
    /// position (if it can seek).
    ///
    /// A `File` opened by [`OpenOptions::open`] on Windows uses overlapped
    /// I/O, which std's `File` cannot use (its reads would abort the
    /// process): such a `File` is never converted.
    ///
    /// # Errors
    ///
    /// `self`, while an op still holds the handle, or if it is an
    /// overlapped handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// ebbtide::block_on(async {
    ///     let file = ebbtide::fs::File::from_std(std::fs::File::open("Cargo.toml")?);
    ///     let mut std_file = file.try_into_std().expect("no op in flight");
    ///     let mut text = String::new();
    ///     std_file.read_to_string(&mut text)?;
    ///     assert!(text.starts_with("[package]"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // The `File` itself comes back on failure, as from std-like
    // conversions elsewhere (tokio's `try_into_std`); boxing it would only
    // move the cost to every caller.
    #[allow(clippy::result_large_err)]
    pub fn try_into_std(mut self) -> Result<std::fs::File, File> {
        if self.busy.is_some() || self.handle.overlapped {
            return Err(self);
        }
        let pos = self.position();
        let handle = self.handle;
        match Arc::try_unwrap(handle.file) {
            Ok(mut file) => {
                // A file that cannot seek has no cursor to set.
                let _ = file.seek(SeekFrom::Start(pos));
                Ok(file)
            }
            Err(file) => {
                self.handle = Handle::new(file, handle.overlapped);
                Err(self)
            }
        }
    }

    /// Waits for the op in flight, then the std file, as
    /// [`try_into_std`](File::try_into_std); if a job of a dropped
    /// positional call still holds the handle, a duplicate of it.
    ///
    /// # Errors
    ///
    /// The error of a write this `File` accepted and never reported, the OS
    /// error of duplicating the handle, or `Unsupported` for an overlapped
    /// handle (Windows: see [`try_into_std`](File::try_into_std)); the
    /// file's writes are done in every case.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    /// use std::io::Write;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-into-std-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::from_std(std::fs::File::create(&path)?);
    ///     file.write_all(b"async ").await?;
    ///     // No flush: `into_std` waits for the write.
    ///     let mut std_file = file.into_std().await?;
    ///     std_file.write_all(b"then std")?;
    ///     assert_eq!(std::fs::read(&path)?, b"async then std");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn into_std(mut self) -> io::Result<std::fs::File> {
        self.settle().await?;
        if self.handle.overlapped {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ebbtide::fs::File::into_std: this file was opened for overlapped I/O, which \
                 std's File cannot use; open it with std and wrap it with File::from_std instead",
            ));
        }
        match self.try_into_std() {
            Ok(file) => Ok(file),
            Err(this) => {
                let pos = this.position();
                let mut file = this.handle.run(|f| f.try_clone()).await?;
                let _ = file.seek(SeekFrom::Start(pos));
                Ok(file)
            }
        }
    }

    /// A second `File` for the same open file (a duplicated handle). Like
    /// std's, the two share the position: a read, write or seek through
    /// either moves it for both. Each has its own buffer, so bytes one has
    /// read ahead are past the position the other sees (as with two
    /// `BufReader`s on cloned std files). Ops of the two that overlap in
    /// time are not atomic with each other: each reads the position when it
    /// starts and sets it when it completes.
    ///
    /// # Errors
    ///
    /// The OS error of duplicating the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-clone-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     let mut clone = file.try_clone().await?;
    ///     file.write_all(b"one ").await?;
    ///     file.flush().await?;
    ///     // The clone writes on from the shared position.
    ///     clone.write_all(b"two").await?;
    ///     clone.flush().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"one two");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn try_clone(&self) -> io::Result<File> {
        let file = self.handle.run(|f| f.try_clone()).await?;
        let handle = Handle::new(Arc::new(file), self.handle.overlapped);
        Ok(File::with_cursor(handle, self.cursor.clone()))
    }

    /// Reads up to the buffer's spare capacity at `pos` (the position is
    /// neither used nor moved); the buffer's length grows by the count,
    /// `Ok(0)` at EOF or when the buffer has no spare capacity. It does not
    /// wait for the stream's op in flight.
    ///
    /// On Linux a read of at most 64 KiB whose bytes are in the page cache
    /// runs at once on the task's thread (`preadv2` with `RWF_NOWAIT`: a
    /// copy, no thread hand-off) and may then be short, ending where the
    /// cached bytes end; any other read runs on the blocking pool (on
    /// Windows, as overlapped I/O for files opened by this module).
    ///
    /// # Errors
    ///
    /// The OS error, with the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    ///
    /// ebbtide::block_on(async {
    ///     let file = ebbtide::fs::File::open("Cargo.toml").await?;
    ///     let BufResult(n, buf) = file.read_at(Vec::with_capacity(7), 1).await;
    ///     assert_eq!(n?, 7);
    ///     assert_eq!(buf, b"package");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        self.handle.read_at(buf, pos).await
    }

    /// Writes the buffer's initialized bytes at `pos` (the position is
    /// neither used nor moved); returns how many were written, which may be
    /// fewer. It does not wait for the stream's op in flight.
    ///
    /// # Errors
    ///
    /// The OS error, with the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-write-at-{}", std::process::id()));
    ///     let file = ebbtide::fs::File::create(&path).await?;
    ///     let BufResult(n, _) = file.write_at("at four", 4).await;
    ///     assert!(n? > 0);
    ///     assert_eq!(&std::fs::read(&path)?[..4], &[0; 4], "a hole before it");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        self.handle.write_at(buf, pos).await
    }

    /// Writes all the buffer's initialized bytes at `pos`, in one job (the
    /// position is neither used nor moved). It does not wait for the
    /// stream's op in flight.
    ///
    /// # Errors
    ///
    /// The first OS error (some bytes may have been written), with the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-write-all-at-{}", std::process::id()));
    ///     let file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all_at(b"0123456789".to_vec(), 0).await.0?;
    ///     file.write_all_at("abc", 3).await.0?;
    ///     assert_eq!(std::fs::read(&path)?, b"012abc6789");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        self.handle.write_all_at(buf, pos).await
    }

    /// Reads at the position into the buffer's spare capacity and moves
    /// the position by the count; bytes the stream read ahead are handed
    /// out first. If the future is dropped before it completes, the
    /// position stays where it was.
    ///
    /// # Errors
    ///
    /// As for [`read_at`](File::read_at), or the error of a write this
    /// `File` accepted and never reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::BufResult;
    ///
    /// ebbtide::block_on(async {
    ///     let mut file = ebbtide::fs::File::open("Cargo.toml").await?;
    ///     let BufResult(n, head) = file.read_owned(Vec::with_capacity(9)).await;
    ///     assert_eq!(n?, 9);
    ///     assert_eq!(head, b"[package]");
    ///     assert_eq!(file.position(), 9);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_owned<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        if let Err(e) = self.settle().await {
            return BufResult(Err(e), buf);
        }
        if self.unread() > 0 {
            let spare = buf.spare_mut();
            let n = spare.len().min(self.unread());
            let ahead = &self.buf[self.consumed..self.consumed + n];
            for (dst, &src) in spare.iter_mut().zip(ahead) {
                dst.write(src);
            }
            // SAFETY: the loop wrote the first `n` bytes of the spare
            // capacity, and `n <= spare.len()`.
            unsafe { buf.advance_init(n) };
            self.consume(n);
            return BufResult(Ok(n), buf);
        }
        self.read_ready = false;
        let pos = self.cursor.load(Ordering::Acquire);
        let handle = self.handle.clone();
        let op = async move { handle.read_at(buf, pos).await };
        let moves_to = move |res: &io::Result<usize>| res.as_ref().ok().map(|&n| pos + n as u64);
        self.owned_op(op, moves_to, false).await
    }

    /// Writes all the initialized bytes at the position and moves it past
    /// them ([`position`](File::position) counts them from the first poll
    /// on). If the future is dropped before it completes, the write still
    /// completes before the next operation of this `File` starts, and its
    /// error goes to that operation.
    ///
    /// # Errors
    ///
    /// As for [`write_all_at`](File::write_all_at), or the error of a write
    /// this `File` accepted and never reported; on error the position goes
    /// back to where the write started.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-write-owned-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all_owned("one, ").await.0?;
    ///     file.write_all_owned(b"two".to_vec()).await.0?;
    ///     assert_eq!(file.position(), 8);
    ///     assert_eq!(std::fs::read(&path)?, b"one, two");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_all_owned<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        if let Err(e) = self.settle().await {
            return BufResult(Err(e), buf);
        }
        self.drop_read_ahead();
        let len = buf.buf_len() as u64;
        // As a stream write, it moves the position when it starts (so
        // `position()` counts it while it is in flight), and back on error.
        let pos = self.cursor.fetch_add(len, Ordering::AcqRel);
        let handle = self.handle.clone();
        let op = async move { handle.write_all_at(buf, pos).await };
        let moves_to = move |res: &io::Result<()>| res.is_err().then_some(pos);
        self.owned_op(op, moves_to, true).await
    }

    /// The position: where the next read or write of the stream, of
    /// [`read_owned`](File::read_owned) or of
    /// [`write_all_owned`](File::write_all_owned) starts. Bytes read ahead
    /// and not handed out are not counted; bytes of a write in flight (an
    /// accepted stream write, a `write_all_owned`) are.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncReadExt;
    ///
    /// ebbtide::block_on(async {
    ///     let mut file = ebbtide::fs::File::open("Cargo.toml").await?;
    ///     let mut head = [0; 3];
    ///     file.read_exact(&mut head).await?;
    ///     // The read filled the buffer with more; the position counts what was handed out.
    ///     assert_eq!(file.position(), 3);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn position(&self) -> u64 {
        match self.reposition {
            Some(pos) => pos,
            None => self
                .cursor
                .load(Ordering::Acquire)
                .saturating_sub(self.unread() as u64),
        }
    }

    /// Moves the position (as `seek(SeekFrom::Start(pos))`, without an op):
    /// drops the bytes read ahead. With an op in flight, the move applies
    /// when that op completes, after the op's own.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncReadExt;
    ///
    /// ebbtide::block_on(async {
    ///     let mut file = ebbtide::fs::File::open("Cargo.toml").await?;
    ///     file.set_position(1);
    ///     let mut word = [0; 7];
    ///     file.read_exact(&mut word).await?;
    ///     assert_eq!(&word, b"package");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_position(&mut self, pos: u64) {
        self.drop_read_ahead();
        self.seek_len = None;
        if self.busy.is_some() {
            self.reposition = Some(pos);
        } else {
            self.cursor.store(pos, Ordering::Release);
        }
    }

    /// The largest buffer one stream read or write uses (default 2 MiB):
    /// a write accepts at most this many bytes per call.
    ///
    /// # Panics
    ///
    /// If `max` is 0: a stream could then never move.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-max-buf-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.set_max_buf_size(4);
    ///     assert_eq!(file.write(b"hello").await?, 4);
    ///     file.close().await?;
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_max_buf_size(&mut self, max: usize) {
        assert!(
            max > 0,
            "File::set_max_buf_size(0): a buffer needs room for one byte"
        );
        self.max_buf = max;
    }

    /// Waits for the op in flight, then flushes data and metadata to the
    /// device (`fsync`).
    ///
    /// # Errors
    ///
    /// The OS error, or the error of a write this `File` accepted and never
    /// reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-sync-all-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all(b"durable").await?;
    ///     file.sync_all().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"durable");
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn sync_all(&mut self) -> io::Result<()> {
        self.settle().await?;
        let handle = self.handle.clone();
        let op = async move { BufResult(handle.sync(false).await, ()) };
        self.owned_op(op, |_| None, true).await.0
    }

    /// Waits for the op in flight, then flushes data to the device
    /// (`fdatasync`).
    ///
    /// # Errors
    ///
    /// As for [`sync_all`](File::sync_all).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-sync-data-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all_owned("data").await.0?;
    ///     file.sync_data().await?;
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn sync_data(&mut self) -> io::Result<()> {
        self.settle().await?;
        let handle = self.handle.clone();
        let op = async move { BufResult(handle.sync(true).await, ()) };
        self.owned_op(op, |_| None, true).await.0
    }

    /// Waits for the op in flight (a write the stream accepted lands
    /// first), then truncates or extends the file to `len` bytes. The
    /// position does not move (it may end up past the end); bytes read
    /// ahead are dropped. If the future is dropped, the call still
    /// completes before the next operation, which gets its error.
    ///
    /// # Errors
    ///
    /// The OS error, or the error of a write this `File` accepted and never
    /// reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-set-len-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all(b"hello world").await?;
    ///     file.set_len(5).await?;
    ///     assert_eq!(std::fs::read(&path)?, b"hello");
    ///     assert_eq!(file.position(), 11);
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.settle().await?;
        self.drop_read_ahead();
        let handle = self.handle.clone();
        let op = async move { BufResult(handle.run(move |f| f.set_len(len)).await, ()) };
        self.owned_op(op, |_| None, true).await.0
    }

    /// Waits for the op in flight (a write the stream accepted lands
    /// first), then the file's metadata.
    ///
    /// # Errors
    ///
    /// The OS error, or the error of a write this `File` accepted and never
    /// reported.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_lite::AsyncWriteExt;
    ///
    /// ebbtide::block_on(async {
    ///     let path = std::env::temp_dir().join(format!("ebbtide-doc-file-meta-{}", std::process::id()));
    ///     let mut file = ebbtide::fs::File::create(&path).await?;
    ///     file.write_all(b"12345").await?;
    ///     // No flush needed: metadata waits for the write.
    ///     assert_eq!(file.metadata().await?.len(), 5);
    ///     ebbtide::fs::remove_file(&path).await
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn metadata(&mut self) -> io::Result<std::fs::Metadata> {
        self.settle().await?;
        let handle = self.handle.clone();
        let op = async move { BufResult(handle.run(|f| f.metadata()).await, ()) };
        self.owned_op(op, |_| None, false).await.0
    }

    /// Waits for the op in flight and applies it, then returns the error a
    /// write left for this operation, if any.
    async fn settle(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_idle(cx)).await;
        self.read_err = None;
        self.seek_len = None;
        self.take_write_err()
    }

    /// Runs an owned-buffer call's `op` as this `File`'s op in flight, so
    /// that it is ordered with every other op even if the caller's future is
    /// dropped. The result goes to the caller through a slot; `moves_to`
    /// says where the position goes. If the caller is gone when the op
    /// completes, its result is dropped, and the op moves the position and
    /// leaves its error only if it `changes_the_file` (a write: its bytes
    /// are there; a read's bytes went with the buffer).
    async fn owned_op<T, B, F, M>(
        &mut self,
        op: F,
        moves_to: M,
        changes_the_file: bool,
    ) -> BufResult<T, B>
    where
        T: Send + 'static,
        B: Send + 'static,
        F: Future<Output = BufResult<T, B>> + Send + 'static,
        M: FnOnce(&io::Result<T>) -> Option<u64> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<BufResult<T, B>>>> = Arc::default();
        let theirs = slot.clone();
        self.start(InFlight::owned(async move {
            let BufResult(res, buf) = op.await;
            let to = moves_to(&res);
            // The caller holds the other reference until it has its
            // result; both are only touched under `&mut File`.
            if Arc::strong_count(&theirs) > 1 {
                *theirs.lock().unwrap_or_else(PoisonError::into_inner) = Some(BufResult(res, buf));
                Done::Owned {
                    moves_to: to,
                    err: None,
                }
            } else if changes_the_file {
                Done::Owned {
                    moves_to: to,
                    err: res.err(),
                }
            } else {
                Done::Owned {
                    moves_to: None,
                    err: None,
                }
            }
        }));
        poll_fn(|cx| self.poll_idle(cx)).await;
        let res = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        res.expect("an owned op stores its result before it completes")
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("std", &self.handle.file)
            .field("position", &self.position())
            .field("read_ahead", &self.unread())
            .field("op_in_flight", &self.busy.is_some())
            .finish()
    }
}

// A `File` may be shared between tasks (`Arc<File>` for positional I/O)
// and moved between threads; its op in flight must not take that away.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<File>();
};
