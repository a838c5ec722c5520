//! Reading columns out of a fetched row, the same way on both backends, and the
//! checks that turn a stored word or JSON text back into a value.

use crate::clock::from_millis;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::decode::Decode;
use sqlx::types::Type;
use sqlx::{ColumnIndex, Row};
use std::str::FromStr;

/// The column types Tocsin stores: integers (times as milliseconds), text, flags.
pub(in crate::store) trait Columns {
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn opt_int32(&self, column: &str) -> Result<Option<i32>, StoreError>;
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    /// The first column of a one-column answer (`SELECT COUNT(*)`, `RETURNING id`).
    fn first_int(&self) -> Result<i64, StoreError>;
    fn first_text(&self) -> Result<String, StoreError>;

    fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        Ok(from_millis(self.int(column)?))
    }
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.opt_int(column)?.map(from_millis))
    }
    /// A stored word (`firing`, `P1`, `email`) parsed back into its type.
    fn word<T: FromStr>(&self, column: &str) -> Result<T, StoreError> {
        parse_enum(self.text(column)?)
    }
    /// A JSON column.
    fn json<T: serde::de::DeserializeOwned>(&self, column: &str) -> Result<T, StoreError> {
        parse_json(self.text(column)?)
    }
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_int32(&self, column: &str) -> Result<Option<i32>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn first_int(&self) -> Result<i64, StoreError> {
        Ok(self.try_get(0)?)
    }
    fn first_text(&self) -> Result<String, StoreError> {
        Ok(self.try_get(0)?)
    }
}

pub(super) fn parse_enum<T: FromStr>(text: String) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected value {text:?}")))
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(text: String) -> Result<T, StoreError> {
    serde_json::from_str(&text)
        .map_err(|error| StoreError::Corrupt(format!("bad JSON column: {error}")))
}
