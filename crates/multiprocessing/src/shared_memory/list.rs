//! `ShareableList`: a fixed-length list of plain values in a [`SharedMemory`] block, with
//! CPython's byte layout (`multiprocessing/shared_memory.py`), so python3 attaches to a
//! list a Rust program made, and the other way round.
//!
//! The layout, native byte order, every field 8-byte aligned:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | the number of items `n` (`q`) |
//! | 8 × (n + 1) | each item's offset in the data area, and the area's length |
//! | data | the items: `q` (int), `d` (float), `xxxxxxx?` (bool), `xxxxxx?x` (None), `Ns` (str, bytes: `N` a multiple of 8 above the length) |
//! | 8 × n | each item's `struct` format, NUL-padded to 8 bytes |
//! | n | each item's back-transform code: 0 as is, 1 str, 2 bytes, 3 None |
//!
//! Everything read from the block is checked before use (another process, or python3,
//! may have written anything there): a malformed list gives an error, never a panic or
//! an out-of-bounds access.

use std::fmt;

use super::{Options, SharedMemory};
use crate::Error;
use crate::repr::repr;

/// One value of a [`ShareableList`]: the types CPython's can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `int` (a 64-bit signed integer, `struct` format `q`).
    Int(i64),
    /// `float` (`d`).
    Float(f64),
    /// `bool`.
    Bool(bool),
    /// `str` (UTF-8; trailing NULs are lost, as in CPython).
    Str(String),
    /// `bytes` (trailing NULs are lost, as in CPython).
    Bytes(Vec<u8>),
    /// `None`.
    None,
}

impl From<i64> for Item {
    fn from(value: i64) -> Item {
        Item::Int(value)
    }
}
impl From<f64> for Item {
    fn from(value: f64) -> Item {
        Item::Float(value)
    }
}
impl From<bool> for Item {
    fn from(value: bool) -> Item {
        Item::Bool(value)
    }
}
impl From<&str> for Item {
    fn from(value: &str) -> Item {
        Item::Str(value.to_owned())
    }
}
impl From<String> for Item {
    fn from(value: String) -> Item {
        Item::Str(value)
    }
}
impl From<&[u8]> for Item {
    fn from(value: &[u8]) -> Item {
        Item::Bytes(value.to_vec())
    }
}
impl From<Vec<u8>> for Item {
    fn from(value: Vec<u8>) -> Item {
        Item::Bytes(value)
    }
}
impl From<()> for Item {
    fn from((): ()) -> Item {
        Item::None
    }
}

impl fmt::Display for Item {
    /// Python's `repr`: `3`, `2.5`, `True`, `'text'`, `b'bytes'`, `None`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&match self {
            Item::Int(v) => repr(v),
            Item::Float(v) => repr(v),
            Item::Bool(v) => repr(v),
            Item::Str(s) => repr(s),
            Item::Bytes(b) => repr(serde_bytes::Bytes::new(b)),
            Item::None => repr(&()),
        })
    }
}

/// Every field is aligned to this (CPython's `_alignment`).
const ALIGNMENT: usize = 8;
/// The longest format CPython stores (`8s` fields).
const FORMAT_LEN: usize = 8;

/// A fixed-length list of plain values in shared memory: Python's
/// `multiprocessing.shared_memory.ShareableList`, byte for byte.
///
/// # Differences from CPython
/// - Indices are `usize` (no negative indices); the list has `get`/`set` instead of
///   `l[i]`, and [`to_vec`](ShareableList::to_vec) instead of `list(l)`.
/// - A `str` gets CPython's room (by its length in characters) unless its UTF-8 needs
///   more: then the room its bytes need (CPython 3.11 truncates such a string silently);
///   python3 reads such a list all the same.
/// - A list read from a block that is not a well-formed `ShareableList` gives an error
///   instead of garbage or a crash.
/// - Serialized (a `Process` argument, a queue item), it travels as its block's name and
///   is attached again on arrival, as CPython pickles it.
///
/// # Examples
///
/// ```
/// use multiprocessing::shared_memory::{Item, ShareableList};
///
/// let list = ShareableList::new(vec![Item::Int(3), "text".into(), Item::None])?;
/// let other = ShareableList::attach(list.shm().name())?; // as another process would
/// assert_eq!(other.get(1)?, Item::Str("text".into()));
/// other.set(0, Item::Float(2.5))?;
/// assert_eq!(list.get(0)?, Item::Float(2.5));
/// assert_eq!(list.format()?, "d8sxxxxxx?x");
/// list.shm().unlink()?;
/// # Ok::<(), multiprocessing::Error>(())
/// ```
pub struct ShareableList {
    shm: SharedMemory,
    len: usize,
    /// Each item's offset in the data area, and the area's length (`n + 1` entries).
    offsets: Vec<usize>,
}

