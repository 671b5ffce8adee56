//! CARv1 export and verified import (docs/design.md D7).
//!
//! Bundles travel as CAR files from trustless gateways, and a gateway is never
//! trusted: every block is hashed and compared with its CID, and every block reachable
//! from the root must be present, because a gateway may cut the stream short after it
//! already answered 200. Errors name the CID, which is what a person retries or reports.
//!
//! The header is the one DAG-CBOR map `{"roots": [CID], "version": 1}`. We write it
//! by hand and read it with a small CBOR reader that accepts exactly what a CAR header
//! may hold, rather than pulling in a general CBOR stack for one map.

use std::collections::{HashMap, HashSet};

use cid::Cid;
use sha2::{Digest, Sha256};

use super::unixfs::{self, Block, Limits, IDENTITY, SHA2_256};
use super::NwebError;
use crate::put_varint;

/// The CBOR tag of an IPLD link (a CID) in DAG-CBOR.
const CID_TAG: u64 = 42;

/// Largest header we read; real headers are well under 100 bytes per root.
const MAX_HEADER: u64 = 1 << 20;

/// CBOR head of major type `major` with argument `n` (shortest form, as DAG-CBOR requires).
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

/// The DAG-CBOR header. Keys are in DAG-CBOR order (shorter first), and a CID is tag
/// 42 around its bytes prefixed with the 0x00 multibase "identity" byte.
fn header(roots: &[Cid]) -> Vec<u8> {
    let mut h = Vec::new();
    cbor_head(&mut h, 5, 2);
    cbor_head(&mut h, 3, 5);
    h.extend_from_slice(b"roots");
    cbor_head(&mut h, 4, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        cbor_head(&mut h, 6, CID_TAG);
        cbor_head(&mut h, 2, bytes.len() as u64 + 1);
        h.push(0x00);
        h.extend_from_slice(&bytes);
    }
    cbor_head(&mut h, 3, 7);
    h.extend_from_slice(b"version");
    cbor_head(&mut h, 0, 1);
    h
}

/// A CARv1 of the DAG under `root`, blocks in depth-first order from the root and each
/// once (what `ipfs dag export` writes). `blocks` may come in any order and may hold
/// extra blocks, which are left out; a block the DAG needs and `blocks` lacks is an error.
pub fn write_car(root: &Cid, blocks: &[Block]) -> Result<Vec<u8>, NwebError> {
    let by_cid: HashMap<&Cid, &[u8]> = blocks.iter().map(|b| (&b.cid, b.data.as_slice())).collect();
    let h = header(std::slice::from_ref(root));
    let mut out =
        Vec::with_capacity(h.len() + 10 + blocks.iter().map(|b| b.data.len() + 50).sum::<usize>());
    put_varint(&mut out, h.len() as u64);
    out.extend_from_slice(&h);

    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if cid.hash().code() == IDENTITY || !seen.insert(cid) {
            continue;
        }
        let data = by_cid.get(&cid).ok_or_else(|| {
            NwebError::block(cid, "missing: the DAG needs it but it was not given")
        })?;
        let cid_bytes = cid.to_bytes();
        put_varint(&mut out, (cid_bytes.len() + data.len()) as u64);
        out.extend_from_slice(&cid_bytes);
        out.extend_from_slice(data);
        // Reversed so the first link is visited first.
        let mut children = unixfs::links_of(&cid, data)?;
        children.reverse();
        stack.extend(children);
    }
    Ok(out)
}

/// A CAR read and verified: every block's bytes hash to its CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Car {
    pub roots: Vec<Cid>,
    /// In file order; a block sent twice (`dups=y`) is kept once.
    pub blocks: Vec<Block>,
}

impl Car {
    /// The blocks by CID, for [`unixfs::unpack_directory`].
    pub fn block_map(&self) -> HashMap<Cid, Vec<u8>> {
        self.blocks
            .iter()
            .map(|b| (b.cid, b.data.clone()))
            .collect()
    }
}

