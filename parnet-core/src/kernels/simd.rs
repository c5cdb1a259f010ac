//! Runtime CPU dispatch.
//!
//! The crate is built for baseline x86-64 (4-wide SSE2) and picks its kernels at run time:
//! [`Isa::current`] is the best level the CPU has (AVX-512F, AVX2+FMA, or portable), capped by the
//! `PARNET_ISA` environment variable (`avx512`, `avx2` or `portable`, read once) so that every
//! level can be run and tested on a machine that has it. Kernels with an explicit ISA argument
//! let tests compare every available level in one process ([`Isa::available`]).
//!
//! [`avx2_kernel!`] compiles a plain-Rust kernel body twice, once as is and once inside a function
//! with AVX2 enabled (where LLVM vectorises it 8 wide), and picks the AVX2 one when
//! [`Isa::current`] allows it. Both compilations perform the same IEEE operations in the same
//! order (Rust never contracts `a * b + c` into an FMA by itself), so their results are
//! bit-identical.

use std::sync::OnceLock;

/// An instruction-set level, from the lowest up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust (SSE2 on x86-64).
    Portable,
    /// AVX2 and FMA (256-bit vectors, 16 registers).
    Avx2,
    /// AVX-512F (512-bit vectors, 32 registers), with AVX2 and FMA.
    Avx512,
}

impl Isa {
    /// The best level this CPU supports.
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// The level kernels use: [`Isa::detected`], lowered to `PARNET_ISA` when that is set to a
    /// level below it. A value that is not a level, or asks for more than the CPU has, is
    /// reported once on stderr and leaves the detected level.
    pub fn current() -> Isa {
        static CURRENT: OnceLock<Isa> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let detected = Isa::detected();
            match std::env::var("PARNET_ISA") {
                Err(_) => detected,
                Ok(value) => match Isa::parse(&value) {
                    Some(isa) if isa <= detected => isa,
                    Some(isa) => {
                        eprintln!(
                            "warning: PARNET_ISA={value} asks for {} but this CPU has only {}; using {}",
                            isa.name(),
                            detected.name(),
                            detected.name()
                        );
                        detected
                    }
                    None => {
                        eprintln!(
                            "warning: PARNET_ISA={value} is not avx512, avx2 or portable; using {}",
                            detected.name()
                        );
                        detected
                    }
                },
            }
        })
    }

    /// Every level this CPU supports, from the lowest up (what tests compare).
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&isa| isa <= Isa::detected())
            .collect()
    }

    /// `avx512`, `avx2` or `portable` (case-insensitive).
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" => Some(Isa::Avx512),
            "avx2" => Some(Isa::Avx2),
            "portable" | "none" => Some(Isa::Portable),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// f32 lanes of one vector register at this level.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Portable => 4,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    if avx2 && is_x86_feature_detected!("avx512f") {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Portable
}

/// Hints that the cache line holding `p` will be written soon (`prefetchw`); any address may be
/// given (a prefetch never faults).
#[inline(always)]
pub fn prefetch_write(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_ET0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_ET0>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hints that the cache line holding `p` will be read soon.
#[inline(always)]
pub fn prefetch_read(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as `prefetch_write`.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Whether kernels may use AVX2 and FMA ([`Isa::current`] is at least [`Isa::Avx2`]).
pub fn has_avx2_fma() -> bool {
    Isa::current() >= Isa::Avx2
}

/// Defines `$vis fn $name` that runs an AVX2 compilation of `$body` when [`Isa::current`] allows
/// AVX2 and FMA, and `fn $portable` with the plain compilation (the fallback, also called by
/// tests).
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

/// Defines `$vis fn $name(isa: Isa, args..)` that runs `$body` compiled for AVX-512F, for AVX2 and
/// FMA, or portably, as `isa` (lowered to [`Isa::detected`]) says. The three compilations perform
/// the same IEEE operations in the same order, so their results are bit-identical.
macro_rules! isa_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name(isa: $crate::kernels::simd::Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                match isa.min($crate::kernels::simd::Isa::detected()) {
                    // SAFETY: the level does not exceed what the CPU has.
                    $crate::kernels::simd::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Isa::Portable => {}
                }
            }
            let _ = isa;
            body($($arg),*)
        }
    };
}
pub(crate) use isa_kernel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parsed() {
        assert!(Isa::Portable < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        assert_eq!(Isa::parse("AVX512"), Some(Isa::Avx512));
        assert_eq!(Isa::parse("avx2"), Some(Isa::Avx2));
        assert_eq!(Isa::parse("portable"), Some(Isa::Portable));
        assert_eq!(Isa::parse("sse9"), None);
        let available = Isa::available();
        assert_eq!(available[0], Isa::Portable);
        assert_eq!(*available.last().unwrap(), Isa::detected());
        assert!(Isa::current() <= Isa::detected());
    }
}
