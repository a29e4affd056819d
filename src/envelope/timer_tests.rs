//! Scheduling: offsets after sending and before the deadline, overdue and
//! escalation, firing once, cancellation by completion, a moved deadline.

use super::timers::{Offset, Policy, Timer, TimerKind};
use super::*;
use crate::event::Kind;

const DAY: i64 = 86_400_000;

fn policy() -> Policy {
    Policy {
        expire_after_ms: Some(30 * DAY),
        reminders: vec![Offset::AfterSent(3 * DAY), Offset::BeforeDeadline(DAY)],
        escalate_after_ms: Some(7 * DAY),
    }
}

fn t(kind: TimerKind, slot: u32, day: i64) -> Timer {
    Timer {
        kind,
        slot,
        due_ms: day * DAY,
    }
}

fn sent() -> Envelope {
    let mut e = Envelope::new("ds", "env", "docusign", 1, 0);
    e.apply(Kind::Sent, None, 10);
    e.mark_sent(0);
    e
}

#[test]
fn offsets_parse() {
    assert_eq!(Offset::parse("3d"), Ok(Offset::AfterSent(3 * DAY)));
    assert_eq!(Offset::parse("-12h"), Ok(Offset::BeforeDeadline(DAY / 2)));
    assert!(Offset::parse("soon").unwrap_err().contains("\"3d\""));
}

#[test]
fn schedule_fire_once_and_cancel() {
    // Nothing before it goes out.
    let mut open = Envelope::new("ds", "env", "docusign", 1, 0);
    open.mark_sent(0);
    assert!(open.retime(&policy()).added.is_empty());

    let mut e = sent();
    let r = e.retime(&policy());
    let all = vec![
        t(TimerKind::Reminder, 0, 3),
        t(TimerKind::Reminder, 1, 29),
        t(TimerKind::Overdue, 0, 30),
        t(TimerKind::Escalated, 0, 37),
    ];
    let mut added = r.added.clone();
    added.sort_by_key(|x| x.due_ms);
    assert_eq!(added, all);
    assert!(e.retime(&policy()).added.is_empty(), "idempotent");

    // Fired once: not scheduled again.
    assert!(e.fire(&all[0]));
    assert!(!e.fire(&all[0]));
    assert_eq!(e.retime(&policy()), timers::Retimed::default());

    // A registration's overrides win; a moved deadline makes new timers for
    // what hangs on it and leaves the fired ones fired.
    e.timers.deadline_ms = Some(20 * DAY);
    let r = e.retime(&policy());
    let mut added = r.added;
    added.sort_by_key(|x| x.due_ms);
    assert_eq!(
        added,
        [
            t(TimerKind::Reminder, 1, 19),
            t(TimerKind::Overdue, 0, 20),
            t(TimerKind::Escalated, 0, 27)
        ]
    );
    assert_eq!(r.removed.len(), 3);

    // Completion leaves nothing pending.
    e.apply(Kind::Completed, None, 10);
    let r = e.retime(&policy());
    assert_eq!(r.removed.len(), 3);
    assert!(e.timers.pending.is_empty());
}

#[test]
fn reminders_wait_until_it_goes_out_the_deadline_does_not() {
    let mut e = Envelope::new("ds", "env", "docusign", 1, 0);
    e.registration = Some(Registration {
        reference: "R".into(),
        deadline: Some("1970-01-11T00:00:00Z".into()),
        ..Registration::default()
    });
    e.retime(&policy());
    assert_eq!(
        e.timers.pending,
        [t(TimerKind::Overdue, 0, 10), t(TimerKind::Escalated, 0, 17)]
    );
    e.apply(Kind::Sent, None, 10);
    e.mark_sent(DAY);
    e.retime(&policy());
    assert_eq!(
        e.timers.pending,
        [
            t(TimerKind::Reminder, 0, 4),
            t(TimerKind::Reminder, 1, 9),
            t(TimerKind::Overdue, 0, 10),
            t(TimerKind::Escalated, 0, 17)
        ]
    );
}

#[test]
fn registration_overrides_the_source() {
    let mut e = sent();
    e.registration = Some(Registration {
        reference: "R".into(),
        deadline: Some("1970-01-05T00:00:00Z".into()),
        reminders: Some(vec!["1d".into()]),
        escalate_after: Some("1d".into()),
        ..Registration::default()
    });
    let p = policy().with(e.registration.as_ref());
    assert_eq!(e.deadline_ms(&p), Some(4 * DAY));
    e.retime(&p);
    assert_eq!(
        e.timers.pending,
        [
            t(TimerKind::Reminder, 0, 1),
            t(TimerKind::Overdue, 0, 4),
            t(TimerKind::Escalated, 0, 5)
        ]
    );
}
