use pigeon::prelude::*;

#[injectable]
struct Svc;

#[handlers(optionall)]
impl Svc {
    #[on_client]
    async fn hello(&self) {}
}

fn main() {}