impl ShareableList {
    /// A new list holding `items`, in a new block with a fresh name. Python:
    /// `ShareableList(sequence)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] for a `str` or `bytes` item too long for CPython's format
    /// field (10 MB and more); the block's errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec![1i64.into(), true.into(), b"raw".as_slice().into()])?;
    /// assert_eq!(list.len(), 3);
    /// assert_eq!(list.get(2)?, Item::Bytes(b"raw".to_vec()));
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new(items: Vec<Item>) -> Result<ShareableList, Error> {
        ShareableList::create(items, None, SharedMemory::options())
    }

    /// A new list named `name`. Python: `ShareableList(sequence, name=name)`.
    ///
    /// # Errors
    /// As [`new`](ShareableList::new) and [`SharedMemory::create_named`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let name = format!("pyconc_doc_list_{}", std::process::id());
    /// let list = ShareableList::new_named(&name, vec![Item::Int(1)])?;
    /// assert_eq!(list.shm().name(), name);
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn new_named(name: &str, items: Vec<Item>) -> Result<ShareableList, Error> {
        ShareableList::create(items, Some(name), SharedMemory::options())
    }

    pub(super) fn create(
        items: Vec<Item>,
        name: Option<&str>,
        options: Options,
    ) -> Result<ShareableList, Error> {
        let n = items.len();
        let formats: Vec<String> = items.iter().map(format_of).collect::<Result<_, _>>()?;
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut at = 0;
        for format in &formats {
            at += allocated(format);
            offsets.push(at);
        }
        let size = 8 + 8 * (n + 1) + at + FORMAT_LEN * n + n;
        let shm = match name {
            Some(name) => options.create_named(name, size)?,
            None => options.create(size)?,
        };
        let list = ShareableList { shm, len: n, offsets };
        list.shm.write_at(0, &(n as i64).to_ne_bytes())?;
        for (i, offset) in list.offsets.iter().enumerate() {
            list.shm.write_at(8 + 8 * i, &(*offset as i64).to_ne_bytes())?;
        }
        for (i, (item, format)) in items.iter().zip(&formats).enumerate() {
            list.write_item(i, item, format)?;
        }
        Ok(list)
    }

    /// Opens the list in block `name`. Python: `ShareableList(name=name)`.
    ///
    /// # Errors
    /// [`SharedMemory::attach`]'s; [`Error::ValueError`] when the block does not hold a
    /// well-formed list.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList, SharedMemory};
    ///
    /// let list = ShareableList::new(vec![Item::Int(7)])?;
    /// assert_eq!(ShareableList::attach(list.shm().name())?.get(0)?, Item::Int(7));
    /// let not_a_list = SharedMemory::create(4)?;
    /// assert!(ShareableList::attach(not_a_list.name()).is_err());
    /// not_a_list.unlink()?;
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn attach(name: &str) -> Result<ShareableList, Error> {
        let shm = SharedMemory::attach(name)?;
        let size = shm.size();
        let malformed = || Error::value("the shared memory does not hold a ShareableList");
        let n = shm.read_i64(0).ok_or_else(malformed)?;
        let n = usize::try_from(n).map_err(|_| malformed())?;
        // The header, the formats and the codes must fit: bounds `n` before allocating.
        if n.checked_mul(8 + 8 + FORMAT_LEN + 1).is_none_or(|need| need + 16 > size) {
            return Err(malformed());
        }
        let mut offsets = Vec::with_capacity(n + 1);
        for i in 0..=n {
            let offset = shm.read_i64(8 + 8 * i).ok_or_else(malformed)?;
            let offset = usize::try_from(offset).map_err(|_| malformed())?;
            if offsets.last().is_some_and(|&before| offset < before) {
                return Err(malformed());
            }
            offsets.push(offset);
        }
        let list = ShareableList { shm, len: n, offsets };
        if list.codes_offset().checked_add(n).is_none_or(|end| end > size) {
            return Err(malformed());
        }
        Ok(list)
    }

