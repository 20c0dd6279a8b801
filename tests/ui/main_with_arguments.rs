#[ebbtide::main]
async fn main(args: Vec<String>) {
    drop(args);
}

#[ebbtide::test]
async fn a_test_takes_no_arguments(n: u32, m: u32) {}
