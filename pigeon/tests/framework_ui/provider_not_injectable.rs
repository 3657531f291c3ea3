use pigeon::prelude::*;

pub struct Plain;

#[module(port = 1884, providers = [Plain])]
pub struct AppModule;

fn main() {}
