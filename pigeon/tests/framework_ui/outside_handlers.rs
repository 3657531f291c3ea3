use pigeon::prelude::*;

#[injectable]
pub struct S;

impl S {
    #[on_client]
    async fn f(&self, client: Client) {
        let _ = client;
    }
}

fn main() {}
