//! The shared store conformance suite, against the in-memory stores.
#![cfg(feature = "conformance")]

use portcullis_core::store::conformance::Stores;

portcullis_core::store_conformance_tests!(async { Stores::memory() });
