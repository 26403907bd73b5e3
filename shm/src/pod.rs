//! `Pod`: our own marker for plain-old-data types that may be viewed as bytes
//! and back (bytemuck's reasoning, by hand, for the few types of this crate).

use crate::error::ShmError;

/// A type that can be reinterpreted from and to raw bytes.
///
/// # Safety
/// Implement only for `#[repr(C)]` types (or primitives) that are `Copy`,
/// contain no padding bytes (every byte is a field), no pointers or
/// references, and for which every bit pattern is a valid value.
pub unsafe trait Pod: Copy + 'static {}

// SAFETY: primitive integers: no padding, every bit pattern valid.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}

/// The bytes of a slice of plain data.
pub fn bytes_of_slice<T: Pod>(items: &[T]) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so every byte of the slice is
    // initialised; u8 has alignment 1; the length is exactly the slice's size.
    unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items)) }
}

/// The bytes of one plain-data value.
pub fn bytes_of<T: Pod>(item: &T) -> &[u8] {
    bytes_of_slice(std::slice::from_ref(item))
}

/// Checks that `bytes` starts at an address aligned for `T`.
pub(crate) fn check_align<T>(bytes: &[u8]) -> Result<(), ShmError> {
    let addr = bytes.as_ptr() as usize;
    let align = std::mem::align_of::<T>();
    if !addr.is_multiple_of(align) {
        return Err(ShmError::Misaligned { addr, align });
    }
    Ok(())
}

/// Views `bytes` (whose length must be a multiple of `size_of::<T>()` and
/// whose start must be aligned for `T`) as a slice of `T`.
pub fn cast_slice<T: Pod>(bytes: &[u8]) -> Result<&[T], ShmError> {
    check_align::<T>(bytes)?;
    let size = std::mem::size_of::<T>();
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return Err(ShmError::Truncated {
            what: "entry array",
            need: bytes.len().div_ceil(size.max(1)) as u64 * size as u64,
            have: bytes.len() as u64,
        });
    }
    // SAFETY: alignment and length checked above; `T: Pod` accepts every bit
    // pattern; the lifetime is tied to `bytes`.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

/// Reads a `T` from the start of `bytes` (copying, so alignment is not
/// needed).
pub fn read_prefix<T: Pod>(bytes: &[u8], what: &'static str) -> Result<T, ShmError> {
    let size = std::mem::size_of::<T>();
    if bytes.len() < size {
        return Err(ShmError::Truncated {
            what,
            need: size as u64,
            have: bytes.len() as u64,
        });
    }
    // SAFETY: at least `size` bytes are readable; read_unaligned has no
    // alignment requirement; `T: Pod` accepts every bit pattern.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// An owned byte buffer whose start is 8-byte aligned, for parsing tables
/// that were not read through `mmap` (tests, tools).
#[derive(Clone, Debug, Default)]
pub struct AlignedBuf {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBuf {
    /// A copy of `bytes`, 8-byte aligned.
    pub fn copy_from(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        let dst = bytes_of_slice_mut(&mut words);
        dst[..bytes.len()].copy_from_slice(bytes);
        AlignedBuf {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytes_of_slice(&self.words)[..self.len]
    }

    /// The bytes, writable (to corrupt them in tests).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut bytes_of_slice_mut(&mut self.words)[..len]
    }
}

fn bytes_of_slice_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and any byte pattern written through the
    // returned slice is a valid u64; the length is the slice's size.
    unsafe {
        std::slice::from_raw_parts_mut(
            words.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(words),
        )
    }
}
