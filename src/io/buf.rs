//! Buffers that I/O operations own while they are in flight.
//!
//! An owned-buffer operation (`read_owned`, `File::read_at`, …) takes its
//! buffer by value and gives it back in a [`BufResult`], on success and on
//! error. Between the two, the buffer belongs to the operation: to the op
//! table slot, to the blocking-pool job, or (on completion backends) to the
//! kernel. Dropping the operation's future never frees a buffer the OS may
//! still write: see `crate::op` for the protocol.
//!
//! Reads fill the buffer's *spare capacity* after its initialized length
//! and grow the length by the count (`Vec::with_capacity(n)` reads up to `n`
//! bytes); writes send the initialized bytes. A [`Slice`] narrows either to
//! a range.
//!
//! Both traits are `unsafe` to implement because the pointer they return
//! must stay valid, at the same address, while the value is moved around
//! (into a slot, to another thread): the memory must live on the heap or in
//! a static, never inside the value itself.

use std::io;
use std::mem::MaybeUninit;
use std::ops::{Bound, RangeBounds};

/// The result of an owned-buffer operation: the I/O result and the buffer,
/// returned on success and on error alike.
///
/// # Examples
///
/// ```
/// use ebbtide::io::BufResult;
///
/// let BufResult(res, buf) = BufResult(Ok::<usize, std::io::Error>(3), vec![1, 2, 3]);
/// assert_eq!(res.unwrap(), buf.len());
/// ```
#[derive(Debug)]
pub struct BufResult<T, B>(pub io::Result<T>, pub B);

impl<T, B> BufResult<T, B> {
    /// Maps the success value, keeping the buffer.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> BufResult<U, B> {
        BufResult(self.0.map(f), self.1)
    }

    /// Splits into the result and the buffer.
    pub fn into_parts(self) -> (io::Result<T>, B) {
        (self.0, self.1)
    }
}

/// A buffer whose initialized bytes an operation may send.
///
/// # Safety
///
/// `as_buf_ptr` must point to `buf_capacity()` bytes, the first `buf_len()`
/// of them initialized, and the pointer must stay valid and unchanged while
/// the value is moved (between threads too) and until it is dropped or
/// mutably accessed: the bytes live on the heap or in a static.
pub unsafe trait IoBuf: Send + 'static {
    /// Start of the buffer.
    fn as_buf_ptr(&self) -> *const u8;
    /// Initialized bytes.
    fn buf_len(&self) -> usize;
    /// Total bytes available (initialized and not).
    fn buf_capacity(&self) -> usize;

    /// The initialized bytes.
    fn as_init(&self) -> &[u8] {
        // SAFETY: the trait's contract: `buf_len` bytes from the pointer are
        // initialized and borrowed from `self`.
        unsafe { std::slice::from_raw_parts(self.as_buf_ptr(), self.buf_len()) }
    }

    /// A view of `range` of this buffer (of its capacity, for reads; of its
    /// initialized bytes, for writes).
    ///
    /// # Panics
    ///
    /// If the range is reversed or ends past `buf_capacity()`.
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.buf_capacity(),
        };
        assert!(
            begin <= end && end <= self.buf_capacity(),
            "slice {begin}..{end} out of bounds for a buffer of capacity {}",
            self.buf_capacity()
        );
        Slice {
            buf: self,
            begin,
            end,
        }
    }
}

/// A buffer an operation may read into.
///
/// # Safety
///
/// As for [`IoBuf`]; `as_buf_mut_ptr` is the same address, and
/// `set_buf_init(n)` with `n <= buf_capacity()` after the first `n` bytes
/// were written makes them the initialized part.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the buffer, writable.
    fn as_buf_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `len` bytes initialized (never shrinks below what
    /// already was, for `Vec`/`String`-like buffers: it sets the length).
    ///
    /// # Safety
    ///
    /// The first `len` bytes are initialized and `len <= buf_capacity()`.
    unsafe fn set_buf_init(&mut self, len: usize);

    /// The spare capacity after the initialized bytes.
    fn spare_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        let (len, cap) = (self.buf_len(), self.buf_capacity());
        // SAFETY: the trait's contract: `cap` bytes from the pointer belong
        // to `self`, borrowed mutably here; MaybeUninit needs no init.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.as_buf_mut_ptr().add(len).cast::<MaybeUninit<u8>>(),
                cap - len,
            )
        }
    }

    /// The spare capacity, zeroed, for APIs that take `&mut [u8]`.
    fn spare_zeroed(&mut self) -> &mut [u8] {
        let spare = self.spare_mut();
        for b in spare.iter_mut() {
            b.write(0);
        }
        // SAFETY: every byte was just initialized.
        unsafe { &mut *(spare as *mut [MaybeUninit<u8>] as *mut [u8]) }
    }

    /// Marks `n` more bytes after the initialized ones as filled.
    ///
    /// # Safety
    ///
    /// Those `n` bytes were written, and `buf_len() + n <= buf_capacity()`.
    unsafe fn advance_init(&mut self, n: usize) {
        let len = self.buf_len() + n;
        // SAFETY: forwarded from the caller.
        unsafe { self.set_buf_init(len) }
    }
}

