use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    // A publish event may come from the broker itself: take Option<Client>.
    #[on_publish]
    async fn f(&self, client: Client) {
        let _ = client;
    }
}

fn main() {}
