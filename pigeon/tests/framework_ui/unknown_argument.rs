use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_publish(ordr = 1)]
    async fn f(&self) {}
}

fn main() {}
