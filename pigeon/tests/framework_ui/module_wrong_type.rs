use pigeon::prelude::*;

#[module(port = "1884", drain_timeout = 1.5)]
pub struct AppModule;

fn main() {}
