// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IStakeRegistry, IWiring, IERC20} from "./IAttestor.sol";

interface IOpenChallenges {
    function openChallenges(address who) external view returns (uint256);
}

interface ILastSubmission {
    function lastSubmittedAt(address who) external view returns (uint64);
}

/// Staked GST buys quota and slashability (docs/nweb.md §2).
///
/// - Minimum stake to submit: 100 GST.
/// - quotaUnits = floor(sqrt(stake in GST) * (1 + repFactor)), computed exactly with
///   integers, the same as nweb::rules::quota_units.
/// - Slash: 10 % of the stake; 50 % of it to the challenger, the rest burned (sent to
///   0x...dEaD, since a token may refuse transfers to the zero address).
/// - Unstaking is refused while a challenge against the address is open, and for the
///   grace period (72 h) after its last submission. An unstaked amount then unbonds for
///   UNBONDING (7 days) before `withdraw` pays it out, and stays slashable meanwhile
///   (docs/design.md D34): otherwise a submitter could unstake 72 h after the last
///   submission and unpin everything in the same block, before any challenger can see it.
///   `Unstaked` keeps meaning "left the active stake" (its total is the stake that buys
///   quota); `Unbonding`, `UnbondingSlashed` and `Withdrawn` (IStakeRegistry) give the
///   indexer the unbonding GST beside it (docs/design.md D45).
/// - repFactor (reputation is computed off-chain by indexers, nweb.reputation_at) may be
///   set only by the reputation oracle fixed at deployment; with oracle 0 it stays 0.
contract StakeRegistry is IStakeRegistry, IWiring {
    uint256 public constant MIN_STAKE = 100 ether; // 100 GST, 18 decimals
    uint256 public constant SLASH_PERCENT = 10;
    uint256 public constant BOUNTY_PERCENT = 50;
    uint256 public constant GRACE = 72 hours;
    uint256 public constant UNBONDING = 7 days;
    uint256 public constant REP_FACTOR_ONE = 1_000_000; // repFactor in millionths, < 1
    address public constant BURN = 0x000000000000000000000000000000000000dEaD;

    IERC20 public immutable gst;
    address public immutable reputationOracle;
    address public immutable deployer;
    address public slashRouter;
    address public submissionRouter;

    mapping(address => uint256) public stakeOf;
    mapping(address => uint256) public repFactorMicros;

    struct Unbond {
        uint256 amount;
        uint64 releaseAt;
    }

    /// Unstaked GST that has not been withdrawn: slashable until it is.
    mapping(address => Unbond) public unbonding;

    constructor(IERC20 gst_, address reputationOracle_) {
        gst = gst_;
        reputationOracle = reputationOracle_;
        deployer = msg.sender;
    }

    function setRouters(address submissionRouter_, address slashRouter_) external {
        if (msg.sender != deployer) revert NotAuthorized();
        if (slashRouter != address(0) || submissionRouter != address(0)) revert AlreadySet();
        require(submissionRouter_ != address(0) && slashRouter_ != address(0), "zero router");
        submissionRouter = submissionRouter_;
        slashRouter = slashRouter_;
    }

    function stake(uint256 amount) external {
        require(amount > 0, "zero amount");
        require(gst.transferFrom(msg.sender, address(this), amount), "transfer failed");
        stakeOf[msg.sender] += amount;
        emit Staked(msg.sender, amount, stakeOf[msg.sender]);
    }

    function unstake(uint256 amount) external {
        require(amount > 0 && amount <= stakeOf[msg.sender], "bad amount");
        if (IOpenChallenges(slashRouter).openChallenges(msg.sender) != 0) revert Locked("open challenge");
        if (block.timestamp <= uint256(ILastSubmission(submissionRouter).lastSubmittedAt(msg.sender)) + GRACE) {
            revert Locked("last submission still in grace");
        }
        stakeOf[msg.sender] -= amount;
        Unbond storage u = unbonding[msg.sender];
        u.amount += amount;
        // Each unstake restarts the clock for everything unbonding: one release time.
        u.releaseAt = uint64(block.timestamp + UNBONDING);
        emit Unstaked(msg.sender, amount, stakeOf[msg.sender]);
        emit Unbonding(msg.sender, amount, u.amount, u.releaseAt);
    }

    /// Pays out the unbonded GST once UNBONDING has passed and no challenge is open (a
    /// challenge filed during unbonding must still find the GST when its grace ends).
    function withdraw() external returns (uint256 amount) {
        Unbond memory u = unbonding[msg.sender];
        if (u.amount == 0) revert Locked("nothing unbonding");
        if (block.timestamp < u.releaseAt) revert Locked("still unbonding");
        if (IOpenChallenges(slashRouter).openChallenges(msg.sender) != 0) revert Locked("open challenge");
        amount = u.amount;
        delete unbonding[msg.sender];
        require(gst.transfer(msg.sender, amount), "transfer failed");
        emit Withdrawn(msg.sender, amount);
    }

    function setRepFactor(address who, uint256 micros) external {
        if (msg.sender != reputationOracle || reputationOracle == address(0)) revert NotAuthorized();
        require(micros < REP_FACTOR_ONE, "repFactor must be below 1");
        repFactorMicros[who] = micros;
        emit RepFactorSet(who, micros);
    }

    /// floor(sqrt(stake / 1e18) * (1e6 + r) / 1e6) = floor(isqrt(stake * (1e6 + r)^2) / 1e15),
    /// because floor(sqrt(x) / d) = floor(isqrt(x) / d) for a positive integer d.
    function quotaUnits(address who) public view returns (uint256) {
        uint256 s = stakeOf[who];
        if (s < MIN_STAKE) return 0;
        uint256 a = REP_FACTOR_ONE + repFactorMicros[who];
        return _isqrt(s * a * a) / 1e15;
    }

    /// 10 % of the stake, active and unbonding, half to the challenger, the rest burned;
    /// the unbonding GST is taken first, since it is what is about to leave. Only the
    /// SlashRouter.
    function slash(address who, address challenger) external returns (uint256 amount) {
        if (msg.sender != slashRouter) revert NotAuthorized();
        Unbond storage u = unbonding[who];
        amount = ((stakeOf[who] + u.amount) * SLASH_PERCENT) / 100;
        uint256 fromUnbonding = amount < u.amount ? amount : u.amount;
        uint256 fromActive = amount - fromUnbonding;
        if (fromUnbonding > 0) {
            u.amount -= fromUnbonding;
            (uint256 b, uint256 x) = _pay(challenger, fromUnbonding);
            emit UnbondingSlashed(who, challenger, fromUnbonding, b, x);
        }
        stakeOf[who] -= fromActive;
        (uint256 bounty, uint256 burned) = _pay(challenger, fromActive);
        emit Slashed(who, challenger, fromActive, bounty, burned);
    }

    function _pay(address challenger, uint256 amount) private returns (uint256 bounty, uint256 burned) {
        bounty = (amount * BOUNTY_PERCENT) / 100;
        burned = amount - bounty;
        if (bounty > 0) require(gst.transfer(challenger, bounty), "transfer failed");
        if (burned > 0) require(gst.transfer(BURN, burned), "transfer failed");
    }

    /// Integer square root (floor), Newton's method from a power-of-two start.
    function _isqrt(uint256 x) private pure returns (uint256 r) {
        if (x == 0) return 0;
        uint256 xx = x;
        r = 1;
        if (xx >= 1 << 128) { xx >>= 128; r <<= 64; }
        if (xx >= 1 << 64) { xx >>= 64; r <<= 32; }
        if (xx >= 1 << 32) { xx >>= 32; r <<= 16; }
        if (xx >= 1 << 16) { xx >>= 16; r <<= 8; }
        if (xx >= 1 << 8) { xx >>= 8; r <<= 4; }
        if (xx >= 1 << 4) { xx >>= 4; r <<= 2; }
        if (xx >= 1 << 2) { r <<= 1; }
        for (uint256 i = 0; i < 7; i++) {
            r = (r + x / r) >> 1;
        }
        uint256 r1 = x / r;
        return r < r1 ? r : r1;
    }
}
