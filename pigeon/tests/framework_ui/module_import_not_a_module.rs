use pigeon::prelude::*;

#[injectable]
pub struct AuthService;

#[module(imports = [AuthService], providers = [])]
pub struct AppModule;

fn main() {}
