#[ebbtide::test]
#[test]
async fn one_test_attribute() {}

fn main() {}
