use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    // No pattern: nothing to fill `Param` with.
    #[on_publish]
    async fn none(&self, Param(id): Param<String>) {
        let _ = id;
    }

    // `+` is not captured: only `:name` segments are.
    #[on_authorize_publish("devices/+")]
    async fn unnamed(&self, Param(id): Param<u32>) -> bool {
        id > 0
    }
}

fn main() {}
