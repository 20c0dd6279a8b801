#[ebbtide::main(multi_thread)]
async fn main() {}

#[ebbtide::test(flavor("multi_thread"))]
async fn a_list_is_not_an_option() {}
