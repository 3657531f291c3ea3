use pigeon::prelude::*;

#[module(persistence = mongo)]
pub struct AppModule;

fn main() {}
