use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_authenticate]
    async fn f(&self, packet: &mut Publish) -> Result<(), AuthError> {
        let _ = packet;
        Ok(())
    }
}

fn main() {}
