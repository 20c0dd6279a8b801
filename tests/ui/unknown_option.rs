#[ebbtide::main(flavour = "multi_thread")]
async fn main() {}

#[ebbtide::test(runtime::flavor = "multi_thread")]
async fn a_path_is_not_an_option() {}
