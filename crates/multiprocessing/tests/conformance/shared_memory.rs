//! `multiprocessing::shared_memory`: ports of `_TestSharedMemory` (`_test_multiprocessing.py`,
//! each test naming its source), and interoperability with the installed `python3` both
//! ways (skipped with a message when it is absent).

use std::io::ErrorKind;
use std::process::Command;

use multiprocessing::shared_memory::{Item, ShareableList, SharedMemory, SharedMemoryManager};
use multiprocessing::{Error, Queue, StartMethod};

use crate::each_start_method;
use crate::support::{call, python_missing, serial};

fn new_shm_name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

fn is_kind(error: &Error, kind: ErrorKind) -> bool {
    matches!(error, Error::OsError(e) if e.kind() == kind)
}

/// Unlinks a block by name when dropped (the tests' `addCleanup(sms.unlink)`).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(shm) = SharedMemory::attach(&self.0) {
            let _ = shm.unlink();
        }
    }
}

/// test_shared_memory_basics.
#[test]
fn basics_create_attach_name_size_and_errors() {
    let name = new_shm_name("test01_tsmb");
    let sms = SharedMemory::create_named(&name, 512).unwrap();
    let _cleanup = Cleanup(name.clone());
    assert_eq!(sms.name(), name);
    assert!(sms.size() >= 512);
    let repr = format!("{sms:?}");
    assert!(repr.contains(&name) && repr.contains(&sms.size().to_string()), "{repr}");
    sms.write_at(0, &[42]).unwrap();
    let mut byte = [0u8];
    sms.read_at(0, &mut byte).unwrap();
    assert_eq!(byte, [42]);
    let also = SharedMemory::attach(&name).unwrap();
    also.read_at(0, &mut byte).unwrap();
    assert_eq!(byte, [42]);
    assert_eq!(also.size(), sms.size());
    also.close();

    // Posix shared memory can be unlinked only once.
    let double = new_shm_name("test01_dblunlink");
    let uno = SharedMemory::create_named(&double, 5000).unwrap();
    assert!(uno.size() >= 5000);
    let duo = SharedMemory::attach(&double).unwrap();
    duo.unlink().unwrap();
    duo.close();
    uno.close();
    let second = uno.unlink().unwrap_err();
    assert!(is_kind(&second, ErrorKind::NotFound), "{second}");
    assert_eq!(second.to_string(), format!("[Errno 2] No such file or directory: '/{double}'"));

    let taken = SharedMemory::create_named(&name, 512).unwrap_err();
    assert!(is_kind(&taken, ErrorKind::AlreadyExists), "{taken}");
    let missing = SharedMemory::attach("test01_notthere").unwrap_err();
    assert!(is_kind(&missing, ErrorKind::NotFound), "{missing}");
    sms.close();
}

/// test_shared_memory_recreate, without its mock: fresh names have CPython's form
/// (`psm_` and 8 hex digits, 12 characters: `_SHM_SAFE_NAME_LENGTH` with the `/`) and do
/// not repeat.
#[test]
fn fresh_names_have_cpythons_form_and_differ() {
    let blocks: Vec<SharedMemory> = (0..20).map(|_| SharedMemory::create(1).unwrap()).collect();
    let mut names: Vec<&str> = blocks.iter().map(SharedMemory::name).collect();
    for name in &names {
        let hex = name.strip_prefix("psm_").expect(name);
        assert!(hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 20);
    for block in &blocks {
        block.unlink().unwrap();
    }
}

/// test_invalid_shared_memory_cration.
#[test]
fn a_zero_size_is_refused_with_cpythons_text() {
    for made in [SharedMemory::create(0), SharedMemory::create_named("pyconc_zero", 0)] {
        let error = made.unwrap_err();
        assert!(matches!(error, Error::ValueError(_)));
        assert_eq!(error.to_string(), "'size' must be a positive number different from zero");
    }
}

/// Names `shm_open` refuses, and ones with a NUL, are errors.
#[test]
fn bad_names_are_refused() {
    let slash = SharedMemory::create_named("a/b", 8).unwrap_err();
    assert_eq!(slash.to_string(), "[Errno 22] Invalid argument: '/a/b'");
    let nul = SharedMemory::create_named("a\0b", 8).unwrap_err();
    assert_eq!(nul.to_string(), "embedded null character");
    let long = SharedMemory::create_named(&"x".repeat(300), 8).unwrap_err();
    assert!(matches!(long, Error::OsError(_)), "{long}");
}

/// Reads and writes outside the block, or through a closed handle, are errors; views
/// keep the mapping after `close`.
#[test]
fn bounds_and_closed_handles_are_checked() {
    let shm = SharedMemory::create(10).unwrap();
    let mut out = [0u8; 4];
    assert!(shm.read_at(7, &mut out).is_err());
    assert!(shm.write_at(usize::MAX, &[1, 2]).is_err());
    shm.write_at(6, &[1, 2, 3, 4]).unwrap();
    // SAFETY: nothing writes the block while the view lives.
    let view = unsafe { shm.as_slice::<u8>() }.unwrap();
    shm.close();
    assert_eq!(&view[6..10], &[1, 2, 3, 4], "the view outlives close");
    assert_eq!(shm.read_at(0, &mut out).unwrap_err().to_string(), "mmap closed or invalid");
    drop(view);
    shm.unlink().unwrap();
}

/// test_shared_memory_pickle_unpickle: a block serialized (here through a queue) arrives
/// as the same block.
#[test]
fn a_serialized_block_is_the_same_block() {
    let sms = SharedMemory::create(512).unwrap();
    let _cleanup = Cleanup(sms.name().to_owned());
    sms.write_at(0, b"pickle").unwrap();
    let queue = Queue::<SharedMemory>::new(0).unwrap();
    queue.put(SharedMemory::attach(sms.name()).unwrap()).unwrap();
    let sms2 = queue.get().unwrap();
    assert_eq!(sms.name(), sms2.name());
    let mut out = [0u8; 6];
    sms2.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"pickle");
    sms.write_at(0, b"newval").unwrap();
    sms2.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"newval");
    sms2.write_at(0, b"oldval").unwrap();
    sms.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"oldval");
}

