//! Mender over-the-air update toolchain: the artifact format, keys and signatures, and the
//! command-line front ends. The binaries in `src/bin` are thin wrappers over this library.
#![deny(unsafe_code)]

pub mod artifact;
pub mod cli;
pub mod crypto;
pub mod delta;
pub mod fsimage;
pub mod install;
pub mod server;
pub mod source;
