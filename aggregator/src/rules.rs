//! Status precedence: the one rule that decides a delivery's status.
//!
//! A delivery's status is the event with the highest rank it has seen:
//!
//! | rank | status        | kind                                  |
//! |------|---------------|---------------------------------------|
//! | 1    | queued        | milestone                              |
//! | 2    | sent          | milestone                              |
//! | 3    | delivered     | milestone (`read` implies it)          |
//! | 4    | opened, read  | milestone (email opens, WhatsApp read) |
//! | 5    | clicked       | milestone                              |
//! | 6    | replied       | milestone                              |
//! | 7    | failed        | outcome                                |
//! | 8    | bounced (hard)| outcome                                |
//! | 9    | unsubscribed  | outcome                                |
//! | 10   | complained    | outcome                                |
//!
//! Outcomes outrank every milestone, so a late `opened` or `delivered` never undoes a
//! bounce, complaint, failure or unsubscribe; and since the status is a maximum, it
//! does not depend on arrival order. Soft and undetermined bounces, deferrals and
//! unknown events are recorded but never change the status (rank 0).

use schemas::{BounceClass, EventType};

/// How much an event weighs for the status; 0 = recorded without changing it.
pub fn rank(event_type: EventType, bounce_class: Option<BounceClass>) -> u8 {
    match event_type {
        EventType::Queued => 1,
        EventType::Sent => 2,
        EventType::Delivered => 3,
        EventType::Opened | EventType::Read => 4,
        EventType::Clicked => 5,
        EventType::Replied => 6,
        EventType::Failed => 7,
        EventType::Bounced if bounce_class == Some(BounceClass::Hard) => 8,
        EventType::Unsubscribed => 9,
        EventType::Complained => 10,
        EventType::Bounced | EventType::Deferred | EventType::Unknown => 0,
    }
}

/// Status after seeing `event` when the current status is `current` (with its rank).
/// Ties keep the current one, so the result is the same in any order.
pub fn next_status(current: Option<EventType>, current_rank: u8, event: EventType, bounce: Option<BounceClass>) -> (Option<EventType>, u8) {
    let r = rank(event, bounce);
    if r > current_rank || (r == current_rank && r > 0 && current.is_some_and(|c| event < c)) {
        (Some(event), r)
    } else {
        (current, current_rank)
    }
}

/// `read` implies `delivered`: the milestones an event proves happened.
pub fn implied_milestones(event_type: EventType) -> &'static [EventType] {
    match event_type {
        EventType::Read | EventType::Opened | EventType::Clicked | EventType::Replied => &[EventType::Delivered],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_beat_late_engagement() {
        let (s, r) = next_status(None, 0, EventType::Bounced, Some(BounceClass::Hard));
        let (s, _) = next_status(s, r, EventType::Opened, None);
        assert_eq!(s, Some(EventType::Bounced));
    }

    #[test]
    fn soft_bounce_and_deferral_do_not_change_status() {
        let (s, r) = next_status(None, 0, EventType::Sent, None);
        let (s, r) = next_status(s, r, EventType::Bounced, Some(BounceClass::Soft));
        let (s, _) = next_status(s, r, EventType::Deferred, None);
        assert_eq!(s, Some(EventType::Sent));
    }

    #[test]
    fn late_delivered_does_not_regress_opened() {
        let (s, r) = next_status(None, 0, EventType::Opened, None);
        let (s, _) = next_status(s, r, EventType::Delivered, None);
        assert_eq!(s, Some(EventType::Opened));
    }
}
