use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_publish("devices/#/status")]
    async fn f(&self) {}
}

fn main() {}
