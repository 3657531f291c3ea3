//! Why a store could not be opened: each message names the file.

use std::path::PathBuf;

/// Why [`RedbPersistence::open`](super::RedbPersistence::open) failed. The
/// broker refuses to start rather than reset a store it cannot read.
///
/// ```
/// let err = pigeon::persistence::RedbPersistence::open(
///     "/no/such/dir/pigeon.redb",
///     pigeon::persistence::Durability::Sync,
/// )
/// .err()
/// .unwrap();
/// assert!(err.to_string().contains("/no/such/dir"), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory the file should be in does not exist.
    #[error("{path}: the directory {dir} does not exist (create it, or choose another path)")]
    MissingDirectory {
        /// The store's path.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The file could not be opened as a database (unreadable, not a redb
    /// file, corrupted, or open in another process).
    #[error("{path}: cannot open the store: {reason}")]
    Open {
        /// The store's path.
        path: PathBuf,
        /// What redb reported.
        reason: String,
    },
    /// The file is a database, but not a Pigeon store.
    #[error("{path}: not a Pigeon store (it has no Pigeon format marker); refusing to use it")]
    NotPigeon {
        /// The store's path.
        path: PathBuf,
    },
    /// The store was written by a newer Pigeon.
    #[error("{path}: store format version {found} is newer than this Pigeon reads (up to {supported}); upgrade Pigeon")]
    NewerFormat {
        /// The store's path.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A record in the store does not decode.
    #[error("{path}: corrupted store: {what}")]
    Corrupt {
        /// The store's path.
        path: PathBuf,
        /// Which record, and what is wrong with it.
        what: String,
    },
}
