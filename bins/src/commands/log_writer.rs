//! Log output with passwords taken out (`rillflow_adapters::secrets`): a
//! URL or connection string that reaches a log line, in an error or a
//! setting, never carries its password to the terminal or the journal.

use std::io::Write;

use rillflow_adapters::secrets::redact_log_line;
use tracing_subscriber::fmt::MakeWriter;

/// Makes a [`RedactedLine`] per log event.
pub struct RedactedStderr;

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::with_capacity(256))
    }
}

/// One log event, gathered whole and written to stderr, redacted, when the
/// formatter is done with it.
pub struct RedactedLine(Vec<u8>);

impl Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        // Nowhere to report a failed write to stderr.
        let _ = std::io::stderr().write_all(redact_log_line(&text).as_bytes());
    }
}
