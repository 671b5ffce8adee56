//! RFC 6962 Merkle Tree Hash over scanprint lines (docs/design.md D6).
//!
//! The standard tree, rather than a home-made one, lets anyone check a root with an
//! existing Certificate Transparency library, and lets a challenger prove one bad line
//! with a logarithmic inclusion proof instead of shipping the whole file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::jcs;
use super::NwebError;

/// A SHA-256 digest: a leaf hash, an interior node or a root.
pub type Hash = [u8; 32];

/// RFC 6962 leaf hash, SHA-256(0x00 || data). The prefix keeps a leaf from ever being
/// mistaken for an interior node (second-preimage protection).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 interior node, SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree, SHA-256 of the empty string (RFC 6962 2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Builds a root from leaves fed one at a time, keeping only O(log n) hashes, so a
/// million-line scanprint file never has to sit in memory as hashes.
///
/// The stack holds the roots of the perfect subtrees that make up the tree so far,
/// largest first; folding them right to left gives exactly the RFC 6962 split at the
/// largest power of two smaller than n.
#[derive(Debug, Clone, Default)]
pub struct MerkleBuilder {
    stack: Vec<Hash>,
    size: u64,
}

impl MerkleBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one leaf given as its raw data.
    pub fn push_leaf(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    /// Appends one leaf given as its leaf hash, for callers that hashed it already.
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        let mut hash = hash;
        let mut n = self.size;
        // Each trailing 1 bit of the old size is a perfect subtree of the same height
        // as the one we are carrying: merge them, exactly like binary addition.
        while n & 1 == 1 {
            match self.stack.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => break,
            }
            n >>= 1;
        }
        self.stack.push(hash);
        self.size += 1;
    }

    /// Number of leaves so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// True when no leaf has been pushed.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The Merkle Tree Hash of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(&last) => subtrees.fold(last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// Merkle Tree Hash of raw leaves, so the RFC 6962 test vectors can be checked directly.
pub fn merkle_root_leaves<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    let mut b = MerkleBuilder::new();
    for leaf in leaves {
        b.push_leaf(leaf.as_ref());
    }
    b.root()
}

/// `0x` + 64 lowercase hex digits, the form that fits the on-chain `bytes32`.
pub fn root_to_hex(root: &Hash) -> String {
    format!("0x{}", hex::encode(root))
}

/// Reads a root written by [`root_to_hex`] (hex digits of either case are accepted).
pub fn root_from_hex(s: &str) -> Result<Hash, NwebError> {
    parse_hash("root", s)
}

fn parse_hash(field: &str, s: &str) -> Result<Hash, NwebError> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| NwebError::field(field, format!("{s:?} does not start with 0x")))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out)
        .map_err(|e| NwebError::field(field, format!("{s:?} is not 0x and 64 hex digits ({e})")))?;
    Ok(out)
}

/// The leaves of a scanprint file: the JCS form of each non-blank line, in file order.
///
/// Each such line must be a JSON object (docs/design.md D6). The error names the 1-based line.
pub fn scanprint_leaves(jsonl: &str) -> Result<Vec<Vec<u8>>, NwebError> {
    let mut leaves = Vec::new();
    for_each_leaf(jsonl, |_, canonical| {
        leaves.push(canonical.as_bytes().to_vec())
    })?;
    Ok(leaves)
}

/// The Merkle root of a scanprint file as `0x` + 64 hex digits, computed in one pass.
pub fn scanprint_merkle_root(jsonl: &str) -> Result<String, NwebError> {
    let mut b = MerkleBuilder::new();
    for_each_leaf(jsonl, |_, canonical| b.push_leaf(canonical.as_bytes()))?;
    Ok(root_to_hex(&b.root()))
}

