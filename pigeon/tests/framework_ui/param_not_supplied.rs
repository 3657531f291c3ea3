use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_publish]
    async fn f(&self, topic: Topic, credential: Credential) {
        let _ = (topic, credential);
    }
}

fn main() {}