/// Checks that `data` is what `cid` names. Only sha2-256 (what we and Kubo write) and
/// identity can be checked; any other hash function is refused rather than trusted.
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), NwebError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => mh.digest() == Sha256::digest(data).as_slice(),
        IDENTITY => mh.digest() == data,
        other => {
            return Err(NwebError::block(
                cid,
                format!(
                    "hash function 0x{other:x} is not supported, so the block cannot be verified"
                ),
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(NwebError::block(
            cid,
            "the block's bytes do not hash to its CID (corrupted or forged)",
        ))
    }
}

/// Reads a CARv1, verifying every block against its CID, within [`Limits::DEFAULT`].
pub fn read_car(bytes: &[u8]) -> Result<Car, NwebError> {
    read_car_with(bytes, &Limits::DEFAULT)
}

/// [`read_car`] within explicit [`Limits`]: the file's size, each block's size and the
/// number of distinct blocks are checked before the bytes they cover are copied.
pub fn read_car_with(bytes: &[u8], limits: &Limits) -> Result<Car, NwebError> {
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(NwebError::limit("CAR size in bytes", limits.max_input_bytes, None));
    }
    let mut pos = 0usize;
    let header_len = read_varint(bytes, &mut pos)
        .ok_or_else(|| NwebError::Car("the header length is missing or cut off".into()))?;
    if header_len == 0 || header_len > MAX_HEADER {
        return Err(NwebError::Car(format!(
            "header length {header_len} is not plausible"
        )));
    }
    let header_end = pos
        .checked_add(header_len as usize)
        .filter(|e| *e <= bytes.len())
        .ok_or_else(|| {
            NwebError::Car(format!("truncated: the header declares {header_len} bytes"))
        })?;
    let roots = parse_header(&bytes[pos..header_end])?;
    pos = header_end;

    let mut blocks = Vec::new();
    let mut seen = HashSet::new();
    while pos < bytes.len() {
        let start = pos;
        let len = read_varint(bytes, &mut pos).ok_or_else(|| {
            NwebError::Car(format!(
                "truncated: section length at byte {start} is cut off"
            ))
        })?;
        let available = bytes.len() - pos;
        let section = &bytes[pos..pos + (len as usize).min(available)];
        let cid = Cid::read_bytes(section);
        if len as usize > available {
            let problem = format!("truncated CAR: the section at byte {start} declares {len} bytes, {available} remain");
            return Err(match cid {
                Ok(cid) => NwebError::block(cid, problem),
                Err(_) => NwebError::Car(problem),
            });
        }
        let cid = cid.map_err(|e| {
            NwebError::Car(format!(
                "section at byte {start} does not start with a CID: {e}"
            ))
        })?;
        let data = &section[cid.encoded_len()..];
        if data.len() > limits.max_block_bytes {
            return Err(NwebError::limit(
                "block size in bytes",
                limits.max_block_bytes as u64,
                Some(&cid),
            ));
        }
        verify_block(&cid, data)?;
        if !seen.contains(&cid) && seen.len() >= limits.max_blocks {
            return Err(NwebError::limit("distinct blocks", limits.max_blocks as u64, Some(&cid)));
        }
        if seen.insert(cid) {
            blocks.push(Block {
                cid,
                data: data.to_vec(),
            });
        }
        pos += len as usize;
    }
    Ok(Car { roots, blocks })
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The parts of CBOR a CAR header can contain.
#[derive(Debug)]
enum Cbor<'a> {
    Uint(u64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Cbor<'a>>),
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
    Tag(u64, Box<Cbor<'a>>),
    Other,
}

struct CborReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> CborReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("header CBOR is cut off")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn arg(&mut self, info: u8) -> Result<u64, String> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap())),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap())),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            _ => return Err("indefinite lengths are not DAG-CBOR".into()),
        })
    }

    fn item(&mut self, depth: usize) -> Result<Cbor<'a>, String> {
        if depth > 16 {
            return Err("header CBOR nested too deep".into());
        }
        let head = self.take(1)?[0];
        let (major, info) = (head >> 5, head & 0x1f);
        if major == 7 {
            // false, true, null, floats: skip their payload.
            match info {
                24 => drop(self.take(1)?),
                25 => drop(self.take(2)?),
                26 => drop(self.take(4)?),
                27 => drop(self.take(8)?),
                _ => {}
            }
            return Ok(Cbor::Other);
        }
        let n = self.arg(info)?;
        let len = usize::try_from(n).map_err(|_| "length overflows")?;
        Ok(match major {
            0 => Cbor::Uint(n),
            1 => Cbor::Other,
            2 => Cbor::Bytes(self.take(len)?),
            3 => Cbor::Text(std::str::from_utf8(self.take(len)?).map_err(|_| "text is not UTF-8")?),
            4 => Cbor::Array(
                (0..len.min(self.buf.len()))
                    .map(|_| self.item(depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            5 => Cbor::Map(
                (0..len.min(self.buf.len()))
                    .map(|_| Ok((self.item(depth + 1)?, self.item(depth + 1)?)))
                    .collect::<Result<_, String>>()?,
            ),
            6 => Cbor::Tag(n, Box::new(self.item(depth + 1)?)),
            _ => unreachable!("major type is three bits"),
        })
    }
}

fn parse_header(bytes: &[u8]) -> Result<Vec<Cid>, NwebError> {
    let bad = |m: String| NwebError::Car(format!("header: {m}"));
    let mut r = CborReader { buf: bytes, pos: 0 };
    let Cbor::Map(entries) = r.item(0).map_err(bad)? else {
        return Err(bad("not a CBOR map".into()));
    };
    if r.pos != bytes.len() {
        return Err(bad("trailing bytes after the header map".into()));
    }
    let (mut version, mut roots) = (None, None);
    for (k, v) in entries {
        match (k, v) {
            (Cbor::Text("version"), Cbor::Uint(n)) => version = Some(n),
            (Cbor::Text("roots"), Cbor::Array(items)) => roots = Some(items),
            (Cbor::Text("version" | "roots"), _) => {
                return Err(bad("version or roots has the wrong type".into()))
            }
            _ => {}
        }
    }
    match version {
        Some(1) => {}
        Some(2) => return Err(bad("this is a CARv2; only CARv1 is read".into())),
        Some(n) => return Err(bad(format!("unknown CAR version {n}"))),
        None => return Err(bad("no version".into())),
    }
    let roots = roots.ok_or_else(|| bad("no roots".into()))?;
    roots
        .into_iter()
        .map(|item| match item {
            Cbor::Tag(CID_TAG, inner) => match *inner {
                Cbor::Bytes([0x00, rest @ ..]) => {
                    Cid::try_from(rest).map_err(|e| bad(format!("root is not a CID: {e}")))
                }
                _ => Err(bad("a root is not a tagged CID".into())),
            },
            _ => Err(bad("a root is not a tagged CID".into())),
        })
        .collect()
}

/// A bundle read from a CAR: the root it was read under and every file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub root: Cid,
    /// (relative path, bytes), sorted by path.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Reads a CAR holding one UnixFS directory (a bundle) and returns its files.
///
/// `expected_root` is the CID that was asked for (the attested one). When given, the
/// header's roots are ignored, as the trustless-gateway spec tells clients to; when not,
/// the header must name exactly one root. Every block is verified and every block
/// reachable from the root must be present. `max_bytes` bounds the unpacked size.
pub fn unpack_car(
    bytes: &[u8],
    expected_root: Option<&Cid>,
    max_bytes: u64,
) -> Result<Unpacked, NwebError> {
    unpack_car_with(bytes, expected_root, &Limits::with_max_bytes(max_bytes))
}

/// [`unpack_car`] within explicit [`Limits`], shared by the CAR reader and the unpacker.
pub fn unpack_car_with(
    bytes: &[u8],
    expected_root: Option<&Cid>,
    limits: &Limits,
) -> Result<Unpacked, NwebError> {
    let car = read_car_with(bytes, limits)?;
    let root = match (expected_root, car.roots.as_slice()) {
        (Some(r), _) => *r,
        (None, [only]) => *only,
        (None, roots) => {
            return Err(NwebError::Car(format!(
                "the header names {} roots; say which one is the bundle",
                roots.len()
            )))
        }
    };
    let files = unixfs::unpack_directory_with(&root, &car.block_map(), limits)?;
    Ok(Unpacked { root, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unixfs::{
        import_directory, import_file, sha256_cid, ImportParams, DAG_PB, RAW,
    };

    fn bundle_files(big: &[u8]) -> Vec<(&str, &[u8])> {
        vec![
            ("manifest.json", &b"{\"schema\":\"nweb.bundle.v1\"}"[..]),
            ("raw/nmap.xml", big),
            ("scanprint/scanprint.v0.jsonl", b"{\"ip\":\"192.0.2.1\"}\n"),
        ]
    }

    fn big() -> Vec<u8> {
        (0..700_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn header_bytes_match_the_car_spec_layout() {
        let root: Cid = "bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu"
            .parse()
            .unwrap();
        let h = header(&[root]);
        let mut want = vec![0xa2, 0x65];
        want.extend(b"roots");
        want.extend([0x81, 0xd8, 0x2a, 0x58, 0x25, 0x00]);
        want.extend(root.to_bytes());
        want.push(0x67);
        want.extend(b"version");
        want.push(0x01);
        assert_eq!(h, want);
        assert_eq!(parse_header(&h).unwrap(), vec![root]);
    }

    #[test]
    fn export_then_import_round_trips_a_bundle() {
        let big = big();
        let files = bundle_files(&big);
        let dag = import_directory(&files, ImportParams::KUBO).unwrap();
        let car = write_car(&dag.root, &dag.blocks).unwrap();

        let read = read_car(&car).unwrap();
        assert_eq!(read.roots, vec![dag.root]);
        assert_eq!(read.blocks.len(), dag.blocks.len());
        // Depth-first from the root: the root block comes first.
        assert_eq!(read.blocks[0].cid, dag.root);

        let unpacked = unpack_car(&car, None, u64::MAX).unwrap();
        assert_eq!(unpacked.root, dag.root);
        let got: Vec<(&str, &[u8])> = unpacked
            .files
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_slice()))
            .collect();
        assert_eq!(got, files);
        // And the files re-import to the same CID.
        assert_eq!(unixfs::directory_cid(&got).unwrap(), dag.root);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let big = big();
        let dag = import_directory(&bundle_files(&big), ImportParams::KUBO).unwrap();
        let car = write_car(&dag.root, &dag.blocks).unwrap();
        // Cut at a few places: in the header, in a section length, inside a block, and
        // exactly between two sections (which only the completeness check can catch).
        let first_section = {
            let mut p = 0;
            let h = read_varint(&car, &mut p).unwrap() as usize;
            p + h
        };
        let mut boundary = first_section;
        let len = read_varint(&car, &mut boundary).unwrap() as usize;
        boundary += len;
        for cut in [
            1,
            10,
            first_section + 1,
            first_section + 30,
            boundary,
            car.len() - 1,
        ] {
            let err = unpack_car(&car[..cut], Some(&dag.root), u64::MAX);
            assert!(err.is_err(), "cut at {cut} of {} was accepted", car.len());
        }
        // Cut inside the big leaf: the error names the leaf being read.
        let leaf = sha256_cid(RAW, &big[262_144..524_288]);
        let leaf_bytes = leaf.to_bytes();
        // The last occurrence is the block's own section; earlier ones are links to it.
        let at = car
            .windows(leaf_bytes.len())
            .rposition(|w| w == leaf_bytes)
            .unwrap();
        let err = unpack_car(&car[..at + 1000], Some(&dag.root), u64::MAX).unwrap_err();
        assert_eq!(err.sqlstate(), "22P03");
        assert!(
            err.to_string()
                .starts_with(&format!("block {leaf}: truncated CAR")),
            "{err}"
        );
    }

    #[test]
    fn a_missing_block_is_named() {
        let big = big();
        let dag = import_directory(&bundle_files(&big), ImportParams::KUBO).unwrap();
        let victim = sha256_cid(RAW, &big[..262_144]);
        let kept: Vec<Block> = dag
            .blocks
            .iter()
            .filter(|b| b.cid != victim)
            .cloned()
            .collect();
        // Writing needs every block.
        assert_eq!(
            write_car(&dag.root, &kept).unwrap_err(),
            NwebError::block(victim, "missing: the DAG needs it but it was not given")
        );
        // A CAR without it (what a gateway that stopped early sends) is refused on read.
        let full = write_car(&dag.root, &dag.blocks).unwrap();
        let read = read_car(&full).unwrap();
        let mut car = Vec::new();
        let h = header(&[dag.root]);
        put_varint(&mut car, h.len() as u64);
        car.extend(h);
        for b in read.blocks.iter().filter(|b| b.cid != victim) {
            let c = b.cid.to_bytes();
            put_varint(&mut car, (c.len() + b.data.len()) as u64);
            car.extend(c);
            car.extend(&b.data);
        }
        let err = unpack_car(&car, None, u64::MAX).unwrap_err();
        assert_eq!(
            err,
            NwebError::block(victim, "missing: not among the blocks received")
        );
    }

    #[test]
    fn a_corrupted_block_is_named() {
        let big = big();
        let dag = import_directory(&bundle_files(&big), ImportParams::KUBO).unwrap();
        let mut car = write_car(&dag.root, &dag.blocks).unwrap();
        let victim = sha256_cid(RAW, &big[524_288..]);
        let vb = victim.to_bytes();
        let at = car.windows(vb.len()).rposition(|w| w == vb).unwrap() + vb.len() + 17;
        car[at] ^= 0x01;
        let err = read_car(&car).unwrap_err();
        assert_eq!(
            err,
            NwebError::block(
                victim,
                "the block's bytes do not hash to its CID (corrupted or forged)"
            )
        );
        assert!(unpack_car(&car, Some(&dag.root), u64::MAX).is_err());
    }

    #[test]
    fn a_block_with_an_unverifiable_hash_is_refused() {
        // blake2b-256 (0xb220): a real multihash we do not compute.
        let mh = cid::multihash::Multihash::<64>::wrap(0xb220, &[0u8; 32]).unwrap();
        let c = Cid::new_v1(RAW, mh);
        let err = verify_block(&c, b"x").unwrap_err().to_string();
        assert!(err.contains("0xb220 is not supported"), "{err}");
    }

    #[test]
    fn identity_cids_verify_inline_and_are_never_written() {
        let mh = cid::multihash::Multihash::<64>::wrap(IDENTITY, b"").unwrap();
        let empty = Cid::new_v1(RAW, mh);
        assert_eq!(empty.to_string(), "bafkqaaa");
        assert!(verify_block(&empty, b"").is_ok());
        assert!(verify_block(&empty, b"x").is_err());
    }

    #[test]
    fn duplicate_blocks_are_accepted_once() {
        let dag = import_file(b"hello world\n", ImportParams::KUBO);
        let mut car = write_car(&dag.root, &dag.blocks).unwrap();
        let mut p = 0;
        let h = read_varint(&car, &mut p).unwrap() as usize;
        let section = car[p + h..].to_vec();
        car.extend(section);
        assert_eq!(read_car(&car).unwrap().blocks.len(), 1);
    }

    #[test]
    fn header_problems_are_errors() {
        let root = unixfs::file_cid(b"x");
        let mut v2 = header(&[root]);
        let n = v2.len();
        v2[n - 1] = 0x02;
        assert!(parse_header(&v2).unwrap_err().to_string().contains("CARv2"));
        assert!(parse_header(&[0x80]).is_err(), "an array, not a map");
        assert!(parse_header(&[0xa0])
            .unwrap_err()
            .to_string()
            .contains("no version"));
        assert!(read_car(&[]).is_err());
        assert!(
            read_car(&[0x05, 0xa0]).is_err(),
            "header longer than the file"
        );
        // Two roots and no expected root: ambiguous.
        let dag = import_directory(&[("a", b"a")], ImportParams::KUBO).unwrap();
        let mut car = Vec::new();
        let h = header(&[dag.root, dag.root]);
        put_varint(&mut car, h.len() as u64);
        car.extend(h);
        let body = write_car(&dag.root, &dag.blocks).unwrap();
        let mut p = 0;
        let hl = read_varint(&body, &mut p).unwrap() as usize;
        car.extend(&body[p + hl..]);
        assert!(unpack_car(&car, None, u64::MAX).is_err());
        assert!(unpack_car(&car, Some(&dag.root), u64::MAX).is_ok());
    }

    #[test]
    fn expected_root_overrides_the_header() {
        // A CAR whose header lies about the root: the caller's CID is what counts,
        // and if its block is absent that is an error naming it.
        let dag = import_directory(&[("a", b"a")], ImportParams::KUBO).unwrap();
        let car = write_car(&dag.root, &dag.blocks).unwrap();
        let other = sha256_cid(DAG_PB, b"not here");
        assert_eq!(
            unpack_car(&car, Some(&other), u64::MAX).unwrap_err(),
            NwebError::block(other, "missing: not among the blocks received")
        );
    }
}
