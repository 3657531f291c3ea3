//! `pigeon passwd [-H KIND] [-D] FILE USER`: adds, changes or removes a user of
//! a Mosquitto-format password file (the file logic is `pigeon::auth`'s; this
//! is the terminal side).

use std::{
    io::{BufRead, IsTerminal},
    process::ExitCode,
};

use anyhow::{bail, Context};
use pigeon::{
    auth::{update_file, Change, Outcome},
    config::PasswdArgs,
};

/// Runs the subcommand: 0 on success, 1 with a message on stderr otherwise.
pub(crate) fn run(args: &PasswdArgs) -> ExitCode {
    match apply(args) {
        Ok(outcome) => {
            let done = match outcome {
                Outcome::Added => "added",
                Outcome::Changed => "changed the password of",
                Outcome::Deleted => "deleted",
            };
            eprintln!("{done} user {} in {}", args.user, args.file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn apply(args: &PasswdArgs) -> anyhow::Result<Outcome> {
    pigeon::auth::check_username(&args.user).map_err(anyhow::Error::msg)?;
    if args.delete {
        return Ok(update_file(&args.file, &args.user, Change::Delete)?);
    }
    let password = read_password()?;
    let change = Change::Set {
        password: password.as_bytes(),
        kind: args.hash,
    };
    Ok(update_file(&args.file, &args.user, change)?)
}

/// Asked twice on a terminal; otherwise the first line of standard input, so
/// that scripts can pipe it in (it never appears in `ps` as an argument would).
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Reenter password: ").context("cannot read the password")?;
        if first != again {
            bail!("the passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        let read = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        if read == 0 {
            bail!("no password on standard input (expected one line)");
        }
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        line
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}
