// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// The nweb attestation schemas (docs/nweb.md §5) and
/// the Attestor's events. This file is the one definition both sides use: the contracts
/// implement it, and the loader reads it with alloy's `sol!` (loader/src/chain/abi.rs),
/// so an event the indexer decodes cannot drift from the event the chain emits. The same
/// holds for the custom errors: each contract reverts only with errors declared here, in
/// the interface it implements, so the loader decodes every revert by its name.
///
/// Every attestation emits two logs: EAS's own `Attested` event (same signature as the
/// EAS hub, so EAS tooling sees it) and a typed event carrying the whole payload, so an
/// indexer needs no `getAttestation` call per log.
interface IAttestor {
    /// Schema A. `data` of the EAS-style attestation is `abi.encode` of these fields.
    struct ScanSubmission {
        address subject;
        bytes32 jobId;
        string namespace;
        string datasetType;
        string cid;
        bytes32 merkleRoot;
        string targetSpecCid;
        uint64 startedAt;
        uint64 finishedAt;
        string tool;
        string version;
        string vantage;
        string manifestSha256;
        bytes extra;
    }

    /// Schema B.
    struct AvailabilityCheck {
        string cid;
        bool available;
        uint8 attempts;
        uint8 gatewaysOk;
        bytes32 fetchDigest;
        uint64 checkedAt;
    }

    /// Schema C. `reasonCode` is the ASCII reason left-aligned in 32 bytes
    /// (`bytes32("CID_UNAVAILABLE")`, `CID_HASH_MISMATCH`, `FORMAT_INVALID`).
    struct Challenge {
        bytes32 jobId;
        string cid;
        bytes32 reasonCode;
        string evidenceCid;
        uint64 graceEndsAt;
    }

    /// Schema D.
    struct Resolution {
        bytes32 challengeId;
        bool slash;
        uint256 slashAmount;
        string notes;
        string newCid;
    }

    /// EAS `IEAS.Attested`, unchanged.
    event Attested(address indexed recipient, address indexed attester, bytes32 uid, bytes32 indexed schemaUID);

    /// The full payloads, one event per schema. `uid` is the EAS-style attestation UID.
    event ScanSubmitted(bytes32 indexed uid, address indexed attester, ScanSubmission submission);
    event AvailabilityChecked(bytes32 indexed uid, address indexed attester, AvailabilityCheck check);
    event ChallengeFiled(bytes32 indexed uid, address indexed attester, Challenge challenge);
    event ChallengeResolved(bytes32 indexed uid, address indexed attester, Resolution resolution);

    /// Anyone may publish an availability probe result; the attester is the caller.
    function attestAvailability(AvailabilityCheck calldata check) external returns (bytes32 uid);

    /// Schema UIDs: keccak256(abi.encodePacked(schema string, resolver 0, revocable false)),
    /// as the EAS SchemaRegistry computes them.
    function scanSubmissionSchema() external view returns (bytes32);
    function availabilityCheckSchema() external view returns (bytes32);
    function challengeSchema() external view returns (bytes32);
    function resolutionSchema() external view returns (bytes32);
}

/// Contracts wired to their routers once, by the deployer (Attestor, StakeRegistry).
interface IWiring {
    /// The caller may not call this entry point.
    error NotAuthorized();
    /// setRouters was called before.
    error AlreadySet();

    function setRouters(address submissionRouter, address slashRouter) external;
}

/// The one spelling of a CID the contracts accept (CanonicalCid.sol).
interface ICanonicalCid {
    error NonCanonicalCid(string cid, string why);
}

/// The Attestor's entry points for the routers; anyone else is refused (NotAuthorized).
interface IRoutedAttestor {
    function attestScanSubmission(address attester, IAttestor.ScanSubmission calldata s) external returns (bytes32 uid);
    function attestChallenge(address attester, address recipient, bytes32 refUID, IAttestor.Challenge calldata c)
        external
        returns (bytes32 uid);
    function attestResolution(address attester, address recipient, IAttestor.Resolution calldata r)
        external
        returns (bytes32 uid);
}

/// What the slasher calls (loader/src/slasher.rs).
interface ISlashRouter {
    event ChallengeOpened(bytes32 indexed challengeId, address indexed subject, address indexed challenger, uint64 graceEndsAt);
    event ChallengeClosed(bytes32 indexed challengeId, bool slashed, uint256 amount);
    /// The challenge bond leaving the router: forfeited to the subject by a Resolution
    /// (`returned` false) or returned to the challenger with the bounty by a slash.
    event BondPaid(bytes32 indexed challengeId, address indexed to, uint256 amount, bool returned);

