//! The streaming writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use rayon::prelude::*;
use serde_json::Value;
use zarrs::array::codec::{
    BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode, ShardingCodecBuilder,
    ShardingCodecOptions, SubchunkWriteOrder, ZstdCodec, blosc_compress_bytes,
};
use zarrs::array::{Array, ArrayBuilder, BytesToBytesCodecTraits, CodecSpecificOptions, Element};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;

use crate::FORMAT;
use crate::assembly::{AssemblyMeta, DType, required_column};
use crate::coords::write_parquet;
use crate::error::{Result, StoreError};

/// Target elements per chunk (4 MiB of float32).
const CHUNK_ELEMENTS: u64 = 1 << 20;
/// At most this many elements of one row go in one chunk (wider rows are split in columns).
const CHUNK_ROW_ELEMENTS: u64 = 8192;
/// Target elements per inner chunk of a shard (32 KiB of float32): what a row slice decodes.
const INNER_ELEMENTS: u64 = 8192;

/// What to write.
#[derive(Clone, Debug)]
pub struct AssemblySpec {
    /// The identifier.
    pub identifier: String,
    /// The kind (`neural`, `activations`, …).
    pub kind: String,
    /// Dimension names; the first is the one rows are appended along.
    pub dims: Vec<String>,
    /// The lengths of every dimension after the first.
    pub inner_shape: Vec<u64>,
    /// The element type.
    pub dtype: DType,
    /// The producing stage's key, if any.
    pub producer: Option<String>,
    /// Free attributes.
    pub attrs: serde_json::Map<String, Value>,
    /// Rows per chunk (default: about 4 MiB chunks). A chunk is one file.
    pub chunk_rows: Option<u64>,
    /// Rows per inner chunk: when fewer than `chunk_rows`, each chunk file is a Zarr shard of
    /// inner chunks this many rows tall, each compressed on its own, so that reading a few
    /// rows decodes only theirs. Default: the largest divisor of the chunk's rows that keeps
    /// an inner chunk at most about 8,192 elements (one row of a wide layer).
    pub inner_rows: Option<u64>,
    /// How chunks (or a shard's bands) are compressed.
    pub codec: Codec,
}

/// How value chunks are compressed: both are core Zarr v3 codecs that zarr-python, xarray and
/// zarrs read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Codec {
    /// Blosc: the elements bit-shuffled, then LZ4 at `clevel` (1–9). The default (level 5):
    /// on activations about 4× zstd −3's compression and 2× its decompression speed, for
    /// 10–20 % more bytes.
    BloscLz4 {
        /// Blosc's compression level, 1–9.
        clevel: u8,
    },
    /// zstd at `level` (negative levels are zstd's fast ones): the smaller files.
    Zstd {
        /// zstd's level.
        level: i32,
    },
}

impl Default for Codec {
    fn default() -> Self {
        Codec::BloscLz4 { clevel: 5 }
    }
}

impl AssemblySpec {
    /// A float32 spec with defaults.
    pub fn new(identifier: &str, kind: &str, dims: &[&str], inner_shape: &[u64]) -> Self {
        AssemblySpec {
            identifier: identifier.into(),
            kind: kind.into(),
            dims: dims.iter().map(|d| d.to_string()).collect(),
            inner_shape: inner_shape.to_vec(),
            dtype: DType::Float32,
            producer: None,
            attrs: serde_json::Map::new(),
            chunk_rows: None,
            inner_rows: None,
            codec: Codec::default(),
        }
    }

    fn chunk_shape(&self) -> Vec<u64> {
        let rest: u64 = self.inner_shape.iter().skip(1).product::<u64>().max(1);
        let d1 = self.inner_shape.first().copied().unwrap_or(1).max(1);
        let cols = (CHUNK_ROW_ELEMENTS / rest).clamp(1, d1);
        // By default a whole number of default-height bands, so that shards do not fall back
        // to one-row bands when the row count happens to be prime.
        let rows = self.chunk_rows.unwrap_or_else(|| {
            let rows = (CHUNK_ELEMENTS / (cols * rest)).clamp(1, 4096);
            let band = (INNER_ELEMENTS / (cols * rest)).clamp(1, rows);
            rows / band * band
        });
        let mut shape = vec![rows.max(1)];
        if !self.inner_shape.is_empty() {
            shape.push(cols);
            shape.extend(self.inner_shape.iter().skip(1).map(|&n| n.max(1)));
        }
        shape
    }

