//! The one place that asks the OS for randomness.

/// Fills `buf` from the operating system's CSPRNG.
///
/// An OS that cannot give randomness leaves nothing safe to do, so this aborts the
/// operation loudly rather than hand out a predictable key or token.
pub(crate) fn fill(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        // Not reachable from request input; a broken OS RNG must not degrade into weak keys.
        panic!("the operating system's random number generator failed: {e}");
    }
}

/// A random v4 UUID as text (session ids, `jti`s, key ids, run ids).
pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
