use pigeon::prelude::*;

#[injectable]
pub struct PgStore;

#[module(providers = [PgStore as String])]
pub struct AppModule;

fn main() {}