    /// The number of items. Python: `len(l)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let list = multiprocessing::shared_memory::ShareableList::new(vec![])?;
    /// assert_eq!(list.len(), 0);
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no items.
    ///
    /// # Examples
    ///
    /// ```
    /// let list = multiprocessing::shared_memory::ShareableList::new(vec![])?;
    /// assert!(list.is_empty());
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block that holds the list. Python: `l.shm`.
    ///
    /// # Examples
    ///
    /// ```
    /// let list = multiprocessing::shared_memory::ShareableList::new(vec![1i64.into()])?;
    /// assert!(list.shm().name().starts_with("psm_"));
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    /// Item `i`. Python: `l[i]`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `index out of range`; [`Error::ValueError`] for a slot that
    /// holds no valid item.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec![Item::Bool(true)])?;
    /// assert_eq!(list.get(0)?, Item::Bool(true));
    /// assert_eq!(list.get(1).unwrap_err().to_string(), "index out of range");
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Result<Item, Error> {
        if i >= self.len {
            return Err(Error::IndexError("index out of range".into()));
        }
        let format = self.format_at(i)?;
        let code = self.code_at(i)?;
        let offset = self.data_offset(i).ok_or_else(bad_slot)?;
        let mut eight = [0u8; 8];
        let value = match format.as_str() {
            "q" | "d" | "xxxxxxx?" | "xxxxxx?x" => {
                self.shm.read_at(offset, &mut eight).map_err(|_| bad_slot())?;
                match format.as_str() {
                    "q" => Item::Int(i64::from_ne_bytes(eight)),
                    "d" => Item::Float(f64::from_ne_bytes(eight)),
                    "xxxxxxx?" => Item::Bool(eight[7] != 0),
                    _ => Item::Bool(eight[6] != 0),
                }
            }
            sized => {
                let width = sized
                    .strip_suffix('s')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(bad_slot)?;
                let mut bytes = vec![0u8; width.min(self.shm.size())];
                self.shm.read_at(offset, &mut bytes).map_err(|_| bad_slot())?;
                Item::Bytes(bytes)
            }
        };
        match (code, value) {
            (0, value) => Ok(value),
            (1, Item::Bytes(mut bytes)) => {
                trim_nuls(&mut bytes);
                String::from_utf8(bytes).map(Item::Str).map_err(|e| {
                    Error::ValueError(
                        format!("'utf-8' codec can't decode the item: {}", e.utf8_error()).into(),
                    )
                })
            }
            (2, Item::Bytes(mut bytes)) => {
                trim_nuls(&mut bytes);
                Ok(Item::Bytes(bytes))
            }
            (3, _) => Ok(Item::None),
            _ => Err(bad_slot()),
        }
    }

    /// Replaces item `i` with `value`. A `str` or `bytes` must fit the room item `i` got
    /// when the list was made. Python: `l[i] = value`.
    ///
    /// # Errors
    /// [`Error::IndexError`] `assignment index out of range`; [`Error::ValueError`]
    /// `bytes/str item exceeds available storage`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec!["abc".into(), Item::Int(1)])?;
    /// list.set(0, "xyz".into())?;
    /// list.set(1, Item::None)?;
    /// assert_eq!(list.to_vec()?, vec![Item::Str("xyz".into()), Item::None]);
    /// let too_long = list.set(0, "a string longer than its slot".into()).unwrap_err();
    /// assert_eq!(too_long.to_string(), "bytes/str item exceeds available storage");
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn set(&self, i: usize, value: Item) -> Result<(), Error> {
        let out_of_range = || Error::IndexError("assignment index out of range".into());
        if i >= self.len {
            return Err(out_of_range());
        }
        let current = self.format_at(i).map_err(|_| out_of_range())?;
        let format = match &value {
            Item::Str(_) | Item::Bytes(_) => {
                let room = self.offsets[i + 1] - self.offsets[i];
                if encoded(&value).len() > room {
                    return Err(Error::value("bytes/str item exceeds available storage"));
                }
                if current.ends_with('s') { current } else { format!("{room}s") }
            }
            other => format_of(other)?,
        };
        self.write_item(i, &value, &format)
    }

    /// Every item, in order. Python: `list(l)`.
    ///
    /// # Errors
    /// As [`get`](ShareableList::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec![Item::Int(1), Item::Int(2)])?;
    /// assert_eq!(list.to_vec()?, vec![Item::Int(1), Item::Int(2)]);
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<Item>, Error> {
        (0..self.len).map(|i| self.get(i)).collect()
    }

