//! Windows: the exit watcher and the child's pipes. Not built yet: every
//! call fails with `Unsupported`, so the crate builds and a program gets a
//! clear error instead of a hang.

use std::io;
use std::task::{Context, Poll};

use crate::io::{BufResult, IoBuf, IoBufMut};

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "ebbtide::process is not available on Windows yet",
    )
}

pub(super) struct ExitWatch;

impl ExitWatch {
    pub(super) fn watch(_child: &std::process::Child) -> io::Result<ExitWatch> {
        Err(unsupported())
    }

    pub(super) fn shows_past_exits(&self) -> bool {
        false
    }

    pub(super) fn poll_changed(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(unsupported()))
    }
}

pub(super) struct Pipe;

impl Pipe {
    pub(super) fn stdin(_pipe: std::process::ChildStdin) -> io::Result<Pipe> {
        Err(unsupported())
    }

    pub(super) fn stdout(_pipe: std::process::ChildStdout) -> io::Result<Pipe> {
        Err(unsupported())
    }

    pub(super) fn stderr(_pipe: std::process::ChildStderr) -> io::Result<Pipe> {
        Err(unsupported())
    }

    pub(super) async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        BufResult(Err(unsupported()), buf)
    }

    pub(super) async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        BufResult(Err(unsupported()), buf)
    }

    pub(super) async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        BufResult(Err(unsupported()), buf)
    }

    pub(super) fn poll_read(
        &mut self,
        _cx: &mut Context<'_>,
        _buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(unsupported()))
    }

    pub(super) fn poll_write(
        &mut self,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(unsupported()))
    }

    pub(super) fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(unsupported()))
    }
}
