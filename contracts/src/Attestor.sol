// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestor, IRoutedAttestor, IWiring} from "./IAttestor.sol";

/// The minimal EAS-compatible attestor of nweb (docs/nweb.md §5: "a lightweight Attestor contract
/// that emits EAS-compatible events and exposes schemaUID namespaces, without relying on
/// the main EAS Hub").
///
/// - Schema UIDs are computed as the EAS SchemaRegistry does.
/// - Attestation UIDs are computed as EAS does: keccak256 over schema, recipient,
///   attester, time, expiration (0), revocable (false), refUID, data and a bump that
///   restarts at 0 for each attestation.
/// - `data` is the schema's fields ABI-encoded in order (EAS's encoding), which is
///   `abi.encode(struct)` without its leading offset word.
/// - ScanSubmissions come only through the SubmissionRouter (stake and quota), Challenges
///   and Resolutions only through the SlashRouter (grace and slashing); availability
///   probes may be published by anyone.
contract Attestor is IAttestor, IRoutedAttestor, IWiring {
    string public constant SCAN_SUBMISSION_SCHEMA =
        "address subject,bytes32 jobId,string namespace,string datasetType,string cid,bytes32 merkleRoot,string targetSpecCid,uint64 startedAt,uint64 finishedAt,string tool,string version,string vantage,string manifestSha256,bytes extra";
    string public constant AVAILABILITY_CHECK_SCHEMA =
        "string cid,bool available,uint8 attempts,uint8 gatewaysOk,bytes32 fetchDigest,uint64 checkedAt";
    string public constant CHALLENGE_SCHEMA =
        "bytes32 jobId,string cid,bytes32 reasonCode,string evidenceCid,uint64 graceEndsAt";
    string public constant RESOLUTION_SCHEMA =
        "bytes32 challengeId,bool slash,uint256 slashAmount,string notes,string newCid";

    bytes32 public immutable scanSubmissionSchema;
    bytes32 public immutable availabilityCheckSchema;
    bytes32 public immutable challengeSchema;
    bytes32 public immutable resolutionSchema;

    /// What is kept per attestation; the payload lives in the event.
    struct Record {
        bytes32 schema;
        address attester;
        address recipient;
        uint64 time;
        bytes32 refUID;
    }

    address public immutable deployer;
    address public submissionRouter;
    address public slashRouter;

    mapping(bytes32 => Record) private _records;

    event RoutersSet(address submissionRouter, address slashRouter);

    constructor() {
        deployer = msg.sender;
        scanSubmissionSchema = _schemaUid(SCAN_SUBMISSION_SCHEMA);
        availabilityCheckSchema = _schemaUid(AVAILABILITY_CHECK_SCHEMA);
        challengeSchema = _schemaUid(CHALLENGE_SCHEMA);
        resolutionSchema = _schemaUid(RESOLUTION_SCHEMA);
    }

    /// Wires the routers, once, by the deployer. Immutable afterwards.
    function setRouters(address submissionRouter_, address slashRouter_) external {
        if (msg.sender != deployer) revert NotAuthorized();
        if (submissionRouter != address(0) || slashRouter != address(0)) revert AlreadySet();
        require(submissionRouter_ != address(0) && slashRouter_ != address(0), "zero router");
        submissionRouter = submissionRouter_;
        slashRouter = slashRouter_;
        emit RoutersSet(submissionRouter_, slashRouter_);
    }

    function attestScanSubmission(address attester, ScanSubmission calldata s) external returns (bytes32 uid) {
        if (msg.sender != submissionRouter) revert NotAuthorized();
        uid = _record(scanSubmissionSchema, s.subject, attester, bytes32(0), _fields(abi.encode(s)));
        emit ScanSubmitted(uid, attester, s);
    }

    function attestAvailability(AvailabilityCheck calldata c) external returns (bytes32 uid) {
        uid = _record(availabilityCheckSchema, address(0), msg.sender, bytes32(0), _fields(abi.encode(c)));
        emit AvailabilityChecked(uid, msg.sender, c);
    }

    /// `recipient` is the challenged submitter, `refUID` the challenged ScanSubmission.
    function attestChallenge(address attester, address recipient, bytes32 refUID, Challenge calldata c)
        external
        returns (bytes32 uid)
    {
        if (msg.sender != slashRouter) revert NotAuthorized();
        uid = _record(challengeSchema, recipient, attester, refUID, _fields(abi.encode(c)));
        emit ChallengeFiled(uid, attester, c);
    }

    /// `refUID` is the challenge (also `r.challengeId`).
    function attestResolution(address attester, address recipient, Resolution calldata r)
        external
        returns (bytes32 uid)
    {
        if (msg.sender != slashRouter) revert NotAuthorized();
        uid = _record(resolutionSchema, recipient, attester, r.challengeId, _fields(abi.encode(r)));
        emit ChallengeResolved(uid, attester, r);
    }

    function getRecord(bytes32 uid) external view returns (Record memory) {
        return _records[uid];
    }

    function isAttestationValid(bytes32 uid) external view returns (bool) {
        return _records[uid].schema != bytes32(0);
    }

    function _schemaUid(string memory schema) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(schema, address(0), false));
    }

    /// `abi.encode(struct)` of a struct with dynamic fields is one offset word (0x20)
    /// followed by the fields' encoding; EAS data is the fields' encoding alone.
    function _fields(bytes memory encoded) private pure returns (bytes memory out) {
        assembly {
            let len := mload(encoded)
            out := add(encoded, 32)
            mstore(out, sub(len, 32))
        }
    }

    function _record(bytes32 schema, address recipient, address attester, bytes32 refUID, bytes memory data)
        private
        returns (bytes32 uid)
    {
        uint64 time = uint64(block.timestamp);
        // As EAS's `_attest`: the bump starts at 0 for every attestation and only
        // grows past a UID already taken (the same attestation twice in one block), so
        // every UID is the one the EAS hub would give the same attestation.
        uint32 bump = 0;
        uid = keccak256(abi.encodePacked(schema, recipient, attester, time, uint64(0), false, refUID, data, bump));
        while (_records[uid].schema != bytes32(0)) {
            unchecked {
                ++bump;
            }
            uid = keccak256(abi.encodePacked(schema, recipient, attester, time, uint64(0), false, refUID, data, bump));
        }
        _records[uid] = Record(schema, attester, recipient, time, refUID);
        emit Attested(recipient, attester, uid, schema);
    }
}
