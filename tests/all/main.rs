//! Integration tests: the built binaries, driven as users and build scripts drive them, and
//! checked against the real upstream tools.

mod abdevice;
mod bad_input;
mod common;
mod craft;
mod delta;
mod diskimage;
mod dump;
mod edit;
mod fuzz_regressions;
mod hostile;
mod http;
mod interop;
mod man;
mod pkcs11;
mod powerloss;
mod realboot;
mod rootfs;
mod rootfs_delta;
mod roundtrip;
mod server;
mod signing;
mod store_interop;
mod update;
mod update_faults;
