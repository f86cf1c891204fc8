//! Python's own objects over a [`Connection`]: [`Connection::send_pickle`] and
//! [`Connection::recv_pickle`] speak what CPython's `conn.send(obj)` and `conn.recv()`
//! put in a frame — a pickle — so a Rust program and a python3 program exchange plain data
//! through a [`Listener`](super::Listener) or [`client`](super::client) with an authkey,
//! both ways.
//!
//! Only plain data crosses: `None`, `bool`, `int`, `float`, `str`, `bytes`, `bytearray`,
//! `list`, `tuple`, `dict`, `set`, `frozenset` (any Rust type that serde maps onto them, or
//! the dynamic [`PyValue`]). A pickle that names a Python global — a class, a function,
//! `os.system` — or asks for a call (`REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`, extension
//! codes, persistent ids, out-of-band buffers) is refused before anything is decoded,
//! with [`Error::UnpicklingError`]: nothing in a pickle can make this side run code, and
//! this side never writes one that could make CPython's do so. A pickle whose shared
//! references (CPython's memo) would decode to more than 8 times its own size, plus
//! 64 KiB, is refused too: a small message cannot make the receiver allocate without bound.
//!
//! The pickles are decoded and encoded by the `serde-pickle` crate (protocol 3 when
//! sending; protocols 0 to 5 when receiving, CPython 3.11 sends 4); this module adds the
//! check above, which `serde-pickle` does not do. Why that check is written by hand: no
//! crate validates a pickle's opcodes without decoding it.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Connection;
use crate::Error;

/// A Python value that can be a dict key or a set member (`serde-pickle`'s
/// `HashableValue`).
pub use serde_pickle::HashableValue as PyHashable;
/// A Python value as a pickle carries it (`serde-pickle`'s `Value`): what
/// [`Connection::recv_pickle`] gives for data of unknown shape.
pub use serde_pickle::Value as PyValue;

impl Connection {
    /// Sends `obj` as a pickle, as CPython's `conn.send(obj)` does: a python3 program's
    /// `conn.recv()` returns it as the plain Python data it maps to (a struct becomes a
    /// dict, a tuple a tuple, `Vec<u8>` through `serde_bytes` becomes `bytes`).
    ///
    /// # Errors
    /// [`Error::PicklingError`] for a value pickle cannot express; the connection's errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::PyValue;
    ///
    /// let (a, b) = multiprocessing::pipe(true)?;
    /// a.send_pickle(&(1, "two", vec![3.0]))?;
    /// let got: (i64, String, Vec<f64>) = b.recv_pickle()?;
    /// assert_eq!(got, (1, "two".to_owned(), vec![3.0]));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn send_pickle<T: Serialize>(&self, obj: &T) -> Result<(), Error> {
        let bytes = serde_pickle::to_vec(obj, serde_pickle::SerOptions::new())
            .map_err(|e| Error::PicklingError(e.to_string()))?;
        self.send_bytes(&bytes)
    }

    /// Receives a pickle, as CPython's `conn.recv()` does, and decodes it into `T`
    /// ([`PyValue`] takes any plain data).
    ///
    /// # Errors
    /// [`Error::UnpicklingError`] for a pickle that is not plain data (see the module
    /// docs: globals, calls, object construction), one that expands too much, a malformed
    /// one, or one that does not fit `T`; the connection's errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::PyValue;
    ///
    /// let (a, b) = multiprocessing::pipe(true)?;
    /// // What python3's `conn.send(os.system)` would write: refused, never run.
    /// a.send_bytes(b"\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94.")?;
    /// let refused = b.recv_pickle::<PyValue>().unwrap_err();
    /// assert!(refused.to_string().contains("refers to a Python global"));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn recv_pickle<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let bytes = self.recv_bytes()?;
        check_plain(&bytes)?;
        serde_pickle::from_slice(&bytes, serde_pickle::DeOptions::new())
            .map_err(|e| Error::UnpicklingError(e.to_string()))
    }
}

