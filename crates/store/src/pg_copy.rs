//! PostgreSQL's binary `COPY` format, written for bulk loads.
//!
//! A multi-row `INSERT` makes PostgreSQL parse each bound value and set up the expressions of
//! every row of its `VALUES` list; `COPY … FROM STDIN (FORMAT binary)` hands it the values ready
//! to store. This module only encodes rows into that stream (pure, no I/O); the PostgreSQL store
//! sends it. It knows the handful of column types the store loads this way (text, bytea, bigint,
//! NULL) and deliberately nothing else.

use crate::{Result, StoreError};

/// The stream's fixed start: the signature, no flags, no header extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows of one `COPY`, encoded as they are added.
pub(crate) struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    pub(crate) fn new() -> CopyRows {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(HEADER);
        CopyRows { buf }
    }

    /// Starts a row of `fields` values; exactly that many must follow.
    pub(crate) fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    /// A `text` or `bytea` value: in the binary format both are their bytes as they are.
    pub(crate) fn bytes(&mut self, value: &[u8]) -> Result<&mut Self> {
        let len = i32::try_from(value.len()).map_err(|_| {
            StoreError::Corrupt(format!(
                "a value of {} bytes is too long for PostgreSQL",
                value.len()
            ))
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    pub(crate) fn text(&mut self, value: &str) -> Result<&mut Self> {
        self.bytes(value.as_bytes())
    }

    /// A `bigint` value.
    pub(crate) fn int8(&mut self, value: i64) -> &mut Self {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    /// How many bytes are waiting to be sent.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes so far, leaving the encoder empty (without the header) for the next ones.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The last bytes: the rest of the rows and the trailer that ends the stream.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_laid_out_as_postgresql_reads_them() {
        let mut rows = CopyRows::new();
        rows.row(4);
        rows.text("张三").unwrap();
        rows.int8(-2);
        rows.null();
        rows.bytes(&[0, 0xff]).unwrap();
        let bytes = rows.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // flags, extension length
        expected.extend_from_slice(&[0, 4]); // four fields
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice("张三".as_bytes());
        expected.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // NULL
        expected.extend_from_slice(&[0, 0, 0, 2, 0, 0xff]);
        expected.extend_from_slice(&[0xff, 0xff]); // trailer
        assert_eq!(bytes, expected);
    }

    #[test]
    fn taking_the_bytes_leaves_the_stream_going_on() {
        let mut rows = CopyRows::new();
        rows.row(1).int8(1);
        let first = rows.take();
        assert_eq!(first.len(), HEADER.len() + 2 + 12);
        assert_eq!(rows.len(), 0);
        rows.row(1).int8(2);
        let rest = rows.finish();
        assert_eq!(rest.len(), 2 + 12 + 2);
        assert_eq!(&rest[rest.len() - 2..], &[0xff, 0xff]);
    }
}
