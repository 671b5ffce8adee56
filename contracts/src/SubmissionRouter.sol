// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestor, IRoutedAttestor, ISubmissionRouter} from "./IAttestor.sol";
import {StakeRegistry} from "./StakeRegistry.sol";
import {CanonicalCid} from "./CanonicalCid.sol";

/// Gates ScanSubmissions by stake and quota and records their attestation UIDs.
///
/// - At least 100 GST staked (StakeRegistry.MIN_STAKE).
/// - Quota per rolling 24 h window: the costs of the submissions made in the last 24 h
///   (a submission made at t counts while now < t + 24 h) may not exceed
///   StakeRegistry.quotaUnits, the same window as nweb.quota_at. The chain cannot see
///   invalid bundles, so unlike nweb.quota_at it also counts those.
/// - Cost: masscan-quick 1, nmap-top1k 2, nmap-full 5, diff/enrich 1.
/// - The first submission of a CID is the one a Challenge is filed against (the same
///   rule as nweb.first_submission).
/// - The CID must be canonical (CanonicalCid), and the cost kind must be one the attested
///   dataset type and tool allow (`kindAllowed`): a masscan bundle cannot be priced, and
///   weighted for reputation, as an nmap-full scan. Between nmap-top1k and nmap-full the
///   chain cannot tell (the port list is in the bundle); the indexer checks that against
///   the manifest.
contract SubmissionRouter is ISubmissionRouter {
    uint64 public constant QUOTA_WINDOW = 24 hours;

    struct Use {
        uint64 at;
        uint64 cost;
    }

    struct First {
        bytes32 uid;
        address submitter;
    }

    IRoutedAttestor public immutable attestor;
    StakeRegistry public immutable stakes;

    mapping(address => Use[]) private _uses;
    mapping(address => uint256) private _head;
    mapping(address => uint256) private _used;
    mapping(bytes32 => First) private _first;
    mapping(bytes32 => address) public submitterOf;
    mapping(address => uint64) public lastSubmittedAt;
    bytes32[] public uids;
    mapping(bytes32 => Kind) public kindOf;

    constructor(IRoutedAttestor attestor_, StakeRegistry stakes_) {
        attestor = attestor_;
        stakes = stakes_;
    }

    function costOf(Kind kind) public pure returns (uint64) {
        if (kind == Kind.NmapTop1k) return 2;
        if (kind == Kind.NmapFull) return 5;
        return 1;
    }

    function kindAllowed(string memory datasetType, string memory tool, Kind kind) public pure returns (bool) {
        bytes32 t = keccak256(bytes(datasetType));
        bytes32 tl = keccak256(bytes(tool));
        if (t == keccak256("masscan")) return tl == t && kind == Kind.MasscanQuick;
        if (t == keccak256("nmap")) return tl == t && (kind == Kind.NmapTop1k || kind == Kind.NmapFull);
        if (t == keccak256("diff") || t == keccak256("enrich")) return kind == Kind.DiffEnrich;
        revert UnknownDatasetType(datasetType);
    }

    function submit(IAttestor.ScanSubmission calldata s, Kind kind) external returns (bytes32 uid) {
        if (bytes(s.cid).length == 0) revert EmptyCid();
        CanonicalCid.check(s.cid);
        if (!kindAllowed(s.datasetType, s.tool, kind)) revert KindMismatch(s.datasetType, s.tool, kind);
        uint256 st = stakes.stakeOf(msg.sender);
        if (st < stakes.MIN_STAKE()) revert StakeTooLow(st);
        _expire(msg.sender);
        uint64 cost = costOf(kind);
        uint256 quota = stakes.quotaUnits(msg.sender);
        uint256 used = _used[msg.sender];
        if (used + cost > quota) revert QuotaExceeded(used, cost, quota);

        uid = attestor.attestScanSubmission(msg.sender, s);
        _uses[msg.sender].push(Use(uint64(block.timestamp), cost));
        _used[msg.sender] = used + cost;
        lastSubmittedAt[msg.sender] = uint64(block.timestamp);
        submitterOf[uid] = msg.sender;
        kindOf[uid] = kind;
        uids.push(uid);
        bytes32 key = keccak256(bytes(s.cid));
        if (_first[key].uid == bytes32(0)) _first[key] = First(uid, msg.sender);
        emit SubmissionRecorded(uid, msg.sender, kind, cost);
    }

    function firstSubmission(string calldata cid) external view returns (bytes32 uid, address submitter) {
        First memory f = _first[keccak256(bytes(cid))];
        return (f.uid, f.submitter);
    }

    function submissionCount() external view returns (uint256) {
        return uids.length;
    }

    /// Units used in the window ending now.
    function usedUnits(address who) public view returns (uint256 used) {
        Use[] storage uses = _uses[who];
        for (uint256 i = _head[who]; i < uses.length; i++) {
            if (uses[i].at + QUOTA_WINDOW > block.timestamp) used += uses[i].cost;
        }
    }

    function remainingUnits(address who) external view returns (uint256) {
        uint256 quota = stakes.quotaUnits(who);
        uint256 used = usedUnits(who);
        return used >= quota ? 0 : quota - used;
    }

    /// Drops the uses that left the window; each is dropped once, so this is amortised O(1).
    function _expire(address who) private {
        Use[] storage uses = _uses[who];
        uint256 h = _head[who];
        uint256 used = _used[who];
        while (h < uses.length && uses[h].at + QUOTA_WINDOW <= block.timestamp) {
            used -= uses[h].cost;
            delete uses[h];
            h++;
        }
        _head[who] = h;
        _used[who] = used;
    }
}
