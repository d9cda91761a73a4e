//! Raw deflate through libdeflate, with the one thing its safe wrapper does not report: how
//! many input bytes the stream took. A gzip member that records its own length must end
//! exactly there; without the count, a length that also covered the next member would decode
//! as the first member alone, which no other gzip reader does. The calls into libdeflate
//! (the library the writer uses too) are the only unsafe code here.
#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_deflate_decompress_ex,
    libdeflate_free_decompressor, libdeflate_result_LIBDEFLATE_BAD_DATA,
    libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// A libdeflate decompressor, for one thread at a time.
pub struct Inflater(NonNull<libdeflate_decompressor>);

// SAFETY: the decompressor is plain heap state with no tie to the thread that made it; it may
// move to another thread, and `&mut self` keeps it to one at a time (it is not `Sync`).
unsafe impl Send for Inflater {}

impl Inflater {
    /// A decompressor.
    pub fn new() -> io::Result<Inflater> {
        // SAFETY: no arguments; a null return is an allocation failure, checked below.
        let p = unsafe { libdeflate_alloc_decompressor() };
        NonNull::new(p)
            .map(Inflater)
            .ok_or_else(|| io::Error::other("cannot allocate a deflate decompressor"))
    }

    /// Inflates `input`, which must be exactly one raw deflate stream, into all of `out`.
    pub fn inflate_exact(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), &'static str> {
        let mut used_in = 0usize;
        let mut used_out = 0usize;
        // SAFETY: the pointers and lengths come from live slices that outlive the call, the
        // decompressor is ours alone (`&mut self`), and libdeflate writes at most `out.len()`
        // bytes and the two counts.
        let result = unsafe {
            libdeflate_deflate_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used_in,
                &mut used_out,
            )
        };
        if result == libdeflate_result_LIBDEFLATE_BAD_DATA {
            return Err("corrupt deflate data");
        }
        if result != libdeflate_result_LIBDEFLATE_SUCCESS || used_out != out.len() {
            return Err("length mismatch (corrupt data)");
        }
        if used_in != input.len() {
            return Err("member size does not match its deflate data");
        }
        Ok(())
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor and freed once, here.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(4).unwrap());
        let mut out = vec![0u8; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn the_stream_must_fill_the_input_and_the_output() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let z = deflate(&data);
        let mut inf = Inflater::new().unwrap();
        let mut out = vec![0u8; data.len()];
        inf.inflate_exact(&z, &mut out).unwrap();
        assert_eq!(out, data);
        let mut longer = z.clone();
        longer.extend(deflate(&data));
        assert_eq!(
            inf.inflate_exact(&longer, &mut out),
            Err("member size does not match its deflate data")
        );
        let mut short = vec![0u8; data.len() - 1];
        assert!(inf.inflate_exact(&z, &mut short).is_err());
        let mut long = vec![0u8; data.len() + 1];
        assert!(inf.inflate_exact(&z, &mut long).is_err());
        assert!(inf.inflate_exact(&z[..z.len() / 2], &mut out).is_err());
    }
}
