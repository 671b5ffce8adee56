//! nweb against a real IPFS node: Kubo (scripts/install-kubo.sh) started by each test
//! on loopback, offline, with a fresh repository of the `test` profile (no bootstrap
//! peers, no discovery) and its API and gateway on free loopback ports.
//!
//! - Every bundle shape we produce gets from `ipfs add --cid-version=1 --raw-leaves
//!   --wrap-with-directory` the CID we compute (design D7), and our CAR goes into Kubo
//!   (`ipfs dag import`) and comes back out (`ipfs dag export`) with the same root.
//! - A directory Kubo shards (HAMT), as another collector's node may send, is read.
//! - `xray-loader pin` adds and pins through Kubo's RPC and fetches from a Kubo
//!   gateway; `tail` verifies bundles fetched with `?format=car` from Kubo's gateway.
//!   (The corrupted-block and truncation cases keep the gateway of main.rs, which the
//!   test controls.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use nweb::{car, unixfs, Cid};


use crate::support::*;

/// The Kubo version the tests are written against (scripts/install-kubo.sh).
const KUBO_VERSION: &str = "0.43.0";

fn ipfs_bin() -> PathBuf {
    let bin = ["/usr/local/bin/ipfs", "/usr/bin/ipfs"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("no ipfs binary: run scripts/setup.sh (scripts/install-kubo.sh)");
    let out = std::process::Command::new(&bin).arg("version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.trim() == format!("ipfs version {KUBO_VERSION}"),
        "{} reports {v:?}, the tests pin {KUBO_VERSION}: run scripts/install-kubo.sh",
        bin.display()
    );
    bin
}

/// A Kubo daemon with its own repository, killed when dropped.
pub struct Kubo {
    child: tokio::process::Child,
    bin: PathBuf,
    pub repo: PathBuf,
    pub api: String,
    pub gateway: String,
}

impl Kubo {
    pub async fn start() -> Kubo {
        let bin = ipfs_bin();
        let repo = tmp_dir("kubo").join("repo");
        let sync = |args: &[&str]| {
            let out = std::process::Command::new(&bin)
                .args(args)
                .env("IPFS_PATH", &repo)
                .output()
                .unwrap();
            assert!(out.status.success(), "ipfs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        sync(&["init", "--profile=test", "--empty-repo"]);
        for attempt in 0..3 {
            let (api, gw) = (free_port(), free_port());
            sync(&["config", "Addresses.API", &format!("/ip4/127.0.0.1/tcp/{api}")]);
            sync(&["config", "Addresses.Gateway", &format!("/ip4/127.0.0.1/tcp/{gw}")]);
            let log = std::fs::File::create(repo.with_file_name(format!("daemon-{attempt}.log"))).unwrap();
            let child = tokio::process::Command::new(&bin)
                .args(["daemon", "--offline"])
                .env("IPFS_PATH", &repo)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .expect("start ipfs daemon");
            let mut k = Kubo {
                child,
                bin: bin.clone(),
                repo: repo.clone(),
                api: format!("http://127.0.0.1:{api}"),
                gateway: format!("http://127.0.0.1:{gw}"),
            };
            let http = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = k.child.try_wait() {
                    break;
                }
                let up = http.post(format!("{}/api/v0/version", k.api)).send().await;
                let gw_up = http.get(format!("{}/ipfs/bafkqaaa", k.gateway)).send().await;
                if matches!((up, gw_up), (Ok(a), Ok(_)) if a.status().is_success()) {
                    return k;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = k.child.kill().await;
            let _ = k.child.wait().await;
            eprintln!("kubo did not come up on ports {api}/{gw} (attempt {attempt})");
        }
        panic!("cannot start kubo");
    }

    /// `ipfs <args>` against this node (the CLI goes through the daemon's API).
    pub fn ipfs(&self, args: &[&str], cwd: &Path) -> String {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .env("IPFS_PATH", &self.repo)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ipfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// What `ipfs add -w` gives the tree written in `dir` (its top-level entries as
    /// arguments, so the wrapping directory is the bundle's root).
    pub fn add_wrapped(&self, dir: &Path) -> Cid {
        let mut entries: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        let mut args = vec!["add", "--cid-version=1", "--raw-leaves", "--wrap-with-directory", "-r", "-Q"];
        args.extend(entries.iter().map(String::as_str));
        self.ipfs(&args, dir).trim().parse().unwrap()
    }

    pub fn export(&self, root: &Cid, scratch: &Path) -> Vec<u8> {
        let f = scratch.join(format!("{root}.export.car"));
        let out = std::process::Command::new(&self.bin)
            .args(["dag", "export", &root.to_string()])
            .env("IPFS_PATH", &self.repo)
            .stdout(std::fs::File::create(&f).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "dag export: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(f).unwrap()
    }

    pub fn pinned(&self, cid: &Cid) -> bool {
        let out = std::process::Command::new(&self.bin)
            .args(["pin", "ls", "--type=recursive", &cid.to_string()])
            .env("IPFS_PATH", &self.repo)
            .output()
            .unwrap();
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&cid.to_string())
    }
}

fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (p, d) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, d).unwrap();
    }
}

/// Bytes that do not repeat at chunk scale, so no two leaves share a CID by accident.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn shapes() -> Vec<(&'static str, Vec<(String, Vec<u8>)>)> {
    let f = |p: &str, d: Vec<u8>| (p.to_string(), d);
    let chunk = 262_144;
    vec![
        ("tiny", vec![f("a.txt", b"hello\n".to_vec())]),
        ("exactly one chunk", vec![f("one.bin", noise(chunk, 1))]),
        ("one chunk and a byte", vec![f("two.bin", noise(chunk + 1, 2))]),
        ("multi-chunk", vec![f("raw/nmap.xml", noise(3 * chunk + 17, 3))]),
        // 175 leaves: the first file tree with a second level (174 links per node).
        ("two-level file tree", vec![f("big.bin", noise(174 * chunk + 5, 4))]),
        (
            "directory of 300 entries",
            (0..300).map(|i| f(&format!("d/entry-{i:04}.json"), format!("{{\"n\":{i}}}").into_bytes())).collect(),
        ),
        (
            "nested directories",
            vec![
                f("a/b/c/d/deep.txt", b"deep".to_vec()),
                f("a/b/side.txt", b"side".to_vec()),
                f("a/top.txt", b"top".to_vec()),
                f("z.txt", b"z".to_vec()),
            ],
        ),
        (
            "empty files",
            vec![f("empty", Vec::new()), f("dir/also-empty", Vec::new()), f("dir/x", b"x".to_vec())],
        ),
        ("a collector's bundle", Bundle::new("198.51.100.7", 7, 400_000).files()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_gives_our_cids_and_takes_our_cars() {
    let kubo = Kubo::start().await;
    let scratch = tmp_dir("kubo-shapes");
    for (i, (shape, files)) in shapes().into_iter().enumerate() {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        let dag = unixfs::import_directory(&refs, unixfs::ImportParams::KUBO).unwrap();
        let ours = car::write_car(&dag.root, &dag.blocks).unwrap();

        // Our CAR first, into a store that has none of its blocks yet.
        let car_file = scratch.join(format!("{i}.car"));
        std::fs::write(&car_file, &ours).unwrap();
        let out = kubo.ipfs(&["dag", "import", "--pin-roots", car_file.to_str().unwrap()], &scratch);
        assert!(out.contains(&format!("Pinned root\t{}\tsuccess", dag.root)), "{shape}: {out}");
        let back = kubo.export(&dag.root, &scratch);
        let unpacked = car::unpack_car(&back, Some(&dag.root), u64::MAX)
            .unwrap_or_else(|e| panic!("{shape}: Kubo's export does not verify: {e}"));
        assert_eq!(car::read_car(&back).unwrap().roots, vec![dag.root], "{shape}");
        let mut want = files.clone();
        want.sort();
        assert_eq!(unpacked.files, want, "{shape}: the files through Kubo");

        // The same tree added from disk.
        let dir = scratch.join(format!("tree-{i}"));
        write_tree(&dir, &files);
        assert_eq!(kubo.add_wrapped(&dir), dag.root, "{shape}: Kubo's CID");
    }
}

/// Kubo shards a directory whose links pass 256 KiB: a bundle another collector built
/// that way must still be read, at the root and below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_kubo_shards_is_read() {
    let kubo = Kubo::start().await;
    let scratch = tmp_dir("kubo-hamt");
    let many: Vec<(String, Vec<u8>)> = (0..5000)
        .map(|i| (format!("screenshot-{i:06}.png"), format!("png {i}").into_bytes()))
        .collect();
    for (where_, files) in [
        ("root", many.clone()),
        (
            "below the root",
            many.iter()
                .map(|(p, d)| (format!("shots/{p}"), d.clone()))
                .chain([("manifest.json".to_string(), b"{}".to_vec())])
                .collect(),
        ),
    ] {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        let e = unixfs::import_directory(&refs, unixfs::ImportParams::KUBO).unwrap_err();
        assert!(e.to_string().contains("HAMT"), "we never write one: {e}");

        let dir = scratch.join(where_.replace(' ', "-"));
        write_tree(&dir, &files);
        let root = kubo.add_wrapped(&dir);
        let bytes = kubo.export(&root, &scratch);
        let shards = car::read_car(&bytes)
            .unwrap()
            .blocks
            .iter()
            .filter(|b| {
                // UnixFS Data opening with Type = 5 (HAMTShard).
                b.cid.codec() == unixfs::DAG_PB
                    && unixfs::decode_pb_node(&b.data).unwrap().data.is_some_and(|d| d.starts_with(&[0x08, 0x05]))
            })
            .count();
        assert!(shards > 1, "{where_}: Kubo sharded it, into sub-shards too ({shards} shards)");
        let got = car::unpack_car(&bytes, Some(&root), u64::MAX)
            .unwrap_or_else(|e| panic!("{where_}: {e}"));
        let mut want = files.clone();
        want.sort();
        assert_eq!(got.files.len(), want.len(), "{where_}");
        assert!(got.files == want, "{where_}: every entry, with its bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_check_and_tail_work_against_kubo() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    // The hoarder's own node, and a publisher whose gateway serves what it added.
    let (own, publisher) = (Kubo::start().await, Kubo::start().await);
    let dir = tmp_dir("kubo-pin");

    let added = Bundle::new("203.0.113.10", 10, 300_000);
    let published = Bundle::new("203.0.113.11", 11, 600_000);
    let pdir = dir.join("published");
    published.write_dir(&pdir);
    assert_eq!(publisher.add_wrapped(&pdir), published.cid());

    let car_dir = dir.join("cars");
    let cfg = config(
        &dir,
        &node.url,
        &c,
        "confirmations = 1\n",
        &format!(
            "gateways = [\"{}\"]\nkubo_api = \"{}\"\ncar_dir = \"{}\"\n",
            publisher.gateway,
            own.api,
            car_dir.display()
        ),
        &format!("[hoarder]\nowner = \"{}\"\n", signer(1).address()),
    );
    let cfg_s = cfg.to_str().unwrap();

    // `pin --add`: Kubo's RPC adds and pins the directory, and its root is ours.
    let bdir = dir.join("bundle");
    added.write_dir(&bdir);
    let run = loader(&db, &["pin", "--config", cfg_s, "--add", bdir.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with(&format!("{}\tadded\t", added.cid())), "{}", run.stdout);
    assert!(own.pinned(&added.cid()));

    // Both attested; `tail` verifies both: `published` is only on the publisher, so it
    // came from that Kubo's gateway, `added` from the loader's own node.
    for (i, b) in [&added, &published].iter().enumerate() {
        submit(&p, &c, 1, &b.cid().to_string(), &b.merkle_root(), i as u8).await;
    }
    mine(&p, 2).await;
    let run = loader(&db, &["tail", "--once", "--config", cfg_s]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("bundles: 2 verified, 0 invalid, 0 unavailable, 0 deferred, 0 failed"), "{}", run.stdout);
    let status: String = db
        .client
        .query_one("SELECT status FROM nweb.bundles WHERE cid = $1", &[&published.cid().to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "verified");

    // `check` (the slasher, recording only: no keystore) probes `published` through the
    // publisher's real gateway, its only source so far: delivered whole and verified.
    let run = loader(&db, &["check", "--config", cfg_s]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&format!("{}\tavailable\t-\tok=", published.cid())), "{}", run.stdout);
    let probed: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM nweb.availability_checks WHERE cid = $1 AND available AND reason IS NULL",
            &[&published.cid().to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(probed, 1);

    // The hoarder: `published` is fetched from the gateway and imported and pinned in
    // its node through the RPC; `added` was pinned already. Both CARs are kept.
    assert!(!own.pinned(&published.cid()));
    let run = loader(&db, &["pin", "--config", cfg_s]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&format!("{}\tkept\tpinned now; CAR ", published.cid())), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{}\tkept\tpinned; CAR ", added.cid())), "{}", run.stdout);
    assert!(own.pinned(&published.cid()));
    for b in [&added, &published] {
        let bytes = std::fs::read(car_dir.join(format!("{}.car", b.cid()))).unwrap();
        let u = car::unpack_car(&bytes, Some(&b.cid()), u64::MAX).unwrap();
        let mut want = b.files();
        want.sort();
        assert_eq!(u.files, want);
    }
    db.finish().await;
}
