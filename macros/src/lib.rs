//! `#[ebbtide::main]` and `#[ebbtide::test]`: run an `async fn` on a fresh
//! ebbtide runtime. Use them through the `ebbtide` crate (its `macros`
//! feature, on by default); this crate is not meant to be a direct
//! dependency.
//!
//! # The expansion
//!
//! 1. The arguments are read into options (`args.rs`); a `drain_timeout`
//!    string is parsed here, at compile time (`duration.rs`).
//! 2. The function loses its `async`; its body becomes an `async move`
//!    block that the function hands, with the options, to
//!    `::ebbtide::__private::run_main` or `run_test`. Those build the
//!    runtime, block on the body and return its output, so
//!    `async fn main() -> Result<…>` returns the body's `Result`. The
//!    generated code names nothing but absolute paths (`::ebbtide`,
//!    `::core`): a user's `Result` alias or a missing `use` cannot break it.
//! 3. A mistake (an unknown or repeated option, a bad value,
//!    `worker_threads` on a current-thread runtime, a function that is not
//!    `async` or takes arguments) is a compile error spanned on the
//!    argument at fault. The function still expands, with the default
//!    options, so that the error is the only one reported (no "`main`
//!    function not found" after it).
//!
//! A hand-written parser would avoid the `syn` dependency, but `syn` is
//! already in most dependency trees (and in tokio's), and it gives exact
//! spans for every part of the function and its arguments.

mod args;
mod duration;
mod expand;

use proc_macro::TokenStream;

use args::Kind;

/// Runs an `async fn` on a new ebbtide runtime: `async fn main` becomes a
/// plain `fn main` that builds the runtime, blocks on the body, and returns
/// its output (a `Result` too: `?` works as in any `main`). Dropping the
/// runtime at the end drains it ([`drain_timeout`], default 1 s).
///
/// Options, all optional:
///
/// | option | values | default |
/// | --- | --- | --- |
/// | `flavor` | `"multi_thread"`, `"current_thread"` | `"multi_thread"` |
/// | `worker_threads` | a number ≥ 1 (`multi_thread` only) | one per core |
/// | `start_paused` | `true`, `false` (`current_thread` only): start with the clock paused | `false` |
/// | `drain_timeout` | `"500ms"`, `"2s"`, `"1m"` | `"1s"` |
///
/// [`drain_timeout`]: https://docs.rs/ebbtide/latest/ebbtide/runtime/struct.Builder.html#method.drain_timeout
///
/// # Examples
///
/// ```
/// #[ebbtide::main]
/// async fn main() -> std::io::Result<()> {
///     let answer = ebbtide::spawn(async { 6 * 7 }).await.unwrap();
///     assert_eq!(answer, 42);
///     Ok(())
/// }
/// ```
///
/// With options:
///
/// ```
/// #[ebbtide::main(flavor = "multi_thread", worker_threads = 2, drain_timeout = "200ms")]
/// async fn main() {
///     assert_eq!(ebbtide::runtime::Handle::current().metrics().workers, 2);
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into(), Kind::Main).into()
}

/// Runs an `async fn` test on a fresh runtime of its own: a
/// current-thread one by default. When the body has returned, the runtime
/// is shut down (drained for [`drain_timeout`], default 1 s, then whatever
/// still runs is cancelled), and the test **fails** if the shutdown report
/// shows work it could not stop: a leaked task, I/O operation or blocking
/// job. Tasks merely cancelled at the end do not fail it.
///
/// Takes the options of [`macro@main`]; `flavor` defaults to
/// `"current_thread"`.
///
/// [`drain_timeout`]: https://docs.rs/ebbtide/latest/ebbtide/runtime/struct.Builder.html#method.drain_timeout
///
/// # Examples
///
/// ```
/// #[ebbtide::test]
/// async fn tasks_run_on_the_test_thread() {
///     let here = std::thread::current().id();
///     let there = ebbtide::spawn(async { std::thread::current().id() }).await.unwrap();
///     assert_eq!(here, there);
/// }
///
/// #[ebbtide::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn two_workers() -> std::io::Result<()> {
///     assert_eq!(ebbtide::runtime::Handle::current().metrics().workers, 2);
///     Ok(())
/// }
/// # fn main() {} // doctests do not run `#[test]` functions
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into(), Kind::Test).into()
}
