//! The proc-macros of Pigeon. Use them through `pigeon::prelude`.
