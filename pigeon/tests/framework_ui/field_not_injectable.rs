use pigeon::prelude::*;

#[injectable]
pub struct S {
    pigeon: PigeonService,
    count: u32,
}

fn main() {}
