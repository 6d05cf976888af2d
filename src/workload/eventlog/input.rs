//! Finding event logs on disk and turning them into a stream of lines.
//!
//! Spark writes an application's log either as one file or, with
//! `spark.eventLog.rolling.enabled` (the Spark 4 default), as a folder
//! `eventlog_v2_<appId>/` of parts `events_<n>_<appId>[.<codec>]`. Each file may be
//! compressed; the codec is the file's extension (Spark's short codec name), and we also
//! sniff the first bytes so that a renamed file still reads.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::EventLogError;

/// Spark's suffix for a log that is still being written (or whose application died).
const IN_PROGRESS: &str = ".inprogress";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const LZ4_BLOCK_MAGIC: &[u8; 8] = b"LZ4Block";

/// One application's event log: a single file or the ordered parts of a rolling log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInput {
    /// The file, or the rolling-log folder: what errors and provenance name.
    pub path: PathBuf,
    /// Files to read in order (one for a single-file log).
    pub parts: Vec<PathBuf>,
    /// The application had not finished writing its log (`.inprogress`), so a truncated
    /// end is expected and only warned about.
    pub in_progress: bool,
}

/// Compression of one file, from Spark's short codec names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Zstd,
    /// lz4-java's `LZ4BlockOutputStream` container, which Spark's `lz4` codec writes.
    Lz4Block,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Plain => "plain",
            Codec::Zstd => "zstd",
            Codec::Lz4Block => "lz4",
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EventLogError + '_ {
    move |source| crate::io::FileError::on(path, "read")(source).into()
}

fn input_err(path: &Path, msg: impl Into<String>) -> EventLogError {
    EventLogError::Input {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The codec named by a file's extension (after any `.inprogress`).
pub fn codec_from_name(path: &Path) -> Result<Codec, EventLogError> {
    let name = file_name(path);
    let name = name.strip_suffix(IN_PROGRESS).unwrap_or(name);
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("zstd" | "zst") => Ok(Codec::Zstd),
        Some("lz4") => Ok(Codec::Lz4Block),
        Some(ext @ ("snappy" | "lzf")) => Err(input_err(
            path,
            format!(
                "the {ext} codec is not supported: decompress the log first, or write it with \
                 spark.eventLog.compression.codec=zstd (or lz4)"
            ),
        )),
        _ => Ok(Codec::Plain),
    }
}

/// Lists the applications under `path`: a log file, a rolling-log folder, or a folder
/// that holds several of either (not recursively beyond that).
pub fn discover(path: &Path) -> Result<Vec<LogInput>, EventLogError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_file() {
        return Ok(vec![single(path)]);
    }
    if let Some(rolling) = rolling(path)? {
        return Ok(vec![rolling]);
    }
    let mut out = Vec::new();
    for entry in sorted_entries(path)? {
        let name = file_name(&entry);
        if name.starts_with('.') {
            continue; // Hadoop's .crc side files, editor droppings
        }
        if entry.is_file() {
            out.push(single(&entry));
        } else if entry.is_dir()
            && let Some(r) = rolling(&entry)?
        {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(input_err(
            path,
            "no event logs found: expected event-log files or eventlog_v2_<appId>/ folders",
        ));
    }
    Ok(out)
}

fn single(path: &Path) -> LogInput {
    LogInput {
        path: path.to_path_buf(),
        parts: vec![path.to_path_buf()],
        in_progress: file_name(path).ends_with(IN_PROGRESS),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, EventLogError> {
    let mut v = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err(dir))?;
    v.sort();
    Ok(v)
}

/// The part number of a rolling-log file name `events_<n>_<appId>...`.
fn part_index(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("events_")?;
    let (n, _) = rest.split_once('_')?;
    n.parse().ok()
}

/// A folder is a rolling log if it is named `eventlog_v2_*` or directly holds
/// `events_<n>_*` parts; parts are ordered by `n` numerically (`events_10` after
/// `events_9`), and `appstatus_*` only tells whether the application was still running.
fn rolling(dir: &Path) -> Result<Option<LogInput>, EventLogError> {
    let entries = sorted_entries(dir)?;
    let mut parts: Vec<(u64, PathBuf)> = entries
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| part_index(file_name(p)).map(|n| (n, p.clone())))
        .collect();
    let named = file_name(dir).starts_with("eventlog_v2_");
    if parts.is_empty() {
        return if named {
            Err(input_err(
                dir,
                "rolling event-log folder without any events_<n>_<appId> part",
            ))
        } else {
            Ok(None)
        };
    }
    parts.sort();
    for w in parts.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(input_err(
                dir,
                format!(
                    "two parts with number {}: {} and {}",
                    w[0].0,
                    file_name(&w[0].1),
                    file_name(&w[1].1)
                ),
            ));
        }
    }
    let in_progress = entries.iter().any(|p| {
        let n = file_name(p);
        n.starts_with("appstatus_") && n.ends_with(IN_PROGRESS)
    }) || parts
        .last()
        .is_some_and(|(_, p)| file_name(p).ends_with(IN_PROGRESS));
    Ok(Some(LogInput {
        path: dir.to_path_buf(),
        parts: parts.into_iter().map(|(_, p)| p).collect(),
        in_progress,
    }))
}

