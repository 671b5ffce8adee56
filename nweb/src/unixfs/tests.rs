use super::*;
use std::collections::HashMap;

use super::pb::encode_pb_node;

fn cid(s: &str) -> Cid {
    s.parse().unwrap()
}

fn blocks_map(dag: &Dag) -> HashMap<Cid, Vec<u8>> {
    dag.blocks.iter().map(|b| (b.cid, b.data.clone())).collect()
}

// --- Vectors from the IPFS UnixFS spec, "Appendix: Test Vectors" (ipfs/specs
// src/unixfs.md), which point at gateway-conformance v0.8.1 fixtures.

#[test]
fn spec_vector_empty_raw_block() {
    assert_eq!(
        file_cid(b"").to_string(),
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );
    let dag = import_file(b"", ImportParams::KUBO);
    assert_eq!(dag.blocks.len(), 1);
    assert!(dag.blocks[0].data.is_empty());
}

#[test]
fn spec_vector_single_raw_block_files() {
    for (content, want) in [
        (
            &b"hello world\n"[..],
            "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
        ),
        (
            b"hello application/vnd.ipld.car\n",
            "bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm",
        ),
        (
            b"Hello, world!\n",
            "bafkreigzafgemjeejks3vqyuo46ww2e22rt7utq5djikdofjtvnjl5zp6u",
        ),
        (
            b"Hello, IPFS!\n",
            "bafkreic3ondyhizrzeoufvoodehinugpj3ecruwokaygl7elezhn2khqfa",
        ),
        (
            b"hello from a percent encoded filename\n",
            "bafkreihfmctcb2kuvoljqeuphqr2fg2r45vz5cxgq5c2yrxnqg5erbitmq",
        ),
    ] {
        assert_eq!(file_cid(content).to_string(), want, "{content:?}");
    }
}

/// `subdir-with-two-single-block-files.car`: the spec also gives the block sizes
/// (110 and 55 bytes), which pins the link encoding and the cumulative Tsize.
#[test]
fn spec_vector_nested_directory() {
    let ascii = b"hello application/vnd.ipld.car\n";
    let hello = b"hello world\n";
    let inner = import_directory(
        &[("ascii.txt", ascii), ("hello.txt", hello)],
        ImportParams::KUBO,
    )
    .unwrap();
    assert_eq!(
        inner.root.to_string(),
        "bafybeiggghzz6dlue3m6nb2dttnbrygxh3lrjl5764f2m4gq7dgzdt55o4"
    );
    assert_eq!(inner.blocks.last().unwrap().data.len(), 110);

    let files: [(&str, &[u8]); 2] = [("subdir/hello.txt", hello), ("subdir/ascii.txt", ascii)];
    let outer = import_directory(&files, ImportParams::KUBO).unwrap();
    assert_eq!(
        outer.root.to_string(),
        "bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu"
    );
    let root_block = outer.blocks.iter().find(|b| b.cid == outer.root).unwrap();
    assert_eq!(root_block.data.len(), 55);
    assert_eq!(directory_cid(&files).unwrap(), outer.root);
}

/// `path_gateway_dag/dag-pb.car`: a file next to a directory.
#[test]
fn spec_vector_dir_with_file_and_subdir() {
    let files: [(&str, &[u8]); 2] = [
        ("foo.txt", b"Hello, IPFS!\n"),
        ("foo/bar.txt", b"Hello, world!\n"),
    ];
    let dag = import_directory(&files, ImportParams::KUBO).unwrap();
    assert_eq!(
        dag.root.to_string(),
        "bafybeiegxwlgmoh2cny7qlolykdf7aq7g6dlommarldrbm7c4hbckhfcke"
    );
    let foo = dag
        .blocks
        .iter()
        .find(|b| b.cid == cid("bafybeidryarwh34ygbtyypbu7qjkl4euiwxby6cql6uvosonohkq2kwnkm"));
    assert!(foo.is_some(), "foo/ directory block");
}

/// `dir-with-percent-encoded-filename.car`: a non-ASCII name is stored as its UTF-8
/// bytes. (The spec's `path_gateway_tar` tree is abbreviated, so it is no vector.)
#[test]
fn spec_vector_utf8_name() {
    let files: [(&str, &[u8]); 1] = [(
        "Portugal%2C+España=Peninsula Ibérica.txt",
        b"hello from a percent encoded filename\n",
    )];
    assert_eq!(
        directory_cid(&files).unwrap().to_string(),
        "bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34"
    );
}

#[test]
fn spec_vector_empty_directory() {
    assert_eq!(
        directory_cid(&[]).unwrap().to_string(),
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    );
}

