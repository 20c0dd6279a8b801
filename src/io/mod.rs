//! I/O building blocks: owned buffers ([`IoBuf`], [`IoBufMut`],
//! [`BufResult`]), the readiness adapter [`Async`], and the `futures-io`
//! traits with their extension methods.

mod buf;
mod interest;
mod readiness;

pub use buf::{BufResult, IoBuf, IoBufMut, Slice};

pub use crate::sys::AsSourceHandle;
pub use interest::{Interest, Ready};
pub use readiness::Async;

pub use futures_lite::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite,
    AsyncWriteExt,
};