    /// The `struct` formats of the items, joined. Python: `l.format`.
    ///
    /// # Errors
    /// [`Error::ValueError`] for a malformed format field.
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec![Item::Int(1), Item::Bool(false), "hi".into()])?;
    /// assert_eq!(list.format()?, "qxxxxxxx?8s");
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn format(&self) -> Result<String, Error> {
        (0..self.len).map(|i| self.format_at(i)).collect()
    }

    /// How many items equal `value`. Python: `l.count(value)`.
    ///
    /// # Errors
    /// As [`get`](ShareableList::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec![Item::Int(1), Item::Int(1), Item::None])?;
    /// assert_eq!(list.count(&Item::Int(1))?, 2);
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn count(&self, value: &Item) -> Result<usize, Error> {
        Ok(self.to_vec()?.iter().filter(|item| python_eq(item, value)).count())
    }

    /// The index of the first item equal to `value`. Python: `l.index(value)`.
    ///
    /// # Errors
    /// [`Error::ValueError`] `VALUE not in this container` (the value in Python's repr).
    ///
    /// # Examples
    ///
    /// ```
    /// use multiprocessing::shared_memory::{Item, ShareableList};
    ///
    /// let list = ShareableList::new(vec!["a".into(), "b".into()])?;
    /// assert_eq!(list.index(&"b".into())?, 1);
    /// assert_eq!(list.index(&"z".into()).unwrap_err().to_string(), "'z' not in this container");
    /// list.shm().unlink()?;
    /// # Ok::<(), multiprocessing::Error>(())
    /// ```
    pub fn index(&self, value: &Item) -> Result<usize, Error> {
        for i in 0..self.len {
            if python_eq(&self.get(i)?, value) {
                return Ok(i);
            }
        }
        Err(Error::ValueError(format!("{value} not in this container").into()))
    }

    fn write_item(&self, i: usize, value: &Item, format: &str) -> Result<(), Error> {
        let mut field = [0u8; FORMAT_LEN];
        field[..format.len()].copy_from_slice(format.as_bytes());
        self.shm.write_at(self.formats_offset() + FORMAT_LEN * i, &field)?;
        let code: u8 = match value {
            Item::Str(_) => 1,
            Item::Bytes(_) => 2,
            Item::None => 3,
            _ => 0,
        };
        self.shm.write_at(self.codes_offset() + i, &[code])?;
        let offset = self.data_offset(i).ok_or_else(bad_slot)?;
        match value {
            Item::Int(v) => self.shm.write_at(offset, &v.to_ne_bytes()),
            Item::Float(v) => self.shm.write_at(offset, &v.to_ne_bytes()),
            Item::Bool(v) => self.shm.write_at(offset, &[0, 0, 0, 0, 0, 0, 0, u8::from(*v)]),
            Item::None => self.shm.write_at(offset, &[0; 8]),
            Item::Str(_) | Item::Bytes(_) => {
                let width = allocated(format);
                let mut bytes = encoded(value).to_vec();
                bytes.resize(width, 0);
                self.shm.write_at(offset, &bytes)
            }
        }
    }

    fn format_at(&self, i: usize) -> Result<String, Error> {
        let mut field = [0u8; FORMAT_LEN];
        self.shm
            .read_at(self.formats_offset() + FORMAT_LEN * i, &mut field)
            .map_err(|_| bad_slot())?;
        let end = field.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        std::str::from_utf8(&field[..end]).map(str::to_owned).map_err(|_| bad_slot())
    }

    fn code_at(&self, i: usize) -> Result<u8, Error> {
        let mut code = [0u8];
        self.shm.read_at(self.codes_offset() + i, &mut code).map_err(|_| bad_slot())?;
        Ok(code[0])
    }

    /// Where the data area starts (CPython's `_offset_data_start`).
    fn data_start(&self) -> usize {
        (self.len + 2) * 8
    }

    fn data_offset(&self, i: usize) -> Option<usize> {
        self.data_start().checked_add(self.offsets[i])
    }

    /// Where the formats start (`_offset_packing_formats`).
    fn formats_offset(&self) -> usize {
        self.data_start().saturating_add(self.offsets[self.len])
    }

    /// Where the back-transform codes start (`_offset_back_transform_codes`).
    fn codes_offset(&self) -> usize {
        self.formats_offset().saturating_add(FORMAT_LEN * self.len)
    }
}

