//! The connections subscribed to one channel of notices (LISTEN), per
//! incarnation of the database host: release notices, or ownership
//! changes. A restart drops them, as it ends every session.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::protocol::Reply;

/// The subscriptions to one channel.
#[derive(Debug, Clone, Default)]
pub(super) struct Listeners(Arc<Mutex<Vec<mpsc::UnboundedSender<Reply>>>>);

impl Listeners {
    pub(super) fn add(&self) -> mpsc::UnboundedReceiver<Reply> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0.lock().expect("listeners").push(tx);
        rx
    }

    /// Delivers a notice to every live subscription (NOTIFY).
    pub(super) fn notify(&self, notice: &Reply) {
        self.0
            .lock()
            .expect("listeners")
            .retain(|tx| tx.send(notice.clone()).is_ok());
    }
}
