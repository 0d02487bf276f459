//! The backlog of batches the collector has not acknowledged: on disk (the
//! spool) or, with `spool: {dir: off}`, in memory.
//!
//! # On-disk format
//! The spool directory holds numbered segment files (`00000000000000000001.seg`)
//! appended to in order, a `head` file naming the first unacknowledged record
//! (`<segment> <offset>`), and a `lock` file so two agents never share a spool.
//! Each record is framed as
//!
//! ```text
//! [payload length: u32 LE][CRC-32 of payload: u32 LE][payload]
//! ```
//!
//! and written with one `write` followed by `fdatasync`. A crash mid-write
//! leaves a torn record at the end of the newest segment: on open it fails
//! its length or checksum and is cut off, so at most the record being written
//! is lost. A bad record inside an older segment loses the rest of that
//! segment (counted), never the segments after it.
//!
//! Records are consumed oldest first: `peek` returns the head, `pop` moves
//! `head` past it once the collector has acknowledged it. A crash between the
//! acknowledgement and the `head` update re-sends that one record, which the
//! collector recognises by its `(boot_id, seq)`.
//!
//! When a new record would take the spool past `max_bytes`, whole segments
//! are dropped oldest first and their records counted as dropped.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Largest record accepted (a batch is at most 1 MiB compressed).
pub(crate) const MAX_RECORD_BYTES: u32 = 8 << 20;
const HEADER: u64 = 8;

/// What opening a spool found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Records waiting.
    pub records: u64,
    /// Bytes cut off the end of the newest segment (a torn write).
    pub torn_bytes: u64,
    /// Older segments whose tail was unreadable.
    pub damaged_segments: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// File length.
    bytes: u64,
    /// Records not yet consumed.
    records: u64,
}

/// A bounded, crash-safe FIFO of byte records.
#[derive(Debug)]
pub(crate) struct Backlog {
    store: Store,
    max_bytes: u64,
    /// Records dropped because the backlog was full or damaged.
    pub dropped: u64,
}

#[derive(Debug)]
enum Store {
    Memory {
        queue: VecDeque<Vec<u8>>,
        bytes: u64,
    },
    Disk(Disk),
}

#[derive(Debug)]
struct Disk {
    dir: PathBuf,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Offset of the head record in `segments[0]`.
    head: u64,
    /// Payload length of the head record, once `peek` has read it.
    head_len: Option<u64>,
    /// The newest segment, open for appending.
    writer: Option<File>,
    next_id: u64,
    _lock: File,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Reads the record at the reader's position: Ok(None) at a clean end,
/// Err(InvalidData) for a torn or corrupt record.
fn read_record(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER as usize];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..])? {
            0 if got == 0 => return Ok(None),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "torn record header",
                ))
            }
            n => got += n,
        }
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad record length",
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "torn record"))?;
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record checksum mismatch",
        ));
    }
    Ok(Some(payload))
}

impl Backlog {
    /// A backlog in memory only: lost on restart.
    pub(crate) fn memory(max_bytes: u64) -> Backlog {
        Backlog {
            store: Store::Memory {
                queue: VecDeque::new(),
                bytes: 0,
            },
            max_bytes,
            dropped: 0,
        }
    }

