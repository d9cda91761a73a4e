//! Command-line front ends: argument definitions (clap) and one `run` per subcommand. The
//! binaries only parse, call `run` and exit with the returned status.

pub mod artifact;
pub mod exit;
pub mod man;
pub mod progress;
pub mod server;
pub mod update;
