use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_request]
    async fn f(&self) -> String {
        String::new()
    }

    #[on_publish("a", timeout = 100)]
    async fn g(&self) {}
}

fn main() {}