impl Connection {
    /// Sends a dynamic Python value ([`PyValue`]: a big `int`, a `set`, whatever shape)
    /// as a pickle.
    ///
    /// # Errors
    /// As [`send_pickle`](Connection::send_pickle).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::PyValue;
    ///
    /// let (a, b) = multiprocessing::pipe(true)?;
    /// a.send_pickle_value(&PyValue::Bytes(b"raw".to_vec()))?;
    /// assert_eq!(b.recv_pickle_value()?, PyValue::Bytes(b"raw".to_vec()));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn send_pickle_value(&self, value: &PyValue) -> Result<(), Error> {
        let bytes = serde_pickle::value_to_vec(value, serde_pickle::SerOptions::new())
            .map_err(|e| Error::PicklingError(e.to_string()))?;
        self.send_bytes(&bytes)
    }

    /// Receives a pickle as a dynamic [`PyValue`] (any plain Python data, big `int`s
    /// included).
    ///
    /// # Errors
    /// As [`recv_pickle`](Connection::recv_pickle).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::connection::PyValue;
    ///
    /// let (a, b) = multiprocessing::pipe(true)?;
    /// a.send_pickle(&vec![1, 2])?;
    /// assert_eq!(b.recv_pickle_value()?, PyValue::List(vec![PyValue::I64(1), PyValue::I64(2)]));
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn recv_pickle_value(&self) -> Result<PyValue, Error> {
        let bytes = self.recv_bytes()?;
        check_plain(&bytes)?;
        serde_pickle::value_from_slice(&bytes, serde_pickle::DeOptions::new())
            .map_err(|e| Error::UnpicklingError(e.to_string()))
    }
}

/// What a pickle may decode to, in units (one per value, one per byte of text): at most
/// this many times its length, plus [`EXPANSION_SLACK`].
const EXPANSION: u64 = 8;
const EXPANSION_SLACK: u64 = 64 << 10;

/// One value under construction: its own weight and what it contains.
struct Node {
    weight: u64,
    children: Vec<usize>,
}

enum Slot {
    Mark,
    Node(usize),
}

