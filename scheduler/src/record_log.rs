//! An append-only log of key-value records, for the records that are written often and can be
//! restored by reconciliation if a crash loses the newest ones (instances).
//!
//! Each write appends to one file: no file is created, truncated or removed per record (with one
//! file per record, ext4's inode allocator and its flush-on-close of truncated files were the
//! largest cost at scale). An index in memory maps a key's hash to where its newest record
//! starts, so reading a key costs one read. When the file holds more than twice the live bytes
//! (and at least [`COMPACT_MIN_BYTES`]), the live records are copied to a new generation of the
//! file, which is flushed before the old one is removed.
//!
//! A record is `[body length: u32 LE][CRC-32 of body: u32 LE][body]`, the body
//! `[kind: u8, 1 put / 0 delete][key length: u16 LE][key][value]`. Appends are not flushed, so a
//! crash can cut the file or leave garbage at its end: opening the log keeps every record up to
//! the first one that is incomplete or fails its checksum and drops the rest (with a warning).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{Hash as _, Hasher as _};
use std::io::{BufReader, BufWriter, Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// The log is compacted only once its file is at least this large.
pub const COMPACT_MIN_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes before a record's body.
const HEADER: usize = 8;

/// Record kinds.
const PUT: u8 = 1;
const DELETE: u8 = 0;

/// Where a key's newest record is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    offset: u64,
    /// Whole record, header included.
    len: u32,
}

/// One change to append.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Set `key` to a value.
    Put(&'a str, &'a [u8]),
    /// Remove `key`.
    Delete(&'a str),
}

/// The log of one directory, with its index. Not shared: the owner serialises access.
#[derive(Debug)]
pub struct RecordLog {
    dir: PathBuf,
    generation: u64,
    file: File,
    /// Bytes in the file (the next record's offset).
    len: u64,
    /// Hash of each live key → its newest record. Two live keys with the same 64-bit hash are
    /// astronomically unlikely at any size this store holds; reads check the key anyway.
    index: HashMap<u64, Loc>,
    /// Bytes of the live records.
    live: u64,
    /// The file size below which no compaction is tried (raised after a failed one).
    compact_at: u64,
}

/// The hash that indexes `key` (fixed keys: the same in every run).
fn hash(key: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// The file of a generation.
fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("log-{generation:020}"))
}

/// Appends one encoded record to `out`.
fn encode(out: &mut Vec<u8>, change: Change<'_>) -> std::io::Result<()> {
    let (kind, key, value) = match change {
        Change::Put(k, v) => (PUT, k, v),
        Change::Delete(k) => (DELETE, k, &[][..]),
    };
    let key_len =
        u16::try_from(key.len()).map_err(|_| std::io::Error::other(format!("key of {} bytes is too long for the log", key.len())))?;
    let body_len = 1 + 2 + key.len() + value.len();
    let body_len =
        u32::try_from(body_len).map_err(|_| std::io::Error::other(format!("record of {body_len} bytes is too large for the log")))?;
    let start = out.len();
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Reads a file from `pos` up to `end` with positioned reads, leaving the file's own offset alone
/// (clones of a file share it).
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX).min(buf.len());
        let n = self.file.read_at(&mut buf[..room], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A buffered reader of `file` from its start up to `end`.
fn read_from_start(file: &File, end: u64) -> BufReader<ReadAt<'_>> {
    BufReader::with_capacity(1 << 20, ReadAt { file, pos: 0, end })
}

/// A record read back from the file.
struct Record {
    kind: u8,
    key: String,
    value: Vec<u8>,
    len: u32,
}

/// Decodes a record's body (checksum already verified).
fn decode_body(body: Vec<u8>, len: u32) -> Option<Record> {
    let (&kind, rest) = body.split_first()?;
    let key_len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(rest.get(2..2 + key_len)?).ok()?.to_string();
    if kind != PUT && kind != DELETE {
        return None;
    }
    let value = rest[2 + key_len..].to_vec();
    Some(Record { kind, key, value, len })
}

