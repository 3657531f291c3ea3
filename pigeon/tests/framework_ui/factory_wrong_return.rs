use pigeon::prelude::*;

#[injectable(factory = Self::connect)]
pub struct Db;

impl Db {
    async fn connect() -> Option<Self> {
        Some(Db)
    }
}

fn main() {}
