//! The tables of a store, its format version, and opening a file safely: a
//! file that is not a Pigeon store, or is newer than this build, is refused
//! with a message naming it, never reset.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableDefinition};

use super::StoreError;

/// Format marker and version: `"magic"` → [`MAGIC`], `"format"` → version.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("pigeon_meta");
/// Persistent sessions' expiry state, by client id.
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Subscriptions, by (client id, filter).
pub(super) const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("subscriptions");
/// Retained messages, by topic.
pub(super) const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
/// Wills, by client id.
pub(super) const WILLS: TableDefinition<&str, &[u8]> = TableDefinition::new("wills");
/// QoS 1/2 copies for persistent sessions, by (client id, key): keys grow, so
/// a session's copies read back in the order they were queued.
pub(super) const DELIVERIES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("deliveries");
/// Incoming QoS 2 packet ids awaiting PUBREL, by (client id, packet id).
pub(super) const INCOMING_QOS2: TableDefinition<(&str, u16), ()> =
    TableDefinition::new("incoming_qos2");

const MAGIC: &[u8] = b"pigeon-store";
/// The format this build writes. Version history:
/// - 1: the tables above.
pub(super) const FORMAT: u32 = 1;

/// Opens (or creates) the store at `path`, checks its marker and version and
/// brings an older format up to [`FORMAT`].
pub(super) fn open(path: &Path) -> Result<Database, StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(StoreError::MissingDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    let existed = path.metadata().is_ok_and(|m| m.len() > 0);
    let failed = |e: &dyn std::fmt::Display| StoreError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let db = Database::create(path).map_err(|e| failed(&e))?;
    let version = read_version(&db).map_err(|e| failed(&e))?;
    match version {
        None if existed && has_tables(&db) => Err(StoreError::NotPigeon {
            path: path.to_owned(),
        }),
        None => {
            write_version(&db, FORMAT).map_err(|e| failed(&e))?;
            Ok(db)
        }
        Some(found) if found > FORMAT => Err(StoreError::NewerFormat {
            path: path.to_owned(),
            found,
            supported: FORMAT,
        }),
        Some(found) => {
            upgrade(&db, found).map_err(|e| failed(&e))?;
            Ok(db)
        }
    }
}

/// Brings a store written in format `from` up to [`FORMAT`], one step per
/// version, each in its own transaction. Version 1 is the first format, so
/// there is nothing to convert yet; a version 2 adds its step here.
fn upgrade(db: &Database, from: u32) -> Result<(), redb::Error> {
    let mut version = from;
    while version < FORMAT {
        // match version { 1 => upgrade_1_to_2(db)?, ... }
        version += 1;
        write_version(db, version)?;
    }
    Ok(())
}

/// The format version, `None` when the file has no Pigeon marker.
fn read_version(db: &Database) -> Result<Option<u32>, redb::Error> {
    let read = db.begin_read()?;
    let meta = match read.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if meta.get("magic")?.is_none_or(|m| m.value() != MAGIC) {
        return Ok(None);
    }
    let version = meta.get("format")?.and_then(|v| {
        let bytes: [u8; 4] = v.value().try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    });
    Ok(Some(version.unwrap_or(0)))
}

/// True when the database has tables (it holds someone's data).
fn has_tables(db: &Database) -> bool {
    db.begin_read()
        .ok()
        .and_then(|r| r.list_tables().ok().map(|mut t| t.next().is_some()))
        .unwrap_or(true)
}

pub(super) fn write_version(db: &Database, version: u32) -> Result<(), redb::Error> {
    let write = db.begin_write()?;
    {
        let mut meta = write.open_table(META)?;
        meta.insert("magic", MAGIC)?;
        meta.insert("format", &version.to_be_bytes()[..])?;
        // Create every table, so that readers find them all.
        write.open_table(SESSIONS)?;
        write.open_table(SUBSCRIPTIONS)?;
        write.open_table(RETAINED)?;
        write.open_table(WILLS)?;
        write.open_table(DELIVERIES)?;
        write.open_table(INCOMING_QOS2)?;
    }
    write.commit()?;
    Ok(())
}
