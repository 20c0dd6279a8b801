//! From `async fn` to a function that runs its body on a fresh runtime.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{Attribute, Error, ItemFn};

use crate::args::{self, Kind, Options};

/// Expands one attribute (steps 1–3 of the crate docs).
pub(crate) fn entry(args: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let mut errors = Vec::new();
    let options = args::parse(args, kind).unwrap_or_else(|e| {
        errors.push(e);
        Options::defaults(kind)
    });
    check_signature(&mut function, kind, &mut errors);
    let mut out: TokenStream = errors.iter().map(Error::to_compile_error).collect();
    out.extend(expand(function, &options, kind));
    out
}

/// Step 3: a signature the attribute cannot take is an error, and is fixed
/// up so that the expansion adds no error of its own.
fn check_signature(function: &mut ItemFn, kind: Kind, errors: &mut Vec<Error>) {
    let attribute = kind.attribute();
    let sig = &mut function.sig;
    if sig.asyncness.is_none() {
        errors.push(Error::new_spanned(
            sig.fn_token,
            format!("{attribute} goes on an `async fn`: add `async` before `fn`"),
        ));
    }
    if !sig.inputs.is_empty() {
        let what = match kind {
            Kind::Main if sig.ident == "main" => "`fn main` cannot take arguments".to_string(),
            _ => format!("a function marked {attribute} cannot take arguments"),
        };
        errors.push(Error::new_spanned(&sig.inputs, what));
        sig.inputs.clear();
    }
    if kind == Kind::Test {
        function.attrs.retain(|attr| {
            if !is_test_attribute(attr) {
                return true;
            }
            errors.push(Error::new_spanned(
                attr,
                "a second test attribute: #[ebbtide::test] already makes this function a test",
            ));
            false
        });
    }
}

/// `#[test]`, `#[core::prelude::v1::test]`, `#[ebbtide::test]`, `#[tokio::test]`…
fn is_test_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|last| last.ident == "test")
}

/// Steps 1–2: the function without `async`, its body an `async move` block
/// handed to `::ebbtide::__private::{run_main, run_test}`.
fn expand(mut function: ItemFn, options: &Options, kind: Kind) -> TokenStream {
    function.sig.asyncness = None;
    // A type mismatch between the body and the return type is reported on
    // the body's last statement (where rustc points for a plain `fn`), not
    // on the attribute.
    let span = function
        .block
        .stmts
        .last()
        .and_then(|stmt| stmt.to_token_stream().into_iter().last())
        .map_or_else(Span::call_site, |token| {
            Span::call_site().located_at(token.span())
        });
    let run = match kind {
        Kind::Main => quote_spanned!(span=> run_main),
        Kind::Test => quote_spanned!(span=> run_test),
    };
    let options = options_literal(options);
    let test_attribute = match kind {
        Kind::Main => quote!(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = function;
    let call = quote_spanned! {span=>
        ::ebbtide::__private::#run(#options, body)
    };
    quote! {
        #test_attribute
        #(#attrs)*
        #vis #sig {
            let body = async move #block;
            #call
        }
    }
}

/// `::ebbtide::__private::Options { … }`, every path absolute (a user's
/// `Option` or `Result` may shadow the prelude's).
fn options_literal(options: &Options) -> TokenStream {
    let multi_thread = options.multi_thread;
    let start_paused = options.start_paused;
    let worker_threads = match options.worker_threads {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let drain_timeout = match options.drain_timeout {
        Some(d) => {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote!(::core::option::Option::Some(::core::time::Duration::new(#secs, #nanos)))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::ebbtide::__private::Options {
            multi_thread: #multi_thread,
            worker_threads: #worker_threads,
            start_paused: #start_paused,
            drain_timeout: #drain_timeout,
        }
    }
}
