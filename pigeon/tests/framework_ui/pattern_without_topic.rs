use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_authenticate("devices/:id")]
    async fn f(&self) -> bool {
        true
    }
}

fn main() {}
