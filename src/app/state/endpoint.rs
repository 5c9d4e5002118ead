//! The endpoint question's state (`endpoint` has its keys and view).

use crate::connection::Refusal;

/// "http://127.0.0.1:18555 is plain http on a loopback address: the key
/// would be sent there. Send anyway?"
#[derive(Debug)]
pub struct EndpointDialog {
    pub refusal: Refusal,
    pub actor: String,
    /// Whose key, of which provider.
    pub account: String,
    pub provider: String,
}
