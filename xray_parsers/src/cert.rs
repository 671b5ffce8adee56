//! An X.509 certificate, as a tool printed it (PEM), read into the contract's
//! [`Certificate`].
//!
//! Both toolchains go through here when the tool gives us the certificate
//! itself (tlsx `-cert`, nmap `ssl-cert`'s `pem`), so RB4 is judged the same
//! way whichever tool saw it (docs/design.md D10, D20):
//! - `is_self_signed`: the issuer name equals the subject name (RFC 5280
//!   self-issued). tlsx's own `self_signed` is a heuristic on key identifiers
//!   that calls a CA-issued certificate without AKID self-signed;
//! - `sans`: DNS names and IP addresses, in certificate order. tlsx's
//!   `subject_an` leaves the IP addresses out, which would turn a correct
//!   certificate for an address into a hostname mismatch;
//! - `spki_sha256` and `cert_sha256`: SHA-256 of the DER SubjectPublicKeyInfo
//!   and of the whole certificate, so the RB4 anchor does not depend on which
//!   fields a tool happens to print.

use base64::Engine;
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{Ia5StringRef, ObjectIdentifier, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

use xray_engine::contract::{Certificate, Timestamp};

const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const AUTHORITY_INFO_ACCESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");

/// A certificate read from DER.
#[derive(Debug, Clone)]
pub struct CertFacts {
    pub certificate: Certificate,
    /// The certificate names an OCSP responder or a CRL. tlsx checks
    /// revocation of every certificate it sees and fetches these URLs; without
    /// them it fetches nothing.
    pub revocation_urls: bool,
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN).ok_or("no BEGIN CERTIFICATE line")? + BEGIN.len();
    let len = pem[start..].find(END).ok_or("no END CERTIFICATE line")?;
    let b64: String = pem[start..start + len].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("certificate PEM is not base64: {e}"))?;
    if der.is_empty() {
        return Err("certificate PEM is empty".into());
    }
    Ok(der)
}

pub fn from_pem(pem: &str) -> Result<CertFacts, String> {
    from_der(&pem_to_der(pem)?)
}

pub fn from_der(der: &[u8]) -> Result<CertFacts, String> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| format!("certificate is not valid DER X.509: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("certificate public key: {e}"))?;
    let encoded_name = |n: &Name| n.to_der().map_err(|e| format!("certificate name: {e}"));
    let self_signed = encoded_name(&tbs.issuer)? == encoded_name(&tbs.subject)?;
    let mut sans = Vec::new();
    let mut revocation_urls = false;
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id == SUBJECT_ALT_NAME {
            let names = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|e| format!("certificate subjectAltName: {e}"))?;
            for n in names.0 {
                let v = match n {
                    GeneralName::DnsName(d) => d.as_str().to_ascii_lowercase(),
                    GeneralName::IpAddress(ip) => match ip_text(ip.as_bytes()) {
                        Some(ip) => ip,
                        None => continue,
                    },
                    _ => continue,
                };
                if !sans.contains(&v) {
                    sans.push(v);
                }
            }
        }
        revocation_urls |= ext.extn_id == AUTHORITY_INFO_ACCESS || ext.extn_id == CRL_DISTRIBUTION_POINTS;
    }
    let time = |t: &x509_cert::time::Time| {
        let d = t.to_unix_duration();
        chrono::DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos()).map(Timestamp)
    };
    let serial = tbs
        .serial_number
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(CertFacts {
        certificate: Certificate {
            subject_cn: common_name(&tbs.subject),
            issuer_cn: common_name(&tbs.issuer),
            serial: Some(serial),
            not_before: time(&tbs.validity.not_before),
            not_after: time(&tbs.validity.not_after),
            sans,
            is_self_signed: Some(self_signed),
            spki_sha256: Some(hex::encode(Sha256::digest(&spki))),
            cert_sha256: Some(hex::encode(Sha256::digest(der))),
        },
        revocation_urls,
    })
}

fn ip_text(b: &[u8]) -> Option<String> {
    let ip: std::net::IpAddr = match b.len() {
        4 => <[u8; 4]>::try_from(b).ok()?.into(),
        16 => <[u8; 16]>::try_from(b).ok()?.into(),
        _ => return None,
    };
    Some(ip.to_string())
}

/// The most specific (last) common name of a distinguished name.
fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == COMMON_NAME)
        .filter_map(|atv| {
            let v = &atv.value;
            let s = match v.tag() {
                Tag::Utf8String => Utf8StringRef::try_from(v).ok().map(|s| s.as_str().to_string()),
                Tag::PrintableString => PrintableStringRef::try_from(v).ok().map(|s| s.as_str().to_string()),
                Tag::Ia5String => Ia5StringRef::try_from(v).ok().map(|s| s.as_str().to_string()),
                Tag::TeletexString => TeletexStringRef::try_from(v).ok().map(|s| s.as_str().to_string()),
                _ => None,
            };
            s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj /CN=t.example -days 1`
    const PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBfjCCASOgAwIBAgIUDnwA6KliY0x3HrvTiCBQNuq5kxwwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJdC5leGFtcGxlMB4XDTI2MTEyMDIzMDgxN1oXDTI2MTEyMTIz
MDgxN1owFDESMBAGA1UEAwwJdC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEURce3Uem7XG6u2IRB8eCpu1WzpEprt/MmrCikLTEWjPn+CHgSXbBss+l
zL4ZClyyMhdeAt82AhgZJnp/S1XZV6NTMFEwHQYDVR0OBBYEFEmFQEC8H+RbgrxG
NgzioqS/Fy/kMB8GA1UdIwQYMBaAFEmFQEC8H+RbgrxGNgzioqS/Fy/kMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAPwYVWA/D6jiIa8zw4UkZJuC
cFr9dET7gI1orji6GB2cAiEAkwcwD041CPe6xO1nPvwdih2A42bH8Z8wPabclL9C
R18=
-----END CERTIFICATE-----
";

    #[test]
    fn a_self_signed_certificate() {
        let f = from_pem(PEM).unwrap();
        let c = &f.certificate;
        assert_eq!(c.serial.as_deref(), Some("0E:7C:00:E8:A9:62:63:4C:77:1E:BB:D3:88:20:50:36:EA:B9:93:1C"));
        // `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum`
        assert_eq!(
            c.spki_sha256.as_deref(),
            Some("467627129a1c68bdd2b8e862957b51cbe7db6665e321497cfc08f27900329be1")
        );
        assert_eq!(c.cert_sha256.as_deref().map(str::len), Some(64));
        assert_eq!(c.subject_cn.as_deref(), Some("t.example"));
        assert_eq!(c.issuer_cn.as_deref(), Some("t.example"));
        assert_eq!(c.is_self_signed, Some(true));
        assert_eq!(c.not_before.unwrap().to_string(), "2026-11-20T23:08:17Z");
        assert_eq!(c.not_after.unwrap().to_string(), "2026-11-21T23:08:17Z");
        assert!(c.sans.is_empty());
        assert!(!f.revocation_urls);
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert_eq!(from_pem("no pem").unwrap_err(), "no BEGIN CERTIFICATE line");
        let cut = &PEM[..200];
        assert_eq!(from_pem(cut).unwrap_err(), "no END CERTIFICATE line");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(from_pem(garbage).unwrap_err().starts_with("certificate is not valid DER X.509"));
    }
}
