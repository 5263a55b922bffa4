//! The SQL the objects speak, behind one small trait: Durable Objects' SQLite storage in the Worker
//! (`runtime.rs`), an in-memory SQLite (`rusqlite`) in the native tests. Both run the very same statements.
//!
//! A handler runs inside one transaction (`transactionSync` in the Worker, a SQLite transaction natively): it
//! either commits every statement or, when it returns an error, none.

use std::fmt;

use serde::de::DeserializeOwned;

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<u32> for SqlValue {
    fn from(v: u32) -> Self {
        Self::Integer(i64::from(v))
    }
}

impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        Self::Integer(i64::from(v))
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl From<keygate_shared::time::Timestamp> for SqlValue {
    fn from(v: keygate_shared::time::Timestamp) -> Self {
        Self::Integer(v.millis())
    }
}

/// A statement failed, or a row did not have the expected shape. Storage that cannot be read is an error, never
/// an empty answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError(pub String);

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sql: {}", self.0)
    }
}

impl std::error::Error for SqlError {}

/// Runs statements. Rows come back as JSON objects keyed by column name.
pub trait Sql {
    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<serde_json::Value>, SqlError>;
}

/// Parameters as `[SqlValue]`: `params![a, b]`.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { &[$($crate::sql::SqlValue::from($v)),*] };
}

/// Typed helpers over [`Sql`].
pub trait SqlExt: Sql {
    /// Runs a statement that returns no rows.
    fn run(&self, query: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        self.exec(query, params).map(|_| ())
    }

    /// All rows, each decoded into `T`.
    fn all<T: DeserializeOwned>(&self, query: &str, params: &[SqlValue]) -> Result<Vec<T>, SqlError> {
        self.exec(query, params)?
            .into_iter()
            .map(|row| serde_json::from_value(row).map_err(|e| SqlError(format!("row of `{query}`: {e}"))))
            .collect()
    }

    /// The first row, if any.
    fn first<T: DeserializeOwned>(&self, query: &str, params: &[SqlValue]) -> Result<Option<T>, SqlError> {
        Ok(self.all(query, params)?.into_iter().next())
    }

    /// A single integer (`SELECT count(*) AS n ...`), 0 when there is no row.
    fn count(&self, query: &str, params: &[SqlValue]) -> Result<i64, SqlError> {
        #[derive(serde::Deserialize)]
        struct N {
            n: Option<i64>,
        }
        Ok(self.first::<N>(query, params)?.and_then(|r| r.n).unwrap_or(0))
    }
}

impl<S: Sql + ?Sized> SqlExt for S {}

/// A stored JSON column, decoded: an unreadable value is an error.
pub fn json_column<T: DeserializeOwned>(text: &str) -> Result<T, SqlError> {
    serde_json::from_str(text).map_err(|e| SqlError(format!("unreadable stored value: {e}")))
}

/// Writes a value for a JSON column.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
pub mod memory {
    //! An in-memory SQLite with the same statements, for native tests.

    use std::cell::RefCell;

    use rusqlite::types::{Value as Raw, ValueRef};

    use super::{Sql, SqlError, SqlValue};

    #[derive(Debug)]
    pub struct MemorySql {
        pub conn: RefCell<rusqlite::Connection>,
    }

    impl Default for MemorySql {
        fn default() -> Self {
            Self { conn: RefCell::new(rusqlite::Connection::open_in_memory().expect("an in-memory SQLite")) }
        }
    }

    impl MemorySql {
        /// Runs `f` in one transaction: all of it commits, or none (when it returns an error).
        pub fn transaction<R, E>(&self, f: impl FnOnce(&Self) -> Result<R, E>) -> Result<R, E> {
            self.conn.borrow().execute_batch("BEGIN").expect("begin");
            let out = f(self);
            let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
            self.conn.borrow().execute_batch(end).expect("end of transaction");
            out
        }
    }

    impl Sql for MemorySql {
        fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<serde_json::Value>, SqlError> {
            let conn = self.conn.borrow();
            let err = |e: rusqlite::Error| SqlError(format!("{e} in `{query}`"));
            let mut stmt = conn.prepare(query).map_err(err)?;
            let values: Vec<Raw> = params
                .iter()
                .map(|p| match p {
                    SqlValue::Null => Raw::Null,
                    SqlValue::Integer(i) => Raw::Integer(*i),
                    SqlValue::Text(t) => Raw::Text(t.clone()),
                })
                .collect();
            let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
            let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(err)? {
                let mut object = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    let value = match row.get_ref(i).map_err(err)? {
                        ValueRef::Null => serde_json::Value::Null,
                        ValueRef::Integer(n) => serde_json::Value::from(n),
                        ValueRef::Real(f) => serde_json::Value::from(f),
                        ValueRef::Text(t) => serde_json::Value::from(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(_) => return Err(SqlError("blobs are not used".into())),
                    };
                    object.insert(name.clone(), value);
                }
                out.push(serde_json::Value::Object(object));
            }
            Ok(out)
        }
    }
}
