//! "EAS-compatible", compared: the real EAS contracts (npm
//! `@ethereum-attestation-service/eas-contracts`, their shipped artifacts) deployed on
//! the same dev chain, our four schemas registered there, and every attestation our
//! routers make made again on the hub by the same account at the same block time.
//! The schema UIDs, the attestation UIDs, the stored records and the `Attested` logs
//! must be identical, which is what a user who later moves to the hub relies on.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Log, TransactionReceipt, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent, SolType, SolValue};
use serde_json::{json, Value};

use crate::support::*;

alloy::sol! {
    interface SchemaRegistry {
        function register(string calldata schema, address resolver, bool revocable) external returns (bytes32);
    }
    interface Eas {
        struct AttestationRequestData {
            address recipient;
            uint64 expirationTime;
            bool revocable;
            bytes32 refUID;
            bytes data;
            uint256 value;
        }
        struct AttestationRequest {
            bytes32 schema;
            AttestationRequestData data;
        }
        struct Attestation {
            bytes32 uid;
            bytes32 schema;
            uint64 time;
            uint64 expirationTime;
            uint64 revocationTime;
            bytes32 refUID;
            address recipient;
            address attester;
            bool revocable;
            bytes data;
        }
        function attest(AttestationRequest calldata request) external payable returns (bytes32);
        function getAttestation(bytes32 uid) external view returns (Attestation memory);
    }
    interface AttestorExtra {
        struct Record {
            bytes32 schema;
            address attester;
            address recipient;
            uint64 time;
            bytes32 refUID;
        }
        function SCAN_SUBMISSION_SCHEMA() external view returns (string memory);
        function AVAILABILITY_CHECK_SCHEMA() external view returns (string memory);
        function CHALLENGE_SCHEMA() external view returns (string memory);
        function RESOLUTION_SCHEMA() external view returns (string memory);
        function getRecord(bytes32 uid) external view returns (Record memory);
    }
}

fn eas_artifact(name: &str) -> Vec<u8> {
    let f = contracts_dir().join(format!(
        "node_modules/@ethereum-attestation-service/eas-contracts/artifacts/contracts/{name}.sol/{name}.json"
    ));
    let text = std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh: npm ci --prefix contracts)", f.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    hex::decode(v["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap()
}

async fn deploy_eas(p: &DynProvider, name: &str, args: Vec<u8>) -> Address {
    let mut code = eas_artifact(name);
    code.extend(args);
    let tx = TransactionRequest::default()
        .with_from(signer(0).address())
        .with_deploy_code(Bytes::from(code));
    let r = p.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(r.status(), "deploying EAS {name}");
    r.contract_address.unwrap()
}

fn attested_log(r: &TransactionReceipt, emitter: Address) -> Log {
    let logs: Vec<&Log> = r
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == emitter && l.topic0() == Some(&IAttestor::Attested::SIGNATURE_HASH))
        .collect();
    assert_eq!(logs.len(), 1, "one Attested log from {emitter}");
    logs[0].clone()
}

/// The EAS `data` of our attestation: the fields of the typed event's payload,
/// ABI-encoded in order (what EAS's SchemaEncoder makes from the schema string).
fn eas_data(r: &TransactionReceipt, attestor: Address) -> Bytes {
    for l in r.inner.logs().iter().filter(|l| l.address() == attestor) {
        let d = &l.inner.data;
        let enc = match l.topic0() {
            Some(t) if *t == IAttestor::ScanSubmitted::SIGNATURE_HASH => {
                let e = IAttestor::ScanSubmitted::decode_log_data(d).unwrap();
                <IAttestor::ScanSubmission as SolType>::abi_encode_params(&e.submission)
            }
            Some(t) if *t == IAttestor::AvailabilityChecked::SIGNATURE_HASH => {
                let e = IAttestor::AvailabilityChecked::decode_log_data(d).unwrap();
                <IAttestor::AvailabilityCheck as SolType>::abi_encode_params(&e.check)
            }
            Some(t) if *t == IAttestor::ChallengeFiled::SIGNATURE_HASH => {
                let e = IAttestor::ChallengeFiled::decode_log_data(d).unwrap();
                <IAttestor::Challenge as SolType>::abi_encode_params(&e.challenge)
            }
            Some(t) if *t == IAttestor::ChallengeResolved::SIGNATURE_HASH => {
                let e = IAttestor::ChallengeResolved::decode_log_data(d).unwrap();
                <IAttestor::Resolution as SolType>::abi_encode_params(&e.resolution)
            }
            _ => continue,
        };
        return Bytes::from(enc);
    }
    panic!("no typed attestation event in {:?}", r.transaction_hash);
}