    error UnknownReason(bytes32 reasonCode);
    error NotSubmitted(string cid);
    error AlreadyChallenged(bytes32 challengeId);
    error UnknownChallenge(bytes32 challengeId);
    error Closed(bytes32 challengeId);
    error NotSubject(address subject);
    error GraceOver(uint64 graceEndsAt);
    error InGrace(uint64 graceEndsAt);
    error BondNotPaid(address challenger, uint256 bond);
    error RechallengeLimit(string cid, uint256 resolved);
    error NewCidNotSubmitted(string newCid, address subject);
    error NewCidKindMismatch(string newCid);
    error NewCidIsChallenged(string newCid);

    /// GST taken from the challenger (transferFrom: approve the router first).
    function challengeBond() external view returns (uint256);

    /// Files a Challenge against the first ScanSubmission of `cid`. Reverts when the CID
    /// is not canonical, was never submitted, already has an open challenge, the reason
    /// is unknown, the bond cannot be taken, or this challenger's challenges of the CID
    /// were resolved too often.
    function challenge(bytes32 jobId, string calldata cid, bytes32 reasonCode, string calldata evidenceCid)
        external
        returns (bytes32 challengeId);
    /// The challenged submitter's answer within grace: a Resolution with slash = false.
    /// A non-empty `newCid` must be a ScanSubmission of the subject of the same kind.
    function resolve(bytes32 challengeId, string calldata notes, string calldata newCid) external;
    /// After grace without a Resolution: slash 10 % of the subject's stake.
    function slash(bytes32 challengeId) external returns (uint256 amount);
    function openChallengeOf(string calldata cid) external view returns (bytes32);

    /// The SubmissionRouter whose submissions are challenged, and the GST of the bond.
    function submissions() external view returns (ISubmissionRouter);
    function gst() external view returns (IERC20);
    /// The state of a challenge (all zero for an unknown id).
    function cases(bytes32 id)
        external
        view
        returns (address subject, address challenger, bytes32 cidKey, uint64 graceEndsAt, bool closed, bool slashed);
}

/// What a collector calls (and what the tests use to submit).
interface ISubmissionRouter {
    /// Pricing classes of docs/nweb.md §2: masscan-quick 1, nmap-top1k 2, nmap-full 5, diff/enrich 1.
    enum Kind {
        MasscanQuick,
        NmapTop1k,
        NmapFull,
        DiffEnrich
    }

    event SubmissionRecorded(bytes32 indexed uid, address indexed submitter, Kind kind, uint64 cost);

    error StakeTooLow(uint256 stake);
    error QuotaExceeded(uint256 used, uint256 cost, uint256 quota);
    error EmptyCid();
    error UnknownDatasetType(string datasetType);
    error KindMismatch(string datasetType, string tool, Kind kind);

    function submit(IAttestor.ScanSubmission calldata submission, Kind kind) external returns (bytes32 uid);
    function firstSubmission(string calldata cid) external view returns (bytes32 uid, address submitter);
    function usedUnits(address who) external view returns (uint256);
    function remainingUnits(address who) external view returns (uint256);
    function kindOf(bytes32 uid) external view returns (Kind);
    /// Whether `kind` may price a submission of this dataset type and tool; reverts
    /// with UnknownDatasetType for a type nweb does not know.
    function kindAllowed(string calldata datasetType, string calldata tool, Kind kind) external pure returns (bool);
}

/// Stake, quota and slashing.
interface IStakeRegistry {
    event Staked(address indexed who, uint256 amount, uint256 total);
    event Unstaked(address indexed who, uint256 amount, uint256 total);
    event Slashed(address indexed who, address indexed challenger, uint256 amount, uint256 bounty, uint256 burned);
    /// Unstaked GST starts unbonding: no quota, still slashable until `releaseAt`.
    event Unbonding(address indexed who, uint256 amount, uint256 totalUnbonding, uint64 releaseAt);
    event Withdrawn(address indexed who, uint256 amount);
    /// The part of a slash taken from unbonding GST (Slashed carries the part taken
    /// from the active stake, so that nweb.stakes stays the stake that buys quota).
    event UnbondingSlashed(address indexed who, address indexed challenger, uint256 amount, uint256 bounty, uint256 burned);
    event RepFactorSet(address indexed who, uint256 repFactorMicros);

    function stake(uint256 amount) external;
    function unstake(uint256 amount) external;
    function stakeOf(address who) external view returns (uint256);
    function quotaUnits(address who) external view returns (uint256);

    /// Unstaking or withdrawing refused, and why.
    error Locked(string why);
}

/// The ERC-20 calls of the GST token the contracts and the slasher make.
interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function approve(address spender, uint256 amount) external returns (bool);
    function allowance(address owner, address spender) external view returns (uint256);
    function balanceOf(address who) external view returns (uint256);
}
