//! Secret material: signing secrets, raw API keys, refresh tokens.

use std::fmt;

use zeroize::Zeroizing;

/// Bytes that must never be printed: `Debug` and `Display` show `***`, and the memory is
/// zeroed when the value is dropped.
///
/// ```
/// use portcullis_core::Secret;
/// let s = Secret::from("hunter2-but-longer");
/// assert_eq!(format!("{s:?}"), "***");
/// assert_eq!(s.expose(), b"hunter2-but-longer");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps the bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        crate::random::fill(&mut bytes);
        Self(bytes)
    }

    /// The secret's bytes. Named so that every use is easy to find in review.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret that is text (a minted token, a freshly generated API key): shown to its owner
/// exactly once, through [`SecretString::expose`], and `***` everywhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// A random token: 32 bytes from the operating system's CSPRNG, base64url without padding
    /// (43 characters) — a CSRF token, a generated secret.
    ///
    /// ```
    /// let t = portcullis_core::SecretString::random_token();
    /// assert_eq!(t.expose().len(), 43);
    /// assert_ne!(t.expose(), portcullis_core::SecretString::random_token().expose());
    /// ```
    pub fn random_token() -> Self {
        use base64::Engine as _;
        Self::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Secret::random(32).expose()),
        )
    }

    /// Wraps the string.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let s = Secret::from("correct horse battery staple");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", SecretString::new("tok".into())), "***");
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(Secret::random(32), Secret::random(32));
        assert_eq!(Secret::random(48).len(), 48);
    }
}