/// The hub's request for the attestation our Attestor recorded in `r`.
async fn twin_request(p: &DynProvider, c: &Contracts, r: &TransactionReceipt) -> (Address, u64, Eas::attestCall) {
    let ours = IAttestor::Attested::decode_log_data(&attested_log(r, c.attestor).inner.data).unwrap();
    let rec = view(p, c.attestor, AttestorExtra::getRecordCall { uid: ours.uid }).await;
    assert_eq!((rec.attester, rec.recipient, rec.schema), (ours.attester, ours.recipient, ours.schemaUID));
    let call = Eas::attestCall {
        request: Eas::AttestationRequest {
            schema: ours.schemaUID,
            data: Eas::AttestationRequestData {
                recipient: ours.recipient,
                expirationTime: 0,
                revocable: false,
                refUID: rec.refUID,
                data: eas_data(r, c.attestor),
                value: Default::default(),
            },
        },
    };
    (ours.attester, rec.time, call)
}

fn tx(from: Address, to: Address, call: &impl SolCall) -> TransactionRequest {
    TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(Bytes::from(call.abi_encode()))
}

/// Checks one of our attestations against the hub's, the same attestation made there
/// by the same attester in a block with the same timestamp. Returns the UID.
async fn same_on_the_hub(p: &DynProvider, c: &Contracts, eas: Address, r: &TransactionReceipt) -> B256 {
    let (attester, time, call) = twin_request(p, c, r).await;
    raw(p, "evm_setNextBlockTimestamp", json!([time])).await;
    let hub = send(p, attester, eas, call).await;
    compare(p, c, eas, r, &hub).await
}

