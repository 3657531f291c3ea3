use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    // A will may be authorized after its client is gone: take Option<Client>.
    #[on_authorize_publish]
    async fn f(&self, client: Client, packet: &mut Publish) -> bool {
        let _ = (client, packet);
        true
    }
}

fn main() {}
