//! Spend report for `compass cost` (being written).
