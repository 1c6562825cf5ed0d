//! RecordIO framing as Mesos uses it for event streams: `<decimal length>\n<length bytes>`,
//! repeated, with no separator after the record data.
//!
//! [`Decoder`] is sans-IO: feed it bytes as they arrive (HTTP chunk boundaries mean nothing) and
//! pull complete records out. It tells "need more bytes" (`Ok(None)`) apart from "this stream is
//! broken" (`Err`). [`encode`] writes one record.

use bytes::{Buf, Bytes, BytesMut};

/// Default cap on a single record: larger records are refused instead of buffered.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 64 * 1024 * 1024;

/// The longest length prefix we accept; `u64::MAX` has 20 digits.
const MAX_LENGTH_DIGITS: usize = 20;

/// Why a RecordIO byte stream cannot be decoded. Every variant is final for the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The length prefix contains something other than ASCII digits before the newline.
    #[error("invalid RecordIO length prefix {prefix:?}: expected decimal digits followed by '\\n'")]
    BadLength {
        /// The offending prefix bytes, lossily decoded for the message.
        prefix: String,
    },
    /// A record of length zero, which RecordIO does not allow.
    #[error("invalid RecordIO record of length 0")]
    ZeroLength,
    /// The announced record is larger than the configured maximum.
    #[error("RecordIO record of {size} bytes exceeds the maximum of {max} bytes")]
    Oversize {
        /// Announced length.
        size: u64,
        /// Configured maximum.
        max: usize,
    },
    /// The stream ended inside a record or a length prefix.
    #[error("RecordIO stream ended inside a record ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes left over in the buffer when the stream ended.
        buffered: usize,
    },
}

/// Incremental RecordIO decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_record_size: usize,
    /// Length of the record whose prefix has been consumed but whose data has not fully arrived.
    pending: Option<usize>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_SIZE)
    }
}

impl Decoder {
    /// A decoder that refuses records larger than `max_record_size` bytes.
    pub fn new(max_record_size: usize) -> Self {
        Self { buf: BytesMut::new(), max_record_size, pending: None }
    }

    /// Appends bytes received from the transport.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete record, `Ok(None)` when more bytes are needed, or an error when
    /// the stream is malformed (after which the decoder should be dropped).
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let len = match self.pending {
            Some(len) => len,
            None => match self.read_length()? {
                Some(len) => len,
                None => return Ok(None),
            },
        };
        if self.buf.len() < len {
            self.pending = Some(len);
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Checks that the stream ended on a record boundary.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        // Stray newlines between records are tolerated, as in the Mesos reader.
        let leftover = self.buf.iter().filter(|b| **b != b'\n').count();
        if self.pending.is_some() || leftover > 0 {
            return Err(RecordIoError::Truncated { buffered: self.buf.len() });
        }
        Ok(())
    }

    /// Bytes buffered but not yet returned as a record.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn read_length(&mut self) -> Result<Option<usize>, RecordIoError> {
        let blank = self.buf.iter().take_while(|b| **b == b'\n' || **b == b'\r').count();
        self.buf.advance(blank);
        // The error names the same bytes however the stream was chunked: the prefix up to the
        // first byte that cannot belong to a length, or the first digit too many.
        let digits = self.buf.iter().take(MAX_LENGTH_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_LENGTH_DIGITS {
            return Err(self.bad_length(MAX_LENGTH_DIGITS + 1));
        }
        match self.buf.get(digits) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => return Err(self.bad_length(digits + 1)),
        }
        let size =
            std::str::from_utf8(&self.buf[..digits]).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| self.bad_length(digits))?;
        if size == 0 {
            return Err(RecordIoError::ZeroLength);
        }
        if size > self.max_record_size as u64 {
            return Err(RecordIoError::Oversize { size, max: self.max_record_size });
        }
        self.buf.advance(digits + 1);
        // `size` fits in usize because it is at most `max_record_size`.
        Ok(Some(size as usize))
    }

    fn bad_length(&self, upto: usize) -> RecordIoError {
        RecordIoError::BadLength { prefix: String::from_utf8_lossy(&self.buf[..upto]).into_owned() }
    }
}

