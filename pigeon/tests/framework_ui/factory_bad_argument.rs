use pigeon::prelude::*;

#[injectable(factory = Self::connect)]
pub struct Db;

impl Db {
    async fn connect(pool_size: u32) -> Result<Self, String> {
        let _ = pool_size;
        Ok(Db)
    }
}

fn main() {}
