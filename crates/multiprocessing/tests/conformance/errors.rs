//! Every message of CPYTHON.md §2.13 that `Process` and the contexts raise, word for word.

use multiprocessing::{Error, Process, StartMethod};

use crate::support;

#[test]
fn process_messages_match_cpython() {
    let _serial = support::serial();
    let p = Process::new(|| {});
    let join_unstarted = p.join().unwrap_err();
    assert!(matches!(join_unstarted, Error::AssertionError(_)));
    assert_eq!(join_unstarted.to_string(), "can only join a started process");
    assert_eq!(p.sentinel().unwrap_err().to_string(), "process not started");
    p.start().unwrap();
    let twice = p.start().unwrap_err();
    assert!(matches!(twice, Error::AssertionError(_)));
    assert_eq!(twice.to_string(), "cannot start a process twice");
    assert_eq!(p.set_daemon(true).unwrap_err().to_string(), "process has already started");
    p.join().unwrap();
    p.close().unwrap();
    let closed = p.join().unwrap_err();
    assert!(matches!(closed, Error::ValueError(_)));
    assert_eq!(closed.to_string(), "process object is closed");
}

#[test]
fn unknown_start_method_names_are_refused_with_cpythons_text() {
    let err = "bogus".parse::<StartMethod>().unwrap_err();
    assert!(matches!(err, Error::ValueError(_)));
    assert_eq!(err.to_string(), "cannot find context for 'bogus'");
    assert_eq!("spawn".parse::<StartMethod>().unwrap(), StartMethod::Spawn);
    assert_eq!(StartMethod::ForkServer.to_string(), "forkserver");
}

#[test]
fn signalling_an_unstarted_process_says_it_is_not_started() {
    let p = Process::new(|| {});
    assert_eq!(p.terminate().unwrap_err().to_string(), "process not started");
    assert_eq!(p.kill().unwrap_err().to_string(), "process not started");
}
