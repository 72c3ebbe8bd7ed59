//! Integration tests of the real program binary live in `program/`
//! (`cargo test -p paychan-tests`); this library is empty on purpose.