/// Opens a file as a buffered stream of decompressed bytes. The codec comes from the
/// name; a plain-named file that starts with a zstd or LZ4Block magic is decoded anyway.
pub fn open(path: &Path) -> Result<(Box<dyn BufRead>, Codec), EventLogError> {
    let named = codec_from_name(path)?;
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(io_err(path))?;
    let codec = match named {
        Codec::Plain if head.starts_with(&ZSTD_MAGIC) => Codec::Zstd,
        Codec::Plain if head.starts_with(LZ4_BLOCK_MAGIC) => Codec::Lz4Block,
        c => c,
    };
    let stream: Box<dyn BufRead> = match codec {
        Codec::Plain => Box::new(reader),
        Codec::Zstd => Box::new(BufReader::with_capacity(
            1 << 16,
            zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err(path))?,
        )),
        Codec::Lz4Block => Box::new(BufReader::with_capacity(
            1 << 16,
            Lz4BlockReader::new(reader),
        )),
    };
    Ok((stream, codec))
}

// ---------------------------------------------------------------------------------------
// lz4-java's block container.

/// Reads the stream that lz4-java's `LZ4BlockOutputStream` writes (Spark's `lz4` codec):
/// blocks of `"LZ4Block"`, a token (method in the high nibble: 0x10 raw, 0x20 LZ4; block
/// size `1 << (10 + low nibble)`), compressed and decompressed lengths and an XXH32
/// checksum (seed 0x9747b28c, masked to 28 bits) of the decompressed bytes, all
/// little-endian. A block with both lengths 0 ends a stream; another stream may follow,
/// as lz4-java allows. End of input at a block boundary is a clean end.
pub struct Lz4BlockReader<R: Read> {
    inner: R,
    block: Vec<u8>,
    pos: usize,
    compressed: Vec<u8>,
    /// Bytes of input consumed, so that errors can say where the stream broke.
    offset: u64,
}

const LZ4_HEADER_LEN: usize = 8 + 1 + 4 + 4 + 4;
const LZ4_METHOD_RAW: u8 = 0x10;
const LZ4_METHOD_LZ4: u8 = 0x20;
const LZ4_SEED: u32 = 0x9747_b28c;
const LZ4_CHECK_MASK: u32 = 0x0FFF_FFFF;

