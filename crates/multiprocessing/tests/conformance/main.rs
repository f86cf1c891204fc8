//! Conformance tests ported from CPython 3.11's `Lib/test/_test_multiprocessing.py`
//! (`_TestProcess`, `TestStartMethod`, `_TestSubclassingProcess`...), one module per Python
//! feature. Each test names its source test, and every process test runs once per start
//! method (`fork`, `spawn`, `forkserver` submodules), as CPython runs its suite as
//! `test_multiprocessing_fork`, `_spawn` and `_forkserver`.
//!
//! Spawn and forkserver children run this test binary again; `init_before_main!` makes
//! them run their target before libtest's `main` starts. Process tests take one global
//! lock ([`support::serial`]) — forking while other tests run would copy their half-done
//! state into the child — and check, when they end, that no child is left a zombie.

multiprocessing::init_before_main!();

#[path = "../../../threading/tests/conformance/barrier_tests.rs"]
mod barrier_tests;
mod context;
mod dummy;
mod errors;
mod listener;
mod managers;
#[path = "../../../threading/tests/conformance/lock_tests.rs"]
#[allow(dead_code, reason = "the threading crate's bodies; not all apply here")]
mod lock_tests;
#[path = "../../../threading/tests/conformance/semaphore_event_tests.rs"]
#[allow(dead_code, reason = "the threading crate's bodies")]
mod semaphore_event_tests;
mod pickle;
mod pipe;
mod pipe_rings;
mod pool;
mod process;
mod queue;
mod reduction;
mod shared;
mod shared_memory;
mod support;
mod synchronize;
mod thread_pool;
mod util;
