//! One end-to-end test binary against real workerd (`wrangler dev`); its modules mirror the Worker's routes.

mod admin;
mod attacks;
mod canaries;
mod cli;
mod consistency;
mod console;
mod forwarding;
mod gateway;
mod health;
mod identities;
mod leaks;
mod logs;
mod openapi;
mod panics;
mod privilege;
mod ratelimit;
mod restart;
mod roles;
mod simulator;
mod verify;
mod webhooks;
