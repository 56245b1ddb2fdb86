//! The class topology: a configuration value (`sfu.default_topology`) and a protocol field, so it
//! lives below both the settings and the signaling crate.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How media flows in a class. `auto` picks direct connections for small classes and the SFU above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    P2p,
    Sfu,
    #[default]
    Auto,
}