// --- Kubo 0.40.1 `ipfs add --only-hash --cid-version=1` output with small chunkers,
// pinned in dariusc93/rust-ipfs unixfs/tests/interop.rs. Small chunks make the
// balanced layout cheap to exercise, including a second level (400 leaves > 174).

#[test]
fn kubo_vectors_balanced_layout_with_small_chunks() {
    let p = |chunk_size| ImportParams {
        chunk_size,
        max_links: 174,
    };
    let cases: [(Vec<u8>, usize, &str); 3] = [
        (
            b"foobar\n".to_vec(),
            2,
            "bafybeiakabo5d5e25jzw2i32mymsnwyuoaqozkjfkqibnvodyxna6nuanm",
        ),
        (
            vec![0u8; 1000],
            7,
            "bafybeia3u4lcsbc6ijwivdukvlougvli4rm73r65chivjsl5l7vemqclhy",
        ),
        (
            vec![b'a'; 400],
            1,
            "bafybeiajemq5ovepy7fc56ifhtn6aoctbkgxcqav44zg2bjkrfwvlbnewu",
        ),
    ];
    for (content, chunk, want) in cases {
        assert_eq!(
            file_cid_with(&content, p(chunk)).to_string(),
            want,
            "len {} chunk {chunk}",
            content.len()
        );
    }
}

#[test]
fn kubo_vector_wrapped_small_directory() {
    let files: [(&str, &[u8]); 2] = [("b.txt", b"bb"), ("a.txt", b"a")];
    assert_eq!(
        directory_cid(&files).unwrap().to_string(),
        "bafybeic7au5c3eydqdymxffpwtuahdr3saj2dxptw34y6uvkyoybxpuhte"
    );
}

/// The 400-leaf tree above, checked for shape: a root with 3 children holding 174,
/// 174 and 52 leaves. Repeated leaves are stored once.
#[test]
fn balanced_tree_shape() {
    let dag = import_file(
        &[b'a'; 400],
        ImportParams {
            chunk_size: 1,
            max_links: 174,
        },
    );
    let map = blocks_map(&dag);
    let root = decode_pb_node(&map[&dag.root]).unwrap();
    assert_eq!(root.links.len(), 3);
    let sizes: Vec<usize> = root
        .links
        .iter()
        .map(|l| decode_pb_node(&map[&l.cid]).unwrap().links.len())
        .collect();
    assert_eq!(sizes, [174, 174, 52]);
    // One distinct leaf, two distinct interior nodes (the two full ones are equal), root.
    assert_eq!(dag.blocks.len(), 4);
    assert_eq!(read_file(&dag.root, &map, 400).unwrap(), vec![b'a'; 400]);
}

/// A single-leaf remainder still gets its own interior node, as in Kubo.
#[test]
fn remainder_of_one_leaf_is_not_collapsed() {
    let dag = import_file(
        &[7u8; 175],
        ImportParams {
            chunk_size: 1,
            max_links: 174,
        },
    );
    let map = blocks_map(&dag);
    let root = decode_pb_node(&map[&dag.root]).unwrap();
    assert_eq!(root.links.len(), 2);
    let last = &root.links[1];
    assert_eq!(last.cid.codec(), DAG_PB);
    assert_eq!(decode_pb_node(&map[&last.cid]).unwrap().links.len(), 1);
}

/// Bytes of a deterministic, incompressible file: SHA-256 in counter mode.
pub(crate) fn generated(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(&Sha256::digest(i.to_be_bytes()));
        i += 1;
    }
    out.truncate(len);
    out
}

/// A 1.25 MiB file spans five 256 KiB chunks. Its root is rebuilt here from first
/// principles, byte by byte, as the dag-pb spec and the UnixFS spec describe the
/// node, without any of the encoder above. (No published Kubo vector exists for a
/// file of more than one 262144-byte chunk; the small-chunk Kubo vectors above pin
/// the same code path.)
#[test]
fn multi_chunk_file_root_rebuilt_by_hand() {
    let len = 4 * 262_144 + 100_000;
    let data = generated(len);
    let chunks: Vec<&[u8]> = data.chunks(262_144).collect();
    assert_eq!(chunks.len(), 5);

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = vec![];
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }
    // UnixFS Data: Type=File (08 02), filesize (18 ..), blocksizes (20 .. each).
    let mut unixfs = vec![0x08, 0x02, 0x18];
    unixfs.extend(varint(len as u64));
    for c in &chunks {
        unixfs.push(0x20);
        unixfs.extend(varint(c.len() as u64));
    }
    let mut node = Vec::new();
    for c in &chunks {
        // CIDv1 bytes: version 1, codec raw 0x55, sha2-256 0x12, length 32, digest.
        let mut cid_bytes = vec![0x01, 0x55, 0x12, 0x20];
        cid_bytes.extend_from_slice(&Sha256::digest(c));
        let mut link = vec![0x0a, 36];
        link.extend(&cid_bytes);
        link.extend([0x12, 0x00, 0x18]);
        link.extend(varint(c.len() as u64));
        node.push(0x12);
        node.extend(varint(link.len() as u64));
        node.extend(link);
    }
    node.push(0x0a);
    node.extend(varint(unixfs.len() as u64));
    node.extend(unixfs);
    let mut root_bytes = vec![0x01, 0x70, 0x12, 0x20];
    root_bytes.extend_from_slice(&Sha256::digest(&node));
    let want = Cid::try_from(root_bytes.as_slice()).unwrap();

    let dag = import_file(&data, ImportParams::KUBO);
    assert_eq!(dag.root, want);
    assert_eq!(file_cid(&data), want);
    assert_eq!(dag.blocks.len(), 6);
    assert_eq!(
        read_file(&dag.root, &blocks_map(&dag), len as u64).unwrap(),
        data
    );
}

