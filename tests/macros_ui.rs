//! Mistakes in the arguments of `#[ebbtide::main]` / `#[ebbtide::test]` are
//! compile errors that point at the argument at fault: each file of
//! `tests/ui/` must fail to compile with exactly the errors of its
//! `.stderr` file (regenerate them with `TRYBUILD=overwrite`, then read the
//! diff).
//!
//! Not under Wine: trybuild runs cargo, a host program.
#![cfg(feature = "macros")]

#[test]
#[cfg(not(windows))]
fn argument_mistakes_are_compile_errors_spanned_on_the_argument() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
