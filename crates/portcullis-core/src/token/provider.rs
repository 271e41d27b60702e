//! The crypto backend jsonwebtoken signs and verifies with, chosen from *our* features.

use std::sync::Once;

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "portcullis-core needs a crypto backend: enable its `aws-lc` (default) or `rust-crypto` feature"
);

/// Installs jsonwebtoken's process-wide crypto provider from *our* features before any
/// jsonwebtoken call. jsonwebtoken on its own falls back to a provider that panics at run time
/// when both or neither of its backends are enabled; this makes every combination work
/// (aws-lc wins when both are on, as the faster one).
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // Err means the application installed a provider first; that one is used.
        let _ = provider.install_default();
    });
}
