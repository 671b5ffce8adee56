//! nweb: scanprint, canonical JSON and Merkle roots (see design D6).
