use pigeon::prelude::*;

#[module(listen = ["mqtt://0.0.0.0:1883", "http://0.0.0.0:8080"])]
pub struct AppModule;

fn main() {}
