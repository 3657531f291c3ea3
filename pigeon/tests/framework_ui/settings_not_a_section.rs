use pigeon::prelude::*;

#[derive(serde::Deserialize)]
pub struct Database {
    pub url: String,
}

#[injectable]
pub struct Users {
    database: Settings<Database>,
}

fn main() {}
