//! What every run shares, whatever its scenario: the simulation and its
//! `db` host, the fault schedule and the loop that applies it, the trace,
//! and one simulation at a time per process. Nothing here knows a
//! scenario; scenarios (`crate::scenarios`) build on it.

pub mod db_faults;
pub mod exclusive;
pub mod fault_loop;
pub mod faults;
pub mod simulation;
pub mod trace;
