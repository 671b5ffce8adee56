//! The contracts' own rules, played on Foundry's anvil: the MVP numbers
//! (`rules.rs`), the attacks a hostile peer would try (`attacks.rs`), and the
//! comparison with the real EAS contracts (`eas.rs`).
//!
//! They sit beside the contracts because they test the contracts, not the
//! loader. forge would be the usual home for them, but it needs a native solc
//! that cannot be installed offline here (docs/nweb-chain.md), so they are Rust
//! tests on the dev chain that `loader/tests/chain` also uses, built as the
//! loader's `contracts` test target (`cargo test -p xray_loader --test contracts`).

// Shared with loader/tests/chain; not every helper is used here.
#[allow(dead_code)]
#[path = "../../loader/tests/chain/support.rs"]
mod support;

// The loader's decoding of the contracts' ABI, checked against what solc compiles.
#[allow(dead_code)]
#[path = "../../loader/src/chain/abi.rs"]
mod loader_abi;

mod attacks;
mod eas;
mod errors;
mod rules;