async fn compare(p: &DynProvider, c: &Contracts, eas: Address, r: &TransactionReceipt, hub: &TransactionReceipt) -> B256 {
    let ours = attested_log(r, c.attestor);
    let theirs = attested_log(hub, eas);
    // Same event, same indexed topics (recipient, attester, schema), same data (uid).
    assert_eq!(ours.topics(), theirs.topics(), "Attested topics");
    assert_eq!(ours.inner.data.data, theirs.inner.data.data, "Attested data");
    let uid = IAttestor::Attested::decode_log_data(&ours.inner.data).unwrap().uid;
    let rec = view(p, c.attestor, AttestorExtra::getRecordCall { uid }).await;
    let a = view(p, eas, Eas::getAttestationCall { uid }).await;
    assert_eq!(a.uid, uid, "the hub holds our UID");
    assert_eq!(
        (a.schema, a.attester, a.recipient, a.time, a.refUID),
        (rec.schema, rec.attester, rec.recipient, rec.time, rec.refUID)
    );
    assert_eq!((a.expirationTime, a.revocationTime, a.revocable), (0, 0, false));
    assert_eq!(a.data, eas_data(r, c.attestor));
    uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_are_the_ones_the_eas_hub_makes() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let registry = deploy_eas(&p, "SchemaRegistry", vec![]).await;
    let eas = deploy_eas(&p, "EAS", registry.abi_encode()).await;
    let me = signer(0).address();

    // The four schemas, registered on the hub as a user would (no resolver, not
    // revocable), get the schema UIDs our Attestor uses.
    let schemas = [
        (
            view(&p, c.attestor, AttestorExtra::SCAN_SUBMISSION_SCHEMACall {}).await,
            view(&p, c.attestor, IAttestor::scanSubmissionSchemaCall {}).await,
        ),
        (
            view(&p, c.attestor, AttestorExtra::AVAILABILITY_CHECK_SCHEMACall {}).await,
            view(&p, c.attestor, IAttestor::availabilityCheckSchemaCall {}).await,
        ),
        (
            view(&p, c.attestor, AttestorExtra::CHALLENGE_SCHEMACall {}).await,
            view(&p, c.attestor, IAttestor::challengeSchemaCall {}).await,
        ),
        (
            view(&p, c.attestor, AttestorExtra::RESOLUTION_SCHEMACall {}).await,
            view(&p, c.attestor, IAttestor::resolutionSchemaCall {}).await,
        ),
    ];
    for (schema, ours) in schemas {
        let reg = SchemaRegistry::registerCall {
            schema: schema.clone(),
            resolver: Address::ZERO,
            revocable: false,
        };
        let out = p.call(tx(me, registry, &reg)).await.unwrap();
        let uid = SchemaRegistry::registerCall::abi_decode_returns(&out).unwrap();
        assert_eq!(uid, ours, "schema UID of {schema:?}");
        send(&p, me, registry, reg).await;
    }

    // Two submissions: with a bump counted across attestations, every UID after the
    // first differed from the hub's.
    let subject = signer(1).address();
    let cid1 = Bundle::new("192.0.2.1", 1, 10).cid().to_string();
    let cid2 = Bundle::new("192.0.2.1", 2, 10).cid().to_string();
    let s1 = submit(&p, &c, 1, &cid1, "0x", 1).await;
    let s1_uid = same_on_the_hub(&p, &c, eas, &s1).await;
    let s2 = submit(&p, &c, 1, &cid2, "0x", 2).await;
    let s2_uid = same_on_the_hub(&p, &c, eas, &s2).await;
    assert_ne!(s1_uid, s2_uid);

    // A challenge refers to the submission (the hub refuses an unknown refUID, so this
    // also shows the submission's UID exists there), a resolution to the challenge.
    let mut reason = [0u8; 32];
    reason[..15].copy_from_slice(b"CID_UNAVAILABLE");
    let ch = send(
        &p,
        signer(2).address(),
        c.slash,
        ISlashRouter::challengeCall {
            jobId: B256::repeat_byte(1),
            cid: cid1.clone(),
            reasonCode: B256::from(reason),
            evidenceCid: "bafkqaaa".into(),
        },
    )
    .await;
    let ch_uid = same_on_the_hub(&p, &c, eas, &ch).await;
    let rec = view(&p, c.attestor, AttestorExtra::getRecordCall { uid: ch_uid }).await;
    assert_eq!((rec.refUID, rec.recipient), (s1_uid, subject));
    let res = send(
        &p,
        subject,
        c.slash,
        ISlashRouter::resolveCall {
            challengeId: ch_uid,
            notes: "re-pinned".into(),
            newCid: cid1.clone(),
        },
    )
    .await;
    let res_uid = same_on_the_hub(&p, &c, eas, &res).await;
    assert_eq!(view(&p, c.attestor, AttestorExtra::getRecordCall { uid: res_uid }).await.refUID, ch_uid);

    // The same availability probe twice in one block: both sides bump the second UID
    // (bump 1), and only that one.
    let prober = signer(3).address();
    let check = IAttestor::attestAvailabilityCall {
        check: IAttestor::AvailabilityCheck {
            cid: cid2.clone(),
            available: true,
            attempts: 1,
            gatewaysOk: 1,
            fetchDigest: B256::repeat_byte(7),
            checkedAt: 1_770_000_000,
        },
    };
    let ours = in_one_block(&p, prober, c.attestor, &[&check, &check]).await;
    let (attester, time, hub_call) = twin_request(&p, &c, &ours[0]).await;
    assert_eq!(attester, prober);
    raw(&p, "evm_setNextBlockTimestamp", json!([time])).await;
    let theirs = in_one_block(&p, prober, eas, &[&hub_call, &hub_call]).await;
    let a = compare(&p, &c, eas, &ours[0], &theirs[0]).await;
    let b = compare(&p, &c, eas, &ours[1], &theirs[1]).await;
    assert_ne!(a, b, "the second identical probe has its own UID");
}

/// Sends the calls (explicit consecutive nonces) with mining paused, then mines them in
/// one block and returns their receipts in order.
async fn in_one_block(p: &DynProvider, from: Address, to: Address, calls: &[&dyn DynCall]) -> Vec<TransactionReceipt> {
    let nonce = p.get_transaction_count(from).pending().await.unwrap();
    raw(p, "evm_setAutomine", json!([false])).await;
    let mut hashes = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let t = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_input(Bytes::from(call.encode()))
            .with_nonce(nonce + i as u64)
            .with_gas_limit(1_000_000);
        hashes.push(*p.send_transaction(t).await.unwrap().tx_hash());
    }
    raw(p, "evm_mine", json!([])).await;
    raw(p, "evm_setAutomine", json!([true])).await;
    let mut out = Vec::new();
    for h in hashes {
        let r = p.get_transaction_receipt(h).await.unwrap().expect("mined");
        assert!(r.status(), "reverted in the shared block");
        out.push(r);
    }
    assert!(out.windows(2).all(|w| w[0].block_number == w[1].block_number), "one block");
    out
}

/// A call of any type, for [`in_one_block`].
trait DynCall {
    fn encode(&self) -> Vec<u8>;
}

impl<C: SolCall> DynCall for C {
    fn encode(&self) -> Vec<u8> {
        self.abi_encode()
    }
}
