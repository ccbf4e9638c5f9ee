//! The `--codec`, `--frame-len` and `--increment` flags of `recinfo` and
//! `rec2wav`: header fields to read a damaged recording with.

use core::num::NonZeroU16;

use callrec::file::{Codec, HeaderOverrides};

/// Header fields to use instead of the file's own (with `--recover`).
#[derive(clap::Args, Debug)]
pub(crate) struct HeaderFlags {
    /// With --recover: read the file as this codec (PCMA, PCMU, G722),
    /// whatever its codec field says.
    #[arg(long, value_name = "CODEC", value_parser = parse_codec, requires = "recover")]
    codec: Option<Codec>,
    /// With --recover: frame length in bytes, instead of rtpLen.
    #[arg(long, value_name = "BYTES", requires = "recover")]
    frame_len: Option<NonZeroU16>,
    /// With --recover: timestamp increment per frame, instead of increment.
    #[arg(long, value_name = "TICKS", requires = "recover")]
    increment: Option<NonZeroU16>,
}

impl HeaderFlags {
    pub(crate) fn overrides(&self) -> HeaderOverrides {
        HeaderOverrides::new()
            .codec(self.codec)
            .rtp_len(self.frame_len)
            .increment(self.increment)
    }
}

fn parse_codec(name: &str) -> Result<Codec, String> {
    Codec::from_name(name).ok_or_else(|| format!("unknown codec {name:?} (PCMA, PCMU or G722)"))
}
