//! The trigger row's jsonb payload, read where it lies.
//!
//! A serde `Deserializer` walks PostgreSQL's binary jsonb with its own
//! iterator (`JsonbIteratorNext`), so the payload goes straight into the typed
//! `ScanPayload`. Printing it as text first (`jsonb_out`) and parsing that
//! text was a fifth of a no-change rescan, and held a payload-sized copy.
//!
//! The result is the same payload the text path gives: jsonb already holds
//! one value per key (the last), strings unescaped, and numbers as numerics,
//! which are read through their canonical text like serde_json reads the
//! text `jsonb_out` would print.

use std::ffi::CStr;

use pgrx::prelude::*;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use xray_engine::ScanPayload;

use crate::errors::{raise, raise_contract};

/// The trigger row's `payload` datum, untouched. Binding it to SPI statements
/// as jsonb costs nothing, where a text parameter would make PostgreSQL parse
/// the whole payload again for every statement that uses it.
#[derive(Clone, Copy)]
pub(crate) struct RawJsonb(pg_sys::Datum);

impl FromDatum for RawJsonb {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then_some(RawJsonb(datum))
    }
}

// SAFETY: a RawJsonb is the datum itself; nothing is dereferenced here.
unsafe impl pgrx::datum::UnboxDatum for RawJsonb {
    type As<'src> = RawJsonb;
    unsafe fn unbox<'src>(datum: pgrx::datum::Datum<'src>) -> Self::As<'src>
    where
        Self: 'src,
    {
        RawJsonb(datum.sans_lifetime())
    }
}

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

impl RawJsonb {
    /// Decodes the payload into its typed form, or raises the contract error (docs/contract.md §P-12).
    pub(crate) fn parse(self) -> ScanPayload {
        // SAFETY: the datum is a non-null jsonb; detoasting returns it as is
        // when it is plain, or a palloc'd copy that lives for the statement.
        let jsonb = unsafe { pg_sys::pg_detoast_datum(self.0.cast_mut_ptr()) as *mut pg_sys::Jsonb };
        // SAFETY: `jsonb` is a complete jsonb value for the whole decode.
        let mut de = unsafe { JsonbDeserializer::new(jsonb) };
        ScanPayload::from_deserializer(&mut de, || self.text()).unwrap_or_else(|e| raise_contract(&e))
    }

    /// The payload's JSON text, for wording an error.
    fn text(self) -> String {
        // SAFETY: jsonb_out takes the non-null jsonb datum and returns a
        // palloc'd C string.
        let cstr = unsafe { pgrx::direct_function_call::<&CStr>(pg_sys::jsonb_out, &[Some(self.0)]) };
        let cstr = cstr.unwrap_or_else(|| raise("XX000", "payload: jsonb_out returned NULL"));
        cstr.to_str().unwrap_or_else(|_| raise("22021", "payload: not valid UTF-8")).to_owned()
    }
}

/// What the decoder only needs to say "refused": the text path words the
/// error the user sees.
#[derive(Debug)]
pub(crate) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

type Token = pg_sys::JsonbIteratorToken::Type;
use pg_sys::JsonbIteratorToken::{
    WJB_BEGIN_ARRAY, WJB_BEGIN_OBJECT, WJB_DONE, WJB_ELEM, WJB_END_ARRAY, WJB_END_OBJECT, WJB_KEY, WJB_VALUE,
};

pub(crate) struct JsonbDeserializer {
    it: *mut pg_sys::JsonbIterator,
    peeked: Option<(Token, pg_sys::JsonbValue)>,
}

impl JsonbDeserializer {
    /// # Safety
    /// `jsonb` must point to a complete, detoasted jsonb value that outlives
    /// the deserializer.
    pub(crate) unsafe fn new(jsonb: *mut pg_sys::Jsonb) -> Self {
        JsonbDeserializer { it: pg_sys::JsonbIteratorInit(&mut (*jsonb).root), peeked: None }
    }

    fn next(&mut self) -> (Token, pg_sys::JsonbValue) {
        if let Some(t) = self.peeked.take() {
            return t;
        }
        if self.it.is_null() {
            // The iterator frees itself after WJB_DONE.
            // SAFETY: an all-zero JsonbValue is jbvNull.
            return (WJB_DONE, unsafe { std::mem::zeroed() });
        }
        // SAFETY: `it` is the live iterator of a jsonb valid for our lifetime
        // (see `new`); JsonbIteratorNext fills `value` for every token.
        unsafe {
            let mut value: pg_sys::JsonbValue = std::mem::zeroed();
            let token = pg_sys::JsonbIteratorNext(&mut self.it, &mut value, false);
            (token, value)
        }
    }

