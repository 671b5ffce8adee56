//! The dag-pb and UnixFS protobufs, encoded and decoded by hand (see the module root
//! for why).

use cid::Cid;

use super::{NwebError, DAG_PB};
use crate::put_varint;

pub(super) fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// dag-pb `PBNode`: every link (field 2) first, then `Data` (field 1). Each link
/// carries `Hash`, `Name` (always written, empty for file chunks, as go-merkledag
/// does) and `Tsize`. Public for tests that build a node no importer would, a
/// directory too big to be left unsharded say.
pub fn encode_pb_node<'a>(
    links: impl IntoIterator<Item = (&'a Cid, &'a str, u64)>,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut link = Vec::new();
    for (cid, name, tsize) in links {
        link.clear();
        put_bytes_field(&mut link, 1, &cid.to_bytes());
        put_bytes_field(&mut link, 2, name.as_bytes());
        put_varint_field(&mut link, 3, tsize);
        put_bytes_field(&mut out, 2, &link);
    }
    put_bytes_field(&mut out, 1, data);
    out
}

/// A decoded dag-pb link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    pub cid: Cid,
    pub name: Option<String>,
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("varint runs past the end".into());
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 64 bits".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length overflows".to_string())?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!("field of {len} bytes runs past the end"));
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Field number and wire type of the next key.
    fn key(&mut self) -> Result<(u64, u64), String> {
        let k = self.varint()?;
        Ok((k >> 3, k & 7))
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.bytes().map(drop),
            5 => self.advance(4),
            w => Err(format!("unsupported protobuf wire type {w}")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.pos + n > self.buf.len() {
            return Err("fixed-width field runs past the end".into());
        }
        self.pos += n;
        Ok(())
    }
}

/// Decodes a dag-pb block strictly: only `Links` and `Data`, as the dag-pb spec allows.
pub fn decode_pb_node(bytes: &[u8]) -> Result<PbNode, String> {
    let mut r = Reader::new(bytes);
    let mut node = PbNode::default();
    while !r.done() {
        match r.key()? {
            (2, 2) => node.links.push(decode_pb_link(r.bytes()?)?),
            (1, 2) if node.data.is_none() => node.data = Some(r.bytes()?.to_vec()),
            (1, 2) => return Err("Data given twice".into()),
            (f, w) => return Err(format!("unexpected field {f} (wire type {w}) in PBNode")),
        }
    }
    Ok(node)
}

/// How many links a dag-pb block holds, read from the field keys alone, so a node
/// with too many can be refused before a `PbLink` is allocated for any of them.
pub(super) fn count_links(bytes: &[u8]) -> Result<usize, String> {
    let mut r = Reader::new(bytes);
    let mut n = 0;
    while !r.done() {
        let (field, wire) = r.key()?;
        n += usize::from(field == 2);
        r.skip(wire)?;
    }
    Ok(n)
}

fn decode_pb_link(bytes: &[u8]) -> Result<PbLink, String> {
    let mut r = Reader::new(bytes);
    let (mut cid, mut name, mut tsize) = (None, None, None);
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                let raw = r.bytes()?;
                cid = Some(Cid::try_from(raw).map_err(|e| format!("link Hash is not a CID: {e}"))?);
            }
            (2, 2) => {
                let raw = r.bytes()?;
                name = Some(
                    String::from_utf8(raw.to_vec())
                        .map_err(|_| "link Name is not UTF-8".to_string())?,
                );
            }
            (3, 0) => tsize = Some(r.varint()?),
            (f, w) => return Err(format!("unexpected field {f} (wire type {w}) in PBLink")),
        }
    }
    let cid = cid.ok_or("link without Hash")?;
    Ok(PbLink { cid, name, tsize })
}

/// The UnixFS `Data` message, the parts a reader of files and directories needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct UnixFsData {
    pub(super) kind: u64,
    pub(super) data: Option<Vec<u8>>,
    pub(super) filesize: Option<u64>,
    pub(super) blocksizes: Vec<u64>,
    /// HAMT shards only: the hash function and the fanout.
    pub(super) hash_type: Option<u64>,
    pub(super) fanout: Option<u64>,
}

pub(super) fn decode_unixfs(bytes: &[u8]) -> Result<UnixFsData, String> {
    let mut r = Reader::new(bytes);
    let mut out = UnixFsData::default();
    let mut kind = None;
    while !r.done() {
        match r.key()? {
            (1, 0) => kind = Some(r.varint()?),
            (2, 2) => out.data = Some(r.bytes()?.to_vec()),
            (3, 0) => out.filesize = Some(r.varint()?),
            (4, 0) => out.blocksizes.push(r.varint()?),
            (4, 2) => {
                // Packed encoding, which some writers use; equivalent.
                let mut p = Reader::new(r.bytes()?);
                while !p.done() {
                    out.blocksizes.push(p.varint()?);
                }
            }
            (5, 0) => out.hash_type = Some(r.varint()?),
            (6, 0) => out.fanout = Some(r.varint()?),
            (_, w) => r.skip(w)?,
        }
    }
    out.kind = kind.ok_or("UnixFS Data without Type")?;
    Ok(out)
}

/// Children of a block, in link order: none for raw blocks, the links of a dag-pb node.
pub fn links_of(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, NwebError> {
    match cid.codec() {
        DAG_PB => Ok(decode_pb_node(data)
            .map_err(|e| NwebError::block(cid, format!("bad dag-pb: {e}")))?
            .links
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        _ => Ok(Vec::new()),
    }
}