/// test_shared_memory_pickle_unpickle_dead_object.
#[test]
fn a_serialized_block_that_was_unlinked_does_not_arrive() {
    let sms = SharedMemory::create(512).unwrap();
    let queue = Queue::<SharedMemory>::new(0).unwrap();
    queue.put(SharedMemory::attach(sms.name()).unwrap()).unwrap();
    sms.close();
    sms.unlink().unwrap();
    let error = queue.get().unwrap_err();
    assert!(error.to_string().contains("No such file or directory"), "{error}");
}

fn attach_then_write((name, data): (String, Vec<u8>)) {
    let local = SharedMemory::attach(&name).unwrap();
    local.write_at(0, &data).unwrap();
    local.close();
}

fn write_through((block, data): (SharedMemory, Vec<u8>)) {
    block.write_at(0, &data).unwrap();
}

/// test_shared_memory_across_processes: a child attaches by name, and a child receives
/// the block itself.
fn across_processes(method: StartMethod) {
    let sms = SharedMemory::create(512).unwrap();
    let _cleanup = Cleanup(sms.name().to_owned());
    let p = call(method, attach_then_write, (sms.name().to_owned(), b"howdy".to_vec()));
    p.set_daemon(true).unwrap();
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    let mut out = [0u8; 5];
    sms.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"howdy");
    let block = SharedMemory::attach(sms.name()).unwrap();
    let p = call(method, write_through, (block, b"HELLO".to_vec()));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    sms.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"HELLO");
    sms.close();
}

each_start_method! {
    blocks_cross_processes => across_processes;
    shareable_lists_cross_processes => lists_across_processes;
}

/// test_shared_memory_SharedMemoryServer_ignores_sigint.
#[test]
fn the_shared_memory_managers_server_ignores_sigint() {
    let _serial = serial();
    let smm = SharedMemoryManager::new().unwrap();
    let first = smm.shareable_list((0..10).map(Item::Int).collect()).unwrap();
    let pid = smm.process().unwrap().pid().unwrap();
    // SAFETY: kill with a valid signal number has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let second = smm.shareable_list((0..10).map(Item::Int).collect()).unwrap();
    assert_eq!(second.get(9).unwrap(), Item::Int(9));
    smm.shutdown().unwrap();
    drop((first, second));
}

