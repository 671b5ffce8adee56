// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICanonicalCid} from "./IAttestor.sol";

/// On chain a CID is keyed by the hash of its string, so two spellings of one CID would be
/// two CIDs: a submitter could attest a spelling the slasher never looks up, or re-submit
/// someone else's bundle under a variant. Only one spelling is accepted: `b` followed by
/// the RFC 4648 base32 lower-case, unpadded encoding of a binary CIDv1 (minimal varints,
/// zero trailing bits), which is what the `cid` crate's `to_string()` of a CIDv1 prints
/// and what nweb writes.
library CanonicalCid {
    function check(string memory cid) internal pure {
        bytes memory s = bytes(cid);
        if (s.length < 2 || s[0] != "b") revert ICanonicalCid.NonCanonicalCid(cid, "not multibase base32 lower-case (b...)");
        uint256 n = s.length - 1;
        // A final character that carries no whole byte would be a second spelling.
        if ((n * 5) % 8 >= 5) revert ICanonicalCid.NonCanonicalCid(cid, "base32 length leaves a whole character unused");
        bytes memory raw = new bytes((n * 5) / 8);
        uint256 acc;
        uint256 bits;
        uint256 j;
        for (uint256 i = 1; i < s.length; i++) {
            uint8 c = uint8(s[i]);
            uint256 v;
            if (c >= 0x61 && c <= 0x7a) v = c - 0x61;
            else if (c >= 0x32 && c <= 0x37) v = c - 0x32 + 26;
            else revert ICanonicalCid.NonCanonicalCid(cid, "character outside base32 lower-case a-z2-7");
            acc = (acc << 5) | v;
            bits += 5;
            if (bits >= 8) {
                bits -= 8;
                raw[j++] = bytes1(uint8(acc >> bits));
                acc &= (1 << bits) - 1;
            }
        }
        if (acc != 0) revert ICanonicalCid.NonCanonicalCid(cid, "non-zero trailing bits");
        (uint256 version, uint256 at) = _varint(cid, raw, 0);
        if (version != 1) revert ICanonicalCid.NonCanonicalCid(cid, "not a CIDv1");
        (, at) = _varint(cid, raw, at); // codec
        (, at) = _varint(cid, raw, at); // multihash function
        uint256 len;
        (len, at) = _varint(cid, raw, at);
        if (raw.length - at != len) revert ICanonicalCid.NonCanonicalCid(cid, "multihash length does not match the digest");
    }

    /// Unsigned LEB128 as multiformats defines it: at most 9 bytes, minimal.
    function _varint(string memory cid, bytes memory b, uint256 at) private pure returns (uint256 v, uint256 next) {
        for (uint256 k = 0; k < 9; k++) {
            if (at + k >= b.length) revert ICanonicalCid.NonCanonicalCid(cid, "truncated varint");
            uint8 x = uint8(b[at + k]);
            v |= uint256(x & 0x7f) << (7 * k);
            if (x & 0x80 == 0) {
                if (k > 0 && x == 0) revert ICanonicalCid.NonCanonicalCid(cid, "non-minimal varint");
                return (v, at + k + 1);
            }
        }
        revert ICanonicalCid.NonCanonicalCid(cid, "varint longer than 9 bytes");
    }
}