/// Hands every non-blank line's canonical form to `f` with its 1-based line
/// number. A line that is already canonical (as `scanprint::to_jsonl` writes
/// them) is passed as it is; only the others are parsed and re-written, which
/// keeps the root close to the speed of hashing the bytes.
fn for_each_leaf(jsonl: &str, mut f: impl FnMut(usize, &str)) -> Result<(), NwebError> {
    let mut buf = String::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if super::jcs_check::is_canonical_object(line) {
            f(i + 1, line);
            continue;
        }
        canonical_line(i + 1, line, &mut buf)?;
        f(i + 1, &buf);
    }
    Ok(())
}

/// The JCS form of one scanprint line into `buf`, or an error naming the line.
fn canonical_line(
    line_no: usize,
    line: &str,
    buf: &mut String,
) -> Result<serde_json::Map<String, serde_json::Value>, NwebError> {
    let value = jcs::parse_strict(line).map_err(|e| match e {
        NwebError::Json(problem) => NwebError::LineJson { line: line_no, problem },
        other => other,
    })?;
    buf.clear();
    jcs::write_canonical(&value, buf).map_err(|e| NwebError::line(line_no, e.to_string()))?;
    match value {
        serde_json::Value::Object(object) => Ok(object),
        _ => Err(NwebError::line(line_no, "not a JSON object")),
    }
}

/// Like [`for_each_leaf`], but also hands over the parsed object, and `f` may reject a
/// line. This is the one place that decides what a scanprint leaf is, so the bundle
/// verifier, which checks each line's fields, hashes exactly what the root covers.
pub(crate) fn for_each_line(
    jsonl: &str,
    mut f: impl FnMut(usize, &serde_json::Map<String, serde_json::Value>, &str) -> Result<(), NwebError>,
) -> Result<(), NwebError> {
    let mut buf = String::new();
    for (i, line) in jsonl.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let object = canonical_line(line_no, line, &mut buf)?;
        f(line_no, &object, &buf)?;
    }
    Ok(())
}

/// Proof for the scanprint line with 1-based file line number `line_no` (blank lines
/// count as lines, as in every error message, but are not leaves). Returns the
/// canonical leaf bytes with the proof.
pub fn scanprint_line_proof(
    jsonl: &str,
    line_no: usize,
) -> Result<(Vec<u8>, InclusionProof), NwebError> {
    let mut leaves = Vec::new();
    let mut index = None;
    for_each_leaf(jsonl, |n, canonical| {
        if n == line_no {
            index = Some(leaves.len());
        }
        leaves.push(canonical.as_bytes().to_vec());
    })?;
    let Some(index) = index else {
        let total = jsonl.lines().count();
        let problem = if line_no == 0 || line_no > total {
            format!("there is no line {line_no}; the file has {total} lines")
        } else {
            format!("line {line_no} is blank and is not a leaf")
        };
        return Err(NwebError::field("line", problem));
    };
    let proof = InclusionProof::for_leaves(&leaves, index)?;
    Ok((leaves.swap_remove(index), proof))
}

/// Largest power of two strictly smaller than `n` (n >= 2): the RFC 6962 split point.
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Merkle Tree Hash of a non-empty run of leaf hashes. Recursion depth is log2(n).
fn subtree_root(hashes: &[Hash]) -> Hash {
    match hashes {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let k = split_point(hashes.len());
            node_hash(&subtree_root(&hashes[..k]), &subtree_root(&hashes[k..]))
        }
    }
}

/// RFC 6962 2.1.1 PATH(m, D[n]), deepest sibling first.
fn audit_path(hashes: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = hashes.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        audit_path(&hashes[..k], m, out);
        out.push(subtree_root(&hashes[k..]));
    } else {
        audit_path(&hashes[k..], m - k, out);
        out.push(subtree_root(&hashes[..k]));
    }
}