/// test_shared_memory_SharedMemoryManager_basics.
#[test]
fn the_shared_memory_manager_unlinks_what_was_made_through_it() {
    let _serial = serial();
    let smm = SharedMemoryManager::new().unwrap();
    let lol: Vec<ShareableList> =
        (5..10).map(|i| smm.shareable_list((0..i).map(Item::Int).collect()).unwrap()).collect();
    let lom: Vec<SharedMemory> =
        (32..128).step_by(16).map(|size| smm.shared_memory(size).unwrap()).collect();
    let doppelganger_list = ShareableList::attach(lol[0].shm().name()).unwrap();
    assert_eq!(doppelganger_list.len(), 5);
    let doppelganger_shm = SharedMemory::attach(lom[0].name()).unwrap();
    assert!(doppelganger_shm.size() >= 32);
    assert_eq!(smm.list_segments().unwrap().len(), lol.len() + lom.len());
    let held = lom[0].name().to_owned();
    smm.shutdown().unwrap();
    let absent = SharedMemory::attach(&held).unwrap_err();
    assert!(is_kind(&absent, ErrorKind::NotFound), "{absent}");
    for list in &lol {
        assert!(SharedMemory::attach(list.shm().name()).is_err());
    }
}

/// test_shared_memory_ShareableList_basics.
#[test]
fn shareable_list_basics() {
    let sl = ShareableList::new(vec![
        "howdy".into(),
        b"HoWdY".as_slice().into(),
        Item::Float(-273.154),
        Item::Int(100),
        Item::None,
        Item::Bool(true),
        Item::Int(42),
    ])
    .unwrap();
    let _cleanup = Cleanup(sl.shm().name().to_owned());
    let repr = format!("{sl:?}");
    assert_eq!(
        repr,
        format!(
            "ShareableList(['howdy', b'HoWdY', -273.154, 100, None, True, 42], name='{}')",
            sl.shm().name()
        )
    );
    assert!(matches!(sl.get(7), Err(Error::IndexError(_))));
    assert!(matches!(sl.set(7, Item::Int(2)), Err(Error::IndexError(_))));
    sl.set(0, "howdy".into()).unwrap();
    assert_eq!(sl.format().unwrap(), "8s8sdqxxxxxx?xxxxxxxx?q");
    assert_eq!(sl.len(), 7);
    assert!(matches!(sl.index(&"100".into()), Err(Error::ValueError(_))));
    assert_eq!(sl.index(&Item::Int(100)).unwrap(), 3);
    assert_eq!(sl.get(0).unwrap(), Item::Str("howdy".into()));
    assert_eq!(sl.get(5).unwrap(), Item::Bool(true));
    assert_eq!(
        sl.to_vec().unwrap(),
        vec![
            Item::Str("howdy".into()),
            Item::Bytes(b"HoWdY".to_vec()),
            Item::Float(-273.154),
            Item::Int(100),
            Item::None,
            Item::Bool(true),
            Item::Int(42),
        ]
    );
    sl.set(3, Item::Int(42)).unwrap();
    assert_eq!(sl.get(3).unwrap(), Item::Int(42));
    sl.set(4, "some".into()).unwrap();
    assert_eq!(sl.get(4).unwrap(), Item::Str("some".into()));
    assert_eq!(sl.format().unwrap(), "8s8sdq8sxxxxxxx?q");
    let too_long = sl.set(4, "far too many".into()).unwrap_err();
    assert!(too_long.to_string().contains("exceeds available storage"));
    assert_eq!(sl.get(4).unwrap(), Item::Str("some".into()));
    sl.set(0, "encodés".into()).unwrap(); // exactly 8 bytes of UTF-8
    assert_eq!(sl.get(0).unwrap(), Item::Str("encodés".into()));
    assert_eq!(sl.get(1).unwrap(), Item::Bytes(b"HoWdY".to_vec()), "no spillage");
    assert!(sl.set(0, "encodées".into()).is_err(), "9 bytes of UTF-8");
    assert_eq!(sl.get(1).unwrap(), Item::Bytes(b"HoWdY".to_vec()));
    assert!(sl.set(1, b"123456789".as_slice().into()).is_err());
    assert_eq!(sl.get(1).unwrap(), Item::Bytes(b"HoWdY".to_vec()));
    assert_eq!(sl.count(&Item::Int(42)).unwrap(), 2);
    assert_eq!(sl.count(&b"HoWdY".as_slice().into()).unwrap(), 1);
    assert_eq!(sl.count(&b"adios".as_slice().into()).unwrap(), 0);

    // A duplicate under another name.
    let duplicate = new_shm_name("test03_duplicate");
    let copy = ShareableList::new_named(&duplicate, sl.to_vec().unwrap()).unwrap();
    let _copy_cleanup = Cleanup(duplicate.clone());
    assert_ne!(sl.shm().name(), copy.shm().name());
    assert_eq!(copy.shm().name(), duplicate);
    assert_eq!(sl.to_vec().unwrap(), copy.to_vec().unwrap());
    assert_eq!(sl.format().unwrap(), copy.format().unwrap());
    copy.set(6, Item::Int(77)).unwrap();
    assert_eq!(copy.get(6).unwrap(), Item::Int(77));
    assert_ne!(sl.get(6).unwrap(), Item::Int(77));

    // A second handle on the same list.
    let tethered = ShareableList::attach(sl.shm().name()).unwrap();
    tethered.set(6, Item::Int(880)).unwrap();
    assert_eq!(sl.get(6).unwrap(), Item::Int(880));

    // An empty list.
    let empty = ShareableList::new(Vec::new()).unwrap();
    let _empty_cleanup = Cleanup(empty.shm().name().to_owned());
    assert_eq!(empty.len(), 0);
    assert_eq!(empty.format().unwrap(), "");
    assert_eq!(empty.count(&"any".into()).unwrap(), 0);
    assert_eq!(empty.index(&Item::None).unwrap_err().to_string(), "None not in this container");
}

