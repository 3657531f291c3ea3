use pigeon::prelude::*;

#[injectable(factroy = Self::connect)]
pub struct Db;

fn main() {}
