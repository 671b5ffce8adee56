// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestor, IRoutedAttestor, ISlashRouter, ISubmissionRouter, IERC20} from "./IAttestor.sol";
import {StakeRegistry} from "./StakeRegistry.sol";
import {CanonicalCid} from "./CanonicalCid.sol";

/// Challenges, Resolutions and slashing with the immutable rules of docs/nweb.md §2.
///
/// - A Challenge names a CID; it is filed against the first ScanSubmission of that CID
///   (its submitter is the subject). One open challenge per CID at a time.
/// - Grace: 72 h from the challenge's block time. The subject may answer with a
///   Resolution (slash = false) up to and including graceEndsAt, the same closed interval
///   as nweb_challenge_state.
/// - After grace without a Resolution anyone may call `slash`: 10 % of the subject's
///   stake, 50 % to the challenger and 50 % burned (StakeRegistry.slash). A Resolution
///   with slash = true and the amount is attested.
/// - A challenge costs a bond of `challengeBond` GST (fixed at deployment), taken with
///   transferFrom when it is filed (docs/design.md D33). A Resolution forfeits it to the
///   subject, whose time the challenge took; a slash returns it with the bounty. Without
///   it challenges were free and a griefer could take 10 % per CID from anyone offline
///   for 72 h.
/// - A Resolution's `newCid` (when not empty) must already be a ScanSubmission of the
///   subject, of the same cost kind: the same stake answers for it, and it can be
///   challenged in turn, so a false resolution is no safe harbour (D35).
/// - A challenger whose challenges of one CID were resolved MAX_RESOLVED_PER_CHALLENGER
///   times may not challenge that CID again: re-filing after every resolution could
///   otherwise keep the subject's stake locked for ever (D36).
/// - CIDs are accepted only in their canonical spelling (CanonicalCid).
contract SlashRouter is ISlashRouter {
    uint64 public constant GRACE = 72 hours;
    bytes32 public constant CID_UNAVAILABLE = "CID_UNAVAILABLE";
    bytes32 public constant CID_HASH_MISMATCH = "CID_HASH_MISMATCH";
    bytes32 public constant FORMAT_INVALID = "FORMAT_INVALID";
    uint256 public constant MAX_RESOLVED_PER_CHALLENGER = 2;

    struct Case {
        address subject;
        address challenger;
        bytes32 cidKey;
        uint64 graceEndsAt;
        bool closed;
        bool slashed;
    }

    IRoutedAttestor public immutable attestor;
    StakeRegistry public immutable stakes;
    ISubmissionRouter public immutable submissions;
    IERC20 public immutable gst;
    uint256 public immutable challengeBond;

    mapping(bytes32 => Case) public cases;
    /// The challenged ScanSubmission of each challenge.
    mapping(bytes32 => bytes32) public submissionOf;
    /// keccak256(challenger, keccak256(cid)) => challenges of that CID by that
    /// challenger that ended in a Resolution.
    mapping(bytes32 => uint256) public resolvedAgainst;
    mapping(bytes32 => bytes32) private _openOfCid;
    mapping(address => uint256) public openChallenges;

    constructor(IRoutedAttestor attestor_, StakeRegistry stakes_, ISubmissionRouter submissions_, uint256 challengeBond_) {
        attestor = attestor_;
        stakes = stakes_;
        submissions = submissions_;
        gst = stakes_.gst();
        challengeBond = challengeBond_;
    }

    function challenge(bytes32 jobId, string calldata cid, bytes32 reasonCode, string calldata evidenceCid)
        external
        returns (bytes32 challengeId)
    {
        if (reasonCode != CID_UNAVAILABLE && reasonCode != CID_HASH_MISMATCH && reasonCode != FORMAT_INVALID) {
            revert UnknownReason(reasonCode);
        }
        CanonicalCid.check(cid);
        IAttestor.Challenge memory c =
            IAttestor.Challenge(jobId, cid, reasonCode, evidenceCid, uint64(block.timestamp) + GRACE);
        return _file(c);
    }

    function _file(IAttestor.Challenge memory c) private returns (bytes32 challengeId) {
        (bytes32 submissionUid, address subject) = submissions.firstSubmission(c.cid);
        if (subject == address(0)) revert NotSubmitted(c.cid);
        bytes32 cidKey = keccak256(bytes(c.cid));
        if (_openOfCid[cidKey] != bytes32(0)) revert AlreadyChallenged(_openOfCid[cidKey]);
        uint256 lost = resolvedAgainst[_pairKey(msg.sender, cidKey)];
        if (lost >= MAX_RESOLVED_PER_CHALLENGER) revert RechallengeLimit(c.cid, lost);
        _takeBond(msg.sender);
        challengeId = attestor.attestChallenge(msg.sender, subject, submissionUid, c);
        cases[challengeId] = Case(subject, msg.sender, cidKey, c.graceEndsAt, false, false);
        submissionOf[challengeId] = submissionUid;
        _openOfCid[cidKey] = challengeId;
        openChallenges[subject] += 1;
        emit ChallengeOpened(challengeId, subject, msg.sender, c.graceEndsAt);
    }

    function resolve(bytes32 challengeId, string calldata notes, string calldata newCid) external {
        Case storage c = _open(challengeId);
        if (msg.sender != c.subject) revert NotSubject(c.subject);
        if (block.timestamp > c.graceEndsAt) revert GraceOver(c.graceEndsAt);
        if (bytes(newCid).length != 0) _checkNewCid(challengeId, c, newCid);
        _close(c, false);
        resolvedAgainst[_pairKey(c.challenger, c.cidKey)] += 1;
        _payBond(challengeId, c.subject, false);
        attestor.attestResolution(msg.sender, c.challenger, IAttestor.Resolution(challengeId, false, 0, notes, newCid));
        emit ChallengeClosed(challengeId, false, 0);
    }

    function slash(bytes32 challengeId) external returns (uint256 amount) {
        Case storage c = _open(challengeId);
        if (block.timestamp <= c.graceEndsAt) revert InGrace(c.graceEndsAt);
        _close(c, true);
        amount = stakes.slash(c.subject, c.challenger);
        _payBond(challengeId, c.challenger, true);
        attestor.attestResolution(
            msg.sender,
            c.subject,
            IAttestor.Resolution(challengeId, true, amount, "slashed: no resolution within grace", "")
        );
        emit ChallengeClosed(challengeId, true, amount);
    }

    function openChallengeOf(string calldata cid) external view returns (bytes32) {
        return _openOfCid[keccak256(bytes(cid))];
    }

    /// The replacement must be the subject's own submission (so its stake answers for
    /// it and it can be challenged), priced as the challenged one, and not under
    /// another challenge.
    function _checkNewCid(bytes32 challengeId, Case storage c, string calldata newCid) private view {
        CanonicalCid.check(newCid);
        bytes32 key = keccak256(bytes(newCid));
        // The challenged CID itself ("available again") is the subject's already.
        if (key == c.cidKey) return;
        if (_openOfCid[key] != bytes32(0)) revert NewCidIsChallenged(newCid);
        (bytes32 uid, address submitter) = submissions.firstSubmission(newCid);
        if (submitter != c.subject) revert NewCidNotSubmitted(newCid, c.subject);
        if (submissions.kindOf(uid) != submissions.kindOf(submissionOf[challengeId])) revert NewCidKindMismatch(newCid);
    }

    function _takeBond(address challenger) private {
        if (challengeBond == 0) return;
        (bool ok, bytes memory ret) =
            address(gst).call(abi.encodeCall(IERC20.transferFrom, (challenger, address(this), challengeBond)));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert BondNotPaid(challenger, challengeBond);
    }

    function _payBond(bytes32 challengeId, address to, bool returned) private {
        if (challengeBond == 0) return;
        require(gst.transfer(to, challengeBond), "transfer failed");
        emit BondPaid(challengeId, to, challengeBond, returned);
    }

    function _pairKey(address challenger, bytes32 cidKey) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(challenger, cidKey));
    }

    function _open(bytes32 challengeId) private view returns (Case storage c) {
        c = cases[challengeId];
        if (c.subject == address(0)) revert UnknownChallenge(challengeId);
        if (c.closed) revert Closed(challengeId);
    }

    function _close(Case storage c, bool slashed) private {
        c.closed = true;
        c.slashed = slashed;
        delete _openOfCid[c.cidKey];
        openChallenges[c.subject] -= 1;
    }
}
