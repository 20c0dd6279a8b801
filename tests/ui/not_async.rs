#[ebbtide::main]
fn main() {}

#[ebbtide::test]
fn a_test_is_async() {}
