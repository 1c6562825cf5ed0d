//! Task reconciliation as Mesos's `docs/reconciliation.md` defines it.
//!
//! After every subscription, and then periodically, a *round* asks the master about every task
//! the scheduler believes alive (explicit reconciliation), and asks again, with a growing delay,
//! about those that have not answered: a master that failed over does not answer for tasks on
//! agents that have not re-registered yet, and answers TASK_UNREACHABLE once such an agent is
//! given up on. When every task has answered (or is no longer alive to us), one implicit
//! reconciliation (no task named) asks the master for every task it knows, so that tasks we do
//! not know about come to light. Periodic rounds follow Marathon's `--reconciliation_initial_delay`
//! and `--reconciliation_interval`.
//!
//! Plain data driven by the scheduler: no clock, no I/O; times are the caller's.

use std::collections::BTreeMap;
use std::time::Duration;

use mesos_proto::v1::scheduler::Call;

use crate::calls::{self, TaskRef};
use crate::ids::Timestamp;

/// The first delay before asking again about tasks that did not answer; it doubles per attempt.
pub const FIRST_RETRY: Duration = Duration::from_secs(3);
/// The longest delay between two explicit requests of a round.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// When periodic rounds run (Marathon's defaults: 15 s after the first subscription, then every
/// 10 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// From the first subscription to the first periodic round.
    pub initial_delay: Duration,
    /// Between periodic rounds.
    pub interval: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { initial_delay: Duration::from_secs(15), interval: Duration::from_secs(600) }
    }
}

/// One round under way: the tasks asked about that have not answered yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Round {
    /// Task id → its reference (with the agent id the master needs to answer for it).
    pending: BTreeMap<String, TaskRef>,
    /// Explicit requests sent so far.
    attempts: u32,
    /// When to ask again.
    retry_at: Timestamp,
}

/// The reconciliation state of one scheduler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    schedule: Schedule,
    round: Option<Round>,
    /// When the next periodic round is due (set at the first subscription).
    next_periodic: Option<Timestamp>,
    /// Explicit requests sent again because tasks had not answered (for /metrics).
    pub retries: u64,
    /// Rounds completed (every task answered, implicit reconciliation sent).
    pub rounds_completed: u64,
}

impl Reconciliation {
    /// No round under way; periodic rounds per `schedule`.
    pub fn new(schedule: Schedule) -> Self {
        Self { schedule, ..Self::default() }
    }

    /// Tasks still waited for in the round under way.
    pub fn pending(&self) -> usize {
        self.round.as_ref().map_or(0, |r| r.pending.len())
    }

    /// Starts a round over `tasks` (every task believed alive) at `now`, replacing any round
    /// under way; the calls to send.
    pub fn start(&mut self, tasks: Vec<TaskRef>, now: Timestamp) -> Vec<Call> {
        if self.next_periodic.is_none() {
            self.next_periodic = Some(after(now, self.schedule.initial_delay));
        }
        let pending: BTreeMap<String, TaskRef> = tasks.into_iter().map(|t| (t.task.clone(), t)).collect();
        if pending.is_empty() {
            self.round = None;
            self.rounds_completed += 1;
            return vec![calls::reconcile([])];
        }
        let call = calls::reconcile(pending.values().cloned());
        self.round = Some(Round { pending, attempts: 1, retry_at: after(now, FIRST_RETRY) });
        vec![call]
    }

    /// The subscription ended: the round is abandoned (the next subscription starts anew).
    pub fn stop(&mut self) {
        self.round = None;
    }

    /// A status update for `task` arrived: it has answered. When it was the last one, the
    /// round ends with an implicit reconciliation (returned).
    pub fn answered(&mut self, task: &str) -> Option<Call> {
        let round = self.round.as_mut()?;
        round.pending.remove(task)?;
        if round.pending.is_empty() {
            self.round = None;
            self.rounds_completed += 1;
            return Some(calls::reconcile([]));
        }
        None
    }

    /// At `now`: asks again about the tasks that have not answered (those `alive` still
    /// says we believe alive) once their delay has passed, ends the round when none is left,
    /// and starts a periodic round over `tasks()` when one is due and none is under way.
    /// The calls to send, and how many tasks were asked about again.
    pub fn tick(&mut self, now: Timestamp, alive: impl Fn(&str) -> bool, tasks: impl FnOnce() -> Vec<TaskRef>) -> (Vec<Call>, usize) {
        if let Some(round) = self.round.as_mut() {
            if now.0 < round.retry_at.0 {
                return (Vec::new(), 0);
            }
            round.pending.retain(|task, _| alive(task));
            if round.pending.is_empty() {
                self.round = None;
                self.rounds_completed += 1;
                return (vec![calls::reconcile([])], 0);
            }
            let delay = FIRST_RETRY.saturating_mul(1 << round.attempts.min(10)).min(MAX_RETRY);
            round.attempts += 1;
            round.retry_at = after(now, delay);
            self.retries += 1;
            return (vec![calls::reconcile(round.pending.values().cloned())], round.pending.len());
        }
        match self.next_periodic {
            Some(due) if now.0 >= due.0 => {
                self.next_periodic = Some(after(now, self.schedule.interval));
                (self.start(tasks(), now), 0)
            }
            _ => (Vec::new(), 0),
        }
    }
}

