//! A `#[handlers]` type that no module lists in `providers = [...]` is a
//! bootstrap error naming it: left out silently, a deny-all
//! `#[on_authenticate]` would let everyone in. `#[handlers(optional)]` (a
//! library's handlers an application may leave out) is not an error, and
//! neither is a type another module of the program provides.
//!
//! Everything here is one program: the left-out `DenyAll` makes every
//! bootstrap of this test binary fail, as it would in an application.

use pigeon::{prelude::*, BootstrapError};

/// Meant to refuse every client; the module forgot it.
#[injectable]
struct DenyAll;

#[handlers]
impl DenyAll {
    #[on_authenticate]
    async fn deny(&self) -> Result<(), AuthError> {
        Err(AuthError::with_return_code("nobody gets in", 5))
    }
}

/// A library's optional auditing: fine to leave out.
#[injectable]
struct Audit;

#[handlers(optional)]
impl Audit {
    #[on_publish]
    async fn seen(&self) {}
}

/// Listed by another module of the program: fine for this one.
#[injectable]
struct Elsewhere;

#[handlers]
impl Elsewhere {
    #[on_client]
    async fn hello(&self) {}
}

#[module(host = "127.0.0.1", port = 0, providers = [])]
struct AppModule;

#[module(host = "127.0.0.1", port = 0, providers = [Elsewhere])]
struct OtherModule;

#[tokio::test]
async fn handlers_no_module_provides_are_a_bootstrap_error_naming_them() {
    let Err(error) = Pigeon::bootstrap::<AppModule>().await else {
        panic!("the broker started with DenyAll's handlers inactive");
    };
    assert!(
        matches!(error, BootstrapError::UnprovidedHandlers(_)),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("#[handlers] of DenyAll would never run: no module lists it"),
        "{message}"
    );
    // Named once, and only it: Audit is optional, Elsewhere is provided.
    assert!(!message.contains("Audit"), "{message}");
    assert!(!message.contains("Elsewhere"), "{message}");
    assert!(message.contains("#[handlers(optional)]"), "{message}");

    // Another module of the same program is refused for the same reason.
    let Err(error) = Pigeon::bootstrap::<OtherModule>().await else {
        panic!("started");
    };
    assert!(error.to_string().contains("DenyAll"), "{error}");
}