/// Deterministic filler that is cheap in debug builds (xorshift64, little endian).
fn xorshift(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Kubo-parameter files cross-checked against rust-unixfs 0.6.0 (`FileAdder::default()`,
/// an independent implementation whose own tests pin Kubo 0.40.1 output), computed
/// outside this crate. 174 chunks is the last one-level tree; 174 chunks and one
/// byte, and 175 chunks and five bytes, need a second level.
#[test]
fn kubo_parameter_files_match_an_independent_implementation() {
    assert_eq!(
        file_cid(&generated(4 * 262_144 + 100_000)).to_string(),
        "bafybeibenjregpbtmrpgw7xlxx7rmftsc5ona72kysgwq3yjeoouvrh334"
    );
    assert_eq!(
        file_cid(&generated(262_144)).to_string(),
        "bafkreigy5tcgloscldzhi2iadhemu2v7dj2u5wme7vgim2jlmnxindpsfi"
    );
    assert_eq!(
        file_cid(&generated(262_145)).to_string(),
        "bafybeiavfl3mrv5rig3iqfle6aheyo3crcdzseal3jfwykhuwtmc4vtyjy"
    );
    for (len, want) in [
        (
            174 * 262_144,
            "bafybeie6ljkwmvsffq5e3ottyzwzkloha5qwqu3e6wi6scw53esjy423dy",
        ),
        (
            174 * 262_144 + 1,
            "bafybeigspejv3cz7pe6wczxb6ivnmjtxynuc67j4a2d4hy2hyajkhahc7a",
        ),
        (
            175 * 262_144 + 5,
            "bafybeiedlo4yg2nh6tkzv7vysebd46zmu4yl43fav6gurfqyucqe7cyoyy",
        ),
    ] {
        assert_eq!(file_cid(&xorshift(len)).to_string(), want, "len {len}");
    }
    let big = generated(600_000);
    let files: [(&str, &[u8]); 3] = [
        ("manifest.json", b"{}"),
        ("raw/nmap.xml", &big),
        ("scanprint/scanprint.v0.jsonl", b"{\"a\":1}\n"),
    ];
    assert_eq!(
        directory_cid(&files).unwrap().to_string(),
        "bafybeidy6emdavfup6yf7wes7st4gbakekzjkjocwtnybb7gqnoudj3see"
    );
}

#[test]
fn exactly_one_chunk_is_a_raw_block_and_one_more_byte_is_not() {
    let one = generated(262_144);
    assert_eq!(file_cid(&one), sha256_cid(RAW, &one));
    let more = generated(262_145);
    let c = file_cid(&more);
    assert_eq!(c.codec(), DAG_PB);
    let dag = import_file(&more, ImportParams::KUBO);
    let root = decode_pb_node(&blocks_map(&dag)[&c]).unwrap();
    assert_eq!(
        root.links.iter().map(|l| l.tsize).collect::<Vec<_>>(),
        [Some(262_144), Some(1)]
    );
}

#[test]
fn directory_round_trip_through_blocks() {
    let big = generated(600_000);
    let files: Vec<(&str, &[u8])> = vec![
        ("manifest.json", b"{}"),
        ("raw/nmap.xml", &big),
        ("scanprint/scanprint.v0.jsonl", b"{\"a\":1}\n"),
        ("assets/screenshots/192.0.2.1/1/rdp.png", b"\x89PNG"),
    ];
    let dag = import_directory(&files, ImportParams::KUBO).unwrap();
    let out = unpack_directory(&dag.root, &blocks_map(&dag), u64::MAX).unwrap();
    let mut want: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_vec()))
        .collect();
    want.sort();
    assert_eq!(out, want);
    // The order files are given in does not matter.
    let mut reversed = files.clone();
    reversed.reverse();
    assert_eq!(directory_cid(&reversed).unwrap(), dag.root);
    // Content does.
    let mut changed = files.clone();
    changed[0].1 = b"{ }";
    assert_ne!(directory_cid(&changed).unwrap(), dag.root);
}