/// Frames one record: its decimal byte length, a newline, then the bytes.
pub fn encode(record: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(record.len() + 12);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(record);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Bytes>, RecordIoError> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(r) = d.next_record()? {
                out.push(r);
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn decodes_back_to_back_records_without_separator() {
        let stream = b"20\n{\"type\":\"HEARTBEAT\"}3\nabc";
        let recs = decode_all(&[stream]).expect("valid stream");
        assert_eq!(recs, vec![Bytes::from_static(b"{\"type\":\"HEARTBEAT\"}"), Bytes::from_static(b"abc")]);
    }

    #[test]
    fn length_counts_bytes_not_characters() {
        let rec = "{\"m\":\"h\u{e9}\"}".as_bytes();
        let framed = encode(rec);
        assert!(framed.starts_with(format!("{}\n", rec.len()).as_bytes()));
        assert_eq!(decode_all(&[&framed]).expect("valid"), vec![Bytes::copy_from_slice(rec)]);
    }

    #[test]
    fn tolerates_blank_lines_between_records() {
        assert_eq!(decode_all(&[b"\n1\na\n\n1\nb"]).expect("valid").len(), 2);
    }

    #[test]
    fn rejects_bad_prefixes() {
        assert!(matches!(decode_all(&[b"x1\na"]), Err(RecordIoError::BadLength { .. })));
        assert!(matches!(decode_all(&[b"-1\na"]), Err(RecordIoError::BadLength { .. })));
        assert!(matches!(decode_all(&[b"0\n"]), Err(RecordIoError::ZeroLength)));
        assert!(matches!(decode_all(&[b"123456789012345678901234\n"]), Err(RecordIoError::BadLength { .. })));
        assert!(matches!(decode_all(&[b"18446744073709551616\n"]), Err(RecordIoError::BadLength { .. })));
        // A prefix that can never become digits fails before its newline arrives.
        let mut d = Decoder::default();
        d.push(b"{\"type\"");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength { .. })));
    }

    #[test]
    fn errors_do_not_depend_on_chunking() {
        // Found by proptest: the error used to quote whatever happened to be buffered.
        let bad = |chunks: &[&[u8]]| {
            let mut d = Decoder::default();
            chunks.iter().find_map(|c| {
                d.push(c);
                d.next_record().err()
            })
        };
        let garbage = b"\0\x0b\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        assert_eq!(bad(&[&garbage[..1], &garbage[1..]]), bad(&[garbage]));
        assert_eq!(bad(&[garbage]), Some(RecordIoError::BadLength { prefix: "\0".into() }));
        assert_eq!(bad(&[b"12", b"a\n"]), bad(&[b"12a\n"]));
        let long = [b'1'; 30];
        assert_eq!(bad(&[&long[..21]]), bad(&[&long, b"\n"]));
    }

    #[test]
    fn rejects_oversize_before_buffering_it() {
        let mut d = Decoder::new(10);
        d.push(b"11\n");
        assert_eq!(d.next_record(), Err(RecordIoError::Oversize { size: 11, max: 10 }));
    }

    #[test]
    fn truncated_stream_is_an_error_at_finish() {
        assert!(matches!(decode_all(&[b"5\nab"]), Err(RecordIoError::Truncated { .. })));
        assert!(matches!(decode_all(&[b"12"]), Err(RecordIoError::Truncated { .. })));
    }

    proptest! {
        #[test]
        fn any_chunking_decodes_the_same_records(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode(r).to_vec()).collect();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            let decoded = decode_all(&chunks).expect("valid stream");
            prop_assert_eq!(decoded, records.into_iter().map(Bytes::from).collect::<Vec<_>>());
        }

        /// Chunk boundaries never change the outcome, even for garbage: the same records, then
        /// the same error or the same need for more bytes, with the buffer bounded.
        #[test]
        fn arbitrary_bytes_decode_the_same_in_any_chunking(
            data in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), b'0'..=b'9'], 0..512),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let run = |chunks: &[&[u8]]| {
                let mut d = Decoder::new(64);
                let mut out = Vec::new();
                for c in chunks {
                    d.push(c);
                    loop {
                        match d.next_record() {
                            Ok(Some(r)) => out.push(Ok(r)),
                            Ok(None) => break,
                            Err(e) => {
                                out.push(Err(e));
                                return (out, None);
                            }
                        }
                    }
                }
                (out, Some(d.finish().is_ok()))
            };
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            points.extend([0, data.len()]);
            points.sort_unstable();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &data[w[0]..w[1]]).collect();
            let whole = run(&[&data]);
            prop_assert_eq!(run(&chunks), whole.clone());
            for r in whole.0.iter().flatten() {
                prop_assert!(!r.is_empty() && r.len() <= 64);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = Decoder::new(1024);
            d.push(&data);
            while let Ok(Some(_)) = d.next_record() {}
        }
    }
}
