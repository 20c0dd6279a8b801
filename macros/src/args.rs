//! The attribute's arguments: `flavor`, `worker_threads`, `start_paused`,
//! `drain_timeout`. Every mistake is a `syn::Error` spanned on the argument
//! (or the literal) at fault, and all of them are reported at once.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Error, Expr, ExprLit, Lit, Meta, MetaNameValue, Token};

use crate::duration;

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    /// The attribute as the user wrote it, for messages.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Kind::Main => "#[ebbtide::main]",
            Kind::Test => "#[ebbtide::test]",
        }
    }
}

/// The runtime an attribute builds.
pub(crate) struct Options {
    pub(crate) multi_thread: bool,
    pub(crate) worker_threads: Option<usize>,
    pub(crate) start_paused: bool,
    pub(crate) drain_timeout: Option<Duration>,
}

impl Options {
    /// `#[ebbtide::main]`: multi-thread; `#[ebbtide::test]`: current-thread.
    pub(crate) fn defaults(kind: Kind) -> Options {
        Options {
            multi_thread: kind == Kind::Main,
            worker_threads: None,
            start_paused: false,
            drain_timeout: None,
        }
    }
}

const KEYS: &str = "`flavor`, `worker_threads`, `start_paused` or `drain_timeout`";

/// Parses the arguments; the error combines every mistake found.
pub(crate) fn parse(args: TokenStream, kind: Kind) -> Result<Options, Error> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut options = Options::defaults(kind);
    let mut errors = Errors::default();
    // Each argument given, as tokens, to span the errors that concern it.
    let mut flavor: Option<TokenStream> = None;
    let mut worker_threads: Option<TokenStream> = None;
    let mut start_paused: Option<TokenStream> = None;
    let mut drain_timeout: Option<TokenStream> = None;
    for meta in metas {
        let Meta::NameValue(arg) = meta else {
            errors.push(Error::new_spanned(
                &meta,
                format!(
                    "expected `key = value`, with key {KEYS} (e.g. `flavor = \"multi_thread\"`)"
                ),
            ));
            continue;
        };
        let Some(key) = arg.path.get_ident().map(|k| k.to_string()) else {
            errors.push(unknown(&arg));
            continue;
        };
        let seen = match key.as_str() {
            "flavor" => &mut flavor,
            "worker_threads" => &mut worker_threads,
            "start_paused" => &mut start_paused,
            "drain_timeout" => &mut drain_timeout,
            _ => {
                errors.push(unknown(&arg));
                continue;
            }
        };
        if seen.is_some() {
            errors.push(Error::new_spanned(
                &arg.path,
                format!("`{key}` is given twice"),
            ));
            continue;
        }
        *seen = Some(arg.to_token_stream());
        let applied = match key.as_str() {
            "flavor" => flavor_of(&arg).map(|m| options.multi_thread = m),
            "worker_threads" => worker_threads_of(&arg).map(|n| options.worker_threads = Some(n)),
            "start_paused" => bool_of(&arg).map(|b| options.start_paused = b),
            _ => duration_of(&arg).map(|d| options.drain_timeout = Some(d)),
        };
        if let Err(e) = applied {
            errors.push(e);
        }
    }
    let attribute = kind.attribute();
    if let (Some(arg), false) = (worker_threads, options.multi_thread) {
        let hint = match flavor {
            Some(_) => String::new(),
            None => format!(" (the default of {attribute})"),
        };
        errors.push(Error::new_spanned(
            arg,
            format!(
                "`worker_threads` needs `flavor = \"multi_thread\"`: a current-thread runtime{hint} \
                 runs every task on the thread that blocks on the body"
            ),
        ));
    }
    if let (Some(arg), true, true) = (start_paused, options.start_paused, options.multi_thread) {
        errors.push(Error::new_spanned(
            arg,
            "`start_paused = true` needs `flavor = \"current_thread\"`: only a current-thread \
             runtime can pause its clock",
        ));
    }
    errors.finish(options)
}

/// Collects errors so that all of them are reported, not just the first.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, e: Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish<T>(self, value: T) -> Result<T, Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

fn unknown(arg: &MetaNameValue) -> Error {
    let path = &arg.path;
    let name = path.to_token_stream().to_string().replace(' ', "");
    Error::new_spanned(path, format!("unknown option `{name}`: expected {KEYS}"))
}

/// The value as a literal, or an error on the value.
fn literal<'a>(arg: &'a MetaNameValue, expected: &str) -> Result<&'a Lit, Error> {
    match &arg.value {
        Expr::Lit(ExprLit { lit, .. }) => Ok(lit),
        other => Err(Error::new_spanned(other, format!("expected {expected}"))),
    }
}

fn flavor_of(arg: &MetaNameValue) -> Result<bool, Error> {
    const EXPECTED: &str = "\"current_thread\" or \"multi_thread\"";
    match literal(arg, EXPECTED)? {
        Lit::Str(s) => match s.value().as_str() {
            "multi_thread" => Ok(true),
            "current_thread" => Ok(false),
            other => Err(Error::new(
                s.span(),
                format!("unknown flavor \"{other}\": expected {EXPECTED}"),
            )),
        },
        other => Err(Error::new(other.span(), format!("expected {EXPECTED}"))),
    }
}

fn worker_threads_of(arg: &MetaNameValue) -> Result<usize, Error> {
    const EXPECTED: &str = "a number of threads, at least 1 (e.g. `worker_threads = 4`)";
    match literal(arg, EXPECTED)? {
        Lit::Int(n) => match n.base10_parse::<usize>() {
            Ok(0) | Err(_) => Err(Error::new(n.span(), format!("expected {EXPECTED}"))),
            Ok(n) => Ok(n),
        },
        other => Err(Error::new(other.span(), format!("expected {EXPECTED}"))),
    }
}

fn bool_of(arg: &MetaNameValue) -> Result<bool, Error> {
    match literal(arg, "`true` or `false`")? {
        Lit::Bool(b) => Ok(b.value),
        other => Err(Error::new(other.span(), "expected `true` or `false`")),
    }
}

fn duration_of(arg: &MetaNameValue) -> Result<Duration, Error> {
    const EXPECTED: &str = "a duration string such as \"500ms\", \"2s\" or \"1m\"";
    match literal(arg, EXPECTED)? {
        Lit::Str(s) => duration::parse(&s.value()).map_err(|msg| Error::new(s.span(), msg)),
        other => Err(Error::new(other.span(), format!("expected {EXPECTED}"))),
    }
}
