//! Passwords in Mosquitto's `password_file` format, so people moving from
//! Mosquitto keep their files, and the built-in CONNECT check that uses them.
//!
//! # The file
//!
//! ```text
//! # Comments are whole lines starting with `#`; blank lines are ignored.
//! alice:$7$101$GDf+qaiEtmm73MYq$hC9X8gShzoJTzpH/RNG8pFyoijl79r4Px6RVC7/FgydI6ylkH95WeEc2DpCfcaTVXqbV77M2kZFHuol2XNH4gw==
//! carol:$6$h+cl7BVunRCievzf$UTQ2ggInF1J0yPkLOfgoSZlyiZlnK3V6PfnjV0HVyxrWSmrmftU6rSheWBK/UjCy20WcCpev0zrJjC65YV11Qw==
//! dave:$argon2id$v=19$m=47104,t=1,p=1$<salt>$<hash>
//! ```
//!
//! One `user:hash` line per user; the formats are those of [`PasswordHash`].
//! Unlike Mosquitto, which drops a line it cannot read with a warning, a
//! malformed line, an unhashed password or a user listed twice refuses the
//! whole file, naming the file and the line: a typo must not lock a user out
//! silently. `pigeon passwd FILE USER` (or [`update_file`]) adds or changes a
//! user; `mosquitto_passwd`'s files are read as they are.
//!
//! # The check (before the `#[on_authenticate]` handlers)
//!
//! - A client without a username is anonymous: accepted when `allow_anonymous`
//!   is true (the default without a password file), else refused with CONNACK
//!   5 (MQTT 3.x) / 0x87 Not authorized (MQTT 5.0).
//! - With a password file, a client with a username must be in it with that
//!   password, else CONNACK 5 (3.x) / 0x86 Bad user name or password (5.0).
//!   The 3.x code is Mosquitto 2.x's, which clients and scripts already expect.
//!   Without a password file, usernames are left to the handlers.
//! - Only a client that passes runs the authenticate handlers, which may still
//!   refuse it; a refusal here never reaches them.
//!
//! Hashes are checked off the async threads, a few at a time, in constant time;
//! an unknown user costs as much time as a known one. The file is re-read by
//! [`BrokerHandle::reload`](crate::BrokerHandle::reload) (SIGHUP for the binary);
//! connected clients stay connected.

mod check;
mod edit;
mod file;
mod hash;
#[cfg(test)]
mod tests;

pub(crate) use check::Authenticator;
pub use edit::{check_username, update_file, Change, Outcome};
pub use file::{PasswordFile, PasswordFileError};
pub use hash::{HashKind, PasswordHash};
