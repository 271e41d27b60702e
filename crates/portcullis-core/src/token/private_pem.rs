//! Private keys from the PEM forms `openssl` writes, for the asymmetric algorithms.

use jsonwebtoken::EncodingKey;

use super::algorithm::JwtAlgorithm;
use super::key::KeyError;

/// The private key of `alg` in `pem`: PKCS#8 (`PRIVATE KEY`), PKCS#1 for RSA
/// (`RSA PRIVATE KEY`), SEC1 for ES256 (`EC PRIVATE KEY`, also after an `EC PARAMETERS`
/// block).
pub(crate) fn encoding_key(alg: JwtAlgorithm, pem: &[u8]) -> Result<EncodingKey, KeyError> {
    let err = |e: jsonwebtoken::errors::Error| KeyError::InvalidKey(alg, e.to_string());
    let block = private_key_block(alg, pem)?;
    match (alg, block.tag()) {
        (JwtAlgorithm::Hs256, _) => Err(KeyError::NotPem),
        // jsonwebtoken reads EC keys only as PKCS#8: re-wrap SEC1 (RFC 5915) as PKCS#8.
        (JwtAlgorithm::Es256, "EC PRIVATE KEY") => Ok(EncodingKey::from_ec_der(
            sec1_to_pkcs8(block.contents())?.as_bytes(),
        )),
        (JwtAlgorithm::Rs256, _) => {
            EncodingKey::from_rsa_pem(pem::encode(&block).as_bytes()).map_err(err)
        }
        (JwtAlgorithm::Es256, _) => {
            EncodingKey::from_ec_pem(pem::encode(&block).as_bytes()).map_err(err)
        }
        (JwtAlgorithm::EdDsa, _) => {
            EncodingKey::from_ed_pem(pem::encode(&block).as_bytes()).map_err(err)
        }
    }
}

/// The one private-key block of a PEM file, with a reason naming what was found instead.
/// Never quotes the file: it holds a private key.
fn private_key_block(alg: JwtAlgorithm, pem: &[u8]) -> Result<pem::Pem, KeyError> {
    if alg == JwtAlgorithm::Hs256 {
        return Err(KeyError::NotPem);
    }
    let invalid = |reason: &str| KeyError::InvalidKey(alg, reason.to_owned());
    let blocks = pem::parse_many(pem).map_err(|_| invalid("not a PEM file"))?;
    let accepted: &[&str] = match alg {
        JwtAlgorithm::Rs256 => &["PRIVATE KEY", "RSA PRIVATE KEY"],
        JwtAlgorithm::Es256 => &["PRIVATE KEY", "EC PRIVATE KEY"],
        JwtAlgorithm::EdDsa | JwtAlgorithm::Hs256 => &["PRIVATE KEY"],
    };
    let mut keys = blocks
        .into_iter()
        .filter(|b| b.tag().ends_with("PRIVATE KEY"));
    match (keys.next(), keys.next()) {
        (Some(block), None) if accepted.contains(&block.tag()) => Ok(block),
        (Some(block), None) if block.tag() == "ENCRYPTED PRIVATE KEY" => Err(invalid(
            "the key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)",
        )),
        (Some(block), None) => Err(invalid(&format!(
            "a `{}` block does not hold a {alg} key; expected {}",
            block.tag(),
            accepted.join(" or ")
        ))),
        (None, _) => Err(invalid("no PRIVATE KEY block in the PEM file")),
        (Some(_), Some(_)) => Err(invalid("more than one private key in the PEM file")),
    }
}

/// A SEC1 `ECPrivateKey` (DER) on P-256 as PKCS#8 (DER). Other curves are refused here.
fn sec1_to_pkcs8(der: &[u8]) -> Result<p256::pkcs8::der::SecretDocument, KeyError> {
    use p256::pkcs8::EncodePrivateKey as _;
    let invalid = |reason: &str| KeyError::InvalidKey(JwtAlgorithm::Es256, reason.to_owned());
    p256::SecretKey::from_sec1_der(der)
        .map_err(|_| invalid("the EC PRIVATE KEY is not a valid P-256 (prime256v1) key"))?
        .to_pkcs8_der()
        .map_err(|_| invalid("the EC PRIVATE KEY could not be re-encoded as PKCS#8"))
}
