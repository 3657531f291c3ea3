use pigeon::prelude::*;

#[injectable(init = Self::start)]
pub struct Db;

impl Db {
    fn start(&self) -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
