//! A hot standby of the model database and its lossy promotion: what
//! `ReadReplica` reads from and what a failover to an asynchronous standby
//! leaves behind (docs/deployment.md, "A lossy failover").

pub mod promotion;
pub mod replay_lag;
pub mod replica;