impl fmt::Debug for ShareableList {
    /// CPython's repr: `ShareableList([1, 'a', None], name='psm_0a1b2c3d')`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareableList([")?;
        for i in 0..self.len {
            if i > 0 {
                f.write_str(", ")?;
            }
            match self.get(i) {
                Ok(item) => write!(f, "{item}")?,
                Err(_) => f.write_str("<unreadable>")?,
            }
        }
        write!(f, "], name='{}')", self.shm.name())
    }
}

impl serde::Serialize for ShareableList {
    /// As CPython's `__reduce__`: the block's name; the receiver attaches.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&self.shm, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ShareableList {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ShareableList, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(deserializer)?;
        ShareableList::attach(&name)
            .map_err(|e| serde::de::Error::custom(crate::reduction::refuse(e.to_string())))
    }
}

impl SharedMemory {
    /// The `i64` at `offset`, if it lies in the block.
    fn read_i64(&self, offset: usize) -> Option<i64> {
        let mut bytes = [0u8; 8];
        self.read_at(offset, &mut bytes).ok()?;
        Some(i64::from_ne_bytes(bytes))
    }
}

/// An item's `struct` format (CPython's `_types_mapping`).
fn format_of(item: &Item) -> Result<String, Error> {
    Ok(match item {
        Item::Int(_) => "q".into(),
        Item::Float(_) => "d".into(),
        Item::Bool(_) => "xxxxxxx?".into(),
        Item::None => "xxxxxx?x".into(),
        Item::Str(_) | Item::Bytes(_) => {
            // CPython's room: the next multiple of 8 above the length in characters (for
            // str) or bytes. A non-ASCII str whose UTF-8 does not fit gets the room its
            // bytes need (CPython would truncate it).
            let length = match item {
                Item::Str(s) => s.chars().count(),
                _ => encoded(item).len(),
            };
            let mut room = ALIGNMENT * (length / ALIGNMENT + 1);
            if encoded(item).len() > room {
                room = ALIGNMENT * (encoded(item).len() / ALIGNMENT + 1);
            }
            let format = format!("{room}s");
            if format.len() > FORMAT_LEN {
                return Err(Error::value(
                    "the str/bytes item is too long for a ShareableList (its format must fit \
                     8 characters)",
                ));
            }
            format
        }
    })
}

/// The room a format takes in the data area.
fn allocated(format: &str) -> usize {
    format.strip_suffix('s').and_then(|n| n.parse().ok()).unwrap_or(ALIGNMENT)
}

/// A `str` or `bytes` item's bytes.
fn encoded(item: &Item) -> &[u8] {
    match item {
        Item::Str(s) => s.as_bytes(),
        Item::Bytes(b) => b,
        _ => &[],
    }
}

fn trim_nuls(bytes: &mut Vec<u8>) {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    bytes.truncate(end);
}

/// Python's `==` between items: `1 == 1.0 == True`.
fn python_eq(a: &Item, b: &Item) -> bool {
    fn number(item: &Item) -> Option<f64> {
        match item {
            Item::Int(v) => Some(*v as f64),
            Item::Float(v) => Some(*v),
            Item::Bool(v) => Some(f64::from(u8::from(*v))),
            _ => None,
        }
    }
    match (a, b) {
        (Item::Int(x), Item::Int(y)) => x == y,
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn bad_slot() -> Error {
    Error::value("the ShareableList's slot holds no valid item")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_print_as_python_reprs() {
        assert_eq!(Item::Float(2.5).to_string(), "2.5");
        assert_eq!(Item::Float(1.0).to_string(), "1.0");
        assert_eq!(Item::Float(1e20).to_string(), "1e+20");
        assert_eq!(Item::Float(1.5e-7).to_string(), "1.5e-07");
        assert_eq!(Item::Str("it's".into()).to_string(), "\"it's\"");
        assert_eq!(Item::Str("a'\"".into()).to_string(), "'a\\'\"'");
        assert_eq!(Item::Bytes(b"a\x00\n".to_vec()).to_string(), "b'a\\x00\\n'");
        assert_eq!(Item::Bool(true).to_string(), "True");
    }

    #[test]
    fn python_equality_mixes_numbers() {
        assert!(python_eq(&Item::Int(1), &Item::Float(1.0)));
        assert!(python_eq(&Item::Bool(true), &Item::Int(1)));
        assert!(!python_eq(&Item::Str("1".into()), &Item::Int(1)));
    }
}
