//! The adversarial corpus: every group a table of named cases, described once and run by every
//! harness (see [`crate::case::Harness`]).
//!
//! Most tables need an HS256 user ring ([`hs256_groups`]); [`header::confusion_against_asymmetric`]
//! needs an asymmetric one; [`external`] needs two external issuers configured as
//! [`crate::idp`] describes. A case only one harness can run says which and why
//! ([`crate::case::Case::only`]); a case whose outcome differs says so
//! ([`crate::case::Case::on_server`]).

pub mod api_keys;
pub mod claims;
pub mod external;
pub mod header;
pub mod request;
pub mod shape;

use crate::case::Table;

/// Every table of an HS256 user ring, by group name.
pub fn hs256_groups() -> Vec<(&'static str, Table)> {
    vec![
        ("alg none", header::alg_none()),
        ("confusion/HS256 ring", header::confusion_against_hs256()),
        ("kid injection", header::kid_injection()),
        ("crit", header::unknown_crit()),
        ("exp/nbf/iat", claims::time_claims()),
        ("iss/aud/type", claims::iss_aud_type()),
        ("token kinds", claims::token_kinds()),
        ("tampered tokens", shape::tampered_tokens()),
        ("json structure", shape::json_structure()),
        ("api keys", api_keys::api_keys()),
        ("authorization headers", request::authorization_headers()),
        (
            "conflicting credentials",
            request::conflicting_credentials(),
        ),
        ("no credential", request::no_credential()),
    ]
}

/// Every table of [`hs256_groups`] in one, names prefixed with their group.
pub fn hs256_all() -> Table {
    let mut all = Table::default();
    for (group, table) in hs256_groups() {
        all.extend(group, table);
    }
    all
}
