//! Compile-fail tests: misuse of the macros is a compile error pointing at the
//! offending tokens. Compiler wording drifts between releases, so the expected
//! messages are pinned to the toolchain they were written with.

#[rustversion::attr(not(stable(1.95)), ignore = "messages pinned to rustc 1.95 stable")]
#[test]
fn macro_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/framework_ui/*.rs");
}
