//! custos: a process supervisor for embedded Linux boards.
//!
//! config → core (pure decisions) → effectors (proc identity, scripts, signals) → one event loop.

pub mod boot;
pub mod checks;
pub mod child;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod files;
pub mod hooks;
pub mod keeper;
pub mod limits;
pub mod logger;
pub mod metrics;
#[cfg(feature = "import-monit")]
pub mod monit;
pub mod pins;
pub mod procs;
pub mod record;
pub mod scripts;
pub mod signals;
pub mod supervisor;
pub mod sys;
pub mod syslog;
pub mod text;
pub mod watchdog;
