//! Character encodings of CSV exports.
//!
//! Department systems write UTF-8 with or without a byte order mark, or
//! GB18030 (often labelled GBK or GB2312). The rule: a BOM means UTF-8 (or
//! UTF-16 for its own BOMs); otherwise strict UTF-8 if the start of the
//! file is valid UTF-8; otherwise GB18030, which is a superset of GBK and
//! GB2312 and covers characters outside the Basic Multilingual Plane. No
//! replacement characters are ever produced: bytes that do not decode stop
//! the file with their byte offset.
//!
//! Decoding streams, so a two-gigabyte payroll export never sits in memory.

use std::io::{self, Read};

use encoding_rs::{DecoderResult, Encoding, GB18030, UTF_8, UTF_16BE, UTF_16LE};

/// How much of the file decides between UTF-8 and GB18030.
const SNIFF_BYTES: usize = 64 * 1024;

/// Bytes that do not decode in the detected encoding.
#[derive(Debug, thiserror::Error)]
#[error("bytes at offset {offset} are not valid {encoding}")]
pub struct UndecodableBytes {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// The encoding the file was read as.
    pub encoding: &'static str,
}

/// The encoding a file was detected as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedEncoding {
    /// UTF-8 with a byte order mark, which is stripped.
    Utf8Bom,
    /// UTF-8 without a byte order mark.
    Utf8,
    /// GB18030 (also for files labelled GBK or GB2312).
    Gb18030,
    /// UTF-16 with a byte order mark.
    Utf16,
}

impl DetectedEncoding {
    /// A human-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Utf8Bom => "UTF-8 (BOM stripped)",
            Self::Utf8 => "UTF-8",
            Self::Gb18030 => "GB18030",
            Self::Utf16 => "UTF-16",
        }
    }
}

/// A reader that yields UTF-8 decoded from the detected encoding.
pub struct DecodingReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    encoding: DetectedEncoding,
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    output: Vec<u8>,
    output_start: usize,
    output_end: usize,
    consumed: u64,
    eof: bool,
    finished: bool,
}

impl<R: Read> DecodingReader<R> {
    /// Sniffs the start of `inner` and returns a reader of its text.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut input = vec![0u8; SNIFF_BYTES];
        let mut filled = 0;
        while filled < input.len() {
            let read = inner.read(&mut input[filled..])?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        let eof = filled < input.len();
        let (encoding, bom_length) = detect(&input[..filled], eof);
        let coder: &'static Encoding = match encoding {
            DetectedEncoding::Utf8Bom | DetectedEncoding::Utf8 => UTF_8,
            DetectedEncoding::Gb18030 => GB18030,
            DetectedEncoding::Utf16 if input[0] == 0xFF => UTF_16LE,
            DetectedEncoding::Utf16 => UTF_16BE,
        };
        Ok(Self {
            inner,
            decoder: coder.new_decoder_without_bom_handling(),
            encoding,
            input,
            input_start: bom_length,
            input_end: filled,
            output: vec![0u8; SNIFF_BYTES * 2],
            output_start: 0,
            output_end: 0,
            consumed: bom_length as u64,
            eof,
            finished: false,
        })
    }

    /// The encoding the file is read as.
    pub fn encoding(&self) -> DetectedEncoding {
        self.encoding
    }

    fn refill_input(&mut self) -> io::Result<()> {
        if self.input_start > 0 {
            self.input.copy_within(self.input_start..self.input_end, 0);
            self.input_end -= self.input_start;
            self.input_start = 0;
        }
        while !self.eof && self.input_end < self.input.len() {
            let read = self.inner.read(&mut self.input[self.input_end..])?;
            if read == 0 {
                self.eof = true;
            }
            self.input_end += read;
        }
        Ok(())
    }

    fn decode_more(&mut self) -> io::Result<()> {
        if self.input_end - self.input_start < 16 {
            self.refill_input()?;
        }
        let last = self.eof;
        let src = &self.input[self.input_start..self.input_end];
        let (result, read, written) =
            self.decoder
                .decode_to_utf8_without_replacement(src, &mut self.output, last);
        if let DecoderResult::Malformed(bad, extra) = result {
            let offset = self.consumed + read as u64 - u64::from(bad) - u64::from(extra);
            let error = UndecodableBytes {
                offset,
                encoding: self.encoding.name(),
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        self.input_start += read;
        self.consumed += read as u64;
        self.output_start = 0;
        self.output_end = written;
        if last && matches!(result, DecoderResult::InputEmpty) {
            self.finished = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.output_start == self.output_end {
            if self.finished {
                return Ok(0);
            }
            self.decode_more()?;
        }
        let count = buf.len().min(self.output_end - self.output_start);
        buf[..count].copy_from_slice(&self.output[self.output_start..self.output_start + count]);
        self.output_start += count;
        Ok(count)
    }
}

/// Chooses the encoding from the first bytes of a file.
fn detect(start: &[u8], whole_file: bool) -> (DetectedEncoding, usize) {
    if start.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return (DetectedEncoding::Utf8Bom, 3);
    }
    if start.starts_with(&[0xFF, 0xFE]) || start.starts_with(&[0xFE, 0xFF]) {
        return (DetectedEncoding::Utf16, 2);
    }
    let valid_utf8 = match std::str::from_utf8(start) {
        Ok(_) => true,
        // A multi-byte character cut by the end of the sample is not a
        // reason to doubt the file; invalid bytes anywhere else are.
        Err(error) => error.error_len().is_none() && !whole_file,
    };
    if valid_utf8 {
        (DetectedEncoding::Utf8, 0)
    } else {
        (DetectedEncoding::Gb18030, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> io::Result<(DetectedEncoding, String)> {
        let mut reader = DecodingReader::new(bytes)?;
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        Ok((reader.encoding(), text))
    }

    #[test]
    fn gb18030_astral_and_extension_characters_decode() {
        // C04: 𠮷 is four bytes in GB18030 and 䶮 is FE9F; strict GBK
        // decoders reject both.
        let bytes = [0x95, 0x34, 0xB2, 0x35, 0xFE, 0x9F];
        let (encoding, text) = decode(&bytes).unwrap();
        assert_eq!(encoding, DetectedEncoding::Gb18030);
        assert_eq!(text, "𠮷䶮");
    }

    #[test]
    fn bom_is_stripped_and_means_utf8() {
        let (encoding, text) = decode("\u{FEFF}姓名,身份证号".as_bytes()).unwrap();
        assert_eq!(encoding, DetectedEncoding::Utf8Bom);
        assert_eq!(text, "姓名,身份证号");
    }

    #[test]
    fn undecodable_bytes_are_reported_with_their_offset() {
        // 0xFF is never valid in GB18030.
        let mut bytes = "abc".as_bytes().to_vec();
        bytes.extend([0xD5, 0xC5, 0xFF, 0x41]);
        let error = decode(&bytes).unwrap_err();
        let inner = error
            .get_ref()
            .unwrap()
            .downcast_ref::<UndecodableBytes>()
            .unwrap();
        assert_eq!(inner.offset, 5);
        assert_eq!(inner.encoding, "GB18030");
    }

    #[test]
    fn long_files_decode_across_buffer_boundaries() {
        let line = "张䶮,330102198812121176\n";
        let text: String = line.repeat(20_000);
        let (gb, _, _) = GB18030.encode(&text);
        let (_, decoded) = decode(&gb).unwrap();
        assert_eq!(decoded, text);
    }
}