fn after(now: Timestamp, d: Duration) -> Timestamp {
    Timestamp(now.0.saturating_add(d.as_millis() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> TaskRef {
        TaskRef { task: id.into(), agent: "a1".into() }
    }

    fn named(call: &Call) -> Vec<String> {
        call.reconcile.as_ref().expect("a RECONCILE call").tasks.iter().map(|t| t.task_id.value.clone()).collect()
    }

    #[test]
    fn a_round_asks_again_until_every_task_answered_then_reconciles_implicitly() {
        let mut r = Reconciliation::new(Schedule::default());
        let calls = r.start(vec![task("t1"), task("t2"), task("t3")], Timestamp(0));
        assert_eq!(calls.len(), 1);
        assert_eq!(named(&calls[0]), ["t1", "t2", "t3"]);
        assert_eq!(r.answered("t1"), None);
        assert_eq!(r.answered("other"), None, "an update for a task not asked about changes nothing");
        // Not yet due.
        assert_eq!(r.tick(Timestamp(2_999), |_| true, Vec::new).0.len(), 0);
        // Due: only the silent ones again.
        let (calls, again) = r.tick(Timestamp(3_000), |_| true, Vec::new);
        assert_eq!((named(&calls[0]), again), (vec!["t2".to_string(), "t3".to_string()], 2));
        // The delay doubles: 6 s after the second request.
        assert!(r.tick(Timestamp(8_999), |_| true, Vec::new).0.is_empty());
        let (calls, _) = r.tick(Timestamp(9_000), |_| true, Vec::new);
        assert_eq!(named(&calls[0]).len(), 2);
        assert_eq!(r.retries, 2);
        assert_eq!(r.answered("t2"), None);
        let implicit = r.answered("t3").expect("the last answer ends the round");
        assert!(named(&implicit).is_empty(), "implicit reconciliation names no task");
        assert_eq!((r.pending(), r.rounds_completed), (0, 1));
    }

    #[test]
    fn tasks_no_longer_alive_are_not_asked_about_again() {
        let mut r = Reconciliation::new(Schedule::default());
        r.start(vec![task("t1"), task("t2")], Timestamp(0));
        let (calls, again) = r.tick(Timestamp(3_000), |t| t == "t2", Vec::new);
        assert_eq!((named(&calls[0]), again), (vec!["t2".to_string()], 1));
        let (calls, _) = r.tick(Timestamp(9_000), |_| false, Vec::new);
        assert!(named(&calls[0]).is_empty(), "nothing left to wait for: implicit reconciliation");
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn the_retry_delay_is_capped() {
        let mut r = Reconciliation::new(Schedule::default());
        r.start(vec![task("t1")], Timestamp(0));
        let mut now = 0i64;
        let mut gaps = Vec::new();
        for _ in 0..12 {
            // Step a second at a time until the next request goes out.
            let start = now;
            loop {
                now += 1_000;
                if !r.tick(Timestamp(now), |_| true, Vec::new).0.is_empty() {
                    break;
                }
            }
            gaps.push((now - start) / 1_000);
        }
        assert_eq!(&gaps[..6], &[3, 6, 12, 24, 48, 60]);
        assert!(gaps.iter().all(|g| *g <= 60), "{gaps:?}");
    }

    #[test]
    fn periodic_rounds_follow_the_schedule_and_an_empty_round_is_implicit_at_once() {
        let schedule = Schedule { initial_delay: Duration::from_secs(15), interval: Duration::from_secs(600) };
        let mut r = Reconciliation::new(schedule);
        let calls = r.start(Vec::new(), Timestamp(1_000));
        assert!(named(&calls[0]).is_empty(), "nothing alive: implicit only");
        assert!(r.tick(Timestamp(15_999), |_| true, || vec![task("t9")]).0.is_empty());
        let (calls, _) = r.tick(Timestamp(16_000), |_| true, || vec![task("t9")]);
        assert_eq!(named(&calls[0]), ["t9"], "the first periodic round, 15 s after the first subscription");
        assert!(r.answered("t9").is_some());
        assert!(r.tick(Timestamp(615_999), |_| true, || vec![task("t9")]).0.is_empty());
        assert_eq!(r.tick(Timestamp(616_000), |_| true, || vec![task("t9")]).0.len(), 1, "then every interval");
        // A resubscription does not move the periodic schedule.
        r.start(vec![task("t9")], Timestamp(700_000));
        r.answered("t9");
        assert!(r.tick(Timestamp(1_215_999), |_| true, Vec::new).0.is_empty());
        assert_eq!(r.tick(Timestamp(1_216_000), |_| true, Vec::new).0.len(), 1);
    }

    #[test]
    fn a_lost_subscription_abandons_the_round() {
        let mut r = Reconciliation::new(Schedule::default());
        r.start(vec![task("t1")], Timestamp(0));
        r.stop();
        assert_eq!(r.pending(), 0);
        assert_eq!(r.answered("t1"), None);
        assert!(r.tick(Timestamp(3_000), |_| true, Vec::new).0.is_empty(), "no retry without a round; periodic not due");
    }
}
