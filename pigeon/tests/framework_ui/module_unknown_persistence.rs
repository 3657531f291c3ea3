use pigeon::prelude::*;

#[module(persistence = redis)]
pub struct AppModule;

fn main() {}
