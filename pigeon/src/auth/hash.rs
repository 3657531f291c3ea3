//! The three hash formats of a Mosquitto password file, read and written as
//! Mosquitto does (`libcommon/password_common.c`), so files move both ways:
//!
//! - `$6$<salt>$<hash>`: SHA-512 of the password followed by the salt;
//! - `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512 with a 64-byte key;
//! - `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`: a PHC string.
//!
//! `$6$` and `$7$` salts are 12 bytes (Mosquitto 2.0) or 64 (2.1), their hashes
//! 64 bytes, both in padded base64; the PHC string uses unpadded base64.
//! Every comparison of a computed hash with the stored one is constant-time.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::{
    alphabet,
    engine::{
        general_purpose::STANDARD_NO_PAD, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig,
    },
    Engine as _,
};
use pbkdf2::pbkdf2_hmac;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Padding is optional when reading (hand-made files), written as each format wants.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Length of the `$6$` / `$7$` hashes (SHA-512's output).
const SHA512_LEN: usize = 64;
/// PBKDF2 iterations `pigeon passwd` writes (Mosquitto 2.1's default; 2.0 wrote 101).
const PBKDF2_ITERATIONS: u32 = 1000;
/// Salt length `pigeon passwd` writes for `$7$`: the one length Mosquitto 2.0 and 2.1 both read.
const PBKDF2_SALT_LEN: usize = 12;
/// Mosquitto 2.1's argon2id parameters (also OWASP's first recommendation): 46 MiB, 1 pass, 1 lane.
const ARGON2_M_KIB: u32 = 47_104;
const ARGON2_T: u32 = 1;
const ARGON2_P: u32 = 1;
/// Mosquitto 2.1 writes 64-byte argon2id salts and hashes.
const ARGON2_SALT_LEN: usize = 64;
const ARGON2_HASH_LEN: usize = 64;
/// A file asking for more memory per check than this is refused when read:
/// every connecting client would make the broker allocate it.
const ARGON2_MAX_M_KIB: u32 = 4 * 1024 * 1024;

/// Which format `pigeon passwd` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum HashKind {
    /// `$argon2id$…` (Mosquitto 2.1's default).
    #[default]
    Argon2id,
    /// `$7$…` PBKDF2-HMAC-SHA512 (Mosquitto 2.0's default; 2.0 cannot read argon2id).
    #[cfg_attr(feature = "cli", value(name = "sha512-pbkdf2"))]
    Sha512Pbkdf2,
}

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$`: SHA-512(password ‖ salt).
    Sha512 {
        /// The salt (12 or 64 bytes).
        salt: Vec<u8>,
        /// The 64-byte digest.
        hash: Vec<u8>,
    },
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        /// PBKDF2 iterations.
        iterations: u32,
        /// The salt (12 or 64 bytes).
        salt: Vec<u8>,
        /// The 64-byte derived key.
        hash: Vec<u8>,
    },
    /// `$argon2id$`: the PHC string as written, and its parts.
    Argon2id {
        /// The argon2 version.
        version: Version,
        /// Memory, iterations and parallelism.
        params: Params,
        /// The salt.
        salt: Vec<u8>,
        /// The derived key.
        hash: Vec<u8>,
        /// The PHC string as read, written back unchanged.
        encoded: String,
    },
}

impl std::fmt::Debug for PasswordHash {
    /// Names the format only: hashes have no business in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswordHash::Sha512 { .. } => "PasswordHash($6$)",
            PasswordHash::Pbkdf2Sha512 { .. } => "PasswordHash($7$)",
            PasswordHash::Argon2id { .. } => "PasswordHash($argon2id$)",
        })
    }
}

impl PasswordHash {
    /// Parses the part of a password-file line after `user:`. The error says
    /// what is wrong, for a message naming the file and line.
    ///
    /// ```
    /// use pigeon::auth::PasswordHash;
    /// let hash = PasswordHash::parse("$6$h+cl7BVunRCievzf$UTQ2ggInF1J0yPkLOfgoSZlyiZlnK3V6PfnjV0HVyxrWSmrmftU6rSheWBK/UjCy20WcCpev0zrJjC65YV11Qw==").unwrap();
    /// assert!(hash.verify(b"hello"));
    /// assert!(!hash.verify(b"hello!"));
    /// assert!(PasswordHash::parse("hello").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("$6$") {
            let [salt, hash] = fields(rest, "$6$<salt>$<hash>")?;
            let (salt, hash) = (decode_salt(salt)?, decode_sha512(hash)?);
            Ok(PasswordHash::Sha512 { salt, hash })
        } else if let Some(rest) = text.strip_prefix("$7$") {
            let [iterations, salt, hash] = fields(rest, "$7$<iterations>$<salt>$<hash>")?;
            let iterations = match iterations.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("invalid $7$ iteration count `{iterations}`")),
            };
            let (salt, hash) = (decode_salt(salt)?, decode_sha512(hash)?);
            Ok(PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            })
        } else if text.starts_with("$argon2id$") {
            parse_argon2id(text)
        } else if text.starts_with("$argon2") {
            Err("only the argon2id variant of argon2 is supported".into())
        } else if text.starts_with('$') {
            Err("unknown hash format (expected $6$, $7$ or $argon2id$)".into())
        } else {
            Err("the password is not hashed (make the entry with `pigeon passwd` or `mosquitto_passwd`)".into())
        }
    }

    /// Hashes `password` in `kind`'s format with a fresh random salt.
    pub fn create(kind: HashKind, password: &[u8]) -> Result<Self, String> {
        match kind {
            HashKind::Sha512Pbkdf2 => {
                let salt = random_bytes(PBKDF2_SALT_LEN)?;
                let hash = pbkdf2(password, &salt, PBKDF2_ITERATIONS).to_vec();
                Ok(PasswordHash::Pbkdf2Sha512 {
                    iterations: PBKDF2_ITERATIONS,
                    salt,
                    hash,
                })
            }
            HashKind::Argon2id => {
                let salt = random_bytes(ARGON2_SALT_LEN)?;
                let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(ARGON2_HASH_LEN))
                    .map_err(|e| e.to_string())?;
                let hash = argon2(Version::V0x13, &params, &salt, password)?;
                let encoded = format!(
                    "$argon2id$v=19$m={ARGON2_M_KIB},t={ARGON2_T},p={ARGON2_P}${}${}",
                    STANDARD_NO_PAD.encode(&salt),
                    STANDARD_NO_PAD.encode(&hash)
                );
                Ok(PasswordHash::Argon2id {
                    version: Version::V0x13,
                    params,
                    salt,
                    hash,
                    encoded,
                })
            }
        }
    }

    /// The text after `user:` in the file.
    pub fn encode(&self) -> String {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                format!("$6${}${}", LENIENT.encode(salt), LENIENT.encode(hash))
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => format!(
                "$7${iterations}${}${}",
                LENIENT.encode(salt),
                LENIENT.encode(hash)
            ),
            PasswordHash::Argon2id { encoded, .. } => encoded.clone(),
        }
    }

    /// Whether `password` is the one hashed here (constant-time comparison).
    /// This is slow by design (argon2id, PBKDF2): call it off the async threads.
    pub fn verify(&self, password: &[u8]) -> bool {
        let computed = match self {
            PasswordHash::Sha512 { salt, .. } => Sha512::new()
                .chain_update(password)
                .chain_update(salt)
                .finalize()
                .to_vec(),
            PasswordHash::Pbkdf2Sha512 {
                iterations, salt, ..
            } => pbkdf2(password, salt, *iterations).to_vec(),
            PasswordHash::Argon2id {
                version,
                params,
                salt,
                ..
            } => match argon2(*version, params, salt, password) {
                Ok(hash) => hash,
                Err(_) => return false,
            },
        };
        let stored = match self {
            PasswordHash::Sha512 { hash, .. }
            | PasswordHash::Pbkdf2Sha512 { hash, .. }
            | PasswordHash::Argon2id { hash, .. } => hash,
        };
        computed.ct_eq(stored).into()
    }
}

