//! Known vectors from independent implementations: Debian's `mosquitto_passwd`
//! 2.0.11 ($6$, $7$ with 12-byte salts), Python's hashlib (64-byte salts as
//! Mosquitto 2.1 writes) and libargon2 through argon2-cffi (argon2id).

use super::{
    edit::{update_file, Change, Outcome},
    file::with_entry,
    HashKind, PasswordFile, PasswordHash,
};

/// `mosquitto_passwd -b FILE alice secret` (Mosquitto 2.0.11).
const MOSQ_7: &str = "$7$101$GDf+qaiEtmm73MYq$hC9X8gShzoJTzpH/RNG8pFyoijl79r4Px6RVC7/FgydI6ylkH95WeEc2DpCfcaTVXqbV77M2kZFHuol2XNH4gw==";
/// `mosquitto_passwd -H sha512 -b FILE carol hello` (Mosquitto 2.0.11).
const MOSQ_6: &str = "$6$h+cl7BVunRCievzf$UTQ2ggInF1J0yPkLOfgoSZlyiZlnK3V6PfnjV0HVyxrWSmrmftU6rSheWBK/UjCy20WcCpev0zrJjC65YV11Qw==";
/// hashlib.pbkdf2_hmac('sha512', b'correct horse', bytes(range(100, 164)), 1000, 64).
const PY_7_SALT64: &str = "$7$1000$ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==$bReoNWGaksmWqNgRNkOmvJNNuPkyDtLy5MDhDwUgVN4Uy4ZUMiGLqomUgTQrXnxrEd4u0t1GDgY4yNRdtyQ8WQ==";
/// sha512(b'correct horse' + bytes(range(100, 164))).
const PY_6_SALT64: &str = "$6$ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGiow==$6nS7mUsLE3eSJTHAIynqrkXA47H5hrMtfCM3ecqv0CgnZPWDbVlrp+agf6k5FUCVp4aWgZbJJkbz1fn51FD3hA==";
/// libargon2's own test vector (password "password", salt "somesalt").
const ARGON2_REF: &str =
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
/// Two lanes, small memory (password "password", salt "somesalt").
const ARGON2_P2: &str =
    "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc";
/// Mosquitto 2.1's parameters and lengths (64-byte salt bytes(range(64)) and hash), password "hunter2".
const ARGON2_MOSQ21: &str = "$argon2id$v=19$m=47104,t=1,p=1$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw$w0rzkd+f36OkB0Xa0lkNxFDOAMYuTDQAiFZyZqqgS6l/5QIF2RgnFgbmtqo0tAO3zToaJHDZJyeUikUl76kPQg";

fn verifies(encoded: &str, right: &str, wrong: &str) {
    let hash = PasswordHash::parse(encoded).unwrap_or_else(|e| panic!("{encoded}: {e}"));
    assert!(
        hash.verify(right.as_bytes()),
        "{encoded} should accept {right:?}"
    );
    assert!(
        !hash.verify(wrong.as_bytes()),
        "{encoded} should refuse {wrong:?}"
    );
    assert_eq!(hash.encode(), encoded, "written back as read");
}

#[test]
fn sha512_pbkdf2_from_mosquitto_passwd() {
    verifies(MOSQ_7, "secret", "Secret");
}

#[test]
fn sha512_from_mosquitto_passwd() {
    verifies(MOSQ_6, "hello", "hello ");
}

#[test]
fn sixty_four_byte_salts_as_mosquitto_2_1_writes() {
    verifies(PY_7_SALT64, "correct horse", "correct horse battery");
    verifies(PY_6_SALT64, "correct horse", "");
}

#[test]
fn argon2id_vectors_from_libargon2() {
    verifies(ARGON2_REF, "password", "passwore");
    verifies(ARGON2_P2, "password", "Password");
    verifies(ARGON2_MOSQ21, "hunter2", "hunter3");
}

#[test]
fn created_hashes_verify_and_parse_back() {
    for kind in [HashKind::Argon2id, HashKind::Sha512Pbkdf2] {
        let hash = PasswordHash::create(kind, b"s3cret").unwrap();
        let encoded = hash.encode();
        let parsed = PasswordHash::parse(&encoded).unwrap();
        assert!(parsed.verify(b"s3cret"), "{encoded}");
        assert!(!parsed.verify(b"s3cre"), "{encoded}");
        let again = PasswordHash::create(kind, b"s3cret").unwrap();
        assert_ne!(again.encode(), encoded, "a fresh salt every time");
    }
    let argon = PasswordHash::create(HashKind::Argon2id, b"x")
        .unwrap()
        .encode();
    assert!(
        argon.starts_with("$argon2id$v=19$m=47104,t=1,p=1$"),
        "{argon}"
    );
    let pbkdf2 = PasswordHash::create(HashKind::Sha512Pbkdf2, b"x")
        .unwrap()
        .encode();
    assert!(pbkdf2.starts_with("$7$1000$"), "{pbkdf2}");
    // A 12-byte salt: 16 base64 characters, which Mosquitto 2.0 requires.
    assert_eq!(pbkdf2.split('$').nth(3).map(str::len), Some(16), "{pbkdf2}");
}

