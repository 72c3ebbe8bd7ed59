//! The program's events, as logged (`Program data: <base64>`: an 8-byte
//! discriminator, then the Borsh fields).
use base64::Engine;

use crate::Pubkey;

/// A voucher advanced the settled watermark of `channel` to `settled`,
/// paying the payee `amount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSettled {
    /// The channel.
    pub channel: Pubkey,
    /// Its new settled watermark.
    pub settled: u64,
    /// What this settlement paid.
    pub amount: u64,
}

/// The channel closed: the payee was paid `paid` by a final voucher and the
/// payer refunded `refunded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelClosed {
    /// The channel.
    pub channel: Pubkey,
    /// Its final settled watermark.
    pub settled: u64,
    /// What the final voucher paid (0 if none).
    pub paid: u64,
    /// What the payer got back.
    pub refunded: u64,
    /// Closed by `finalize` (else by the payee's `close`).
    pub finalized: bool,
}

/// The payer requested a close; anyone may finalize at `grace_ends_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseRequested {
    /// The channel.
    pub channel: Pubkey,
    /// Unix time of the request.
    pub closure_started_at: i64,
    /// Unix time from which `finalize` succeeds.
    pub grace_ends_at: i64,
}

/// An event of the program that servers act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// See [`ChannelSettled`].
    Settled(ChannelSettled),
    /// See [`ChannelClosed`].
    Closed(ChannelClosed),
    /// See [`CloseRequested`].
    CloseRequested(CloseRequested),
}

impl ChannelSettled {
    /// `sha256("event:ChannelSettled")[..8]`.
    pub const DISCRIMINATOR: [u8; 8] = [111, 173, 122, 136, 157, 140, 206, 6];
}

impl ChannelClosed {
    /// `sha256("event:ChannelClosed")[..8]`.
    pub const DISCRIMINATOR: [u8; 8] = [119, 198, 23, 254, 216, 124, 84, 16];
}

impl CloseRequested {
    /// `sha256("event:CloseRequested")[..8]`.
    pub const DISCRIMINATOR: [u8; 8] = [136, 120, 170, 78, 168, 236, 47, 118];
}

impl Event {
    /// Decodes one event's bytes (discriminator and fields); `None` for
    /// other events and for malformed data.
    pub fn decode(data: &[u8]) -> Option<Self> {
        let (disc, body) = data.split_at_checked(8)?;
        let key = |at: usize| -> Option<Pubkey> {
            Some(Pubkey::new_from_array(
                body.get(at..at + 32)?.try_into().ok()?,
            ))
        };
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
        };
        let i64_at = |at: usize| u64_at(at).map(|v| v as i64);
        if disc == ChannelSettled::DISCRIMINATOR && body.len() == 48 {
            return Some(Self::Settled(ChannelSettled {
                channel: key(0)?,
                settled: u64_at(32)?,
                amount: u64_at(40)?,
            }));
        }
        if disc == ChannelClosed::DISCRIMINATOR && body.len() == 57 {
            let finalized = match body.get(56)? {
                0 => false,
                1 => true,
                _ => return None,
            };
            return Some(Self::Closed(ChannelClosed {
                channel: key(0)?,
                settled: u64_at(32)?,
                paid: u64_at(40)?,
                refunded: u64_at(48)?,
                finalized,
            }));
        }
        if disc == CloseRequested::DISCRIMINATOR && body.len() == 48 {
            return Some(Self::CloseRequested(CloseRequested {
                channel: key(0)?,
                closure_started_at: i64_at(32)?,
                grace_ends_at: i64_at(40)?,
            }));
        }
        None
    }

    /// The events in a transaction's log messages (`Program data:` lines).
    ///
    /// Only lines logged while paychan ran count when `logs` is a whole
    /// transaction's: a line is taken when the innermost program invoked
    /// at that point is [`crate::ID`], so another program cannot forge one.
    pub fn from_logs(logs: &[String]) -> Vec<Self> {
        let mut stack: Vec<&str> = Vec::new();
        let mut events = Vec::new();
        for line in logs {
            if let Some(rest) = line.strip_prefix("Program ") {
                if let Some(data) = rest.strip_prefix("data: ") {
                    let ours = stack.last().is_some_and(|p| *p == crate::ID.to_string());
                    if ours
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data)
                    {
                        events.extend(Self::decode(&bytes));
                    }
                    continue;
                }
                let mut words = rest.split(' ');
                match (words.next(), words.next()) {
                    (Some(program), Some("invoke")) => stack.push(program),
                    (Some(_), Some("success" | "failed:")) => {
                        stack.pop();
                    }
                    _ => {}
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled_line(channel: &Pubkey, settled: u64, amount: u64) -> String {
        let mut bytes = ChannelSettled::DISCRIMINATOR.to_vec();
        bytes.extend_from_slice(channel.as_ref());
        bytes.extend_from_slice(&settled.to_le_bytes());
        bytes.extend_from_slice(&amount.to_le_bytes());
        format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn only_paychan_logs_count() {
        let (ours, forged) = (Pubkey::new_unique(), Pubkey::new_unique());
        let id = crate::ID.to_string();
        let logs = vec![
            format!("Program {id} invoke [1]"),
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA invoke [2]".to_string(),
            settled_line(&forged, 9, 9),
            "Program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA success".to_string(),
            settled_line(&ours, 70, 30),
            "Program data: not base64!".to_string(),
            format!("Program {id} consumed 6000 of 200000 compute units"),
            format!("Program {id} success"),
            settled_line(&forged, 1, 1),
        ];
        assert_eq!(
            Event::from_logs(&logs),
            vec![Event::Settled(ChannelSettled {
                channel: ours,
                settled: 70,
                amount: 30
            })]
        );
    }

    #[test]
    fn malformed_events_are_none() {
        assert_eq!(Event::decode(&[]), None);
        let mut closed = ChannelClosed::DISCRIMINATOR.to_vec();
        closed.resize(8 + 57, 0);
        assert!(matches!(Event::decode(&closed), Some(Event::Closed(c)) if !c.finalized));
        closed[8 + 56] = 2;
        assert_eq!(Event::decode(&closed), None);
        closed.pop();
        assert_eq!(Event::decode(&closed), None);
    }
}