    fn peek(&mut self) -> &(Token, pg_sys::JsonbValue) {
        if self.peeked.is_none() {
            let t = self.next();
            self.peeked = Some(t);
        }
        self.peeked.as_ref().expect("just peeked")
    }

    /// Visits a scalar (a key, a value, or an array element).
    fn scalar<'de, V: Visitor<'de>>(v: &pg_sys::JsonbValue, visitor: V) -> Result<V::Value, Error> {
        // SAFETY: the union member read is the one `type_` names; strings
        // point into the jsonb with their length, numerics are numerics.
        unsafe {
            match v.type_ {
                pg_sys::jbvType::jbvNull => visitor.visit_unit(),
                pg_sys::jbvType::jbvBool => visitor.visit_bool(v.val.boolean),
                pg_sys::jbvType::jbvString => visitor.visit_str(str_of(v)?),
                pg_sys::jbvType::jbvNumeric => {
                    let text = pgrx::direct_function_call::<&CStr>(
                        pg_sys::numeric_out,
                        &[Some(pg_sys::Datum::from(v.val.numeric))],
                    )
                    .ok_or_else(|| Error("numeric_out returned NULL".into()))?;
                    let text = text.to_str().map_err(|_| Error("numeric text is not UTF-8".into()))?;
                    visit_number(text, visitor)
                }
                other => Err(Error(format!("unexpected jsonb value type {other}"))),
            }
        }
    }
}

/// # Safety
/// `v` must be a jbvString.
unsafe fn str_of(v: &pg_sys::JsonbValue) -> Result<&str, Error> {
    let s = v.val.string;
    let bytes = std::slice::from_raw_parts(s.val as *const u8, usize::try_from(s.len).unwrap_or(0));
    std::str::from_utf8(bytes).map_err(|_| Error("string is not UTF-8".into()))
}

/// A number as serde_json would read the same text: an integer without a
/// fraction or exponent that fits u64 (or i64 when negative), else f64.
fn visit_number<'de, V: Visitor<'de>>(text: &str, visitor: V) -> Result<V::Value, Error> {
    let integral = !text.contains(['.', 'e', 'E']);
    if integral {
        if text.starts_with('-') {
            if let Ok(n) = text.parse::<i64>() {
                return visitor.visit_i64(n);
            }
        } else if let Ok(n) = text.parse::<u64>() {
            return visitor.visit_u64(n);
        }
    }
    let f: f64 = text.parse().map_err(|_| Error(format!("number {text} is not a JSON number")))?;
    if !f.is_finite() {
        return Err(Error(format!("number {text} is out of range")));
    }
    visitor.visit_f64(f)
}

impl<'de> de::Deserializer<'de> for &mut JsonbDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (token, value) = self.next();
        match token {
            WJB_BEGIN_OBJECT => visitor.visit_map(Map { de: self }),
            // SAFETY: for WJB_BEGIN_ARRAY the value is the array's header.
            WJB_BEGIN_ARRAY if unsafe { value.val.array.rawScalar } => {
                // A top-level scalar is stored as a one-element raw array.
                let (_, scalar) = self.next();
                let _end = self.next();
                JsonbDeserializer::scalar(&scalar, visitor)
            }
            WJB_BEGIN_ARRAY => visitor.visit_seq(Seq { de: self }),
            WJB_VALUE | WJB_ELEM => JsonbDeserializer::scalar(&value, visitor),
            other => Err(Error(format!("unexpected jsonb token {other}"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (token, value) = self.peek();
        if matches!(*token, WJB_VALUE | WJB_ELEM) && value.type_ == pg_sys::jbvType::jbvNull {
            self.next();
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Unit variants are strings; the contract has no other kind.
        let (token, value) = self.next();
        if matches!(token, WJB_VALUE | WJB_ELEM) && value.type_ == pg_sys::jbvType::jbvString {
            // SAFETY: checked to be a string just above.
            let s = unsafe { str_of(&value)? };
            visitor.visit_enum(s.into_deserializer())
        } else {
            Err(Error("expected a string for an enum".into()))
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'a> {
    de: &'a mut JsonbDeserializer,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.de.peek().0 == WJB_END_ARRAY {
            self.de.next();
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

struct Map<'a> {
    de: &'a mut JsonbDeserializer,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.de.next() {
            (WJB_END_OBJECT, _) => Ok(None),
            (WJB_KEY, key) => {
                // SAFETY: a key is always a jbvString.
                let key = unsafe { str_of(&key)? };
                seed.deserialize(de::value::StrDeserializer::<Error>::new(key)).map(Some)
            }
            (other, _) => Err(Error(format!("unexpected jsonb token {other} in an object"))),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.de)
    }
}
