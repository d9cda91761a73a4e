//! Fuzz target `delta_apply`; the entry point lives in `fuzz/entries.rs`.
#![no_main]

#[path = "../entries.rs"]
#[allow(dead_code)]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::delta_apply(data));
