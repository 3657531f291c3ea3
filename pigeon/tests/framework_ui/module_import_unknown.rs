use pigeon::prelude::*;

#[module(imports = [AuthModul], providers = [])]
pub struct AppModule;

#[module(providers = [])]
pub struct AuthModule;

fn main() {}
