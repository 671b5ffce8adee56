//! Array parameters for the set-based statements: one array per column,
//! unnested in SQL, so that a batch of rows is one SPI statement.
//!
//! Text columns are assembled by [`TextColumn`] straight into PostgreSQL's
//! array layout. pgrx's `Vec<T>` conversion copies every element three times
//! (to a varlena, into `accumArrayResult`'s state, into the final array),
//! which was 14 % of a 10k-endpoint first scan; here each byte is copied
//! once from the Rust buffer into the array.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use serde::Serialize;

use crate::errors::raise;

/// One array parameter from the values of a column (small or fixed-width
/// columns, where pgrx's conversion is cheap enough).
pub(crate) fn column<T: IntoDatum>(values: impl Iterator<Item = T>) -> DatumWithOid<'static> {
    values.collect::<Vec<T>>().into()
}

/// A `text[]` parameter built in one buffer.
#[derive(Default)]
pub(crate) struct TextColumn {
    /// The elements' bytes, back to back.
    bytes: Vec<u8>,
    /// Where each element ends in `bytes`; `None` for a NULL element.
    ends: Vec<Option<usize>>,
}

impl TextColumn {
    pub(crate) fn of<'s>(values: impl Iterator<Item = Option<&'s str>>) -> Self {
        let mut c = TextColumn::default();
        for v in values {
            c.push(v);
        }
        c
    }

    /// Each value serialised as JSON (evidence).
    pub(crate) fn json<'s, T: Serialize + 's>(values: impl Iterator<Item = &'s T>) -> Self {
        let mut c = TextColumn::default();
        for v in values {
            c.push_json(v);
        }
        c
    }

    /// The `Display` text of each value.
    pub(crate) fn display<T: std::fmt::Display>(values: impl Iterator<Item = T>) -> Self {
        let mut c = TextColumn::default();
        for v in values {
            c.push_display(&v);
        }
        c
    }

    pub(crate) fn push(&mut self, value: Option<&str>) {
        match value {
            Some(s) => {
                self.bytes.extend_from_slice(s.as_bytes());
                self.ends.push(Some(self.bytes.len()));
            }
            None => self.ends.push(None),
        }
    }

    /// Appends `value`'s `Display` text.
    pub(crate) fn push_display<T: std::fmt::Display + ?Sized>(&mut self, value: &T) {
        use std::io::Write;
        write!(self.bytes, "{value}").unwrap_or_else(|e| raise("XX000", format!("formatting a row value: {e}")));
        self.ends.push(Some(self.bytes.len()));
    }

    /// Appends `value` serialised as JSON, without an intermediate String.
    pub(crate) fn push_json<T: Serialize + ?Sized>(&mut self, value: &T) {
        serde_json::to_writer(&mut self.bytes, value)
            .unwrap_or_else(|e| raise("XX000", format!("serialising a row value: {e}")));
        self.ends.push(Some(self.bytes.len()));
    }

    pub(crate) fn into_param(self) -> DatumWithOid<'static> {
        TextArray(self.into_array()).into()
    }

    /// The 1-D `text[]` (lower bound 1) in the current memory context, laid
    /// out as `construct_md_array` would: header, dimensions, null bitmap
    /// when there are NULLs, then each element as a 4-byte-header varlena
    /// aligned to 4 bytes (text's typalign).
    fn into_array(self) -> pg_sys::Datum {
        if self.ends.is_empty() {
            // SAFETY: an empty array is the bare header with no dimensions.
            unsafe {
                return pg_sys::Datum::from(pg_sys::construct_empty_array(pg_sys::TEXTOID));
            }
        }
        const HEADER: usize = std::mem::size_of::<pg_sys::ArrayType>() + 2 * std::mem::size_of::<i32>();
        let n = self.ends.len();
        let nitems = i32::try_from(n).unwrap_or_else(|_| raise("54000", "too many rows for one array parameter"));
        let has_nulls = self.ends.iter().any(Option::is_none);
        let data_offset = maxalign(HEADER + if has_nulls { n.div_ceil(8) } else { 0 });
        let mut size = data_offset;
        let mut start = 0;
        for end in self.ends.iter().flatten() {
            size = align4(size) + pg_sys::VARHDRSZ + (end - start);
            start = *end;
        }
        // MaxAllocSize (not in pgrx's bindings): palloc's limit.
        const MAX_ALLOC_SIZE: usize = 0x3fff_ffff;
        if size > MAX_ALLOC_SIZE {
            raise("54000", format!("an array parameter of {size} bytes is over PostgreSQL's 1 GB limit"));
        }
        // SAFETY: `size` bytes are allocated (zeroed, so alignment padding and
        // the null bitmap start at 0) and every write below stays inside
        // them: the offsets are the ones `size` was computed from.
        unsafe {
            let base = pg_sys::palloc0(size) as *mut u8;
            let array = base as *mut pg_sys::ArrayType;
            pgrx::set_varsize_4b(base as *mut pg_sys::varlena, size as i32);
            (*array).ndim = 1;
            (*array).dataoffset = if has_nulls { data_offset as i32 } else { 0 };
            (*array).elemtype = pg_sys::TEXTOID;
            let dims = base.add(std::mem::size_of::<pg_sys::ArrayType>()) as *mut i32;
            dims.write(nitems);
            dims.add(1).write(1);
            let bitmap = base.add(HEADER);
            let mut at = data_offset;
            let mut start = 0;
            for (i, end) in self.ends.iter().enumerate() {
                let Some(end) = *end else { continue };
                if has_nulls {
                    *bitmap.add(i / 8) |= 1 << (i % 8);
                }
                at = align4(at);
                let len = end - start;
                pgrx::set_varsize_4b(base.add(at) as *mut pg_sys::varlena, (pg_sys::VARHDRSZ + len) as i32);
                std::ptr::copy_nonoverlapping(self.bytes.as_ptr().add(start), base.add(at + pg_sys::VARHDRSZ), len);
                at += pg_sys::VARHDRSZ + len;
                start = end;
            }
            debug_assert_eq!(at, size);
            pg_sys::Datum::from(base)
        }
    }
}

fn align4(n: usize) -> usize {
    n.next_multiple_of(4)
}

fn maxalign(n: usize) -> usize {
    n.next_multiple_of(pg_sys::MAXIMUM_ALIGNOF as usize)
}

/// A ready `text[]` datum, handed to SPI as it is.
#[derive(Clone, Copy)]
struct TextArray(pg_sys::Datum);

impl IntoDatum for TextArray {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTARRAYOID
    }
}

/// A one-dimensional PostgreSQL array literal: a per-row list inside a
/// column that is itself an array parameter (arrays of arrays must be
/// rectangular, these lists are not). Every element is quoted.
pub(crate) struct ArrayLiteral<'a, T>(pub &'a [T]);

impl<T: std::fmt::Display> std::fmt::Display for ArrayLiteral<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        f.write_char('{')?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            f.write_char('"')?;
            for c in item.to_string().chars() {
                if c == '"' || c == '\\' {
                    f.write_char('\\')?;
                }
                f.write_char(c)?;
            }
            f.write_char('"')?;
        }
        f.write_char('}')
    }
}
