//! A bounds-checked little-endian reader over a byte slice that knows its
//! absolute offset, so that every error can say where it happened. Nothing
//! here allocates by a length read from the input: callers take slices of
//! the input, which exist already, and only copy what is really there.

use super::error::{Result, TnefError};

/// A position in a borrowed byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data[0]` in the outermost stream, for error messages.
    base: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`, which sits at `base` in the stream.
    pub(crate) fn new(data: &'a [u8], base: usize) -> Self {
        Cursor { data, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// True when every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes, borrowed; an error naming `what` when fewer are left.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let available = self.remaining();
        if n > available {
            return Err(TnefError::Truncated {
                offset: self.offset(),
                what,
                needed: n,
                available,
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.data[start..start + n])
    }

    /// Skips `n` bytes (padding).
    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.take(n, what).map(|_| ())
    }

    /// Reads a fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian u16.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u32.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u64.
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a u32 length and checks that at least that many bytes remain,
    /// returning it as usize. Use before any loop or slice sized by it.
    pub(crate) fn len_u32(&mut self, what: &'static str) -> Result<usize> {
        let at = self.offset();
        let n = self.u32(what)? as usize;
        if n > self.remaining() {
            return Err(TnefError::Truncated {
                offset: at,
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        Ok(n)
    }
}

/// Bytes of padding after `len` bytes to reach a multiple of four.
pub(crate) fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}