impl<R: Read> Lz4BlockReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            block: Vec::new(),
            pos: 0,
            compressed: Vec::new(),
            offset: 0,
        }
    }

    fn corrupt(&self, msg: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("LZ4Block stream at byte {}: {msg}", self.offset),
        )
    }

    /// Fills `buf` completely; `Ok(false)` if the input ended before the first byte.
    fn read_full(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "LZ4Block stream at byte {}: truncated block ({got} of {} bytes)",
                            self.offset,
                            buf.len()
                        ),
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Decodes the next non-empty block into `self.block`; `Ok(false)` at the end.
    fn next_block(&mut self) -> std::io::Result<bool> {
        loop {
            let mut header = [0u8; LZ4_HEADER_LEN];
            if !self.read_full(&mut header)? {
                return Ok(false);
            }
            if &header[..8] != LZ4_BLOCK_MAGIC {
                return Err(self.corrupt("missing the LZ4Block magic"));
            }
            let token = header[8];
            let method = token & 0xF0;
            let level = u32::from(token & 0x0F);
            let le = |i: usize| {
                u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]])
            };
            let (clen, dlen, check) = (le(9), le(13), le(17));
            let max_block = 1u64 << (10 + level);
            if u64::from(dlen) > max_block
                || (dlen == 0) != (clen == 0)
                || (method == LZ4_METHOD_RAW && clen != dlen)
                || u64::from(clen) > u64::from(dlen) + u64::from(dlen) / 255 + 16
                || (method != LZ4_METHOD_RAW && method != LZ4_METHOD_LZ4)
            {
                return Err(self.corrupt(format!(
                    "invalid block header (token {token:#04x}, compressed {clen}, \
                     decompressed {dlen})"
                )));
            }
            self.offset += LZ4_HEADER_LEN as u64;
            if dlen == 0 {
                if check != 0 {
                    return Err(self.corrupt("end-of-stream block with a non-zero checksum"));
                }
                continue; // end of one stream; a concatenated one may follow
            }
            let (clen, dlen) = (clen as usize, dlen as usize);
            self.block.resize(dlen, 0);
            if method == LZ4_METHOD_RAW {
                let mut block = std::mem::take(&mut self.block);
                let r = self.read_full(&mut block);
                self.block = block;
                if !r? {
                    return Err(self.corrupt("truncated block (no payload)"));
                }
            } else {
                self.compressed.resize(clen, 0);
                let mut comp = std::mem::take(&mut self.compressed);
                let r = self.read_full(&mut comp);
                self.compressed = comp;
                if !r? {
                    return Err(self.corrupt("truncated block (no payload)"));
                }
                let n = lz4_flex::block::decompress_into(&self.compressed, &mut self.block)
                    .map_err(|e| self.corrupt(format!("bad LZ4 data: {e}")))?;
                if n != dlen {
                    return Err(self.corrupt(format!(
                        "block decompressed to {n} bytes, header says {dlen}"
                    )));
                }
            }
            let actual = xxhash_rust::xxh32::xxh32(&self.block, LZ4_SEED) & LZ4_CHECK_MASK;
            if actual != check & LZ4_CHECK_MASK {
                return Err(self.corrupt(format!(
                    "checksum mismatch (stored {check:#x}, computed {actual:#x})"
                )));
            }
            self.offset += clen as u64;
            self.pos = 0;
            return Ok(true);
        }
    }
}