/// Walks the pickle's opcodes as the unpickler would, with sizes instead of values:
/// refuses what is not plain data and what would expand beyond the bound.
pub(crate) fn check_plain(pickle: &[u8]) -> Result<(), Error> {
    let malformed = || Error::UnpicklingError("the pickle is malformed".into());
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: HashMap<u64, usize> = HashMap::new();
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], Error> {
        let end = at.checked_add(n).filter(|&end| end <= pickle.len()).ok_or_else(malformed)?;
        let bytes = &pickle[*at..end];
        *at = end;
        Ok(bytes)
    };
    let le = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |n, &b| (n << 8) | u64::from(b));
    let line = |at: &mut usize| -> Result<usize, Error> {
        let rest = &pickle[*at..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(malformed)?;
        *at += n + 1;
        Ok(n)
    };
    fn push(nodes: &mut Vec<Node>, stack: &mut Vec<Slot>, weight: u64, children: Vec<usize>) {
        nodes.push(Node { weight, children });
        stack.push(Slot::Node(nodes.len() - 1));
    }
    let pop = |stack: &mut Vec<Slot>| match stack.pop() {
        Some(Slot::Node(n)) => Ok(n),
        _ => Err(malformed()),
    };
    let pop_mark = |stack: &mut Vec<Slot>| -> Result<Vec<usize>, Error> {
        let mut items = Vec::new();
        loop {
            match stack.pop() {
                Some(Slot::Mark) => {
                    items.reverse();
                    return Ok(items);
                }
                Some(Slot::Node(n)) => items.push(n),
                None => return Err(malformed()),
            }
        }
    };
    let top = |stack: &[Slot]| match stack.last() {
        Some(Slot::Node(n)) => Ok(*n),
        _ => Err(malformed()),
    };
    loop {
        let opcode = *take(&mut at, 1)?.first().ok_or_else(malformed)?;
        match opcode {
            b'.' => break,
            // PROTO, FRAME: no value.
            0x80 => drop(take(&mut at, 1)?),
            0x95 => drop(take(&mut at, 8)?),
            b'(' => stack.push(Slot::Mark),
            b'0' => {
                stack.pop().ok_or_else(malformed)?;
            }
            b'1' => drop(pop_mark(&mut stack)?),
            b'2' => {
                let n = top(&stack)?;
                stack.push(Slot::Node(n));
            }
            // Scalars: NONE, NEWTRUE, NEWFALSE, BININT1, BININT2, BININT, BINFLOAT.
            b'N' | 0x88 | 0x89 => push(&mut nodes, &mut stack, 1, Vec::new()),
            b'K' | b'M' | b'J' | b'G' => {
                let width = match opcode {
                    b'K' => 1,
                    b'M' => 2,
                    b'J' => 4,
                    _ => 8,
                };
                take(&mut at, width)?;
                push(&mut nodes, &mut stack, 1, Vec::new());
            }
            // Text-line scalars: INT, LONG, FLOAT, STRING, UNICODE.
            b'I' | b'L' | b'F' | b'S' | b'V' => {
                let n = line(&mut at)?;
                push(&mut nodes, &mut stack, 1 + n as u64, Vec::new());
            }
            // Length-prefixed: LONG1, SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE;
            // LONG4, BINSTRING, BINBYTES, BINUNICODE; BINUNICODE8, BINBYTES8, BYTEARRAY8.
            0x8a | b'U' | b'C' | 0x8c | 0x8b | b'T' | b'B' | b'X' | 0x8d | 0x8e | 0x96 => {
                let width = match opcode {
                    0x8a | b'U' | b'C' | 0x8c => 1,
                    0x8b | b'T' | b'B' | b'X' => 4,
                    _ => 8,
                };
                let len = le(take(&mut at, width)?);
                let len = usize::try_from(len).map_err(|_| malformed())?;
                take(&mut at, len)?;
                push(&mut nodes, &mut stack, 1 + len as u64, Vec::new());
            }
            // Empty containers.
            b']' | b'}' | b')' | 0x8f => push(&mut nodes, &mut stack, 1, Vec::new()),
            // Containers from the mark: LIST, TUPLE, DICT, FROZENSET.
            b'l' | b't' | b'd' | 0x91 => {
                let items = pop_mark(&mut stack)?;
                push(&mut nodes, &mut stack, 1, items);
            }
            0x85..=0x87 => {
                let n = usize::from(opcode - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop(&mut stack)?);
                }
                items.reverse();
                push(&mut nodes, &mut stack, 1, items);
            }
            // APPEND, SETITEM: into the container below.
            b'a' | b's' => {
                let count = if opcode == b'a' { 1 } else { 2 };
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(pop(&mut stack)?);
                }
                let container = top(&stack)?;
                nodes[container].children.extend(items);
            }
            // APPENDS, SETITEMS, ADDITEMS: from the mark into the container below it.
            b'e' | b'u' | 0x90 => {
                let items = pop_mark(&mut stack)?;
                let container = top(&stack)?;
                nodes[container].children.extend(items);
            }
            // PUT, BINPUT, LONG_BINPUT, MEMOIZE; GET, BINGET, LONG_BINGET.
            b'p' | b'q' | b'r' | 0x94 | b'g' | b'h' | b'j' => {
                let id = match opcode {
                    b'p' | b'g' => {
                        let start = at;
                        let n = line(&mut at)?;
                        parse_id(&pickle[start..start + n]).ok_or_else(malformed)?
                    }
                    b'q' | b'h' => le(take(&mut at, 1)?),
                    b'r' | b'j' => le(take(&mut at, 4)?),
                    _ => memo.len() as u64,
                };
                if matches!(opcode, b'g' | b'h' | b'j') {
                    let n = *memo.get(&id).ok_or_else(malformed)?;
                    stack.push(Slot::Node(n));
                } else {
                    memo.insert(id, top(&stack)?);
                }
            }
            b'c' | 0x93 => {
                return Err(Error::UnpicklingError(
                    "refused: the pickle refers to a Python global (a class or function); \
                     only plain data (None, bool, int, float, str, bytes, list, tuple, dict, \
                     set) is accepted"
                        .into(),
                ));
            }
            b'R' | b'b' | b'i' | b'o' | 0x81 | 0x92 | 0x82..=0x84 | b'P' | b'Q' | 0x97 | 0x98 => {
                return Err(Error::UnpicklingError(format!(
                    "refused: the pickle asks to build or call an object (opcode {opcode:#04x}); \
                     only plain data is accepted"
                )));
            }
            _ => return Err(malformed()),
        }
    }
    let root = match stack.as_slice() {
        [Slot::Node(root)] => *root,
        _ => return Err(malformed()),
    };
    let limit = (pickle.len() as u64).saturating_mul(EXPANSION).saturating_add(EXPANSION_SLACK);
    if expanded(&nodes, root, limit).is_none_or(|units| units > limit) {
        return Err(Error::UnpicklingError(
            "refused: the pickle's shared references would expand it more than 8-fold".into(),
        ));
    }
    Ok(())
}