/// test_shared_memory_ShareableList_pickling: a list serialized arrives as the same list,
/// and its serialized form does not grow with it.
#[test]
fn a_serialized_list_is_the_same_list() {
    let sl = ShareableList::new((0..10).map(Item::Int).collect()).unwrap();
    let _cleanup = Cleanup(sl.shm().name().to_owned());
    let queue = Queue::<ShareableList>::new(0).unwrap();
    queue.put(ShareableList::attach(sl.shm().name()).unwrap()).unwrap();
    let arrived = queue.get().unwrap();
    assert_eq!(arrived.get(9).unwrap(), Item::Int(9));
    arrived.set(4, "changed".into()).unwrap();
    assert_eq!(sl.get(4).unwrap(), Item::Str("changed".into()));
    sl.set(3, "newvalue".into()).unwrap();
    assert_eq!(arrived.get(3).unwrap(), Item::Str("newvalue".into()));
    let larger = ShareableList::new((0..400).map(Item::Int).collect()).unwrap();
    let _larger_cleanup = Cleanup(larger.shm().name().to_owned());
    let size = |list: &ShareableList| format!("{:?}", list.shm().name()).len();
    assert_eq!(size(&sl), size(&larger));
}

/// test_shared_memory_ShareableList_pickling_dead_object.
#[test]
fn a_serialized_list_that_was_unlinked_does_not_arrive() {
    let sl = ShareableList::new((0..10).map(Item::Int).collect()).unwrap();
    let queue = Queue::<ShareableList>::new(0).unwrap();
    queue.put(ShareableList::attach(sl.shm().name()).unwrap()).unwrap();
    sl.shm().close();
    sl.shm().unlink().unwrap();
    assert!(queue.get().is_err());
}

fn bump_list(list: ShareableList) {
    let Item::Int(n) = list.get(0).unwrap() else { panic!("not an int") };
    list.set(0, Item::Int(n + 1)).unwrap();
    list.set(1, "child".into()).unwrap();
}

fn lists_across_processes(method: StartMethod) {
    let sl = ShareableList::new(vec![Item::Int(41), "parent".into()]).unwrap();
    let _cleanup = Cleanup(sl.shm().name().to_owned());
    let p = call(method, bump_list, ShareableList::attach(sl.shm().name()).unwrap());
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(sl.to_vec().unwrap(), vec![Item::Int(42), Item::Str("child".into())]);
}

/// Contents written by another program are checked before use: a block that is not a
/// list, or a list with broken offsets, formats or codes, gives errors, never a panic.
#[test]
fn malformed_lists_give_errors_not_panics() {
    let sl = ShareableList::new(vec![Item::Int(1), "text".into(), Item::None]).unwrap();
    let _cleanup = Cleanup(sl.shm().name().to_owned());
    let raw = SharedMemory::attach(sl.shm().name()).unwrap();
    // An absurd item count.
    raw.write_at(0, &i64::MAX.to_ne_bytes()).unwrap();
    assert!(ShareableList::attach(sl.shm().name()).is_err());
    raw.write_at(0, &(-1i64).to_ne_bytes()).unwrap();
    assert!(ShareableList::attach(sl.shm().name()).is_err());
    raw.write_at(0, &3i64.to_ne_bytes()).unwrap();
    // Garbage formats and codes: every byte after the data area.
    let list = ShareableList::attach(sl.shm().name()).unwrap();
    let tail = list.shm().size() - 3 * 9;
    raw.write_at(tail, &[0xff; 27]).unwrap();
    for i in 0..3 {
        assert!(list.get(i).is_err());
    }
    assert!(list.format().is_err());
    // A format claiming more bytes than the block has.
    let mut field = [0u8; 8];
    field[..8].copy_from_slice(b"9999999s");
    raw.write_at(tail, &field).unwrap();
    raw.write_at(tail + 24, &[2, 2, 2]).unwrap();
    assert!(list.get(0).is_ok_and(|item| matches!(item, Item::Bytes(_))) || list.get(0).is_err());
    // Offsets running backwards.
    raw.write_at(16, &1_000_000i64.to_ne_bytes()).unwrap();
    assert!(ShareableList::attach(sl.shm().name()).is_err());
}

