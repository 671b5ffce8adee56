//! One file per subcommand, each the command's story from flags to exit code: the clap
//! arguments, then a `run` that validates the configuration, checks scope, takes the
//! steps and prints the output, calling the machinery beside this directory
//! (`chain/`, `ipfs/`, `collect/`, `toolchain/`, `db.rs`, `scope.rs`, ...).

pub mod check;
pub mod collect;
pub mod dispatch;
pub mod events;
pub mod example_config;
pub mod ingest;
pub mod pin;
pub mod resolve;
pub mod scan;
pub mod slash;
pub mod submit;
pub mod serve;
pub mod tail;
