use pigeon::prelude::*;

#[injectable]
pub struct S;

#[handlers]
impl S {
    #[on_request("rpc/:method")]
    async fn f(&self, Param(method): Param<String>) -> Result<u32, String> {
        let _ = method;
        Ok(1)
    }
}

fn main() {}
