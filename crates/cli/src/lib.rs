//! The `snapcourier` command's library: the in-process runner and the terminal output, so
//! that tests drive exactly what the binary drives.

pub mod capacity;
pub mod coverage_report;
pub mod drill;
pub mod inputs;
pub mod output;
pub mod plan;
pub mod runner;
