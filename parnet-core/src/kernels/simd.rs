//! Runtime CPU dispatch for plain-Rust kernels.
//!
//! The crate is built for baseline x86-64 (4-wide SSE2). [`avx2_kernel!`] compiles a kernel body
//! twice, once as is and once inside a function with AVX2 enabled (where LLVM vectorises it 8
//! wide), and picks the AVX2 one when the CPU has it. Both compilations perform the same IEEE
//! operations in the same order (Rust never contracts `a * b + c` into an FMA by itself), so their
//! results are bit-identical.

/// Whether the CPU has AVX2 and FMA (checked once).
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Whether the CPU has AVX2 and FMA (never, off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub fn has_avx2_fma() -> bool {
    false
}

/// Defines `$vis fn $name` that runs an AVX2 compilation of `$body` when the CPU has AVX2 and
/// FMA, and `fn $portable` with the plain compilation (the fallback, also called by tests).
macro_rules! avx2_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident / $portable:ident ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        #[inline(always)]
        #[allow(dead_code)]
        fn $portable($($arg: $ty),*) $(-> $ret)? $body

        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $portable($($arg),*)
                }
                if $crate::kernels::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}
pub(crate) use avx2_kernel;
