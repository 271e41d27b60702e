//! Compact JWS by hand: base64url, HMAC-SHA256 (RFC 2104 on SHA-256), signing, `alg: none`, and
//! segment surgery.
//!
//! Nothing here validates anything: these helpers build exactly the bytes a case asks for,
//! including what no JOSE library would produce (duplicate members, invalid UTF-8, wrong types).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The base64url alphabet (RFC 4648 §5).
pub const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `data` in unpadded base64url.
///
/// ```
/// assert_eq!(portcullis_testkit::jws::b64url(b"{}"), "e30");
/// ```
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Unpadded base64url decoded (panics on a character outside the alphabet: test input only).
///
/// ```
/// assert_eq!(portcullis_testkit::jws::unb64url("e30"), b"{}");
/// ```
pub fn unb64url(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// HMAC-SHA256 (RFC 2104).
///
/// ```
/// // RFC 4231, test case 2.
/// let mac = portcullis_testkit::jws::hmac_sha256(b"Jefe", b"what do ya want for nothing?");
/// assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
/// ```
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `header_segment.b64(claims).HMAC(secret)`: claims signed under header bytes taken as they are.
pub fn sign_seg(header_segment: &str, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{header_segment}.{}", b64url(claims.to_string().as_bytes()));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

/// A compact JWS of `header` and `claims`, HMAC-SHA256-signed with `secret`.
pub fn sign(header: &Value, claims: &Value, secret: &[u8]) -> String {
    sign_seg(&b64url(header.to_string().as_bytes()), claims, secret)
}

/// A JWS of raw JSON texts (to send what `serde_json::Value` cannot hold, such as a duplicate
/// member), HMAC-SHA256-signed with `secret`.
pub fn sign_raw(header: &[u8], claims: &[u8], secret: &[u8]) -> String {
    let input = format!("{}.{}", b64url(header), b64url(claims));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

/// A JWS with an empty signature (what `alg: none` tokens carry): `header.payload.`.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// Segment `i` of `token` (panics if it has fewer).
pub fn seg(token: &str, i: usize) -> &str {
    token.split('.').nth(i).unwrap()
}

/// The three segments of `token`.
pub fn segments(token: &str) -> [&str; 3] {
    [seg(token, 0), seg(token, 1), seg(token, 2)]
}

/// Segment `i` of `token`, decoded as JSON (0: the header, 1: the claims).
pub fn part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&unb64url(seg(token, i))).unwrap()
}

/// `token` with segment `i` replaced by `f(segment)`.
pub fn with_seg(token: &str, i: usize, f: impl FnOnce(&str) -> String) -> String {
    let mut s: Vec<String> = token.split('.').map(str::to_owned).collect();
    s[i] = f(&s[i]);
    s.join(".")
}

/// `token` under another header, its payload and signature kept.
pub fn reheaded(token: &str, header: &Value) -> String {
    with_seg(token, 0, |_| b64url(header.to_string().as_bytes()))
}

/// `s` with the base64url character at byte `i` replaced by another one.
pub fn flip_at(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// `claims` without the member `name`.
pub fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().unwrap().remove(name);
}
