//! Just enough DER to read two fields of an X.509 certificate that nmap's
//! `ssl-cert` does not print: the serial number and the SubjectPublicKeyInfo
//! (for `spki_sha256`). No validation; anything unexpected gives `None`.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)? + BEGIN.len();
    let len = pem[start..].find(END)?;
    let compact: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    (!der.is_empty()).then_some(der)
}

/// One TLV: (tag, whole element, contents).
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *buf.first()?;
    let first = *buf.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in buf.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, buf.get(..end)?, buf.get(header..end)?))
}

/// The fields of `tbsCertificate` we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields {
    /// Colon-separated upper-case hex, as openssl and tlsx print it.
    pub serial: String,
    /// Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: String,
}

/// Reads the serial and the SPKI hash from a DER certificate.
pub fn cert_fields(der: &[u8]) -> Option<CertFields> {
    const SEQUENCE: u8 = 0x30;
    let (tag, _, cert) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _, mut tbs) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut next = || -> Option<(u8, &[u8], &[u8])> {
        let (tag, whole, contents) = tlv(tbs)?;
        tbs = &tbs[whole.len()..];
        Some((tag, whole, contents))
    };
    let (mut tag, mut _whole, mut contents) = next()?;
    // [0] EXPLICIT version, absent for v1 certificates.
    if tag == 0xa0 {
        (tag, _whole, contents) = next()?;
    }
    if tag != 0x02 {
        return None;
    }
    let serial = contents
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    // signature, issuer, validity, subject, then subjectPublicKeyInfo.
    for _ in 0..4 {
        next()?;
    }
    let (tag, spki, _) = next()?;
    if tag != SEQUENCE {
        return None;
    }
    Some(CertFields {
        serial,
        spki_sha256: hex::encode(Sha256::digest(spki)),
    })
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
    fn serial_and_spki_of_a_certificate() {
        let der = pem_to_der(PEM).unwrap();
        let f = cert_fields(&der).unwrap();
        assert_eq!(f.serial, "0E:7C:00:E8:A9:62:63:4C:77:1E:BB:D3:88:20:50:36:EA:B9:93:1C");
        // `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum`
        assert_eq!(
            f.spki_sha256,
            "467627129a1c68bdd2b8e862957b51cbe7db6665e321497cfc08f27900329be1"
        );
    }

    #[test]
    fn garbage_is_none() {
        assert!(cert_fields(&[]).is_none());
        assert!(cert_fields(&[0x30, 0x05, 0x02]).is_none());
        assert!(cert_fields(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(pem_to_der("no pem").is_none());
    }
}
