//! `Buffer`: an f32 vector that goes back to a process-wide pool when dropped.
//!
//! Training allocates the same activation and workspace sizes every step. glibc returns large
//! blocks to the OS on free and page-faults them in again on the next step, which costs more than
//! the arithmetic on small models. Buffers of at least [`POOL_MIN_LEN`] floats are therefore kept in
//! a pool keyed by exact length and handed out again; the pool holds at most
//! [`pool_capacity_bytes`] bytes, beyond which dropped buffers are freed as usual.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Buffers shorter than this are not pooled (the allocator handles them well).
pub const POOL_MIN_LEN: usize = 4096;

static POOL: Mutex<Option<HashMap<usize, Vec<Vec<f32>>>>> = Mutex::new(None);
static POOLED_BYTES: AtomicUsize = AtomicUsize::new(0);
static POOL_CAPACITY: AtomicUsize = AtomicUsize::new(8 << 30);

/// The most bytes the pool keeps (default 8 GiB).
pub fn pool_capacity_bytes() -> usize {
    POOL_CAPACITY.load(Ordering::Relaxed)
}

/// Sets the most bytes the pool keeps; `0` disables pooling and frees what is held.
pub fn set_pool_capacity_bytes(bytes: usize) {
    POOL_CAPACITY.store(bytes, Ordering::Relaxed);
    if bytes == 0 {
        clear_pool();
    }
}

/// Frees every pooled buffer.
pub fn clear_pool() {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    *pool = None;
    POOLED_BYTES.store(0, Ordering::Relaxed);
}

/// Bytes currently held by the pool.
pub fn pooled_bytes() -> usize {
    POOLED_BYTES.load(Ordering::Relaxed)
}

fn take_pooled(len: usize) -> Option<Vec<f32>> {
    if len < POOL_MIN_LEN {
        return None;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let v = pool.as_mut()?.get_mut(&len)?.pop()?;
    POOLED_BYTES.fetch_sub(len * 4, Ordering::Relaxed);
    Some(v)
}

fn give_back(v: Vec<f32>) {
    let len = v.len();
    if len < POOL_MIN_LEN || v.capacity() != len {
        return;
    }
    let bytes = len * 4;
    if POOLED_BYTES.load(Ordering::Relaxed) + bytes > pool_capacity_bytes() {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.get_or_insert_with(HashMap::new)
        .entry(len)
        .or_default()
        .push(v);
    POOLED_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// A contiguous f32 buffer, recycled through the pool on drop.
#[derive(Default)]
pub struct Buffer {
    data: Vec<f32>,
}

impl Buffer {
    /// A buffer of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        Self::filled(len, 0.0)
    }

    /// A buffer of `len` copies of `value`.
    pub fn filled(len: usize, value: f32) -> Self {
        match take_pooled(len) {
            Some(mut v) => {
                v.fill(value);
                Buffer { data: v }
            }
            None => Buffer {
                data: vec![value; len],
            },
        }
    }

    /// A buffer of `len` floats whose contents are unspecified (but initialised): for outputs that
    /// the caller overwrites completely.
    pub fn for_overwrite(len: usize) -> Self {
        match take_pooled(len) {
            Some(v) => Buffer { data: v },
            None => Buffer {
                data: vec![0.0; len],
            },
        }
    }

    /// A copy of `src`.
    pub fn from_slice(src: &[f32]) -> Self {
        let mut b = Self::for_overwrite(src.len());
        b.data.copy_from_slice(src);
        b
    }

    /// Takes ownership of `v` (it joins the pool when dropped).
    pub fn from_vec(mut v: Vec<f32>) -> Self {
        v.shrink_to_fit();
        Buffer { data: v }
    }

    /// The buffer as a plain vector (leaves the pool's accounting).
    pub fn into_vec(mut self) -> Vec<f32> {
        std::mem::take(&mut self.data)
    }

    /// `f(i)` for every index.
    pub fn from_fn(len: usize, f: impl FnMut(usize) -> f32) -> Self {
        let mut b = Self::for_overwrite(len);
        b.data.iter_mut().enumerate().for_each({
            let mut f = f;
            move |(i, x)| *x = f(i)
        });
        b
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        Self::from_slice(&self.data)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if !self.data.is_empty() {
            give_back(std::mem::take(&mut self.data));
        }
    }
}

impl Deref for Buffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.data
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer(len {})", self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_buffers_are_reused_and_zeroed() {
        let len = POOL_MIN_LEN * 3 + 7;
        let mut a = Buffer::filled(len, 5.0);
        a[0] = 1.0;
        let ptr = a.as_ptr();
        drop(a);
        let b = Buffer::zeros(len);
        // Another test may have taken it concurrently; only check contents then.
        if b.as_ptr() == ptr {
            assert!(b.iter().all(|&x| x == 0.0));
        }
        assert_eq!(b.len(), len);
        assert!(b.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn clone_copies() {
        let a = Buffer::from_fn(10, |i| i as f32);
        let b = a.clone();
        assert_eq!(&a[..], &b[..]);
    }
}
