//! Tests that load the machine on purpose and time what they see, so they must not share it with
//! other tests. Cargo runs test binaries one after another, never two at once: in this binary of
//! their own they never run beside the suite (`tests/tests/suite/`), and within it they take
//! turns (see each module).

mod flood;
