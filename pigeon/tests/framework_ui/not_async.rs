use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_client]
    fn f(&self, client: Client) {
        let _ = client;
    }
}

fn main() {}
