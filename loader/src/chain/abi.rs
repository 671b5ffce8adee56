//! The contracts' ABI, read by `sol!` from the one Solidity file that declares it
//! (contracts/src/IAttestor.sol), and the decoding of Attestor logs into the rows of
//! `nweb.attestations`.

use alloy::primitives::{Address, Bytes, FixedBytes, B256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use serde_json::{json, Map, Value};

alloy::sol!("../contracts/src/IAttestor.sol");

pub use IAttestor::{AvailabilityCheck, Challenge, Resolution, ScanSubmission};

/// topic0 of the four payload events, the only logs the indexer asks for.
pub fn payload_topics() -> Vec<B256> {
    vec![
        IAttestor::ScanSubmitted::SIGNATURE_HASH,
        IAttestor::AvailabilityChecked::SIGNATURE_HASH,
        IAttestor::ChallengeFiled::SIGNATURE_HASH,
        IAttestor::ChallengeResolved::SIGNATURE_HASH,
    ]
}

/// One decoded Attestor log, as `nweb.attestations` stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    pub kind: &'static str,
    pub tx_hash: B256,
    pub log_index: u64,
    pub block_number: u64,
    pub block_hash: B256,
    pub uid: B256,
    pub attester: Address,
    /// The schema's fields by their spec names.
    pub payload: Value,
}

/// Lowercase `0x` hex, the form the nweb tables check for.
pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

pub fn addr(a: &Address) -> String {
    hex0x(a.as_slice())
}

/// PostgreSQL text and jsonb cannot hold NUL; a string from the chain is whatever its
/// sender chose, so NUL becomes U+FFFD rather than wedging the indexer on one bad log.
fn text(s: &str) -> Value {
    if s.contains('\0') {
        Value::String(s.replace('\0', "\u{FFFD}"))
    } else {
        Value::String(s.to_owned())
    }
}

/// A reason code is ASCII left-aligned in a bytes32; anything else is kept as hex so the
/// database can say why it is not a reason it knows.
pub fn reason_text(code: &FixedBytes<32>) -> String {
    let trimmed: &[u8] = {
        let end = code.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        &code[..end]
    };
    if !trimmed.is_empty() && trimmed.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(trimmed).into_owned()
    } else {
        hex0x(code.as_slice())
    }
}

/// The bytes32 of a reason code.
pub fn reason_code(reason: &str) -> FixedBytes<32> {
    let mut out = [0u8; 32];
    let b = reason.as_bytes();
    out[..b.len().min(32)].copy_from_slice(&b[..b.len().min(32)]);
    FixedBytes(out)
}

fn bytes(b: &Bytes) -> Value {
    Value::String(hex0x(b))
}

pub fn submission_json(s: &ScanSubmission) -> Value {
    let mut m = Map::new();
    m.insert("subject".into(), json!(addr(&s.subject)));
    m.insert("jobId".into(), json!(hex0x(s.jobId.as_slice())));
    m.insert("namespace".into(), text(&s.namespace));
    m.insert("datasetType".into(), text(&s.datasetType));
    m.insert("cid".into(), text(&s.cid));
    m.insert("merkleRoot".into(), json!(hex0x(s.merkleRoot.as_slice())));
    m.insert("targetSpecCid".into(), text(&s.targetSpecCid));
    m.insert("startedAt".into(), json!(s.startedAt));
    m.insert("finishedAt".into(), json!(s.finishedAt));
    m.insert("tool".into(), text(&s.tool));
    m.insert("version".into(), text(&s.version));
    m.insert("vantage".into(), text(&s.vantage));
    m.insert("manifestSha256".into(), text(&s.manifestSha256));
    m.insert("extra".into(), bytes(&s.extra));
    Value::Object(m)
}

pub fn availability_json(c: &AvailabilityCheck) -> Value {
    json!({
        "cid": text(&c.cid),
        "available": c.available,
        "attempts": c.attempts,
        "gatewaysOk": c.gatewaysOk,
        "fetchDigest": hex0x(c.fetchDigest.as_slice()),
        "checkedAt": c.checkedAt,
    })
}

pub fn challenge_json(c: &Challenge) -> Value {
    json!({
        "jobId": hex0x(c.jobId.as_slice()),
        "cid": text(&c.cid),
        "reasonCode": reason_text(&c.reasonCode),
        "evidenceCid": text(&c.evidenceCid),
        "graceEndsAt": c.graceEndsAt,
    })
}

