//! When each RTP packet arrived: the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`) where there is one, so a server that reads a socket
//! late (busy starting a thousand calls) still sees the packets' real
//! spacing; otherwise the time it was read.

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::time::{Instant, SystemTime};

/// The most a packet may plausibly wait in a socket buffer; a kernel time
/// further back, or in the future, means the wall clock stepped.
const MAX_QUEUED: Duration = Duration::from_secs(5);

/// How far after the read time a kernel time may fall before the clocks are
/// taken to have drifted apart.
const SLEW_SLACK: Duration = Duration::from_millis(2);

/// A call's arrival clock: time since the call started, from kernel
/// timestamps mapped onto the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrivalClock {
    started: Instant,
    /// The wall-clock time that corresponds to `started`.
    wall_at_start: SystemTime,
}

impl ArrivalClock {
    /// A clock whose zero is `started`.
    pub(crate) fn new(started: Instant) -> Self {
        let wall_at_start = SystemTime::now()
            .checked_sub(started.elapsed())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Self {
            started,
            wall_at_start,
        }
    }

    /// Time since the start.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The arrival of a packet read now whose kernel timestamp is `kernel`.
    /// A timestamp that is not between `MAX_QUEUED` before now and now
    /// (the wall clock was stepped) re-anchors the clock and the read time
    /// is used.
    pub(crate) fn arrival(&mut self, kernel: Option<SystemTime>) -> Duration {
        let read = self.now();
        let Some(kernel) = kernel else {
            return read;
        };
        // The wall clock may be slewed against the monotonic one (NTP, up
        // to 0.05 %): a stamp a little after the read time is the read time.
        match kernel.duration_since(self.wall_at_start) {
            Ok(at) if at <= read + SLEW_SLACK && read.saturating_sub(at) <= MAX_QUEUED => {
                at.min(read)
            }
            _ => {
                *self = Self::new(self.started);
                read
            }
        }
    }
}

/// Asks the kernel to time-stamp datagrams on `socket`.
///
/// # Errors
/// The `setsockopt` error.
#[cfg(target_os = "linux")]
pub(crate) fn enable_timestamps(socket: &std::net::UdpSocket) -> io::Result<()> {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)
}

/// Kernel timestamps are not asked for on this system.
///
/// # Errors
/// Never.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enable_timestamps(_socket: &std::net::UdpSocket) -> io::Result<()> {
    Ok(())
}

/// Receives one datagram: its length, its sender and the kernel's arrival
/// timestamp, if any.
///
/// # Errors
/// The receive error (`WouldBlock` when nothing waits).
#[cfg(target_os = "linux")]
pub(crate) fn recv_stamped(
    socket: &impl std::os::fd::AsRawFd,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<SystemTime>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let from = message
        .address
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4((*v4).into()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
        })
        .ok_or_else(|| io::Error::other("datagram without an IP sender"))?;
    let mut stamp = None;
    if let Ok(cmsgs) = message.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
                let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
                let nanos = u32::try_from(ts.tv_nsec()).unwrap_or(0);
                stamp = SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
        }
    }
    Ok((message.bytes, from, stamp))
}

/// Receives one datagram, without a kernel timestamp on this system.
///
/// # Errors
/// The receive error (`WouldBlock` when nothing waits).
#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_stamped(
    socket: &std::net::UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<SystemTime>)> {
    socket.recv_from(buf).map(|(n, from)| (n, from, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_times_of_packets_read_late_keep_their_spacing() {
        let started = Instant::now() - Duration::from_secs(3);
        let mut clock = ArrivalClock::new(started);
        let wall = clock.wall_at_start;
        // Three packets 20 ms apart, read together at about 3 s.
        let at: Vec<Duration> = [1000u64, 1020, 1040]
            .iter()
            .map(|ms| clock.arrival(Some(wall + Duration::from_millis(*ms))))
            .collect();
        assert_eq!(
            at,
            [1000u64, 1020, 1040].map(Duration::from_millis).to_vec()
        );
        // No timestamp: the read time.
        assert!(clock.arrival(None) >= Duration::from_secs(3));
        // A wall clock stepped an hour ahead: the read time, and re-anchored.
        let stepped = clock.arrival(Some(wall + Duration::from_secs(3600)));
        assert!(stepped >= Duration::from_secs(3) && stepped < Duration::from_secs(4));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_time_stamps_loopback_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_timestamps(&rx).unwrap();
        // The kernel switches receive timestamping on for the whole stack
        // a moment later (a deferred static key): until then, datagrams are
        // stamped when read.
        std::thread::sleep(Duration::from_millis(200));
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = SystemTime::now();
        tx.send_to(b"rtp", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        let (n, from, stamp) = recv_stamped(&rx, &mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"rtp"[..], tx.local_addr().unwrap()));
        let stamp = stamp.expect("a kernel timestamp");
        // Stamped on arrival, not when read 50 ms later.
        let waited = SystemTime::now().duration_since(stamp).unwrap();
        assert!(waited >= Duration::from_millis(45), "{waited:?}");
        assert!(stamp >= before);
    }
}
