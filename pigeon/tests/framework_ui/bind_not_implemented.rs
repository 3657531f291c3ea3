use pigeon::prelude::*;

pub trait UserStore: Send + Sync {}

#[injectable]
pub struct PgStore;

#[module(providers = [PgStore as dyn UserStore])]
pub struct AppModule;

fn main() {}