/// Runs `script` in python3 with `args`; its stdout, trimmed. Python 3.11 registers a block
/// it only attaches to with its own resource tracker (gh-82300); the scripts unregister
/// such blocks, as CPython's own tests do.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "python3 warned: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const PY_ATTACH: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(sys.argv[1])
resource_tracker.unregister(shm._name, "shared_memory")
print(bytes(shm.buf[:5]).decode(), shm.size)
shm.buf[:6] = b"python"
shm.close()
"#;

const PY_CREATE: &str = r#"
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(create=True, size=100)
shm.buf[:7] = b"cpython"
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.name)
shm.close()
"#;

/// python3's `SharedMemory(name)` opens a block pyconc made, and pyconc attaches to one
/// python3 made (the names are CPython's on both sides).
#[test]
fn python_and_pyconc_open_each_others_blocks() {
    if python_missing() {
        return;
    }
    let shm = SharedMemory::create(4096).unwrap();
    let _cleanup = Cleanup(shm.name().to_owned());
    shm.write_at(0, b"hello").unwrap();
    assert_eq!(python(PY_ATTACH, &[shm.name()]), "hello 4096");
    let mut out = [0u8; 6];
    shm.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"python");

    let name = python(PY_CREATE, &[]);
    assert!(name.starts_with("psm_"), "{name}");
    let theirs = SharedMemory::attach(&name).unwrap();
    let _theirs_cleanup = Cleanup(name.clone());
    let mut out = [0u8; 7];
    theirs.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"cpython");
    assert_eq!(theirs.size(), 100);
}

const PY_READ_LIST: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
sl = shared_memory.ShareableList(name=sys.argv[1])
resource_tracker.unregister(sl.shm._name, "shared_memory")
print(repr(list(sl)))
print(sl.format)
sl[0] = 7
sl[1] = "from py"
sl[4] = None
sl.shm.close()
"#;

const PY_MAKE_LIST: &str = r#"
from multiprocessing import shared_memory, resource_tracker
sl = shared_memory.ShareableList([-5, 2.25, False, "héllo", b"\x00raw", None, 2**62])
resource_tracker.unregister(sl.shm._name, "shared_memory")
print(sl.shm.name)
sl.shm.close()
"#;

/// A ShareableList pyconc made is read and written by python3, and the other way round:
/// the byte layout is CPython's.
#[test]
fn python_and_pyconc_share_shareable_lists() {
    if python_missing() {
        return;
    }
    let sl = ShareableList::new(vec![
        Item::Int(1),
        "héllo".into(),
        Item::Float(2.5),
        Item::Bool(true),
        b"by".as_slice().into(),
        Item::None,
    ])
    .unwrap();
    let _cleanup = Cleanup(sl.shm().name().to_owned());
    let format = sl.format().unwrap();
    assert_eq!(format, "q8sdxxxxxxx?8sxxxxxx?x");
    let said = python(PY_READ_LIST, &[sl.shm().name()]);
    assert_eq!(said, format!("[1, 'héllo', 2.5, True, b'by', None]\n{format}"));
    assert_eq!(sl.get(0).unwrap(), Item::Int(7));
    assert_eq!(sl.get(1).unwrap(), Item::Str("from py".into()));
    assert_eq!(sl.get(4).unwrap(), Item::None);

    let name = python(PY_MAKE_LIST, &[]);
    let theirs = ShareableList::attach(&name).unwrap();
    let _theirs_cleanup = Cleanup(name.clone());
    assert_eq!(
        theirs.to_vec().unwrap(),
        vec![
            Item::Int(-5),
            Item::Float(2.25),
            Item::Bool(false),
            Item::Str("héllo".into()),
            // CPython strips trailing NULs only; a leading one stays.
            Item::Bytes(b"\x00raw".to_vec()),
            Item::None,
            Item::Int(1 << 62),
        ]
    );
    theirs.set(0, Item::Int(99)).unwrap();
    assert_eq!(ShareableList::attach(&name).unwrap().get(0).unwrap(), Item::Int(99));
}
