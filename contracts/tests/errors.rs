//! Every custom error a deployed contract can revert with decodes in the loader. The
//! loader reads the errors from contracts/src/IAttestor.sol (loader/src/chain/abi.rs); an
//! error declared anywhere else, renamed, or given other fields there would reach an
//! operator as a bare selector.

use alloy::primitives::keccak256;
use serde_json::Value;

use crate::loader_abi::revert_text;
use crate::support::artifacts;

/// `selector ++ abi.encode(zero of each type)`: what a revert with all-zero (and empty)
/// arguments carries. Only the elementary types an error may use are supported; anything
/// else stops the test so that it is extended rather than silently skipped.
fn zero_revert(name: &str, types: &[String]) -> Vec<u8> {
    let sig = format!("{name}({})", types.join(","));
    let mut data = keccak256(sig.as_bytes())[..4].to_vec();
    let dynamic = |t: &str| t == "string" || t == "bytes";
    let head = 32 * types.len();
    let mut tails = 0;
    for t in types {
        assert!(
            !t.contains('[') && !t.starts_with("tuple"),
            "{sig}: extend zero_revert for {t}"
        );
        let mut word = [0u8; 32];
        if dynamic(t) {
            // Offset of an empty tail (one zero length word) after the head.
            let off = (head + 32 * tails) as u64;
            word[24..].copy_from_slice(&off.to_be_bytes());
            tails += 1;
        }
        data.extend_from_slice(&word);
    }
    data.extend(std::iter::repeat_n(0u8, 32 * tails));
    data
}

#[test]
fn every_error_of_the_contracts_decodes_in_the_loader() {
    let mut seen = 0;
    for entry in std::fs::read_dir(artifacts()).unwrap() {
        let path = entry.unwrap().path();
        let artifact: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // The test token (contracts/test/) is never deployed.
        if !artifact["sourceName"].as_str().unwrap().starts_with("src/") {
            continue;
        }
        let contract = artifact["contractName"].as_str().unwrap();
        for e in artifact["abi"].as_array().unwrap().iter().filter(|e| e["type"] == "error") {
            let name = e["name"].as_str().unwrap();
            let types: Vec<String> = e["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["type"].as_str().unwrap().to_string())
                .collect();
            let text = revert_text(&zero_revert(name, &types)).unwrap_or_else(|| {
                panic!("{contract} reverts with {name}({}), which the loader cannot decode", types.join(","))
            });
            assert!(text.starts_with(name), "{contract}: {name} decodes as {text:?}");
            seen += 1;
        }
    }
    // SlashRouter alone has more than a dozen; an empty walk would prove nothing.
    assert!(seen > 20, "only {seen} errors in the compiled ABIs");
}