pub fn resolution_json(r: &Resolution) -> Value {
    json!({
        "challengeId": hex0x(r.challengeId.as_slice()),
        "slash": r.slash,
        // uint256 does not fit a JSON number; decimal text keeps it exact.
        "slashAmount": r.slashAmount.to_string(),
        "notes": text(&r.notes),
        "newCid": text(&r.newCid),
    })
}

/// Why a log could not become a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not one of the four payload events (the filter should not return these).
    NotPayloadEvent,
    /// The node returned a log without its position; such a log cannot be stored.
    Incomplete(&'static str),
    /// The log claims a payload event but its data does not decode.
    Malformed(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotPayloadEvent => f.write_str("not an Attestor payload event"),
            DecodeError::Incomplete(what) => write!(f, "the node returned the log without its {what}"),
            DecodeError::Malformed(e) => write!(f, "cannot decode: {e}"),
        }
    }
}

/// Decodes one log with the `sol!` types.
pub fn decode(log: &Log) -> Result<Attestation, DecodeError> {
    let tx_hash = log
        .transaction_hash
        .ok_or(DecodeError::Incomplete("transaction hash"))?;
    let log_index = log.log_index.ok_or(DecodeError::Incomplete("log index"))?;
    let block_number = log.block_number.ok_or(DecodeError::Incomplete("block number"))?;
    let block_hash = log.block_hash.ok_or(DecodeError::Incomplete("block hash"))?;
    let topic0 = log.topic0().copied().ok_or(DecodeError::NotPayloadEvent)?;
    let malformed = |e: alloy::sol_types::Error| DecodeError::Malformed(e.to_string());
    let (kind, uid, attester, payload) = match topic0 {
        IAttestor::ScanSubmitted::SIGNATURE_HASH => {
            let e = IAttestor::ScanSubmitted::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("ScanSubmission", e.uid, e.attester, submission_json(&e.submission))
        }
        IAttestor::AvailabilityChecked::SIGNATURE_HASH => {
            let e = IAttestor::AvailabilityChecked::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("AvailabilityCheck", e.uid, e.attester, availability_json(&e.check))
        }
        IAttestor::ChallengeFiled::SIGNATURE_HASH => {
            let e = IAttestor::ChallengeFiled::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("Challenge", e.uid, e.attester, challenge_json(&e.challenge))
        }
        IAttestor::ChallengeResolved::SIGNATURE_HASH => {
            let e = IAttestor::ChallengeResolved::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("Resolution", e.uid, e.attester, resolution_json(&e.resolution))
        }
        _ => return Err(DecodeError::NotPayloadEvent),
    };
    Ok(Attestation {
        kind,
        tx_hash,
        log_index,
        block_number,
        block_hash,
        uid,
        attester,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256, LogData, U256};

    fn log_of<E: SolEvent>(e: &E, at: Address) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: at,
                data: e.encode_log_data(),
            },
            block_hash: Some(b256!(
                "00000000000000000000000000000000000000000000000000000000000000bb"
            )),
            block_number: Some(7),
            block_timestamp: None,
            transaction_hash: Some(b256!(
                "00000000000000000000000000000000000000000000000000000000000000aa"
            )),
            transaction_index: Some(0),
            log_index: Some(3),
            removed: false,
        }
    }

    #[test]
    fn every_payload_event_round_trips_into_spec_field_names() {
        let at = address!("00000000000000000000000000000000000000a7");
        let who = address!("1111111111111111111111111111111111111111");
        let s = ScanSubmission {
            subject: who,
            jobId: B256::repeat_byte(1),
            namespace: "nweb.io".into(),
            datasetType: "nmap".into(),
            cid: "bafy\0x".into(),
            merkleRoot: B256::repeat_byte(0xab),
            targetSpecCid: "".into(),
            startedAt: 1_693_526_400,
            finishedAt: u64::MAX,
            tool: "nmap".into(),
            version: "7.95".into(),
            vantage: "AS1234/us-west-2".into(),
            manifestSha256: "ff".into(),
            extra: Bytes::from_static(&[0xde, 0xad]),
        };
        let e = IAttestor::ScanSubmitted {
            uid: B256::repeat_byte(9),
            attester: who,
            submission: s,
        };
        let a = decode(&log_of(&e, at)).unwrap();
        assert_eq!(a.kind, "ScanSubmission");
        assert_eq!((a.block_number, a.log_index), (7, 3));
        assert_eq!(a.uid, B256::repeat_byte(9));
        assert_eq!(addr(&a.attester), "0x1111111111111111111111111111111111111111");
        assert_eq!(a.payload["cid"], json!("bafy\u{FFFD}x"), "NUL cannot reach jsonb");
        assert_eq!(a.payload["merkleRoot"], json!(format!("0x{}", "ab".repeat(32))));
        assert_eq!(a.payload["finishedAt"], json!(u64::MAX));
        assert_eq!(a.payload["extra"], json!("0xdead"));
        assert_eq!(a.payload.as_object().unwrap().len(), 14, "all 14 schema fields");

        let c = IAttestor::ChallengeFiled {
            uid: B256::repeat_byte(2),
            attester: who,
            challenge: Challenge {
                jobId: B256::ZERO,
                cid: "bafyc".into(),
                reasonCode: reason_code("CID_UNAVAILABLE"),
                evidenceCid: "".into(),
                graceEndsAt: 5,
            },
        };
        let a = decode(&log_of(&c, at)).unwrap();
        assert_eq!(a.kind, "Challenge");
        assert_eq!(a.payload["reasonCode"], json!("CID_UNAVAILABLE"));

        let r = IAttestor::ChallengeResolved {
            uid: B256::repeat_byte(3),
            attester: who,
            resolution: Resolution {
                challengeId: B256::repeat_byte(2),
                slash: true,
                slashAmount: U256::from(10u8).pow(U256::from(30u8)),
                notes: "n".into(),
                newCid: "".into(),
            },
        };
        let a = decode(&log_of(&r, at)).unwrap();
        assert_eq!(a.kind, "Resolution");
        assert_eq!(a.payload["slashAmount"], json!(format!("1{}", "0".repeat(30))));
        assert_eq!(a.payload["slash"], json!(true));

        let v = IAttestor::AvailabilityChecked {
            uid: B256::repeat_byte(4),
            attester: who,
            check: AvailabilityCheck {
                cid: "bafyv".into(),
                available: false,
                attempts: 3,
                gatewaysOk: 0,
                fetchDigest: B256::ZERO,
                checkedAt: 9,
            },
        };
        let a = decode(&log_of(&v, at)).unwrap();
        assert_eq!(a.kind, "AvailabilityCheck");
        assert_eq!(a.payload["available"], json!(false));
        assert_eq!(a.payload["attempts"], json!(3));
    }

    #[test]
    fn other_and_broken_logs_are_refused() {
        let at = Address::ZERO;
        let eas = IAttestor::Attested {
            recipient: at,
            attester: at,
            uid: B256::ZERO,
            schemaUID: B256::ZERO,
        };
        assert_eq!(decode(&log_of(&eas, at)).unwrap_err(), DecodeError::NotPayloadEvent);
        let mut broken = log_of(&eas, at);
        broken.inner.data = LogData::new_unchecked(
            vec![IAttestor::ScanSubmitted::SIGNATURE_HASH, B256::ZERO, B256::ZERO],
            Bytes::from_static(&[1, 2, 3]),
        );
        assert!(matches!(decode(&broken), Err(DecodeError::Malformed(_))));
        let mut no_index = log_of(&eas, at);
        no_index.log_index = None;
        assert_eq!(decode(&no_index).unwrap_err(), DecodeError::Incomplete("log index"));
    }

    #[test]
    fn reason_codes_are_ascii_in_bytes32() {
        let c = reason_code("CID_HASH_MISMATCH");
        assert_eq!(&c[..17], b"CID_HASH_MISMATCH");
        assert!(c[17..].iter().all(|b| *b == 0));
        assert_eq!(reason_text(&c), "CID_HASH_MISMATCH");
        assert_eq!(reason_text(&B256::repeat_byte(0xff)), format!("0x{}", "ff".repeat(32)));
        assert_eq!(reason_text(&B256::ZERO), format!("0x{}", "00".repeat(32)));
    }
}