/// Splits `$`-separated fields, exactly `N` of them.
fn fields<'a, const N: usize>(rest: &'a str, shape: &str) -> Result<[&'a str; N], String> {
    let parts: Vec<&str> = rest.split('$').collect();
    <[&str; N]>::try_from(parts)
        .ok()
        .filter(|parts| parts.iter().all(|p| !p.is_empty()))
        .ok_or_else(|| format!("malformed hash (expected {shape})"))
}

fn decode_salt(text: &str) -> Result<Vec<u8>, String> {
    let salt = LENIENT
        .decode(text)
        .map_err(|e| format!("salt is not base64: {e}"))?;
    match salt.len() {
        12 | 64 => Ok(salt),
        n => Err(format!("salt is {n} bytes (Mosquitto's are 12 or 64)")),
    }
}

fn decode_sha512(text: &str) -> Result<Vec<u8>, String> {
    let hash = LENIENT
        .decode(text)
        .map_err(|e| format!("hash is not base64: {e}"))?;
    match hash.len() {
        SHA512_LEN => Ok(hash),
        n => Err(format!("hash is {n} bytes (expected {SHA512_LEN})")),
    }
}

/// `$argon2id$[v=<version>$]m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`, as
/// libargon2 writes it (no `v=` means version 0x10).
fn parse_argon2id(text: &str) -> Result<PasswordHash, String> {
    const SHAPE: &str = "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>";
    let rest = &text["$argon2id$".len()..];
    let parts: Vec<&str> = rest.split('$').collect();
    let (version, params, salt, hash) = match parts.as_slice() {
        [v, params, salt, hash] => (parse_version(v)?, *params, *salt, *hash),
        [params, salt, hash] => (Version::V0x10, *params, *salt, *hash),
        _ => return Err(format!("malformed argon2id hash (expected {SHAPE})")),
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for pair in params.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("malformed argon2id parameter `{pair}`"))?;
        let slot = match key {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            _ => return Err(format!("unknown argon2id parameter `{key}`")),
        };
        let value: u32 = value
            .parse()
            .map_err(|_| format!("invalid argon2id parameter `{pair}`"))?;
        if slot.replace(value).is_some() {
            return Err(format!("argon2id parameter `{key}` given twice"));
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(format!("argon2id needs m, t and p (expected {SHAPE})"));
    };
    if m > ARGON2_MAX_M_KIB {
        return Err(format!(
            "argon2id memory m={m} KiB is above the limit of {ARGON2_MAX_M_KIB}"
        ));
    }
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|e| format!("argon2id salt is not base64: {e}"))?;
    let hash = STANDARD_NO_PAD
        .decode(hash)
        .map_err(|e| format!("argon2id hash is not base64: {e}"))?;
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(format!(
            "argon2id salt is {} bytes (at least {})",
            salt.len(),
            argon2::MIN_SALT_LEN
        ));
    }
    let params = Params::new(m, t, p, Some(hash.len()))
        .map_err(|e| format!("invalid argon2id parameters: {e}"))?;
    Ok(PasswordHash::Argon2id {
        version,
        params,
        salt,
        hash,
        encoded: text.to_owned(),
    })
}

fn parse_version(field: &str) -> Result<Version, String> {
    match field {
        "v=19" => Ok(Version::V0x13),
        "v=16" => Ok(Version::V0x10),
        _ => Err(format!(
            "unsupported argon2id version `{field}` (expected v=19)"
        )),
    }
}

fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; SHA512_LEN] {
    let mut key = [0u8; SHA512_LEN];
    pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut key);
    key
}

fn argon2(
    version: Version,
    params: &Params,
    salt: &[u8],
    password: &[u8],
) -> Result<Vec<u8>, String> {
    let len = params.output_len().unwrap_or(ARGON2_HASH_LEN);
    let mut out = vec![0u8; len];
    Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into(password, salt, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn random_bytes(len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random numbers for the salt: {e}"))?;
    Ok(bytes)
}
