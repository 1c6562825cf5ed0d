//! A RecordIO adapter over any byte stream (such as an HTTP response body): turns chunks into
//! records, ignoring chunk boundaries.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::recordio::{Decoder, RecordIoError};

/// Why a record stream ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(E),
    /// The bytes were not valid RecordIO.
    #[error(transparent)]
    Framing(#[from] RecordIoError),
}

/// Yields each RecordIO record of the wrapped byte stream. After an error it yields nothing more.
#[derive(Debug)]
pub struct RecordStream<S> {
    inner: S,
    decoder: Decoder,
    done: bool,
}

impl<S> RecordStream<S> {
    /// Wraps `inner`, refusing records larger than `max_record_size` bytes.
    pub fn new(inner: S, max_record_size: usize) -> Self {
        Self { inner, decoder: Decoder::new(max_record_size), done: false }
    }
}

impl<S, B, E> Stream for RecordStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    type Item = Result<Bytes, StreamError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.decoder.next_record() {
                Ok(Some(record)) => return Poll::Ready(Some(Ok(record))),
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.decoder.push(chunk.as_ref()),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(StreamError::Transport(e))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return match this.decoder.finish() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e.into()))),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recordio::encode;
    use futures_util::{StreamExt, stream};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // A tiny executor is enough: the test streams are always ready.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn splits_records_across_chunks() {
        let mut bytes = encode(b"hello").to_vec();
        bytes.extend_from_slice(&encode(b"world"));
        let chunks: Vec<Result<Vec<u8>, ()>> = bytes.chunks(3).map(|c| Ok(c.to_vec())).collect();
        let records: Vec<_> = block_on(RecordStream::new(stream::iter(chunks), 1024).collect());
        let records: Vec<Bytes> = records.into_iter().map(|r| r.expect("valid")).collect();
        assert_eq!(records, vec![Bytes::from_static(b"hello"), Bytes::from_static(b"world")]);
    }

    #[test]
    fn transport_error_and_truncation_end_the_stream() {
        let chunks: Vec<Result<Vec<u8>, &str>> = vec![Ok(b"5\nab".to_vec())];
        let out: Vec<_> = block_on(RecordStream::new(stream::iter(chunks), 1024).collect());
        assert!(matches!(out.as_slice(), [Err(StreamError::Framing(RecordIoError::Truncated { .. }))]));

        let chunks: Vec<Result<Vec<u8>, &str>> = vec![Ok(b"1\na".to_vec()), Err("reset"), Ok(b"1\nb".to_vec())];
        let out: Vec<_> = block_on(RecordStream::new(stream::iter(chunks), 1024).collect());
        assert_eq!(out.len(), 2);
        assert!(matches!(out[1], Err(StreamError::Transport("reset"))));
    }
}
