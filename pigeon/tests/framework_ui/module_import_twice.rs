use pigeon::prelude::*;

#[module(providers = [])]
pub struct AuthModule;

#[module(imports = [AuthModule, AuthModule], providers = [])]
pub struct AppModule;

fn main() {}
