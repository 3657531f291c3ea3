use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_authenticate]
    async fn f(&self, client: Client) -> Result<(), Denied> {
        let _ = client;
        Ok(())
    }
}

fn main() {}
