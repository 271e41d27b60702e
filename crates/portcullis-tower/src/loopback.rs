//! Whether a request names this machine's loopback interface as its host: the condition for
//! the board fallback unless `AUTH_FALLBACK_ALLOW_REMOTE` is set.
//!
//! A loopback bind keeps other machines out, but not a web page: DNS rebinding points a name the
//! attacker owns at 127.0.0.1, and the victim's browser then talks to the local server with that
//! name as its `Host`. So the name the request was addressed to, not the socket it came in on,
//! tells a local client from a rebound page. Every place a request names its host must name
//! loopback — the `Host` header and the URI's authority (HTTP/2 `:authority`, HTTP/1.1
//! absolute-form) — and a request that names none is not addressed to loopback.

use http::header::HOST;
use http::request::Parts;
use http::uri::Authority;
use http::{HeaderMap, Uri};
use std::net::{Ipv4Addr, Ipv6Addr};

/// True when every host the request names is loopback and it names at least one.
///
/// ```
/// use portcullis_tower::loopback::addressed_to_loopback;
/// let head = |host: &str| http::Request::get("/").header("host", host).body(()).unwrap().into_parts().0;
/// assert!(addressed_to_loopback(&head("localhost:8080")));
/// assert!(addressed_to_loopback(&head("[::1]:8080")));
/// assert!(!addressed_to_loopback(&head("rebound.example:8080")));
/// ```
pub fn addressed_to_loopback(parts: &Parts) -> bool {
    names_loopback(&parts.uri, &parts.headers)
}

/// [`addressed_to_loopback`] of a request's URI and headers.
pub(crate) fn names_loopback(uri: &Uri, headers: &HeaderMap) -> bool {
    let mut headers = headers.get_all(HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        // Two `Host` headers: which one a proxy or a browser meant is anyone's guess.
        return false;
    }
    let uri = uri.authority();
    if header.is_none() && uri.is_none() {
        return false;
    }
    header.is_none_or(|h| is_loopback_authority(h.as_bytes()))
        && uri.is_none_or(|a| is_loopback_authority(a.as_str().as_bytes()))
}

/// True for `host[:port]` where host is `localhost` (any case, with or without the root's
/// trailing dot, RFC 6761 §6.3: it always means loopback), an IPv4 address in 127.0.0.0/8, or
/// `[::1]` (also as an IPv4-mapped loopback address). Any port, or none. Nothing else — not
/// `localhost.example`, not user info, not a zone id.
pub fn is_loopback_authority(authority: &[u8]) -> bool {
    let Ok(authority) = Authority::try_from(authority) else {
        return false;
    };
    // `Authority` accepts user info (`evil@localhost`); no browser sends it in a host.
    if authority.as_str().contains('@') {
        return false;
    }
    let host = authority.host();
    // What follows the host is nothing or `:` and a port; `localhost:x` is not "any port".
    let port = authority.as_str().get(host.len()..).unwrap_or_default();
    if !port.is_empty()
        && !port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, hosts: &[&[u8]]) -> Parts {
        let mut b = http::Request::get(uri);
        for h in hosts {
            b = b.header(HOST, http::HeaderValue::from_bytes(h).unwrap());
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn loopback_names_and_addresses_with_any_port_are_loopback() {
        for host in [
            "localhost",
            "localhost:1234",
            "LOCALHOST",
            "LocalHost:80",
            "localhost.",
            "localhost.:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.0.0.2:8080",
            "127.255.255.254",
            "[::1]",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:1",
            "[::ffff:127.0.0.1]:8080",
            "localhost:",
        ] {
            assert!(is_loopback_authority(host.as_bytes()), "{host}");
            assert!(
                addressed_to_loopback(&head("/", &[host.as_bytes()])),
                "{host}"
            );
        }
    }

    #[test]
    fn other_names_and_lookalikes_are_not_loopback() {
        for host in [
            &b""[..],
            b"evil.example",
            b"evil.example:8080",
            b"localhost.evil.com",
            b"localhost.evil.com:8080",
            b"evillocalhost",
            b"xn--localhost",
            b"localhost..",
            b"127.0.0.1.",
            b"127.0.0.1.evil.com",
            b"127.1",
            b"2130706433",
            b"0x7f.0.0.1",
            b"0.0.0.0",
            b"10.0.0.1",
            b"192.168.1.10:8080",
            b"[::]",
            b"[::2]",
            b"[fe80::1%25lo]",
            b"::1",
            b"[::1",
            b"localhost:x",
            b"localhost:80:80",
            b"evil@localhost",
            b"localhost@evil.example",
            b"localhost\xff",
            b"l\xc3\xb6calhost",
            b"localhost/",
            b" localhost",
        ] {
            assert!(!is_loopback_authority(host), "{host:?}");
            if let Ok(v) = http::HeaderValue::from_bytes(host) {
                let mut p = head("/", &[]);
                p.headers.insert(HOST, v);
                assert!(!addressed_to_loopback(&p), "{host:?}");
            }
        }
    }

    #[test]
    fn a_missing_or_doubled_host_is_not_loopback() {
        assert!(!addressed_to_loopback(&head("/", &[])));
        assert!(!addressed_to_loopback(&head(
            "/",
            &[b"localhost", b"localhost"]
        )));
        assert!(!addressed_to_loopback(&head(
            "/",
            &[b"localhost", b"evil.example"]
        )));
    }

    proptest::proptest! {
        #[test]
        fn any_host_bytes_give_an_answer_never_a_panic(
            host in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
        ) {
            let _ = is_loopback_authority(&host);
            if let Ok(v) = http::HeaderValue::from_bytes(&host) {
                let mut p = head("/", &[]);
                p.headers.insert(HOST, v);
                let _ = addressed_to_loopback(&p);
            }
        }

        #[test]
        fn a_name_with_more_than_localhost_is_never_loopback(
            label in "[a-z0-9-]{1,20}",
            port in proptest::option::of(0u32..70_000),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            for host in [
                format!("localhost.{label}{port}"),
                format!("{label}.localhost{port}"),
                format!("{label}localhost{port}"),
                format!("127.0.0.1.{label}{port}"),
            ] {
                proptest::prop_assert!(!is_loopback_authority(host.as_bytes()), "{}", host);
            }
        }
    }

    #[test]
    fn the_uri_authority_must_be_loopback_too() {
        // HTTP/2 `:authority` and HTTP/1.1 absolute-form both arrive as the URI's authority.
        assert!(addressed_to_loopback(&head("http://localhost:8080/x", &[])));
        assert!(addressed_to_loopback(&head(
            "http://127.0.0.1:8080/x",
            &[b"localhost:8080"]
        )));
        assert!(!addressed_to_loopback(&head("http://evil.example/x", &[])));
        assert!(!addressed_to_loopback(&head(
            "http://evil.example/x",
            &[b"localhost"]
        )));
        assert!(!addressed_to_loopback(&head(
            "http://localhost/x",
            &[b"evil.example"]
        )));
    }
}
