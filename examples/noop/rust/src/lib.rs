//! `noop` is the smallest message filter: it handles every WebSocket message
//! and passes it unchanged. It measures what the message hook itself costs
//! (frame parsing, the call into the sandbox), like the Go version beside it.

use sluice::{Error, Filter, Hooks, Message, MessageAction};

/// The filter; it has no config.
pub struct Noop;

impl Filter for Noop {
    const HOOKS: Hooks = Hooks::MESSAGE;

    fn configure(_config: &[u8]) -> Result<Self, Error> {
        Ok(Noop)
    }

    fn on_message(&self, _msg: &mut Message) -> MessageAction {
        MessageAction::Pass
    }
}

sluice::register!(Noop);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::{abi, testing, Direction, MessageKind};

    #[test]
    fn passes_messages_unchanged() {
        let f: Noop = testing::configure("{}").unwrap();
        assert_eq!(testing::hooks(&f), Hooks::MESSAGE);
        assert_eq!(testing::on_message(&f, Direction::ClientToUpstream, MessageKind::Text, b"hi"), abi::ACTION_PASS);
        testing::with(|h| assert_eq!(h.message.as_deref(), Some(&b"hi"[..])));
    }
}
