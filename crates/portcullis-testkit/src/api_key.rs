//! API keys forged by hand: `<prefix>_` and 43 random characters, then six base62 digits of the
//! CRC-32 of everything before them. A key forged here passes every check but the store lookup.

/// CRC-32 (IEEE), as `crc32fast` computes it.
///
/// ```
/// assert_eq!(portcullis_testkit::api_key::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// `body` (the prefix, `_` and 43 random characters) with its checksum appended.
pub fn with_checksum(body: &str) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32(body.as_bytes());
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&sum).unwrap())
}

/// The length of a key's body (prefix `ck_` and its 43 random characters), before the checksum.
pub const BODY_LEN: usize = 46;

/// A well-formed key under `prefix` with a valid checksum that no store holds.
///
/// ```
/// use portcullis_testkit::api_key::{stranger, with_checksum};
/// let key = stranger("ck");
/// assert_eq!(with_checksum(&key[..46]), key);
/// ```
pub fn stranger(prefix: &str) -> String {
    with_checksum(&format!(
        "{prefix}_Str4ngerKeyNeverIssued0123456789abcdefghijk"
    ))
}