/// The RFC 6962 audit path proving that leaf `index` is in the tree of `leaves`.
/// Costs O(n) hashing, once, for one proof.
pub fn inclusion_proof<T: AsRef<[u8]>>(leaves: &[T], index: usize) -> Result<Vec<Hash>, NwebError> {
    if index >= leaves.len() {
        return Err(NwebError::IndexOutOfRange {
            index: index as u64,
            size: leaves.len() as u64,
        });
    }
    let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    let mut path = Vec::new();
    audit_path(&hashes, index, &mut path);
    Ok(path)
}

/// An inclusion proof as it travels between parties (for example as challenge evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// 0-based position of the leaf among the non-blank lines.
    pub leaf_index: u64,
    /// Number of leaves in the tree the root covers.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up to the root, each `0x` + 64 hex digits.
    #[serde(with = "hex_path")]
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Proof for leaf `index` of `leaves`.
    pub fn for_leaves<T: AsRef<[u8]>>(leaves: &[T], index: usize) -> Result<Self, NwebError> {
        Ok(InclusionProof {
            leaf_index: index as u64,
            tree_size: leaves.len() as u64,
            path: inclusion_proof(leaves, index)?,
        })
    }
}

/// Proof that the `leaf_index`-th non-blank line of a scanprint file is under its root.
/// Returns the leaf bytes (the canonical line) along with the proof, since the verifier
/// needs exactly those bytes.
pub fn scanprint_inclusion_proof(
    jsonl: &str,
    leaf_index: usize,
) -> Result<(Vec<u8>, InclusionProof), NwebError> {
    let leaves = scanprint_leaves(jsonl)?;
    let proof = InclusionProof::for_leaves(&leaves, leaf_index)?;
    let leaf = leaves.into_iter().nth(leaf_index).unwrap_or_default();
    Ok((leaf, proof))
}

