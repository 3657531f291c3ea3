use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    // A `client_ready` event has no PUBLISH to take a payload from.
    #[on_client_ready]
    async fn f(&self, client: Client, text: Text) {
        let _ = (client, text);
    }
}

fn main() {}