    /// Opens (creating it if needed) the spool in `dir`, recovering what a
    /// crash left.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<(Backlog, Recovery)> {
        std::fs::create_dir_all(dir)?;
        let lock = lock(dir)?;
        let ids = segment_ids(dir)?;
        let (head_id, head) = read_head(dir);
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        let last = ids.last().copied();
        for id in ids {
            if id < head_id {
                let _ = std::fs::remove_file(segment_path(dir, id));
                continue;
            }
            let start = if id == head_id { head } else { 0 };
            segments.push_back(scan(dir, id, start, Some(id) == last, &mut recovery)?);
        }
        let head = match segments.front() {
            Some(s) if s.id == head_id => head.min(s.bytes),
            _ => 0,
        };
        let next_id = segments.back().map(|s| s.id + 1).unwrap_or(head_id.max(1));
        let writer = match segments.back() {
            Some(s) => Some(
                OpenOptions::new()
                    .append(true)
                    .open(segment_path(dir, s.id))?,
            ),
            None => None,
        };
        let disk = Disk {
            dir: dir.to_path_buf(),
            segment_bytes: (max_bytes / 8).clamp(64 * 1024, 8 << 20),
            segments,
            head,
            head_len: None,
            writer,
            next_id,
            _lock: lock,
        };
        Ok((
            Backlog {
                store: Store::Disk(disk),
                max_bytes,
                dropped: 0,
            },
            recovery,
        ))
    }

    /// Records waiting.
    pub(crate) fn len(&self) -> u64 {
        match &self.store {
            Store::Memory { queue, .. } => queue.len() as u64,
            Store::Disk(d) => d.segments.iter().map(|s| s.records).sum(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held (on disk: the segment files).
    pub(crate) fn bytes(&self) -> u64 {
        match &self.store {
            Store::Memory { bytes, .. } => *bytes,
            Store::Disk(d) => d.segments.iter().map(|s| s.bytes).sum(),
        }
    }

    /// True when records survive a restart.
    pub(crate) fn is_durable(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }

    /// Appends a record, dropping the oldest to stay under `max_bytes`.
    /// Returns how many records were dropped to make room.
    pub(crate) fn push(&mut self, payload: &[u8]) -> io::Result<u64> {
        let need = HEADER + payload.len() as u64;
        if payload.is_empty() || payload.len() as u64 > u64::from(MAX_RECORD_BYTES) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record size out of range",
            ));
        }
        let before = self.dropped;
        match &mut self.store {
            Store::Memory { queue, bytes } => {
                while *bytes + need > self.max_bytes {
                    let Some(old) = queue.pop_front() else { break };
                    *bytes -= HEADER + old.len() as u64;
                    self.dropped += 1;
                }
                *bytes += need;
                queue.push_back(payload.to_vec());
            }
            Store::Disk(d) => {
                let full = d
                    .segments
                    .back()
                    .is_none_or(|s| s.bytes + need > d.segment_bytes);
                if full || d.writer.is_none() {
                    d.rotate()?;
                }
                // Drop whole old segments (never the one being written).
                while d.segments.iter().map(|s| s.bytes).sum::<u64>() + need > self.max_bytes
                    && d.segments.len() > 1
                {
                    if let Some(old) = d.segments.pop_front() {
                        self.dropped += old.records;
                        let _ = std::fs::remove_file(segment_path(&d.dir, old.id));
                        d.head = 0;
                        d.head_len = None;
                    }
                }
                let mut rec = Vec::with_capacity(need as usize);
                rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
                rec.extend_from_slice(payload);
                let w = d
                    .writer
                    .as_mut()
                    .ok_or_else(|| io::Error::other("no open segment"))?;
                w.write_all(&rec)?;
                w.sync_data()?;
                if let Some(s) = d.segments.back_mut() {
                    s.bytes += need;
                    s.records += 1;
                }
                if d.head == 0 && d.segments.len() == 1 {
                    d.save_head()?;
                }
            }
        }
        Ok(self.dropped - before)
    }

    /// The oldest record, without consuming it.
    pub(crate) fn peek(&mut self) -> io::Result<Option<Vec<u8>>> {
        match &mut self.store {
            Store::Memory { queue, .. } => Ok(queue.front().cloned()),
            Store::Disk(d) => loop {
                let Some(seg) = d.segments.front() else {
                    return Ok(None);
                };
                if seg.records == 0 {
                    if d.segments.len() == 1 {
                        return Ok(None);
                    }
                    d.drop_front()?;
                    continue;
                }
                let mut f = File::open(segment_path(&d.dir, seg.id))?;
                f.seek(SeekFrom::Start(d.head))?;
                match read_record(&mut io::BufReader::new(f)) {
                    Ok(Some(p)) => {
                        d.head_len = Some(p.len() as u64);
                        return Ok(Some(p));
                    }
                    Ok(None) | Err(_) => {
                        // Damaged since it was written: lose this segment's rest.
                        tracing::warn!(
                            segment = seg.id,
                            "spool segment unreadable; skipping the rest of it"
                        );
                        self.dropped += seg.records;
                        if let Some(s) = d.segments.front_mut() {
                            s.records = 0;
                        }
                        if d.segments.len() == 1 {
                            return Ok(None);
                        }
                        d.drop_front()?;
                    }
                }
            },
        }
    }

    /// Consumes the oldest record (after the collector acknowledged it).
    pub(crate) fn pop(&mut self) -> io::Result<()> {
        if let Store::Memory { queue, bytes } = &mut self.store {
            if let Some(old) = queue.pop_front() {
                *bytes -= HEADER + old.len() as u64;
            }
            return Ok(());
        }
        // The head's length comes from the `peek` before (read once per
        // delivery), or from a fresh one.
        let cached = match &self.store {
            Store::Disk(d) => d.head_len,
            Store::Memory { .. } => None,
        };
        let len = match cached {
            Some(l) => l,
            None => match self.peek()? {
                Some(p) => p.len() as u64,
                None => return Ok(()),
            },
        };
        let Store::Disk(d) = &mut self.store else {
            return Ok(());
        };
        d.head_len = None;
        d.head += HEADER + len;
        if let Some(s) = d.segments.front_mut() {
            s.records = s.records.saturating_sub(1);
        }
        let seg_done = d.segments.front().is_some_and(|s| s.records == 0);
        if seg_done {
            // Empty: start over with a fresh segment next time.
            d.drop_front()?;
            if d.segments.is_empty() {
                d.writer = None;
            }
        }
        d.save_head()
    }
}

