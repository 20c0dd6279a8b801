#[ebbtide::main(flavor = "current_thread", worker_threads = 2)]
async fn main() {}

#[ebbtide::test(worker_threads = 2)]
async fn a_test_is_current_thread_by_default() {}