#[test]
fn malformed_hashes_say_what_is_wrong() {
    let cases = [
        ("secret", "not hashed"),
        ("$5$abc$def", "unknown hash format"),
        ("$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "argon2id"),
        ("$7$0$GDf+qaiEtmm73MYq$hC9X8gShzoJTzpH/RNG8pFyoijl79r4Px6RVC7/FgydI6ylkH95WeEc2DpCfcaTVXqbV77M2kZFHuol2XNH4gw==", "iteration count"),
        ("$7$101$GDf+qaiEtmm73MYq", "expected $7$<iterations>$<salt>$<hash>"),
        ("$6$c29tZXNhbHQ=$UTQ2ggInF1J0yPkLOfgoSZlyiZlnK3V6PfnjV0HVyxrWSmrmftU6rSheWBK/UjCy20WcCpev0zrJjC65YV11Qw==", "salt is 8 bytes"),
        ("$6$h+cl7BVunRCievzf$UTQ2ggInF1J0", "hash is 9 bytes"),
        ("$6$h+cl7BVunRCievzf$!!!!", "not base64"),
        ("$argon2id$v=19$m=65536,t=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "needs m, t and p"),
        ("$argon2id$v=18$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "version"),
        ("$argon2id$v=19$m=99999999,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "above the limit"),
        ("$argon2id$v=19$m=65536,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "invalid argon2id parameters"),
    ];
    for (text, expected) in cases {
        let err = PasswordHash::parse(text).unwrap_err();
        assert!(
            err.contains(expected),
            "{text}: {err:?} should mention {expected:?}"
        );
    }
}

#[test]
fn a_file_with_comments_and_every_format() {
    let text = format!("# users\n\nalice:{MOSQ_7}\r\n  carol : {MOSQ_6}\ndave:{ARGON2_P2}\n");
    let file = PasswordFile::parse(&text, "users.txt").unwrap();
    assert_eq!(file.len(), 3);
    assert!(file.verify("alice", b"secret"));
    assert!(file.verify("carol", b"hello"));
    assert!(file.verify("dave", b"password"));
    assert!(!file.verify("alice", b"hello"), "another user's password");
    assert!(!file.verify("mallory", b"secret"), "unknown user");
    assert!(!file.verify("alic", b"secret"));
}

#[test]
fn a_malformed_line_names_the_file_and_line() {
    let cases = [
        (
            format!("alice:{MOSQ_7}\n# ok\nbob\n"),
            "line 3: expected `user:hash`",
        ),
        (
            format!("alice:{MOSQ_7}\nbob:plain\n"),
            "line 2: user `bob`: the password is not hashed (make the entry with `pigeon passwd` or `mosquitto_passwd`)",
        ),
        (format!(":{MOSQ_7}\n"), "line 1: empty username before `:`"),
        (
            format!("alice:{MOSQ_7}\n\nalice:{MOSQ_6}\n"),
            "line 3: user `alice` is already on line 1",
        ),
    ];
    for (text, expected) in cases {
        let err = PasswordFile::parse(&text, "/etc/pigeon/passwd")
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("password file /etc/pigeon/passwd: {expected}"));
    }
}

#[test]
fn editing_keeps_other_lines() {
    let hash = PasswordHash::parse(MOSQ_6).unwrap();
    let text = format!("# comment\nalice:{MOSQ_7}\n\nbob:{MOSQ_7}\n");
    let (changed, found) = with_entry(&text, "alice", Some(&hash));
    assert!(found);
    assert_eq!(
        changed,
        format!("# comment\nalice:{MOSQ_6}\n\nbob:{MOSQ_7}\n")
    );
    let (added, found) = with_entry(&text, "carol", Some(&hash));
    assert!(!found);
    assert_eq!(added, format!("{text}carol:{MOSQ_6}\n"));
    let (removed, found) = with_entry(&text, "alice", None);
    assert!(found);
    assert_eq!(removed, format!("# comment\n\nbob:{MOSQ_7}\n"));
}

#[test]
fn update_file_creates_changes_and_deletes() {
    let dir = std::env::temp_dir().join(format!("pigeon-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("passwd");
    let _ = std::fs::remove_file(&path);
    let set = |password: &'static str| Change::Set {
        password: password.as_bytes(),
        kind: HashKind::Sha512Pbkdf2,
    };
    assert_eq!(
        update_file(&path, "alice", set("one")).unwrap(),
        Outcome::Added
    );
    assert_eq!(
        update_file(&path, "bob", set("two")).unwrap(),
        Outcome::Added
    );
    assert_eq!(
        update_file(&path, "alice", set("three")).unwrap(),
        Outcome::Changed
    );
    let file = PasswordFile::load(&path).unwrap();
    assert!(file.verify("alice", b"three") && file.verify("bob", b"two"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        update_file(&path, "alice", Change::Delete).unwrap(),
        Outcome::Deleted
    );
    let err = update_file(&path, "alice", Change::Delete).unwrap_err();
    assert!(
        err.to_string().ends_with("user `alice` is not in the file"),
        "{err}"
    );
    let err = update_file(&path, "a:b", set("x")).unwrap_err();
    assert!(err.to_string().contains("cannot contain `:`"), "{err}");
    let file = PasswordFile::load(&path).unwrap();
    assert!(!file.contains("alice") && file.contains("bob"));
    std::fs::write(&path, "bob:oops\n").unwrap();
    let err = update_file(&path, "carol", set("x")).unwrap_err();
    assert!(err.to_string().contains(": line 1: user `bob`"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
