use pigeon::prelude::*;

#[module(prot = 1884)]
pub struct AppModule;

fn main() {}
