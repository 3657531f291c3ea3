use pigeon::prelude::*;

#[injectable(destroy = Self::close)]
pub struct Db;

impl Db {
    fn close(&self) {}
}

fn main() {}
