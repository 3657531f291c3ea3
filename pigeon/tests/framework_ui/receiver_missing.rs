use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_client]
    async fn f(client: Client) {
        let _ = client;
    }
}

fn main() {}