/// RFC 9162 2.1.3.2: does `proof` show that `leaf_bytes` (raw leaf data, not its hash)
/// sits at `proof.leaf_index` in the tree of `proof.tree_size` leaves with this `root`?
pub fn verify_inclusion(root: &Hash, leaf_bytes: &[u8], proof: &InclusionProof) -> bool {
    if proof.leaf_index >= proof.tree_size {
        return false;
    }
    let mut f_n = proof.leaf_index;
    let mut s_n = proof.tree_size - 1;
    let mut r = leaf_hash(leaf_bytes);
    for p in &proof.path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Checks one scanprint line, as found in the file (any formatting), against a root
/// written as `0x` + 64 hex digits. This is the whole check a challenger's evidence
/// needs: the line is canonicalised exactly as when the root was made.
pub fn verify_scanprint_line(
    root_hex: &str,
    line_json: &str,
    proof: &InclusionProof,
) -> Result<bool, NwebError> {
    let root = root_from_hex(root_hex)?;
    let value = jcs::parse_strict(line_json)?;
    if !value.is_object() {
        return Err(NwebError::Json(
            "a scanprint line must be a JSON object".to_owned(),
        ));
    }
    let canonical = jcs::canonicalize(&value)?;
    Ok(verify_inclusion(&root, canonical.as_bytes(), proof))
}

mod hex_path {
    use super::{parse_hash, root_to_hex, Hash};
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(path.iter().map(root_to_hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        raw.iter()
            .enumerate()
            .map(|(i, s)| parse_hash(&format!("path[{i}]"), s).map_err(de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    /// Certificate Transparency reference leaves (transparency-dev/merkle testonly).
    fn ct_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    /// Roots for tree sizes 0..=8 over `ct_leaves()`.
    const CT_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Naive RFC 6962 definition, copying sub-slices, as an independent oracle.
    fn reference_root(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest(b"").into(),
            1 => {
                let mut data = vec![0u8];
                data.extend_from_slice(&leaves[0]);
                Sha256::digest(&data).into()
            }
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut data = vec![1u8];
                data.extend_from_slice(&reference_root(&leaves[..k]));
                data.extend_from_slice(&reference_root(&leaves[k..]));
                Sha256::digest(&data).into()
            }
        }
    }

    fn numbered_leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf-{i}").into_bytes()).collect()
    }

    #[test]
    fn ct_reference_roots_for_every_size() {
        let leaves = ct_leaves();
        for (size, want) in CT_ROOTS.iter().enumerate() {
            assert_eq!(
                hex::encode(merkle_root_leaves(&leaves[..size])),
                *want,
                "tree size {size}"
            );
        }
        let empty: [&[u8]; 0] = [];
        assert_eq!(merkle_root_leaves(&empty), h(CT_ROOTS[0]));
        assert_eq!(empty_root(), h(CT_ROOTS[0]));
    }

    #[test]
    fn ct_reference_interior_nodes() {
        let l: Vec<Hash> = ct_leaves().iter().map(|d| leaf_hash(d)).collect();
        assert_eq!(
            l[1],
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
        );
        assert_eq!(
            l[7],
            h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")
        );
        assert_eq!(
            node_hash(&l[2], &l[3]),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e")
        );
        assert_eq!(
            l[6],
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f")
        );
        assert_eq!(
            node_hash(&l[6], &l[7]),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0")
        );
        let right4 = node_hash(&node_hash(&l[4], &l[5]), &node_hash(&l[6], &l[7]));
        assert_eq!(
            right4,
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")
        );
    }

    #[test]
    fn ct_reference_inclusion_proofs() {
        let leaves = ct_leaves();
        // (0-based leaf index, tree size, expected path) from transparency-dev/merkle.
        let vectors: [(usize, usize, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in vectors {
            let path = inclusion_proof(&leaves[..size], index).unwrap();
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(path, want, "leaf {index} of {size}");
            let proof = InclusionProof {
                leaf_index: index as u64,
                tree_size: size as u64,
                path,
            };
            assert!(verify_inclusion(&h(CT_ROOTS[size]), &leaves[index], &proof));
        }
    }

    #[test]
    fn builder_matches_the_naive_definition() {
        for n in 0..=70 {
            let leaves = numbered_leaves(n);
            assert_eq!(
                merkle_root_leaves(&leaves),
                reference_root(&leaves),
                "n = {n}"
            );
        }
    }

    #[test]
    fn builder_reports_its_size() {
        let mut b = MerkleBuilder::new();
        assert!(b.is_empty());
        for d in ct_leaves() {
            b.push_leaf(&d);
        }
        assert_eq!(b.len(), 8);
        assert_eq!(b.root(), h(CT_ROOTS[8]));
        // Pushing hashes directly is the same as pushing data.
        let mut b2 = MerkleBuilder::new();
        for d in ct_leaves() {
            b2.push_leaf_hash(leaf_hash(&d));
        }
        assert_eq!(b2.root(), b.root());
    }

    #[test]
    fn split_point_is_largest_power_of_two_below_n() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1000, 512),
            (1 << 20, 1 << 19),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    /// Every leaf of every tree of size 1..=20 proves, and every kind of tampering fails.
    #[test]
    fn every_proof_round_trips_and_tampering_fails() {
        for n in 1..=20usize {
            let leaves = numbered_leaves(n);
            let root = merkle_root_leaves(&leaves);
            for i in 0..n {
                let proof = InclusionProof::for_leaves(&leaves, i).unwrap();
                assert_eq!(proof.tree_size, n as u64);
                assert!(
                    verify_inclusion(&root, &leaves[i], &proof),
                    "leaf {i} of {n}"
                );

                // Tampered leaf bytes.
                let mut bad_leaf = leaves[i].clone();
                bad_leaf.push(b'!');
                assert!(
                    !verify_inclusion(&root, &bad_leaf, &proof),
                    "leaf {i}/{n}: tampered leaf"
                );
                // Another leaf's bytes with this leaf's proof.
                if n > 1 {
                    let other = &leaves[(i + 1) % n];
                    assert!(
                        !verify_inclusion(&root, other, &proof),
                        "leaf {i}/{n}: other leaf"
                    );
                }
                // One bit of each path element.
                for j in 0..proof.path.len() {
                    let mut p = proof.clone();
                    p.path[j][0] ^= 0x08;
                    assert!(
                        !verify_inclusion(&root, &leaves[i], &p),
                        "leaf {i}/{n}: path[{j}]"
                    );
                }
                // Every other index.
                for wrong in 0..n as u64 + 2 {
                    if wrong == i as u64 {
                        continue;
                    }
                    let p = InclusionProof {
                        leaf_index: wrong,
                        ..proof.clone()
                    };
                    assert!(
                        !verify_inclusion(&root, &leaves[i], &p),
                        "leaf {i}/{n}: index {wrong}"
                    );
                }
                // Wrong tree size. (Not n + 1: a proof only binds the size through the
                // shape of the path, which is why the root must come with its size.)
                for size in [n as u64 * 2, (n as u64) / 2] {
                    let p = InclusionProof {
                        tree_size: size,
                        ..proof.clone()
                    };
                    assert!(
                        !verify_inclusion(&root, &leaves[i], &p),
                        "leaf {i}/{n}: size {size}"
                    );
                }
                // Path too long or too short.
                let mut longer = proof.clone();
                longer.path.push(root);
                assert!(
                    !verify_inclusion(&root, &leaves[i], &longer),
                    "leaf {i}/{n}: extra hash"
                );
                if !proof.path.is_empty() {
                    let mut shorter = proof.clone();
                    shorter.path.pop();
                    assert!(
                        !verify_inclusion(&root, &leaves[i], &shorter),
                        "leaf {i}/{n}: short"
                    );
                }
                // Wrong root.
                let mut bad_root = root;
                bad_root[31] ^= 1;
                assert!(
                    !verify_inclusion(&bad_root, &leaves[i], &proof),
                    "leaf {i}/{n}: root"
                );
            }
        }
    }

    #[test]
    fn proof_for_missing_leaf_is_an_error() {
        let leaves = numbered_leaves(4);
        assert_eq!(
            inclusion_proof(&leaves, 4),
            Err(NwebError::IndexOutOfRange { index: 4, size: 4 })
        );
        let none: Vec<Vec<u8>> = Vec::new();
        assert!(InclusionProof::for_leaves(&none, 0).is_err());
    }

    #[test]
    fn proof_json_shape_and_round_trip() {
        let leaves = ct_leaves();
        let proof = InclusionProof::for_leaves(&leaves, 5).unwrap();
        let v = serde_json::to_value(&proof).unwrap();
        assert_eq!(v["leaf_index"], 5);
        assert_eq!(v["tree_size"], 8);
        assert_eq!(
            v["path"][0],
            "0xbc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        );
        assert_eq!(v.as_object().unwrap().len(), 3);
        let back: InclusionProof = serde_json::from_value(v).unwrap();
        assert_eq!(back, proof);
    }

    #[test]
    fn proof_json_with_bad_hash_is_rejected() {
        let bad = r#"{"leaf_index":0,"tree_size":2,"path":["0x1234"]}"#;
        let err = serde_json::from_str::<InclusionProof>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("path[0]"), "{err}");
        let no_prefix = format!(
            r#"{{"leaf_index":0,"tree_size":2,"path":["{}"]}}"#,
            CT_ROOTS[1]
        );
        assert!(serde_json::from_str::<InclusionProof>(&no_prefix).is_err());
    }

    #[test]
    fn root_hex_round_trip() {
        let root = h(CT_ROOTS[8]);
        let s = root_to_hex(&root);
        assert_eq!(s, format!("0x{}", CT_ROOTS[8]));
        assert_eq!(root_from_hex(&s).unwrap(), root);
        assert_eq!(
            root_from_hex(&s.to_uppercase().replace("0X", "0x")).unwrap(),
            root
        );
        assert!(root_from_hex(CT_ROOTS[8]).is_err());
        assert!(root_from_hex(&s[..65]).is_err());
        assert!(root_from_hex(&format!("{s}00")).is_err());
        assert!(root_from_hex("0xzz").is_err());
    }

    #[test]
    fn scanprint_leaves_are_jcs_of_each_non_blank_line() {
        let jsonl = "{\"port\": 443, \"ip\": \"203.0.113.42\"}\n\n   \r\n{\"b\":1.50,\"a\":\"\\u00e9\"}\r\n";
        let leaves = scanprint_leaves(jsonl).unwrap();
        assert_eq!(
            leaves,
            vec![
                br#"{"ip":"203.0.113.42","port":443}"#.to_vec(),
                "{\"a\":\"é\",\"b\":1.5}".as_bytes().to_vec(),
            ]
        );
    }

    #[test]
    fn scanprint_errors_name_the_line() {
        let err = scanprint_leaves("{\"a\":1}\n\n[1,2]\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: not a JSON object");
        assert_eq!(err.line_number(), Some(3));

        let err = scanprint_leaves("{\"a\":1}\n{\"a\":\n").unwrap_err();
        assert_eq!(err.line_number(), Some(2));
        assert!(err.to_string().starts_with("line 2: invalid JSON"), "{err}");

        let err = scanprint_leaves("{\"a\":1,\"a\":1}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 1: invalid JSON: duplicate member name"),
            "{err}"
        );

        for scalar in ["1", "\"x\"", "null", "true"] {
            assert_eq!(
                scanprint_leaves(scalar).unwrap_err().to_string(),
                "line 1: not a JSON object"
            );
        }
    }

    #[test]
    fn scanprint_root_ignores_formatting_but_not_content_or_order() {
        let a = "{\"ip\":\"1.2.3.4\",\"port\":22}\n{\"ip\":\"1.2.3.4\",\"port\":80}\n";
        let reformatted =
            "\n{ \"port\" : 22.0, \"ip\" : \"1.2.3.4\" }\n\n{\"port\":8e1,\"ip\":\"1.2.3.4\"}";
        let changed = "{\"ip\":\"1.2.3.4\",\"port\":22}\n{\"ip\":\"1.2.3.4\",\"port\":81}\n";
        let reordered = "{\"ip\":\"1.2.3.4\",\"port\":80}\n{\"ip\":\"1.2.3.4\",\"port\":22}\n";
        let root = scanprint_merkle_root(a).unwrap();
        assert_eq!(scanprint_merkle_root(reformatted).unwrap(), root);
        assert_ne!(scanprint_merkle_root(changed).unwrap(), root);
        assert_ne!(scanprint_merkle_root(reordered).unwrap(), root);
        // And it is the plain RFC 6962 root over the canonical lines.
        let leaves = scanprint_leaves(a).unwrap();
        assert_eq!(root, root_to_hex(&merkle_root_leaves(&leaves)));
        assert_eq!(root.len(), 66);
        assert!(root[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }

    #[test]
    fn empty_scanprint_has_the_empty_root() {
        let want = format!("0x{}", CT_ROOTS[0]);
        assert_eq!(scanprint_merkle_root("").unwrap(), want);
        assert_eq!(scanprint_merkle_root("\n \n").unwrap(), want);
    }

    #[test]
    fn scanprint_inclusion_proof_verifies_against_the_file_root() {
        let jsonl: String = (0..13)
            .map(|i| format!("{{\"port\": {i}, \"ip\": \"192.0.2.1\"}}\n"))
            .collect();
        let root = root_from_hex(&scanprint_merkle_root(&jsonl).unwrap()).unwrap();
        for i in 0..13 {
            let (leaf, proof) = scanprint_inclusion_proof(&jsonl, i).unwrap();
            assert_eq!(
                leaf,
                format!("{{\"ip\":\"192.0.2.1\",\"port\":{i}}}").into_bytes()
            );
            assert!(verify_inclusion(&root, &leaf, &proof));
        }
        assert!(scanprint_inclusion_proof(&jsonl, 13).is_err());
    }

    #[test]
    fn line_proof_counts_blank_lines_as_lines_but_not_leaves() {
        let jsonl = "{\"p\":1}\n\n{\"p\":2}\n{\"p\":3}\n";
        let root = root_from_hex(&scanprint_merkle_root(jsonl).unwrap()).unwrap();
        let (leaf, proof) = scanprint_line_proof(jsonl, 3).unwrap();
        assert_eq!(leaf, b"{\"p\":2}".to_vec());
        assert_eq!((proof.leaf_index, proof.tree_size), (1, 3));
        assert!(verify_inclusion(&root, &leaf, &proof));
        let blank = scanprint_line_proof(jsonl, 2).unwrap_err().to_string();
        assert_eq!(blank, "line: line 2 is blank and is not a leaf");
        let past = scanprint_line_proof(jsonl, 5).unwrap_err().to_string();
        assert_eq!(past, "line: there is no line 5; the file has 4 lines");
        assert!(scanprint_line_proof(jsonl, 0).is_err());
    }

    #[test]
    fn a_line_from_the_file_verifies_in_any_formatting() {
        let jsonl = "{\"ip\":\"192.0.2.1\",\"port\":22}\n{\"ip\":\"192.0.2.1\",\"port\":80}\n{\"ip\":\"192.0.2.2\",\"port\":443}\n";
        let root = scanprint_merkle_root(jsonl).unwrap();
        let (_, proof) = scanprint_inclusion_proof(jsonl, 1).unwrap();
        assert!(
            verify_scanprint_line(&root, "{ \"port\": 80.0, \"ip\": \"192.0.2.1\" }", &proof)
                .unwrap()
        );
        assert!(
            !verify_scanprint_line(&root, "{\"ip\":\"192.0.2.1\",\"port\":81}", &proof).unwrap()
        );
        assert!(
            !verify_scanprint_line(&root, "{\"ip\":\"192.0.2.1\",\"port\":22}", &proof).unwrap()
        );
        assert!(verify_scanprint_line(&root, "[1]", &proof).is_err());
        assert!(verify_scanprint_line("0x00", "{}", &proof).is_err());
    }

    /// One million leaves: linear time and constant memory in the builder. The check
    /// that the result is right is against the root computed from precomputed leaf
    /// hashes by the recursive splitter.
    #[test]
    fn million_leaves() {
        let n = 1_000_000u32;
        let mut b = MerkleBuilder::new();
        let mut hashes = Vec::with_capacity(n as usize);
        for i in 0..n {
            let lh = leaf_hash(&i.to_be_bytes());
            b.push_leaf_hash(lh);
            hashes.push(lh);
        }
        assert_eq!(b.len(), u64::from(n));
        // The builder's stack is one hash per set bit of n.
        assert_eq!(b.stack.len(), n.count_ones() as usize);
        assert_eq!(b.root(), subtree_root(&hashes));
    }

    #[test]
    fn canonical_fast_path_and_full_jcs_give_the_same_root() {
        let canonical = "{\"ip\":\"203.0.113.42\",\"port\":443}\n{\"a\":1e+21,\"b\":\"\\u001f\"}\n";
        let rewritten = "{ \"port\": 443, \"ip\": \"203.0.113.42\" }\n\n{\"b\":\"\\u001F\",\"a\":1E21}\n";
        let root = scanprint_merkle_root(canonical).unwrap();
        assert_eq!(root, scanprint_merkle_root(rewritten).unwrap());
        let leaves: Vec<String> = canonical.lines().map(|l| crate::jcs::canonicalize_str(l).unwrap()).collect();
        assert_eq!(root, root_to_hex(&merkle_root_leaves(&leaves)));
        assert_eq!(scanprint_leaves(rewritten).unwrap(), scanprint_leaves(canonical).unwrap());
    }

}
