//! I/O building blocks: the readiness adapter [`Async`] and the
//! `futures-io` traits with their extension methods.

mod readiness;

pub use crate::sys::AsSourceHandle;
pub use readiness::Async;

pub use futures_lite::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite,
    AsyncWriteExt,
};