/// The decoded size of `root` in units (shared children counted at each place, as the
/// decoder copies them), or `None` past `limit` or on a cycle (which the decoder refuses
/// too). Iterative: a deep pickle cannot overflow the stack.
fn expanded(nodes: &[Node], root: usize, limit: u64) -> Option<u64> {
    const UNSEEN: u64 = u64::MAX;
    const VISITING: u64 = u64::MAX - 1;
    let mut size = vec![UNSEEN; nodes.len()];
    let mut work = vec![(root, false)];
    while let Some((n, children_done)) = work.pop() {
        if children_done {
            let mut total = nodes[n].weight;
            for &child in &nodes[n].children {
                total = total.saturating_add(size[child]);
            }
            size[n] = total.min(limit.saturating_add(1));
            continue;
        }
        match size[n] {
            VISITING => return None,
            UNSEEN => {
                size[n] = VISITING;
                work.push((n, true));
                for &child in &nodes[n].children {
                    match size[child] {
                        VISITING => return None,
                        UNSEEN => work.push((child, false)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(size[root])
}

fn parse_id(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_data_passes_the_check() {
        let bytes = serde_pickle::to_vec(
            &(1, "two", vec![3.0, 4.5], Some(()), b"raw".to_vec()),
            serde_pickle::SerOptions::new(),
        )
        .unwrap();
        check_plain(&bytes).unwrap();
    }

    #[test]
    fn globals_and_calls_are_refused() {
        // pickle.dumps(os.system, 4) and a REDUCE of it, as CPython writes them.
        let global = b"\x80\x04\x95\x11\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94.";
        assert!(check_plain(global).unwrap_err().to_string().contains("Python global"));
        let reduce = b"cposix\nsystem\n(S'true'\ntR.";
        assert!(check_plain(reduce).is_err());
        assert!(check_plain(b"(N)R.").unwrap_err().to_string().contains("build or call"));
    }

    #[test]
    fn a_memo_bomb_is_refused() {
        // memo0 = [1]; memo(k+1) = [memo k, memo k]; the last one: 2^40 copies of [1].
        let mut bomb = vec![0x80, 2, b']', b'K', 1, b'a', b'q', 0, b'0'];
        for k in 0..40u8 {
            bomb.extend([b']', b'h', k, b'a', b'h', k, b'a', b'q', k + 1, b'0']);
        }
        bomb.extend([b'h', 40, b'.']);
        let error = check_plain(&bomb).unwrap_err();
        assert!(error.to_string().contains("expand"), "{error}");
        // Three levels are fine.
        let mut small = vec![0x80, 2, b']', b'K', 1, b'a', b'q', 0, b'0'];
        for k in 0..3u8 {
            small.extend([b']', b'h', k, b'a', b'h', k, b'a', b'q', k + 1, b'0']);
        }
        small.extend([b'h', 3, b'.']);
        check_plain(&small).unwrap();
    }

    #[test]
    fn malformed_pickles_are_errors() {
        for bad in [&b""[..], b"\x80", b"X\xff\xff\xff\xff", b"h\x05.", b"a.", b"(", b"NN."] {
            assert!(check_plain(bad).is_err(), "{bad:?}");
        }
    }
}
