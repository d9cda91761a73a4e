//! The on-device installer: update modules, state scripts and the processes that run them.

pub mod bootenv;
pub mod config;
pub mod installer;
pub mod machine;
pub mod module;
pub mod outcome;
pub mod payload;
pub mod process;
pub mod provides;
pub mod rootfs;
pub mod scripts;
pub mod store;
