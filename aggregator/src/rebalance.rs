//! Consumer-group rebalances, as the consumer loop needs to know them.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether this aggregator evaluates sender health (it holds partition 0 of the events topic);
/// set here, on each assignment, and read by the sender-health task.
#[derive(Debug, Default, Clone)]
pub struct HealthLeader(Arc<AtomicBool>);

impl HealthLeader {
    pub fn set(&self, leader: bool) {
        self.0.store(leader, Ordering::SeqCst);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What rebalances happened since the consumer loop last looked.
#[derive(Debug, Default)]
pub struct Rebalanced {
    /// Partitions were revoked: buffered messages are dropped (they are fetched again).
    pub revoked: bool,
    /// The partitions assigned now.
    pub assigned: Option<Vec<i32>>,
    /// The group lost our assignment (e.g. a session timeout): others may have consumed our
    /// partitions meanwhile, so nothing in memory can be trusted.
    pub lost: bool,
}

/// Notices rebalances. The strategy is eager (`range`): a rebalance revokes every partition,
/// then assigns the full new set. The state of partitions not assigned to us any more is
/// dropped (state is tagged with its partition), all of it if the assignment was lost; a
/// partition assigned to us is claimed again before anything of it is written, and that drops
/// its state too (another aggregator may have written it meanwhile: `offsets`). It also tells the sender-health task
/// whether this aggregator holds partition 0, right when it changes (even with no traffic).
#[derive(Default, Clone)]
pub struct RebalanceFlag(Arc<std::sync::Mutex<Rebalanced>>, HealthLeader);

impl RebalanceFlag {
    pub fn new(leader: HealthLeader) -> Self {
        RebalanceFlag(Default::default(), leader)
    }

    pub fn take(&self) -> Rebalanced {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for RebalanceFlag {}
impl ConsumerContext for RebalanceFlag {
    fn post_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Rebalance::Revoke(_) => {
                s.revoked = true;
                s.lost |= c.assignment_lost();
                self.1.set(false);
            }
            Rebalance::Assign(tpl) => {
                let assigned: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                self.1.set(assigned.contains(&0));
                s.assigned = Some(assigned);
            }
            Rebalance::Error(_) => {
                s.lost = true;
                self.1.set(false);
            }
        }
    }
}
