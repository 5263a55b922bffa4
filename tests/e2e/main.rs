//! One end-to-end test binary; its modules mirror the Worker's routes.

mod console;
mod health;
