//! Parallel gzip with fixed block boundaries, pigz's way: the stream is cut into
//! [`CHUNK_SIZE`]-byte chunks, each compressed on its own thread as raw deflate primed with the
//! previous chunk's last 32 KiB and ended with a sync flush (the last with a final block),
//! then the pieces are written in order as one gzip member. The output depends only on the
//! input and the level, never on the number of threads. The header has no name and mtime 0.

use flate2::{Compress, Compression, FlushCompress, Status};

/// Bytes of input per independently compressed chunk.
pub const CHUNK_SIZE: usize = 128 * 1024;
/// The deflate window: how much of the previous chunk primes the next.
pub const DICTIONARY: usize = 32 * 1024;

/// The fixed 10-byte gzip header: no flags, mtime 0, XFL 0, OS 3 (Unix).
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

/// One chunk to compress.
#[derive(Debug)]
pub struct Chunk {
    pub index: u64,
    pub data: Vec<u8>,
    pub dictionary: Vec<u8>,
    pub last: bool,
}

/// Compresses one chunk to raw deflate. A chunk that does not shrink (already compressed
/// or random bytes, which zlib-rs's fast levels grow by about 5 %) is written as stored
/// blocks instead: at most 5 bytes per 64 KiB more than its input.
pub fn compress(chunk: &Chunk, level: u32) -> Result<Vec<u8>, String> {
    let out = deflate(chunk, level)?;
    // Stored blocks of at most 65,535 bytes, 5 bytes of header each, and the flush.
    let stored = chunk.data.len() + 5 * (chunk.data.len() / 65_535 + 2);
    if level > 0 && out.len() > stored {
        return deflate(chunk, 0);
    }
    Ok(out)
}

fn deflate(chunk: &Chunk, level: u32) -> Result<Vec<u8>, String> {
    let mut deflate = Compress::new(Compression::new(level.min(9)), false);
    if !chunk.dictionary.is_empty() {
        deflate
            .set_dictionary(&chunk.dictionary)
            .map_err(|e| format!("priming deflate: {e}"))?;
    }
    let flush = if chunk.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(chunk.data.len() + chunk.data.len() / 8 + 1024);
    loop {
        let consumed = usize::try_from(deflate.total_in()).map_err(|e| e.to_string())?;
        let status = deflate
            .compress_vec(&chunk.data[consumed..], &mut out, flush)
            .map_err(|e| format!("deflate: {e}"))?;
        let done_input = deflate.total_in() as usize == chunk.data.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError if done_input && room_left && !chunk.last => break,
            _ => out.reserve(chunk.data.len() / 4 + 4096),
        }
    }
    Ok(out)
}

/// The 8-byte gzip trailer: CRC-32 and length mod 2^32, little-endian.
pub fn trailer(crc: u32, len: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&((len & 0xffff_ffff) as u32).to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(CHUNK_SIZE).collect()
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let dictionary = if i == 0 {
                Vec::new()
            } else {
                let prev = chunks[i - 1];
                prev[prev.len().saturating_sub(DICTIONARY)..].to_vec()
            };
            let job = Chunk {
                index: i as u64,
                data: chunk.to_vec(),
                dictionary,
                last: i + 1 == chunks.len(),
            };
            out.extend(compress(&job, level).unwrap());
        }
        out.extend(trailer(crc32fast::hash(data), data.len() as u64));
        out
    }

    #[test]
    fn chunks_decode_as_one_gzip_member() {
        let data: Vec<u8> = (0..CHUNK_SIZE * 3 + 777)
            .map(|i| ((i * 7) % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        for level in [1, 6, 9] {
            let packed = gzip(&data, level);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
            assert!(packed.len() < data.len() / 2);
        }
    }

    #[test]
    fn incompressible_chunks_are_stored_not_grown() {
        // xorshift bytes: nothing for deflate to find.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..CHUNK_SIZE * 4 + 1234)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        for level in [1, 6] {
            let packed = gzip(&data, level);
            assert!(
                packed.len() <= data.len() + data.len() / 1000 + 64,
                "level {level}: {} bytes for {}",
                packed.len(),
                data.len()
            );
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let packed = gzip(&[], 1);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
