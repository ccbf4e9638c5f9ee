//! The RTP ports: which are free, and which rest after their call so that
//! its late packets cannot reach the next one. Sans-IO: time is passed in.

use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

/// A port is not handed out again until this long after its call ended, so
/// late packets of the old call cannot reach a new one.
pub const PORT_QUARANTINE: Duration = Duration::from_secs(5);

/// Ports not in use, and ports resting after their call.
#[derive(Debug)]
pub(crate) struct PortPool {
    free: VecDeque<u16>,
    resting: VecDeque<(u16, Instant)>,
}

impl PortPool {
    /// Every port of `ports` free.
    pub(crate) fn new(ports: impl IntoIterator<Item = u16>) -> Self {
        Self {
            free: ports.into_iter().collect(),
            resting: VecDeque::new(),
        }
    }

    /// A free port at `now` (the one free longest), if any; ports whose
    /// quarantine is over are free again.
    pub(crate) fn take(&mut self, now: Instant) -> Option<u16> {
        while self
            .resting
            .front()
            .is_some_and(|&(_, since)| now.saturating_duration_since(since) >= PORT_QUARANTINE)
        {
            if let Some((port, _)) = self.resting.pop_front() {
                self.free.push_back(port);
            }
        }
        self.free.pop_front()
    }

    /// `port`'s call ended at `now`: it rests for [`PORT_QUARANTINE`].
    pub(crate) fn rest(&mut self, port: u16, now: Instant) {
        self.resting.push_back((port, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_rests_for_the_quarantine_after_its_call_on_simulated_time() {
        let t0 = Instant::now();
        let mut pool = PortPool::new([40000, 40001]);
        assert_eq!(pool.take(t0), Some(40000));
        assert_eq!(pool.take(t0), Some(40001));
        assert_eq!(pool.take(t0), None);
        pool.rest(40000, t0 + Duration::from_secs(1));
        let just_before = t0 + Duration::from_secs(1) + PORT_QUARANTINE - Duration::from_millis(1);
        assert_eq!(pool.take(just_before), None, "late packets' window");
        assert_eq!(
            pool.take(just_before + Duration::from_millis(1)),
            Some(40000)
        );
    }

    #[test]
    fn free_ports_go_out_before_rested_ones_and_in_order() {
        let t0 = Instant::now();
        let mut pool = PortPool::new([1, 2, 3]);
        let first = pool.take(t0);
        pool.rest(1, t0);
        let later = t0 + PORT_QUARANTINE * 2;
        // 2 and 3 were free all along: they go first, then the rested 1.
        assert_eq!(first, Some(1));
        assert_eq!(pool.take(later), Some(2));
        assert_eq!(pool.take(later), Some(3));
        assert_eq!(pool.take(later), Some(1));
        assert_eq!(pool.take(later), None);
    }
}