    /// The inner chunk shape when chunks are shards (`None` when a chunk is one block).
    fn inner_chunk_shape(&self, chunk: &[u64]) -> Option<Vec<u64>> {
        let per_row: u64 = chunk[1..].iter().product::<u64>().max(1);
        let target = self
            .inner_rows
            .unwrap_or(INNER_ELEMENTS / per_row)
            .clamp(1, chunk[0]);
        // Zarr requires the shard to be a whole number of inner chunks.
        let rows = (1..=target)
            .rev()
            .find(|&d| chunk[0].is_multiple_of(d))
            .unwrap_or(1);
        (rows < chunk[0]).then(|| {
            let mut inner = chunk.to_vec();
            inner[0] = rows;
            inner
        })
    }
}

/// Rows of chunks per band: the cores, at most 8.
fn band_chunks() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Run `f` in the pool that compresses and stores chunks: two threads per core, because
/// zarrs' filesystem store `fsync`s every chunk file, and a thread waiting for the disk
/// should not leave a core without a chunk to compress. Should that pool not start, rayon's
/// global pool does the work.
fn in_store_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2 * band_chunks())
            .thread_name(|i| format!("ventral-store-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// An element type of the value arrays: float32 or float64.
pub trait StoreValue: Element + bytemuck::Pod + Default + Send + Sync + 'static {
    /// NaN: the fill value, which pads edge chunks.
    const NAN: Self;
}

impl StoreValue for f32 {
    const NAN: Self = f32::NAN;
}

impl StoreValue for f64 {
    const NAN: Self = f64::NAN;
}

/// Streams rows into a new assembly with bounded memory: rows are buffered until a band of
/// chunk rows is full — one row of chunks per core, at most 8, so that zarrs compresses that
/// many chunks in parallel —, then the band is compressed and written. At most one band
/// (`cores × chunk_rows` rows) plus the caller's batch is in memory; the chunks' bytes do not
/// depend on the band's size.
pub struct AssemblyWriter<T: StoreValue> {
    dir: PathBuf,
    spec: AssemblySpec,
    array: Array<FilesystemStore>,
    chunk: Vec<u64>,
    /// The inner chunk shape when chunks are shards.
    inner: Option<Vec<u64>>,
    row_len: usize,
    band: Vec<T>,
    /// For wide rows (chunks split in columns): the band laid out chunk by chunk — chunk row
    /// `k`, column chunk `j` at `(k × column chunks + j) × chunk elements` —, so that each
    /// appended row is copied once, straight to its chunks, and each chunk is one slice.
    tiles: Vec<T>,
    /// Rows in `tiles`.
    tile_rows: usize,
    rows: u64,
    /// The fill value (NaN), which pads edge chunks.
    fill: T,
}

thread_local! {
    /// One zstd compression context per thread (and level): creating one per inner chunk
    /// would cost about as much as compressing it.
    static CCTX: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Encode one shard as zarrs' sharding codec does with inner chunks in C order (a test
/// compares the files): each band of `band_len` elements that is not all fill value as its
/// little-endian bytes compressed by `codec`, then the index — `(offset, size)` as little-endian
/// u64 pairs, `u64::MAX` twice for a band of fill value — and the index's crc32c. `None` when
/// every band is fill value (zarrs stores no file then).
fn encode_shard<T: StoreValue>(
    elements: &[T],
    band_len: usize,
    fill: T,
    codec: Codec,
) -> std::io::Result<Option<Vec<u8>>> {
    let fill = bytemuck::bytes_of(&fill);
    let bands = elements.len() / band_len;
    // Room for every band at the compressors' worst case, so the buffer never grows.
    let band_bytes = band_len * std::mem::size_of::<T>();
    let worst = zstd::zstd_safe::compress_bound(band_bytes).max(band_bytes + 32);
    let mut shard: Vec<u8> = Vec::with_capacity(bands * worst);
    let mut index: Vec<u8> = Vec::with_capacity(bands * 16 + 4);
    CCTX.with_borrow_mut(|slot| -> std::io::Result<()> {
        for band in elements.chunks_exact(band_len) {
            let bytes: &[u8] = bytemuck::cast_slice(band);
            if bytes.chunks_exact(fill.len()).all(|e| e == fill) {
                index.extend(u64::MAX.to_le_bytes());
                index.extend(u64::MAX.to_le_bytes());
                continue;
            }
            let start = shard.len();
            match codec {
                Codec::Zstd { level } => {
                    if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                        let mut c = zstd::bulk::Compressor::new(level)?;
                        c.include_checksum(false)?;
                        *slot = Some((level, c));
                    }
                    let Some((_, c)) = slot.as_mut() else {
                        return Err(std::io::Error::other("no zstd context"));
                    };
                    shard.resize(start + zstd::zstd_safe::compress_bound(bytes.len()), 0);
                    let written = c.compress_to_buffer(bytes, &mut shard[start..])?;
                    shard.truncate(start + written);
                }
                Codec::BloscLz4 { clevel } => {
                    let level = blosc_level(clevel).map_err(std::io::Error::other)?;
                    let frame = blosc_compress_bytes(
                        bytes,
                        level,
                        BloscShuffleMode::BitShuffle,
                        std::mem::size_of::<T>(),
                        BloscCompressor::LZ4,
                        0,
                        1,
                    )
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                    shard.extend_from_slice(&frame);
                }
            }
            index.extend((start as u64).to_le_bytes());
            index.extend(((shard.len() - start) as u64).to_le_bytes());
        }
        Ok(())
    })?;
    if shard.is_empty() {
        return Ok(None);
    }
    let crc = crc32c::crc32c(&index);
    shard.extend_from_slice(&index);
    shard.extend_from_slice(&crc.to_le_bytes());
    Ok(Some(shard))
}

/// Store one whole chunk: sharded chunks encoded by [`encode_shard`], others by zarrs.
fn store_chunk<T: StoreValue>(
    array: &Array<FilesystemStore>,
    idx: &[u64],
    elements: &[T],
    shard: Option<(usize, T, Codec)>,
) -> std::result::Result<(), String> {
    let Some((band_len, fill, codec)) = shard else {
        return array.store_chunk(idx, elements).map_err(|e| e.to_string());
    };
    match encode_shard(elements, band_len, fill, codec).map_err(|e| format!("compress: {e}"))? {
        // SAFETY: the bytes are the sharding codec's encoding of this chunk, in the layout
        // the array's metadata declares (`chunk_files_have_the_bytes_zarrs_writes`).
        Some(bytes) => {
            unsafe { array.store_encoded_chunk(idx, zarrs::storage::Bytes::from(bytes)) }
                .map_err(|e| e.to_string())
        }
        None => array.store_chunk(idx, elements).map_err(|e| e.to_string()),
    }
}

fn blosc_level(clevel: u8) -> std::result::Result<BloscCompressionLevel, String> {
    BloscCompressionLevel::try_from(clevel)
        .map_err(|_| format!("blosc level {clevel} is not in 0..=9"))
}

fn zarr_err(dir: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Zarr {
        store: dir.to_path_buf(),
        what: what.to_string(),
        message: e.to_string(),
    }
}

impl<T: StoreValue> AssemblyWriter<T> {
    /// Start a new assembly at `dir` (which must not hold one yet).
    pub fn create(dir: &Path, spec: AssemblySpec) -> Result<Self> {
        let expected = match spec.dtype {
            DType::Float32 => std::mem::size_of::<T>() == 4,
            DType::Float64 => std::mem::size_of::<T>() == 8,
        };
        if !expected || spec.dims.len() != spec.inner_shape.len() + 1 {
            return Err(StoreError::Request {
                store: dir.to_path_buf(),
                message: format!(
                    "spec does not fit: dtype {} for a {}-byte element, {} dims for {} inner lengths",
                    spec.dtype.name(),
                    std::mem::size_of::<T>(),
                    spec.dims.len(),
                    spec.inner_shape.len()
                ),
            });
        }
        if dir.join("zarr.json").exists() {
            return Err(StoreError::Request {
                store: dir.to_path_buf(),
                message: "an assembly already exists here".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let store =
            Arc::new(FilesystemStore::new(dir).map_err(|e| zarr_err(dir, "create the store", e))?);
        let chunk = spec.chunk_shape();
        let mut shape = vec![0u64];
        shape.extend(&spec.inner_shape);
        let fill = match spec.dtype {
            DType::Float32 => zarrs::array::FillValue::from(f32::NAN),
            DType::Float64 => zarrs::array::FillValue::from(f64::NAN),
        };
        let compress: Arc<dyn BytesToBytesCodecTraits> = match spec.codec {
            Codec::Zstd { level } => Arc::new(ZstdCodec::new(level, false)),
            Codec::BloscLz4 { clevel } => Arc::new(
                BloscCodec::new(
                    BloscCompressor::LZ4,
                    blosc_level(clevel).map_err(|e| zarr_err(dir, "blosc level", e))?,
                    None,
                    BloscShuffleMode::BitShuffle,
                    Some(spec.dtype.size()),
                )
                .map_err(|e| zarr_err(dir, "create the blosc codec", e))?,
            ),
        };
        let inner = spec.inner_chunk_shape(&chunk);
        let mut builder = ArrayBuilder::new(shape, chunk.clone(), spec.dtype.zarr(), fill);
        builder.dimension_names(Some(spec.dims.clone()));
        match &inner {
            // Each chunk a shard: inner chunks (bytes, compressed) in C order, then the index
            // (bytes, crc32c) at the end.
            Some(inner) => {
                let shape: Option<Vec<std::num::NonZeroU64>> = inner
                    .iter()
                    .map(|&n| std::num::NonZeroU64::new(n))
                    .collect();
                let shape = shape.ok_or_else(|| zarr_err(dir, "inner chunk shape", "zero"))?;
                builder.array_to_bytes_codec(
                    ShardingCodecBuilder::new(shape, &spec.dtype.zarr())
                        .bytes_to_bytes_codecs(vec![compress])
                        .build_arc(),
                );
            }
            None => {
                builder.bytes_to_bytes_codecs(vec![compress]);
            }
        }
        // zarrs writes a shard's inner chunks in the order they finish compressing unless
        // told otherwise: C order makes the bytes the same on every run.
        let array = builder
            .build(store, "/values")
            .map_err(|e| zarr_err(dir, "create values", e))?
            .with_codec_specific_options(&CodecSpecificOptions::default().with_option(
                ShardingCodecOptions::default().with_subchunk_write_order(SubchunkWriteOrder::C),
            ));
        let row_len = spec.inner_shape.iter().product::<u64>() as usize;
        Ok(AssemblyWriter {
            dir: dir.to_path_buf(),
            band: Vec::with_capacity(chunk[0] as usize * row_len * band_chunks()),
            spec,
            array,
            chunk,
            inner,
            row_len,
            tiles: Vec::new(),
            tile_rows: 0,
            rows: 0,
            fill: T::NAN,
        })
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Rows appended so far.
    pub fn rows(&self) -> u64 {
        self.rows + (self.band.len() / self.row_len.max(1) + self.tile_rows) as u64
    }

    /// The column-split layout, when chunks split the second dimension: (chunk rows, run of
    /// one row in one chunk, width of the second dimension's chunk, column chunks).
    fn split(&self) -> Option<(usize, usize, usize, usize)> {
        if self.chunk.len() < 2 || self.chunk[1] >= self.spec.inner_shape[0] {
            return None;
        }
        let rest = self.spec.inner_shape[1..].iter().product::<u64>().max(1) as usize;
        let (cr, cc) = (self.chunk[0] as usize, self.chunk[1] as usize);
        let d1 = self.spec.inner_shape[0] as usize;
        Some((cr, cc * rest, cc, d1.div_ceil(cc)))
    }

    /// How chunks are encoded when they are shards: band length, fill value, codec.
    fn shard(&self) -> Option<(usize, T, Codec)> {
        self.inner.as_ref().map(|i| {
            (
                i.iter().product::<u64>() as usize,
                self.fill,
                self.spec.codec,
            )
        })
    }

    /// Append to the chunk-major band of a column-split layout.
    fn append_split(&mut self, data: &[T]) -> Result<()> {
        let Some((cr, run, cc, col_chunks)) = self.split() else {
            return Ok(());
        };
        let rest = run / cc;
        let d1 = self.spec.inner_shape[0] as usize;
        let tile = cr * run;
        let band_rows = cr * band_chunks();
        if self.tiles.is_empty() {
            // Allocated once; the columns past the array's width stay fill value for good.
            self.tiles = vec![self.fill; band_chunks() * col_chunks * tile];
        }
        for row in data.chunks_exact(self.row_len) {
            let (k, r) = (self.tile_rows / cr, self.tile_rows % cr);
            for j in 0..col_chunks {
                let width = (d1 - j * cc).min(cc) * rest;
                let dst = (k * col_chunks + j) * tile + r * run;
                self.tiles[dst..dst + width].copy_from_slice(&row[j * run..j * run + width]);
            }
            self.tile_rows += 1;
            if self.tile_rows == band_rows {
                self.flush_tiles()?;
            }
        }
        Ok(())
    }

    /// Store the chunks of the chunk-major band (the last row of chunks padded with the fill
    /// value past the last row, as zarrs pads edge chunks), in parallel.
    fn flush_tiles(&mut self) -> Result<()> {
        let Some((cr, run, _, col_chunks)) = self.split() else {
            return Ok(());
        };
        let n = self.tile_rows;
        if n == 0 {
            return Ok(());
        }
        let tile = cr * run;
        let used = n.div_ceil(cr);
        if !n.is_multiple_of(cr) {
            // Rows past the last one still hold the previous band's values.
            let k = used - 1;
            for j in 0..col_chunks {
                let base = (k * col_chunks + j) * tile;
                self.tiles[base + (n % cr) * run..base + tile].fill(self.fill);
            }
        }
        let mut shape = vec![self.rows + n as u64];
        shape.extend(&self.spec.inner_shape);
        self.array
            .set_shape(shape)
            .map_err(|e| zarr_err(&self.dir, "grow values", e))?;
        let shard = self.shard();
        let first = self.rows / cr as u64;
        let inner = self.spec.inner_shape.len();
        let (array, tiles) = (&self.array, &self.tiles);
        in_store_pool(|| {
            tiles[..used * col_chunks * tile]
                .par_chunks(tile)
                .enumerate()
                .try_for_each(|(t, elements)| {
                    let (k, j) = (t / col_chunks, t % col_chunks);
                    let mut idx = vec![first + k as u64, j as u64];
                    idx.extend(std::iter::repeat_n(0, inner - 1));
                    store_chunk(array, &idx, elements, shard)
                })
        })
        .map_err(|e| {
            let what = format!("write rows {}..{}", self.rows, self.rows + n as u64);
            zarr_err(&self.dir, &what, e)
        })?;
        self.rows += n as u64;
        self.tile_rows = 0;
        Ok(())
    }

    /// Append whole rows, row-major (`data.len()` a multiple of the row length).
    pub fn append(&mut self, data: &[T]) -> Result<()> {
        if self.row_len == 0 || !data.len().is_multiple_of(self.row_len) {
            return Err(StoreError::Request {
                store: self.dir.clone(),
                message: format!(
                    "{} values are not whole rows of {}",
                    data.len(),
                    self.row_len
                ),
            });
        }
        if self.split().is_some() {
            return self.append_split(data);
        }
        let band_len = self.chunk[0] as usize * self.row_len * band_chunks();
        let mut rest = data;
        while !rest.is_empty() {
            // Whole bands straight from the caller's slice, without buffering them.
            if self.band.is_empty() && rest.len() >= band_len {
                self.write_rows(&rest[..band_len])?;
                rest = &rest[band_len..];
                continue;
            }
            let take = (band_len - self.band.len()).min(rest.len());
            self.band.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.band.len() == band_len {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_tiles()?;
        if self.band.is_empty() {
            return Ok(());
        }
        let band = std::mem::take(&mut self.band);
        let r = self.write_rows(&band);
        self.band = band;
        self.band.clear();
        r
    }

    /// Store `data` (whole rows) at the current end of the array.
    fn write_rows(&mut self, data: &[T]) -> Result<()> {
        let n = (data.len() / self.row_len) as u64;
        let mut shape = vec![self.rows + n];
        shape.extend(&self.spec.inner_shape);
        self.array
            .set_shape(shape)
            .map_err(|e| zarr_err(&self.dir, "grow values", e))?;
        let what = || format!("write rows {}..{}", self.rows, self.rows + n);
        let cr = self.chunk[0];
        // Chunks span whole rows here (column-split layouts go through `append_split`):
        // each chunk's elements are a contiguous slice of `data`, stored without zarrs'
        // subset copy, in parallel. The last band may end inside a row of chunks: its chunk
        // is padded with the fill value, as zarrs pads edge chunks, and stored whole like the
        // others (for sharded arrays this keeps every shard on the path whose bytes are in C
        // order).
        let whole_rows = self.chunk[1..] == self.spec.inner_shape[..];
        let aligned = self.rows.is_multiple_of(cr) && whole_rows;
        let padded: Vec<T>;
        let data = if aligned && !n.is_multiple_of(cr) {
            let mut v = Vec::with_capacity((n.div_ceil(cr) * cr) as usize * self.row_len);
            v.extend_from_slice(data);
            v.resize(v.capacity(), self.fill);
            padded = v;
            &padded[..]
        } else {
            data
        };
        let shard = self.shard();
        if aligned {
            let per = cr as usize * self.row_len;
            let first = self.rows / cr;
            let inner = self.spec.inner_shape.len();
            let array = &self.array;
            in_store_pool(|| {
                data.par_chunks(per)
                    .enumerate()
                    .try_for_each(|(k, elements)| {
                        let mut idx = vec![first + k as u64];
                        idx.extend(std::iter::repeat_n(0, inner));
                        store_chunk(array, &idx, elements, shard)
                    })
            })
            .map_err(|e| zarr_err(&self.dir, &what(), e))?;
        } else {
            let mut ranges: Vec<std::ops::Range<u64>> =
                Vec::with_capacity(1 + self.spec.inner_shape.len());
            ranges.push(self.rows..self.rows + n);
            ranges.extend(self.spec.inner_shape.iter().map(|&l| 0..l));
            self.array
                .store_array_subset(&ranges, data)
                .map_err(|e| zarr_err(&self.dir, &what(), e))?;
        }
        self.rows += n;
        Ok(())
    }

    /// Write the last rows, the coordinate tables (one per dimension, checked against the
    /// shape) and the metadata; the group's `zarr.json` is written last, so a folder without
    /// it is never taken for an assembly.
    pub fn finish(mut self, coords: Vec<(String, RecordBatch)>) -> Result<AssemblyMeta> {
        self.flush()?;
        let mut shape = vec![self.rows];
        shape.extend(&self.spec.inner_shape);
        self.array
            .set_shape(shape.clone())
            .map_err(|e| zarr_err(&self.dir, "set shape", e))?;
        for (axis, dim) in self.spec.dims.iter().enumerate() {
            let Some((_, batch)) = coords.iter().find(|(d, _)| d == dim) else {
                return Err(StoreError::Request {
                    store: self.dir.clone(),
                    message: format!("no coordinate table for dimension `{dim}`"),
                });
            };
            let file = format!("coords/{dim}.parquet");
            if batch.num_rows() as u64 != shape[axis] {
                return Err(StoreError::Coords {
                    store: self.dir.clone(),
                    file,
                    column: String::new(),
                    message: format!(
                        "{} rows for dimension `{dim}` of length {}",
                        batch.num_rows(),
                        shape[axis]
                    ),
                });
            }
            if let Some(col) = required_column(dim)
                && batch.schema().field_with_name(col).is_err()
            {
                return Err(StoreError::Coords {
                    store: self.dir.clone(),
                    file,
                    column: format!("column `{col}`: "),
                    message: "is missing".into(),
                });
            }
            write_parquet(&self.dir.join(&file), batch)?;
        }
        if let Some((extra, _)) = coords.iter().find(|(d, _)| !self.spec.dims.contains(d)) {
            return Err(StoreError::Request {
                store: self.dir.clone(),
                message: format!("coordinate table for unknown dimension `{extra}`"),
            });
        }
        self.array
            .store_metadata()
            .map_err(|e| zarr_err(&self.dir, "write values/zarr.json", e))?;
        let meta = AssemblyMeta {
            format: FORMAT.into(),
            identifier: self.spec.identifier.clone(),
            kind: self.spec.kind.clone(),
            dims: self.spec.dims.clone(),
            shape,
            chunk_shape: self.chunk.clone(),
            inner_chunk_shape: self.inner.clone(),
            dtype: self.spec.dtype,
            producer: self.spec.producer.clone(),
            attrs: self.spec.attrs.clone(),
        };
        let mut attrs = serde_json::Map::new();
        attrs.insert(
            "ventral".into(),
            serde_json::to_value(&meta).map_err(|e| zarr_err(&self.dir, "encode metadata", e))?,
        );
        let store = self.array.storage();
        // `coords/` is a Zarr group too (its attributes list the Parquet tables), so that
        // zarr-python sees a clean hierarchy.
        let mut cattrs = serde_json::Map::new();
        let tables: Vec<String> = self
            .spec
            .dims
            .iter()
            .map(|d| format!("{d}.parquet"))
            .collect();
        cattrs.insert("parquet_tables".into(), tables.into());
        GroupBuilder::new()
            .attributes(cattrs)
            .build(store.clone(), "/coords")
            .map_err(|e| zarr_err(&self.dir, "create the coords group", e))?
            .store_metadata()
            .map_err(|e| zarr_err(&self.dir, "write coords/zarr.json", e))?;
        GroupBuilder::new()
            .attributes(attrs)
            .build(store, "/")
            .map_err(|e| zarr_err(&self.dir, "create the group", e))?
            .store_metadata()
            .map_err(|e| zarr_err(&self.dir, "write zarr.json", e))?;
        Ok(meta)
    }
}
