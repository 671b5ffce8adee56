//! The contracts' ABI, read by `sol!` from the one Solidity file that declares it
//! (contracts/src/IAttestor.sol), and the decoding of Attestor logs into the rows of
//! `nweb.attestations`, of StakeRegistry logs into those of `nweb.stake_events`, and of
//! SubmissionRouter logs into those of `nweb.submission_kinds`.

use alloy::primitives::{Address, Bytes, FixedBytes, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::{SolEvent, SolInterface};
use serde_json::{json, Map, Value};

alloy::sol!(#[sol(all_derives)] "../contracts/src/IAttestor.sol");

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

/// topic0 of the StakeRegistry events that change a stake, active or unbonding.
pub fn stake_topics() -> Vec<B256> {
    vec![
        IStakeRegistry::Staked::SIGNATURE_HASH,
        IStakeRegistry::Unstaked::SIGNATURE_HASH,
        IStakeRegistry::Slashed::SIGNATURE_HASH,
        IStakeRegistry::Unbonding::SIGNATURE_HASH,
        IStakeRegistry::UnbondingSlashed::SIGNATURE_HASH,
        IStakeRegistry::Withdrawn::SIGNATURE_HASH,
    ]
}

/// A revert's data as the custom error's name and fields, deadlines also as dates
/// (`InGrace: the challenge is in grace until 2026-02-05T02:40:00Z (graceEndsAt 1770259200)`);
/// None for data that is not one of the contracts' errors. Every interface's errors are
/// tried, not only those of the contract called: a call passes on the revert of a contract
/// it calls (the SlashRouter's slash that of the StakeRegistry, both routers the
/// CanonicalCid check). contracts/tests checks that every error in the compiled
/// contracts' ABIs decodes here.
pub fn revert_text(data: &[u8]) -> Option<String> {
    fn fields<E: SolInterface + std::fmt::Debug>(data: &[u8]) -> Option<String> {
        let e = E::abi_decode(data).ok()?;
        // Debug prints `Name(Name { field: value })`; the outer name is said once.
        let d = format!("{e:?}");
        Some(match d.split_once('(') {
            Some((_, inner)) => inner.strip_suffix(')').unwrap_or(inner).to_string(),
            None => d,
        })
    }
    let at = |t: u64| {
        chrono::DateTime::from_timestamp(t as i64, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    use ISlashRouter::ISlashRouterErrors as S;
    match S::abi_decode(data) {
        Ok(S::InGrace(x)) => {
            return Some(format!(
                "InGrace: the challenge is in grace until {} (graceEndsAt {})",
                at(x.graceEndsAt),
                x.graceEndsAt
            ))
        }
        Ok(S::GraceOver(x)) => {
            return Some(format!("GraceOver: grace ended at {} (graceEndsAt {})", at(x.graceEndsAt), x.graceEndsAt))
        }
        _ => {}
    }
    fields::<ISlashRouter::ISlashRouterErrors>(data)
        .or_else(|| fields::<ISubmissionRouter::ISubmissionRouterErrors>(data))
        .or_else(|| fields::<IStakeRegistry::IStakeRegistryErrors>(data))
        .or_else(|| fields::<IWiring::IWiringErrors>(data))
        .or_else(|| fields::<ICanonicalCid::ICanonicalCidErrors>(data))
}

/// topic0 of the SubmissionRouter's one event, the cost kind a submission paid for.
pub fn submission_topics() -> Vec<B256> {
    vec![ISubmissionRouter::SubmissionRecorded::SIGNATURE_HASH]
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
    /// The schema's fields by their names in docs/nweb.md §5.
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

/// One decoded StakeRegistry log, as `nweb.stake_events` stores it. Amounts in wei.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakeEvent {
    /// `Staked`, `Unstaked`, `Slashed`, `Unbonding`, `UnbondingSlashed` or `Withdrawn`.
    pub kind: &'static str,
    pub tx_hash: B256,
    pub log_index: u64,
    pub block_number: u64,
    pub block_hash: B256,
    pub who: Address,
    pub amount: U256,
    /// The stake after the event (`Unbonding`: the unbonding GST after it), as the
    /// registry emits it; the others emit none.
    pub total: Option<U256>,
    /// `Slashed` and `UnbondingSlashed`.
    pub slash: Option<SlashSplit>,
    /// `Unbonding`: when the unbonding GST can be withdrawn (unix seconds).
    pub release_at: Option<u64>,
}

/// One decoded SubmissionRouter log, as `nweb.submission_kinds` stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRecord {
    pub tx_hash: B256,
    pub log_index: u64,
    pub block_number: u64,
    pub block_hash: B256,
    /// The ScanSubmission's attestation UID.
    pub uid: B256,
    pub submitter: Address,
    /// The Kind charged, spelled as nweb.bundles.cost_kind.
    pub cost_kind: &'static str,
    pub cost: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashSplit {
    pub challenger: Address,
    pub bounty: U256,
    pub burned: U256,
}

/// GST has 18 decimals.
const GST_DECIMALS: usize = 18;

/// Wei as exact decimal GST text for `numeric` ("1.5", "0.000000000000000001", "100"):
/// integer arithmetic on the digits, never a float.
pub fn gst_text(wei: U256) -> String {
    let digits = format!("{:0>width$}", wei.to_string(), width = GST_DECIMALS + 1);
    let (int, frac) = digits.split_at(digits.len() - GST_DECIMALS);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// Why a log could not become a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not one of the four payload events (the filter should not return these).
    NotPayloadEvent,
    /// Not a stake event (the filter should not return these).
    NotStakeEvent,
    /// Not SubmissionRecorded (the filter should not return these).
    NotSubmissionEvent,
    /// The node returned a log without its position; such a log cannot be stored.
    Incomplete(&'static str),
    /// The log claims a payload event but its data does not decode.
    Malformed(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotPayloadEvent => f.write_str("not an Attestor payload event"),
            DecodeError::NotStakeEvent => f.write_str("not a StakeRegistry stake event"),
            DecodeError::NotSubmissionEvent => f.write_str("not a SubmissionRouter SubmissionRecorded event"),
            DecodeError::Incomplete(what) => write!(f, "the node returned the log without its {what}"),
            DecodeError::Malformed(e) => write!(f, "cannot decode: {e}"),
        }
    }
}

/// Where a log is: transaction hash, log index, block number and hash. A log without
/// them (from a pending block) cannot be stored.
fn position(log: &Log) -> Result<(B256, u64, u64, B256), DecodeError> {
    Ok((
        log.transaction_hash
            .ok_or(DecodeError::Incomplete("transaction hash"))?,
        log.log_index.ok_or(DecodeError::Incomplete("log index"))?,
        log.block_number.ok_or(DecodeError::Incomplete("block number"))?,
        log.block_hash.ok_or(DecodeError::Incomplete("block hash"))?,
    ))
}

/// Decodes one Attestor log with the `sol!` types.
pub fn decode(log: &Log) -> Result<Attestation, DecodeError> {
    let (tx_hash, log_index, block_number, block_hash) = position(log)?;
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

/// Decodes one StakeRegistry log with the `sol!` types.
pub fn decode_stake(log: &Log) -> Result<StakeEvent, DecodeError> {
    let (tx_hash, log_index, block_number, block_hash) = position(log)?;
    let topic0 = log.topic0().copied().ok_or(DecodeError::NotStakeEvent)?;
    let malformed = |e: alloy::sol_types::Error| DecodeError::Malformed(e.to_string());
    let (kind, who, amount, total, slash, release_at) = match topic0 {
        IStakeRegistry::Staked::SIGNATURE_HASH => {
            let e = IStakeRegistry::Staked::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("Staked", e.who, e.amount, Some(e.total), None, None)
        }
        IStakeRegistry::Unstaked::SIGNATURE_HASH => {
            let e = IStakeRegistry::Unstaked::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("Unstaked", e.who, e.amount, Some(e.total), None, None)
        }
        IStakeRegistry::Slashed::SIGNATURE_HASH => {
            let e = IStakeRegistry::Slashed::decode_log_data(&log.inner.data).map_err(malformed)?;
            let split = SlashSplit {
                challenger: e.challenger,
                bounty: e.bounty,
                burned: e.burned,
            };
            ("Slashed", e.who, e.amount, None, Some(split), None)
        }
        IStakeRegistry::Unbonding::SIGNATURE_HASH => {
            let e = IStakeRegistry::Unbonding::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("Unbonding", e.who, e.amount, Some(e.totalUnbonding), None, Some(e.releaseAt))
        }
        IStakeRegistry::UnbondingSlashed::SIGNATURE_HASH => {
            let e = IStakeRegistry::UnbondingSlashed::decode_log_data(&log.inner.data).map_err(malformed)?;
            let split = SlashSplit {
                challenger: e.challenger,
                bounty: e.bounty,
                burned: e.burned,
            };
            ("UnbondingSlashed", e.who, e.amount, None, Some(split), None)
        }
        IStakeRegistry::Withdrawn::SIGNATURE_HASH => {
            let e = IStakeRegistry::Withdrawn::decode_log_data(&log.inner.data).map_err(malformed)?;
            ("Withdrawn", e.who, e.amount, None, None, None)
        }
        _ => return Err(DecodeError::NotStakeEvent),
    };
    Ok(StakeEvent {
        kind,
        tx_hash,
        log_index,
        block_number,
        block_hash,
        who,
        amount,
        total,
        slash,
        release_at,
    })
}

/// Decodes one SubmissionRouter log with the `sol!` types.
pub fn decode_submission(log: &Log) -> Result<SubmissionRecord, DecodeError> {
    use ISubmissionRouter::Kind;
    use nweb::rules::SubmissionKind;
    let (tx_hash, log_index, block_number, block_hash) = position(log)?;
    if log.topic0() != Some(&ISubmissionRouter::SubmissionRecorded::SIGNATURE_HASH) {
        return Err(DecodeError::NotSubmissionEvent);
    }
    let e = ISubmissionRouter::SubmissionRecorded::decode_log_data(&log.inner.data)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let kind = match e.kind {
        Kind::MasscanQuick => SubmissionKind::MasscanQuick,
        Kind::NmapTop1k => SubmissionKind::NmapTop1k,
        Kind::NmapFull => SubmissionKind::NmapFull,
        Kind::DiffEnrich => SubmissionKind::DiffEnrich,
        other => return Err(DecodeError::Malformed(format!("kind {} is not a Kind", other as u8))),
    };
    Ok(SubmissionRecord {
        tx_hash,
        log_index,
        block_number,
        block_hash,
        uid: e.uid,
        submitter: e.submitter,
        cost_kind: kind.as_str(),
        cost: e.cost,
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
    fn stake_events_decode_with_their_totals() {
        let at = address!("00000000000000000000000000000000000000a8");
        let who = address!("1111111111111111111111111111111111111111");
        let ch = address!("2222222222222222222222222222222222222222");
        let e = decode_stake(&log_of(
            &IStakeRegistry::Staked {
                who,
                amount: U256::from(5u8),
                total: U256::from(7u8),
            },
            at,
        ))
        .unwrap();
        assert_eq!((e.kind, e.who, e.amount, e.total), ("Staked", who, U256::from(5u8), Some(U256::from(7u8))));
        assert_eq!((e.block_number, e.log_index, e.slash), (7, 3, None));
        let e = decode_stake(&log_of(
            &IStakeRegistry::Unstaked {
                who,
                amount: U256::from(1u8),
                total: U256::ZERO,
            },
            at,
        ))
        .unwrap();
        assert_eq!((e.kind, e.total), ("Unstaked", Some(U256::ZERO)));
        let e = decode_stake(&log_of(
            &IStakeRegistry::Slashed {
                who,
                challenger: ch,
                amount: U256::from(11u8),
                bounty: U256::from(5u8),
                burned: U256::from(6u8),
            },
            at,
        ))
        .unwrap();
        assert_eq!((e.kind, e.who, e.amount, e.total), ("Slashed", who, U256::from(11u8), None));
        assert_eq!(
            e.slash,
            Some(SlashSplit {
                challenger: ch,
                bounty: U256::from(5u8),
                burned: U256::from(6u8)
            })
        );
        // Not a stake change, or not a StakeRegistry log at all.
        let rep = IStakeRegistry::RepFactorSet {
            who,
            repFactorMicros: U256::from(1u8),
        };
        assert_eq!(decode_stake(&log_of(&rep, at)).unwrap_err(), DecodeError::NotStakeEvent);
        let eas = IAttestor::Attested {
            recipient: at,
            attester: at,
            uid: B256::ZERO,
            schemaUID: B256::ZERO,
        };
        assert_eq!(decode_stake(&log_of(&eas, at)).unwrap_err(), DecodeError::NotStakeEvent);
        let mut broken = log_of(&rep, at);
        broken.inner.data = LogData::new_unchecked(
            vec![IStakeRegistry::Staked::SIGNATURE_HASH, B256::ZERO],
            Bytes::from_static(&[1, 2, 3]),
        );
        assert!(matches!(decode_stake(&broken), Err(DecodeError::Malformed(_))));
        let mut pending = log_of(&rep, at);
        pending.block_hash = None;
        assert_eq!(decode_stake(&pending).unwrap_err(), DecodeError::Incomplete("block hash"));
    }

    #[test]
    fn wei_become_exact_gst() {
        let wei = |s: &str| U256::from_str_radix(s, 10).unwrap();
        assert_eq!(gst_text(U256::ZERO), "0");
        assert_eq!(gst_text(U256::from(1u8)), "0.000000000000000001");
        assert_eq!(gst_text(wei("1000000000000000000")), "1");
        assert_eq!(gst_text(wei("100000000000000000000")), "100");
        assert_eq!(gst_text(wei("1500000000000000000")), "1.5");
        assert_eq!(gst_text(wei("999999999999999999")), "0.999999999999999999");
        assert_eq!(gst_text(wei("12345678901234567890123")), "12345.678901234567890123");
        // uint256's maximum, which no float could carry.
        assert_eq!(
            gst_text(U256::MAX),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
        );
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
