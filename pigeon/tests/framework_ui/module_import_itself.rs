use pigeon::prelude::*;

#[module(imports = [AppModule], providers = [])]
pub struct AppModule;

fn main() {}
