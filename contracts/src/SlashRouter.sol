// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAttestor, IRoutedAttestor, ISlashRouter} from "./IAttestor.sol";
import {StakeRegistry} from "./StakeRegistry.sol";
import {SubmissionRouter} from "./SubmissionRouter.sol";

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
contract SlashRouter is ISlashRouter {
    uint64 public constant GRACE = 72 hours;
    bytes32 public constant CID_UNAVAILABLE = "CID_UNAVAILABLE";
    bytes32 public constant CID_HASH_MISMATCH = "CID_HASH_MISMATCH";
    bytes32 public constant FORMAT_INVALID = "FORMAT_INVALID";

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
    SubmissionRouter public immutable submissions;

    mapping(bytes32 => Case) public cases;
    mapping(bytes32 => bytes32) private _openOfCid;
    mapping(address => uint256) public openChallenges;

    error UnknownReason(bytes32 reasonCode);
    error NotSubmitted(string cid);
    error AlreadyChallenged(bytes32 challengeId);
    error UnknownChallenge(bytes32 challengeId);
    error Closed(bytes32 challengeId);
    error NotSubject(address subject);
    error GraceOver(uint64 graceEndsAt);
    error InGrace(uint64 graceEndsAt);

    constructor(IRoutedAttestor attestor_, StakeRegistry stakes_, SubmissionRouter submissions_) {
        attestor = attestor_;
        stakes = stakes_;
        submissions = submissions_;
    }

    function challenge(bytes32 jobId, string calldata cid, bytes32 reasonCode, string calldata evidenceCid)
        external
        returns (bytes32 challengeId)
    {
        if (reasonCode != CID_UNAVAILABLE && reasonCode != CID_HASH_MISMATCH && reasonCode != FORMAT_INVALID) {
            revert UnknownReason(reasonCode);
        }
        IAttestor.Challenge memory c =
            IAttestor.Challenge(jobId, cid, reasonCode, evidenceCid, uint64(block.timestamp) + GRACE);
        return _file(c);
    }

    function _file(IAttestor.Challenge memory c) private returns (bytes32 challengeId) {
        (bytes32 submissionUid, address subject) = submissions.firstSubmission(c.cid);
        if (subject == address(0)) revert NotSubmitted(c.cid);
        bytes32 cidKey = keccak256(bytes(c.cid));
        if (_openOfCid[cidKey] != bytes32(0)) revert AlreadyChallenged(_openOfCid[cidKey]);
        challengeId = attestor.attestChallenge(msg.sender, subject, submissionUid, c);
        cases[challengeId] = Case(subject, msg.sender, cidKey, c.graceEndsAt, false, false);
        _openOfCid[cidKey] = challengeId;
        openChallenges[subject] += 1;
        emit ChallengeOpened(challengeId, subject, msg.sender, c.graceEndsAt);
    }

    function resolve(bytes32 challengeId, string calldata notes, string calldata newCid) external {
        Case storage c = _open(challengeId);
        if (msg.sender != c.subject) revert NotSubject(c.subject);
        if (block.timestamp > c.graceEndsAt) revert GraceOver(c.graceEndsAt);
        _close(c, false);
        attestor.attestResolution(msg.sender, c.challenger, IAttestor.Resolution(challengeId, false, 0, notes, newCid));
        emit ChallengeClosed(challengeId, false, 0);
    }

    function slash(bytes32 challengeId) external returns (uint256 amount) {
        Case storage c = _open(challengeId);
        if (block.timestamp <= c.graceEndsAt) revert InGrace(c.graceEndsAt);
        _close(c, true);
        amount = stakes.slash(c.subject, c.challenger);
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
