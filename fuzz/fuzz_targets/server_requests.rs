//! Fuzz target `server_requests`; the entry point lives in `fuzz/entries.rs`.
#![no_main]

#[path = "../entries.rs"]
#[allow(dead_code)]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::server_requests(data));