/// Reads the next record; `None` at the end of the file or at a torn or corrupt record.
fn read_record(reader: &mut impl std::io::Read) -> Option<Record> {
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header).ok()?;
    let body_len = u32::from_le_bytes(header[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let mut body = Vec::new();
    reader.take(u64::from(body_len)).read_to_end(&mut body).ok()?;
    if body.len() != body_len as usize || crc32fast::hash(&body) != crc {
        return None;
    }
    decode_body(body, body_len + HEADER as u32)
}

impl RecordLog {
    /// Opens the log in `dir` (created if missing): the newest generation is read to build the
    /// index, a torn end is cut off, and older generations left by an interrupted compaction are
    /// removed.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut generations = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match name.strip_prefix("log-").and_then(|g| g.parse::<u64>().ok()) {
                Some(generation) => generations.push(generation),
                None if name.starts_with('.') => std::fs::remove_file(entry.path())?,
                None => {}
            }
        }
        generations.sort_unstable();
        let generation = generations.pop().unwrap_or(0);
        for old in generations {
            std::fs::remove_file(log_path(dir, old))?;
        }
        let path = log_path(dir, generation);
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let mut log =
            Self { dir: dir.to_path_buf(), generation, file, len: 0, index: HashMap::new(), live: 0, compact_at: COMPACT_MIN_BYTES };
        let size = log.file.metadata()?.len();
        let file = log.file.try_clone()?;
        let mut reader = read_from_start(&file, size);
        while let Some(record) = read_record(&mut reader) {
            log.note(&record.key, record.kind, Loc { offset: log.len, len: record.len });
            log.len += u64::from(record.len);
        }
        if log.len < size {
            tracing::warn!(log = %path.display(), kept = log.len, dropped = size - log.len, "the record log ends in a torn or corrupt record (a crash?); dropping it and what follows, reconciliation restores those records");
            log.file.set_len(log.len)?;
        }
        Ok(log)
    }

    /// Updates the index for a record of `kind` for `key` at `loc`.
    fn note(&mut self, key: &str, kind: u8, loc: Loc) {
        let h = hash(key);
        let old = if kind == PUT { self.index.insert(h, loc) } else { self.index.remove(&h) };
        if let Some(old) = old {
            self.live -= u64::from(old.len);
        }
        if kind == PUT {
            self.live += u64::from(loc.len);
        }
    }

    /// Whether `key` has a live record.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(&hash(key))
    }

    /// Appends `changes` with one write, in order, then compacts the log if it is due (a failed
    /// compaction is logged and tried again once the file has grown by half). Deleting an
    /// absent key writes nothing.
    pub fn append(&mut self, changes: &[Change<'_>]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        let mut locs = Vec::with_capacity(changes.len());
        for change in changes {
            if let Change::Delete(key) = change
                && !self.contains(key)
            {
                continue;
            }
            let start = bytes.len();
            encode(&mut bytes, *change)?;
            let loc = Loc { offset: self.len + start as u64, len: (bytes.len() - start) as u32 };
            locs.push((*change, loc));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(&bytes, self.len) {
            // Cut what part of the batch may have landed, so the next append starts clean.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        for (change, loc) in locs {
            match change {
                Change::Put(key, _) => self.note(key, PUT, loc),
                Change::Delete(key) => self.note(key, DELETE, loc),
            }
        }
        if self.len >= self.compact_at && self.len > 2 * self.live {
            match self.compact() {
                Ok(()) => self.compact_at = COMPACT_MIN_BYTES,
                Err(e) => {
                    self.compact_at = self.len + self.len / 2;
                    tracing::warn!(dir = %self.dir.display(), error = %e, "could not compact the record log; it keeps growing until a later try succeeds");
                }
            }
        }
        Ok(())
    }

    /// The value of `key`, if it has a live record.
    pub fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(loc) = self.index.get(&hash(key)) else { return Ok(None) };
        let mut buf = vec![0; loc.len as usize];
        self.file.read_exact_at(&mut buf, loc.offset)?;
        let record = read_record(&mut &buf[..]).ok_or_else(|| std::io::Error::other(format!("record of '{key}' in the log is corrupt")))?;
        Ok((record.key == key && record.kind == PUT).then_some(record.value))
    }

    /// Every live record whose key starts with `prefix`, in one pass over the file.
    pub fn scan(&self, prefix: &str) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut reader = read_from_start(&self.file, self.len);
        let mut offset = 0;
        while let Some(record) = read_record(&mut reader) {
            let live = self.index.get(&hash(&record.key)) == Some(&Loc { offset, len: record.len });
            offset += u64::from(record.len);
            if live && record.key.starts_with(prefix) {
                out.insert(record.key, record.value);
            }
        }
        Ok(out)
    }

    /// Copies the live records to the next generation of the file, flushes it, and removes the
    /// current one.
    fn compact(&mut self) -> std::io::Result<()> {
        let next = self.generation + 1;
        let tmp = self.dir.join(format!(".log-{next:020}.tmp"));
        let mut index = HashMap::with_capacity(self.index.len());
        let mut written = 0u64;
        {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            let mut reader = read_from_start(&self.file, self.len);
            let mut offset = 0;
            let mut bytes = Vec::new();
            while let Some(record) = read_record(&mut reader) {
                let loc = Loc { offset, len: record.len };
                offset += u64::from(record.len);
                let h = hash(&record.key);
                if self.index.get(&h) != Some(&loc) {
                    continue;
                }
                bytes.clear();
                encode(&mut bytes, Change::Put(&record.key, &record.value))?;
                out.write_all(&bytes)?;
                index.insert(h, Loc { offset: written, len: record.len });
                written += u64::from(record.len);
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        let path = log_path(&self.dir, next);
        std::fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
        std::fs::remove_file(log_path(&self.dir, self.generation))?;
        tracing::debug!(before = self.len, after = written, records = index.len(), "compacted the record log");
        self.file = file;
        self.generation = next;
        self.len = written;
        self.live = written;
        self.index = index;
        Ok(())
    }

    /// Bytes in the current file (for tests and metrics).
    pub fn file_bytes(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("framework-log-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn records_survive_reopening_and_the_newest_wins() {
        let dir = temp_dir();
        let mut log = RecordLog::open(&dir).unwrap();
        log.append(&[Change::Put("instances/a", b"1"), Change::Put("instances/b", b"2"), Change::Put("apps/x", b"x")]).unwrap();
        log.append(&[Change::Put("instances/a", b"3"), Change::Delete("instances/b"), Change::Delete("instances/none")]).unwrap();
        assert_eq!(log.get("instances/a").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(log.get("instances/b").unwrap(), None);
        drop(log);
        let log = RecordLog::open(&dir).unwrap();
        let all = log.scan("instances/").unwrap();
        assert_eq!(all.into_iter().collect::<Vec<_>>(), [("instances/a".to_string(), b"3".to_vec())]);
        assert_eq!(log.get("apps/x").unwrap().as_deref(), Some(&b"x"[..]));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_torn_end_is_dropped_and_appends_continue_after_what_was_kept() {
        let dir = temp_dir();
        let mut log = RecordLog::open(&dir).unwrap();
        log.append(&[Change::Put("k/a", b"a")]).unwrap();
        let kept = log.file_bytes();
        log.append(&[Change::Put("k/b", b"bbbbbbbb")]).unwrap();
        drop(log);
        // A crash cut the second record short, then garbage followed.
        let path = log_path(&dir, 0);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(kept + 10).unwrap();
        file.write_all_at(&[0xff; 7], kept + 10).unwrap();
        drop(file);
        let mut log = RecordLog::open(&dir).unwrap();
        assert_eq!(log.file_bytes(), kept);
        assert_eq!(log.get("k/b").unwrap(), None);
        log.append(&[Change::Put("k/c", b"c")]).unwrap();
        drop(log);
        let log = RecordLog::open(&dir).unwrap();
        assert_eq!(log.scan("k/").unwrap().into_keys().collect::<Vec<_>>(), ["k/a", "k/c"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn compaction_keeps_exactly_the_live_records() {
        let dir = temp_dir();
        let mut log = RecordLog::open(&dir).unwrap();
        let value = vec![7u8; 4096];
        let keys: Vec<String> = (0..100).map(|k| format!("k/{k}")).collect();
        // Rewrite 100 keys many times: the file passes the threshold and is compacted.
        for _ in 0..60 {
            let changes: Vec<Change<'_>> = keys.iter().map(|k| Change::Put(k, &value)).collect();
            log.append(&changes).unwrap();
        }
        log.append(&[Change::Delete("k/5")]).unwrap();
        let mut expected = BTreeMap::new();
        for k in (0..100).filter(|k| *k != 5) {
            expected.insert(format!("k/{k}"), value.clone());
        }
        assert!(log.generation > 0, "the log was compacted");
        assert!(log.file_bytes() < COMPACT_MIN_BYTES * 2, "compaction keeps the file near its live size");
        assert!(log.scan("k/").unwrap() == expected, "the live records are kept");
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 1, "old generations are removed");
        drop(log);
        assert!(RecordLog::open(&dir).unwrap().scan("").unwrap() == expected, "and survive reopening");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_interrupted_compaction_leaves_the_old_generation_in_use() {
        let dir = temp_dir();
        let mut log = RecordLog::open(&dir).unwrap();
        log.append(&[Change::Put("k/a", b"a")]).unwrap();
        drop(log);
        std::fs::write(dir.join(".log-00000000000000000001.tmp"), b"partial").unwrap();
        let log = RecordLog::open(&dir).unwrap();
        assert_eq!(log.get("k/a").unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "the temporary file is removed");
        let _ = std::fs::remove_dir_all(dir);
    }
}
