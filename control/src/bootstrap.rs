//! The one global thing: whether this deployment has been bootstrapped. A tiny SQLite-backed object remembers the
//! first organization and owner it reserved, so a bootstrap that stopped half way resumes with the same ids when
//! it is retried, and a finished one is never repeated.

use serde::{Deserialize, Serialize};

use crate::params;
use crate::sql::{Sql, SqlError, SqlExt};

pub fn migrate(db: &impl Sql) -> Result<(), SqlError> {
    db.run(
        "CREATE TABLE IF NOT EXISTS bootstrap (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, \
         organization TEXT NOT NULL, user_id TEXT NOT NULL)",
        &[],
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapRequest {
    /// Reserve these ids, or resume with the ones reserved earlier.
    Begin {
        organization: String,
        user: String,
    },
    Finish,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapReply {
    /// Go on with these ids.
    Started {
        organization: String,
        user: String,
    },
    Done,
    AlreadyDone,
}

#[derive(Debug)]
pub struct Bootstrap<'a, S: Sql> {
    pub db: &'a S,
}

impl<S: Sql> Bootstrap<'_, S> {
    pub fn handle(&self, request: BootstrapRequest) -> Result<BootstrapReply, SqlError> {
        migrate(self.db)?;
        #[derive(Deserialize)]
        struct Row {
            state: String,
            organization: String,
            user_id: String,
        }
        let row: Option<Row> = self.db.first("SELECT state, organization, user_id FROM bootstrap WHERE id = 1", &[])?;
        match (request, row) {
            (_, Some(row)) if row.state == "done" => Ok(BootstrapReply::AlreadyDone),
            (BootstrapRequest::Begin { .. }, Some(row)) => {
                Ok(BootstrapReply::Started { organization: row.organization, user: row.user_id })
            }
            (BootstrapRequest::Begin { organization, user }, None) => {
                self.db.run(
                    "INSERT INTO bootstrap (id, state, organization, user_id) VALUES (1, 'started', ?, ?)",
                    params![organization.as_str(), user.as_str()],
                )?;
                Ok(BootstrapReply::Started { organization, user })
            }
            (BootstrapRequest::Finish, Some(_)) => {
                self.db.run("UPDATE bootstrap SET state = 'done' WHERE id = 1", &[])?;
                Ok(BootstrapReply::Done)
            }
            (BootstrapRequest::Finish, None) => Err(SqlError(String::from("bootstrap finished before it began"))),
        }
    }
}
