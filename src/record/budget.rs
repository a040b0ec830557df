//! The flash-write budget of the record and its side files.

use std::time::Duration;

use crate::clock::Mono;

use super::{BYTES_PER_HOUR, BYTE_BURST, FSYNCS_PER_HOUR, FSYNC_BURST};

/// The flash-write budget, as two token buckets kept as "theoretical arrival times" on the
/// supervisor clock (GCRA): a bucket is full when its time is at or before now, and each fsync
/// or byte spent moves its time on by what earning one takes. Memory and arithmetic only.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Budget {
    fsyncs: Mono,
    bytes: Mono,
}

impl Budget {
    const PER_FSYNC: Duration = Duration::from_nanos(3_600_000_000_000 / FSYNCS_PER_HOUR);
    const PER_BYTE_NS: u64 = 3_600_000_000_000 / BYTES_PER_HOUR;

    fn byte_time(bytes: u64) -> Duration {
        Duration::from_nanos(bytes.saturating_mul(Self::PER_BYTE_NS))
    }

    /// When a write of `fsyncs` fsyncs may start: the fsyncs must be there in full, the byte
    /// balance above zero.
    pub(super) fn ready(&self, fsyncs: u64) -> Mono {
        let f = self
            .fsyncs
            .saturating_sub(Self::PER_FSYNC * (FSYNC_BURST - fsyncs) as u32);
        f.max(self.bytes_ready())
    }

    /// When the byte balance is above zero again.
    pub(super) fn bytes_ready(&self) -> Mono {
        self.bytes.saturating_sub(Self::byte_time(BYTE_BURST))
    }

    pub(super) fn spend(&mut self, now: Mono, fsyncs: u64, bytes: u64) {
        self.fsyncs = self.fsyncs.max(now) + Self::PER_FSYNC * fsyncs as u32;
        self.bytes = self.bytes.max(now) + Self::byte_time(bytes);
    }
}
