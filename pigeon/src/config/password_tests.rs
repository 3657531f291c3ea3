//! `--password-file` and `--allow-anonymous`: flags, TOML keys, defaults, errors.

use std::path::PathBuf;

use super::Config;

const CAROL: &str = "carol:$6$h+cl7BVunRCievzf$UTQ2ggInF1J0yPkLOfgoSZlyiZlnK3V6PfnjV0HVyxrWSmrmftU6rSheWBK/UjCy20WcCpev0zrJjC65YV11Qw==\n";

fn temp_file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pigeon-pwconfig-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn args(extra: &[&str]) -> Result<Config, super::ConfigError> {
    let no_env = std::iter::empty::<(String, String)>();
    Config::from_args_and_env(
        std::iter::once("pigeon").chain(extra.iter().copied()),
        no_env,
    )
}

#[test]
fn anonymous_is_allowed_without_a_password_file_and_refused_with_one() {
    let config = args(&[]).unwrap();
    assert_eq!(
        (config.password_file.as_deref(), config.anonymous_allowed()),
        (None, true)
    );
    let passwd = temp_file("default", "passwd", CAROL);
    let config = args(&["--password-file", passwd.to_str().unwrap()]).unwrap();
    assert_eq!(config.password_file.as_deref(), Some(passwd.as_path()));
    assert!(!config.anonymous_allowed());
    let config = args(&[
        "--password-file",
        passwd.to_str().unwrap(),
        "--allow-anonymous",
        "true",
    ])
    .unwrap();
    assert!(config.anonymous_allowed());
    let config = args(&["--allow-anonymous", "false"]).unwrap();
    assert!(!config.anonymous_allowed());
}

#[test]
fn relative_password_file_in_config_is_relative_to_the_config_folder() {
    let file = temp_file(
        "relative",
        "pigeon.toml",
        "password_file = \"passwd\"\nallow_anonymous = true\n",
    );
    let passwd = temp_file("relative", "passwd", CAROL);
    let config = args(&["--config", file.to_str().unwrap()]).unwrap();
    assert_eq!(config.password_file.as_deref(), Some(passwd.as_path()));
    assert_eq!(config.allow_anonymous, Some(true));
}

#[test]
fn a_malformed_password_file_is_refused_with_its_line() {
    let passwd = temp_file("bad", "passwd", &format!("{CAROL}# fine\nbob:hunter2\n"));
    let err = args(&["--password-file", passwd.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "invalid value for --password-file / password_file: password file {}: line 3: user `bob`: the password is not hashed (make the entry with `pigeon passwd` or `mosquitto_passwd`)",
            passwd.display()
        )
    );
    let err = args(&["--password-file", "/nonexistent/passwd"])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid value for --password-file / password_file: password file /nonexistent/passwd: cannot read it:"),
        "{err}"
    );
}

#[test]
fn allow_anonymous_takes_only_booleans() {
    let err = args(&["--allow-anonymous", "maybe"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--allow-anonymous"), "{err}");
    let err = Config::from_toml_str("allow_anonymous = \"no\"\n", "pigeon.toml".as_ref())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid value for --allow-anonymous / allow_anonymous in pigeon.toml"),
        "{err}"
    );
}
