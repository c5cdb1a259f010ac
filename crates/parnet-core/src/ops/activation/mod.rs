//! activation (being written).