impl Disk {
    fn rotate(&mut self) -> io::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, id))?;
        if self.segments.is_empty() {
            self.head = 0;
        }
        self.segments.push_back(Segment {
            id,
            bytes: 0,
            records: 0,
        });
        self.writer = Some(f);
        Ok(())
    }

    fn drop_front(&mut self) -> io::Result<()> {
        self.head_len = None;
        if let Some(old) = self.segments.pop_front() {
            std::fs::remove_file(segment_path(&self.dir, old.id))?;
        }
        self.head = 0;
        self.save_head()
    }

    /// Persists the head position (write, then rename over the old file).
    fn save_head(&self) -> io::Result<()> {
        let (id, off) = match self.segments.front() {
            Some(s) => (s.id, self.head),
            None => (self.next_id, 0),
        };
        let tmp = self.dir.join("head.tmp");
        std::fs::write(&tmp, format!("{id} {off}\n"))?;
        std::fs::rename(tmp, self.dir.join("head"))
    }
}

/// The spool's lock: one agent per directory.
fn lock(dir: &Path) -> io::Result<File> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    lock.try_lock().map_err(|_| {
        io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("spool {} is in use by another agent", dir.display()),
        )
    })?;
    Ok(lock)
}

/// The ids of the segment files in `dir`, oldest first.
fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The head (segment id, offset of the oldest unsent record); (0, 0) when
/// the file is missing or unreadable.
fn read_head(dir: &Path) -> (u64, u64) {
    std::fs::read_to_string(dir.join("head"))
        .ok()
        .and_then(|t| {
            let mut w = t.split_whitespace();
            Some((
                w.next()?.parse::<u64>().ok()?,
                w.next()?.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or((0, 0))
}

/// Counts segment `id`'s records from `start`. A bad record in the newest
/// segment is a torn write, cut off; in an older one the rest of that
/// segment is counted damaged.
fn scan(
    dir: &Path,
    id: u64,
    start: u64,
    newest: bool,
    recovery: &mut Recovery,
) -> io::Result<Segment> {
    let path = segment_path(dir, id);
    let mut f = File::open(&path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(start.min(len)))?;
    let mut r = io::BufReader::new(f);
    let mut pos = start.min(len);
    let mut records = 0;
    loop {
        match read_record(&mut r) {
            Ok(Some(p)) => {
                records += 1;
                pos += HEADER + p.len() as u64;
            }
            Ok(None) => break,
            Err(_) => {
                if newest {
                    // A torn write at the end: cut it off.
                    recovery.torn_bytes += len - pos;
                    OpenOptions::new().write(true).open(&path)?.set_len(pos)?;
                } else {
                    recovery.damaged_segments += 1;
                }
                break;
            }
        }
    }
    recovery.records += records;
    Ok(Segment {
        id,
        // The newest segment was cut to its last good record; an older
        // damaged one keeps its size until it is consumed.
        bytes: if newest { pos } else { len },
        records,
    })
}

#[cfg(test)]
mod tests;
