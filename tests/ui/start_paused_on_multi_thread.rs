#[ebbtide::main(start_paused = true)]
async fn main() {}

#[ebbtide::test(start_paused = "yes")]
async fn start_paused_is_a_bool() {}