impl<R: Read> Read for Lz4BlockReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.block.len() && !self.next_block()? {
            return Ok(0);
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes lz4-java's block container, as Spark's `lz4` codec does; used by tests and
/// fixtures to produce logs without a JVM. `block_size` must be a power of two between
/// 64 B and 32 MiB.
pub fn lz4_block_encode(data: &[u8], block_size: usize) -> Vec<u8> {
    let level = (block_size.max(1024).trailing_zeros().saturating_sub(10)).min(15) as u8;
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let header = |out: &mut Vec<u8>, method: u8, clen: usize, dlen: usize, check: u32| {
        out.extend_from_slice(LZ4_BLOCK_MAGIC);
        out.push(method | level);
        out.extend_from_slice(&(clen as u32).to_le_bytes());
        out.extend_from_slice(&(dlen as u32).to_le_bytes());
        out.extend_from_slice(&check.to_le_bytes());
    };
    for chunk in data.chunks(1usize << (10 + u32::from(level))) {
        let check = xxhash_rust::xxh32::xxh32(chunk, LZ4_SEED) & LZ4_CHECK_MASK;
        let comp = lz4_flex::block::compress(chunk);
        if comp.len() >= chunk.len() {
            header(&mut out, LZ4_METHOD_RAW, chunk.len(), chunk.len(), check);
            out.extend_from_slice(chunk);
        } else {
            header(&mut out, LZ4_METHOD_LZ4, comp.len(), chunk.len(), check);
            out.extend_from_slice(&comp);
        }
    }
    header(&mut out, LZ4_METHOD_RAW, 0, 0, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Lz4BlockReader::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn lz4_block_round_trip_with_raw_and_compressed_blocks() {
        // Compressible text and incompressible noise give both block methods.
        let mut data: Vec<u8> = b"{\"Event\":\"SparkListenerTaskEnd\"}\n".repeat(500);
        let mut x: u32 = 1;
        for _ in 0..3000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.push((x >> 24) as u8);
        }
        let enc = lz4_block_encode(&data, 1024);
        assert!(
            enc.windows(9)
                .any(|w| &w[..8] == LZ4_BLOCK_MAGIC && w[8] & 0xF0 == 0x10)
        );
        assert!(
            enc.windows(9)
                .any(|w| &w[..8] == LZ4_BLOCK_MAGIC && w[8] & 0xF0 == 0x20)
        );
        assert_eq!(decode(&enc).unwrap(), data);
        // Two concatenated streams read as one.
        let mut two = enc.clone();
        two.extend_from_slice(&lz4_block_encode(b"tail\n", 1024));
        let mut expected = data.clone();
        expected.extend_from_slice(b"tail\n");
        assert_eq!(decode(&two).unwrap(), expected);
    }

    #[test]
    fn lz4_block_rejects_corruption_and_truncation() {
        let data = b"hello hello hello hello hello hello\n".repeat(40);
        let enc = lz4_block_encode(&data, 1024);
        let mut bad = enc.clone();
        bad[LZ4_HEADER_LEN + 3] ^= 0x55; // payload byte
        let e = decode(&bad).unwrap_err().to_string();
        assert!(
            e.contains("checksum mismatch") || e.contains("bad LZ4 data"),
            "{e}"
        );
        let e = decode(&enc[..enc.len() - 30]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
        let mut bad = enc.clone();
        bad[0] = b'X';
        assert!(decode(&bad).unwrap_err().to_string().contains("magic"));
    }

    #[test]
    fn codecs_come_from_the_extension() {
        let c = |n: &str| codec_from_name(Path::new(n)).map_err(|e| e.to_string());
        assert_eq!(c("app-20261123025025-0000"), Ok(Codec::Plain));
        assert_eq!(c("local-1795397814919.inprogress"), Ok(Codec::Plain));
        assert_eq!(c("application_1700000000000_0001_1"), Ok(Codec::Plain));
        assert_eq!(c("events_1_app-1.zstd"), Ok(Codec::Zstd));
        assert_eq!(c("app-1.zst"), Ok(Codec::Zstd));
        assert_eq!(c("app-1.zstd.inprogress"), Ok(Codec::Zstd));
        assert_eq!(c("app-1.lz4"), Ok(Codec::Lz4Block));
        assert!(
            c("app-1.lzf")
                .unwrap_err()
                .contains("the lzf codec is not supported")
        );
    }

    #[test]
    fn part_numbers_sort_numerically() {
        assert_eq!(part_index("events_10_app-1.zstd"), Some(10));
        assert_eq!(part_index("events_x_app"), None);
        assert_eq!(part_index("appstatus_app-1"), None);
    }
}