// SAFETY: a Vec's bytes are on the heap (or dangling with capacity 0) and
// do not move when the Vec does.
unsafe impl IoBuf for Vec<u8> {
    fn as_buf_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_capacity(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf`; `set_len` within capacity over written bytes.
unsafe impl IoBufMut for Vec<u8> {
    fn as_buf_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_buf_init(&mut self, len: usize) {
        if len > self.len() {
            // SAFETY: forwarded from the caller.
            unsafe { self.set_len(len) }
        }
    }
}

// SAFETY: a boxed slice's bytes are on the heap. Only `IoBuf`: all of a
// boxed slice is initialized, so in the spare-capacity model of reads it
// has no room to read into (read into a `Vec` and `into_boxed_slice`).
unsafe impl IoBuf for Box<[u8]> {
    fn as_buf_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_capacity(&self) -> usize {
        self.len()
    }
}

// SAFETY: static bytes never move or go away.
unsafe impl IoBuf for &'static [u8] {
    fn as_buf_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_capacity(&self) -> usize {
        self.len()
    }
}

// SAFETY: static bytes never move or go away.
unsafe impl<const N: usize> IoBuf for &'static [u8; N] {
    fn as_buf_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn buf_len(&self) -> usize {
        N
    }
    fn buf_capacity(&self) -> usize {
        N
    }
}

// SAFETY: static bytes never move or go away.
unsafe impl IoBuf for &'static str {
    fn as_buf_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_capacity(&self) -> usize {
        self.len()
    }
}

// SAFETY: a String's bytes are a Vec's. Only `IoBuf` (writes): reading
// into a String could store invalid UTF-8.
unsafe impl IoBuf for String {
    fn as_buf_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_capacity(&self) -> usize {
        self.capacity()
    }
}

/// A range of an owned buffer, made by [`IoBuf::slice`].
///
/// As a write source it sends the initialized bytes within the range; as a
/// read target it fills the range from its initialized part on. Get the
/// whole buffer back with [`into_inner`](Slice::into_inner).
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    /// The whole underlying buffer.
    pub fn into_inner(self) -> B {
        self.buf
    }
    /// The underlying buffer.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }
    /// Offset of the view's start in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }
    /// Offset of the view's end in the buffer.
    pub fn end(&self) -> usize {
        self.end
    }
}

// SAFETY: the view stays within the underlying buffer's bounds (checked in
// `slice`), whose pointer is stable by its own contract.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn as_buf_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= capacity`, so the offset is in bounds.
        unsafe { self.buf.as_buf_ptr().add(self.begin) }
    }
    fn buf_len(&self) -> usize {
        self.buf.buf_len().clamp(self.begin, self.end) - self.begin
    }
    fn buf_capacity(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: as for `IoBuf`; the underlying buffer's init mark moves with ours.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn as_buf_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `begin <= capacity`, so the offset is in bounds.
        unsafe { self.buf.as_buf_mut_ptr().add(self.begin) }
    }
    unsafe fn set_buf_init(&mut self, len: usize) {
        // SAFETY: forwarded from the caller, shifted by our start.
        unsafe { self.buf.set_buf_init(self.begin + len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_reads_fill_spare_capacity() {
        let mut v = Vec::with_capacity(8);
        v.extend_from_slice(b"ab");
        let cap = v.capacity();
        let spare = v.spare_mut();
        assert_eq!(spare.len(), cap - 2);
        spare[0].write(b'c');
        // SAFETY: one byte was written.
        unsafe { v.advance_init(1) };
        assert_eq!(v, b"abc");
    }

    #[test]
    fn slice_views_a_range() {
        let v = b"hello world".to_vec();
        let s = v.slice(6..);
        assert_eq!(s.as_init(), b"world");
        let mut s = s.into_inner().slice(..5);
        assert_eq!(s.as_init(), b"hello");
        assert!(s.spare_mut().is_empty());
    }

    #[test]
    fn slice_of_uninit_capacity_reads_into_the_buffer() {
        let mut s = Vec::with_capacity(4).slice(0..4);
        assert_eq!(s.buf_len(), 0);
        s.spare_zeroed()[..2].copy_from_slice(b"hi");
        // SAFETY: two bytes were written.
        unsafe { s.advance_init(2) };
        assert_eq!(s.into_inner(), b"hi");
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn slice_past_capacity_panics() {
        let _ = Vec::<u8>::with_capacity(2).slice(..3);
    }
}
