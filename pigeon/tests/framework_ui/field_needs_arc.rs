use pigeon::prelude::*;

#[injectable]
pub struct Registry;

#[injectable]
pub struct Devices {
    registry: Registry,
}

fn main() {}
