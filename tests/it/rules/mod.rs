//! Rules: `[[routes]] when` conditions on the event, its envelope and its
//! source (evaluated before the commit, envelope routes inside it), and
//! `countersign route test`; durable deadlines, reminders and escalation.

mod conditions;
mod timers;
