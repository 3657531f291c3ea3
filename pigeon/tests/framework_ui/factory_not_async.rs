use pigeon::prelude::*;

#[injectable(factory = Self::connect)]
pub struct Db;

impl Db {
    fn connect() -> Result<Self, String> {
        Ok(Db)
    }
}

fn main() {}
