//! HMAC-SHA256, keyed once, from the crypto backend the features chose.

/// HMAC-SHA256 keyed once, so that verifying does not re-derive the key pads for every token
/// (what `jsonwebtoken::decode` does; measured in portcullis-bench). From aws-lc when that
/// backend is on, else RustCrypto. An HS256 key's whole material: it signs and verifies.
#[derive(Clone)]
pub(crate) struct HmacSha256 {
    #[cfg(feature = "aws-lc")]
    key: aws_lc_rs::hmac::Key,
    #[cfg(not(feature = "aws-lc"))]
    key: hmac::Hmac<sha2::Sha256>,
}

impl HmacSha256 {
    /// Keys the MAC with `secret` (of any length, RFC 2104).
    pub(crate) fn new(secret: &[u8]) -> Self {
        #[cfg(feature = "aws-lc")]
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        // HMAC takes keys of any length: RustCrypto's `new_from_slice` never fails for it.
        #[cfg(not(feature = "aws-lc"))]
        #[allow(clippy::expect_used)]
        let key = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret)
            .expect("HMAC accepts keys of any length");
        Self { key }
    }

    /// The MAC of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 32] {
        let mut tag = [0u8; 32];
        #[cfg(feature = "aws-lc")]
        tag.copy_from_slice(aws_lc_rs::hmac::sign(&self.key, message).as_ref());
        #[cfg(not(feature = "aws-lc"))]
        tag.copy_from_slice(
            &hmac::Mac::finalize(hmac::Mac::chain_update(self.key.clone(), message)).into_bytes(),
        );
        tag
    }

    /// True when `tag` is the MAC of `message`, compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        #[cfg(feature = "aws-lc")]
        return aws_lc_rs::hmac::verify(&self.key, message, tag).is_ok();
        #[cfg(not(feature = "aws-lc"))]
        return hmac::Mac::verify_slice(hmac::Mac::chain_update(self.key.clone(), message), tag)
            .is_ok();
    }
}