#[test]
fn bad_paths_are_refused() {
    for bad in ["", "/abs", "dir/", "a//b", "./a", "a/../b", "nul\0"] {
        assert!(directory_cid(&[(bad, b"x")]).is_err(), "{bad:?}");
    }
    assert!(directory_cid(&[("a", b"x"), ("a", b"y")]).is_err());
    assert!(directory_cid(&[("a", b"x"), ("a/b", b"y")]).is_err());
    assert!(directory_cid(&[("a/b", b"x"), ("a", b"y")]).is_err());
}

#[test]
fn directories_kubo_would_shard_are_refused() {
    let names: Vec<String> = (0..5000)
        .map(|i| format!("screenshot-{i:06}.png"))
        .collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let err = directory_cid(&files).unwrap_err().to_string();
    assert!(err.contains("HAMT"), "{err}");
    // Well under the threshold is fine.
    assert!(directory_cid(&files[..1000]).is_ok());
}

#[test]
fn unpack_names_the_missing_block() {
    let data = generated(600_000);
    let dag = import_directory(&[("raw/nmap.xml", &data)], ImportParams::KUBO).unwrap();
    let mut map = blocks_map(&dag);
    let victim = sha256_cid(RAW, &data[262_144..524_288]);
    assert!(map.remove(&victim).is_some());
    let err = unpack_directory(&dag.root, &map, u64::MAX).unwrap_err();
    assert_eq!(
        err,
        NwebError::block(victim, "missing: not among the blocks received")
    );
}

#[test]
fn unpack_bounds_the_output() {
    let dag = import_directory(&[("a", &[1u8; 1000][..])], ImportParams::KUBO).unwrap();
    let map = blocks_map(&dag);
    assert!(unpack_directory(&dag.root, &map, 1000).is_ok());
    let err = unpack_directory(&dag.root, &map, 999).unwrap_err();
    assert!(
        matches!(err, NwebError::Limit { what: "bytes of file data the DAG describes", limit: 999, .. }),
        "{err}"
    );
}

/// Found by the `unixfs_dag` fuzz target's design: 20 directory blocks, each
/// listing the next twice, describe 2^20 empty files. Only file bytes were counted,
/// so this unpacked (given depth 60, it never returned) inside any budget.
#[test]
fn shared_subtrees_cannot_multiply_the_work() {
    let empty = sha256_cid(RAW, b"");
    let mut map: HashMap<Cid, Vec<u8>> = [(empty, Vec::new())].into_iter().collect();
    let mut child = empty;
    for _ in 0..20 {
        let block = encode_pb_node([(&child, "a", 0), (&child, "b", 0)], &[0x08, 0x01]);
        child = sha256_cid(DAG_PB, &block);
        map.insert(child, block);
    }
    let err = unpack_directory(&child, &map, 1 << 20).unwrap_err();
    // 2^20 files reached by 2^21 links: whichever bound trips first, it is one of ours.
    assert!(err.is_limit(), "{err}");
}

#[test]
fn unpack_refuses_a_file_root_and_traversal_names() {
    let dag = import_file(b"hi", ImportParams::KUBO);
    let map = blocks_map(&dag);
    assert!(unpack_directory(&dag.root, &map, u64::MAX).is_err());

    // A hand-made directory with an entry named "..".
    let leaf = sha256_cid(RAW, b"x");
    let block = encode_pb_node([(&leaf, "..", 1)], &[0x08, 0x01]);
    let dir = sha256_cid(DAG_PB, &block);
    let map: HashMap<Cid, Vec<u8>> =
        [(dir, block), (leaf, b"x".to_vec())].into_iter().collect();
    let err = unpack_directory(&dir, &map, u64::MAX)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"..\" is not allowed"), "{err}");
}

#[test]
fn pb_decoding_is_strict() {
    assert!(decode_pb_node(&[0x08, 0x01]).is_err(), "unknown field");
    assert!(
        decode_pb_node(&[0x0a, 0x05, 0x00]).is_err(),
        "truncated Data"
    );
    assert!(
        decode_pb_node(&[0x12, 0x02, 0x18, 0x01]).is_err(),
        "link without Hash"
    );
    assert_eq!(decode_pb_node(&[]).unwrap(), PbNode::default());
}
