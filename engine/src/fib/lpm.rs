//! DIR-24-8 longest-prefix-match table.
