//! [`Interest`] (which directions to wait for) and [`Ready`] (which ones
//! may be ready): the arguments and results of `ready()` on
//! [`Async`](super::Async) and the socket types.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// Which directions of a handle to wait for: [`READABLE`](Self::READABLE),
/// [`WRITABLE`](Self::WRITABLE), or both (`READABLE | WRITABLE`).
///
/// # Examples
///
/// ```
/// use ebbtide::io::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert!(!Interest::READABLE.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

const READ: u8 = 1;
const WRITE: u8 = 2;

impl Interest {
    /// Wait until the handle may be readable.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ebbtide::io::Interest::READABLE.is_readable());
    /// ```
    pub const READABLE: Interest = Interest(READ);

    /// Wait until the handle may be writable.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ebbtide::io::Interest::WRITABLE.is_writable());
    /// ```
    pub const WRITABLE: Interest = Interest(WRITE);

    /// Both interests: [`READABLE | WRITABLE`](BitOr), usable in `const`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::Interest;
    ///
    /// const BOTH: Interest = Interest::READABLE.add(Interest::WRITABLE);
    /// assert_eq!(BOTH, Interest::READABLE | Interest::WRITABLE);
    /// ```
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Whether this includes [`READABLE`](Self::READABLE).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::Interest;
    ///
    /// assert!((Interest::READABLE | Interest::WRITABLE).is_readable());
    /// assert!(!Interest::WRITABLE.is_readable());
    /// ```
    pub const fn is_readable(self) -> bool {
        self.0 & READ != 0
    }

    /// Whether this includes [`WRITABLE`](Self::WRITABLE).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::io::Interest;
    ///
    /// assert!((Interest::READABLE | Interest::WRITABLE).is_writable());
    /// assert!(!Interest::READABLE.is_writable());
    /// ```
    pub const fn is_writable(self) -> bool {
        self.0 & WRITE != 0
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

/// The directions a `ready()` call found possibly ready: a later
/// operation in such a direction may still return `WouldBlock` (the
/// readiness was stale), which then clears it.
///
/// # Examples
///
/// ```
/// use ebbtide::io::Interest;
/// use ebbtide::net::{TcpListener, TcpStream};
///
/// ebbtide::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let stream = TcpStream::connect(listener.local_addr()?).await?;
///     let ready = stream.ready(Interest::READABLE | Interest::WRITABLE).await?;
///     assert!(ready.is_writable()); // an idle connection has room
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ready(u8);

impl Ready {
    /// Neither direction.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ebbtide::io::Ready::EMPTY.is_empty());
    /// ```
    pub const EMPTY: Ready = Ready(0);

    pub(crate) fn with(self, interest: Interest) -> Ready {
        Ready(self.0 | interest.0)
    }

    /// Whether the handle may be readable.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!ebbtide::io::Ready::EMPTY.is_readable());
    /// ```
    pub const fn is_readable(self) -> bool {
        self.0 & READ != 0
    }

    /// Whether the handle may be writable.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!ebbtide::io::Ready::EMPTY.is_writable());
    /// ```
    pub const fn is_writable(self) -> bool {
        self.0 & WRITE != 0
    }

    /// Whether no direction is ready (`ready()` never returns this).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ebbtide::io::Ready::EMPTY.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .finish()
    }
}
