//! The dispatched SIMD level is the best the CPU offers: a build that
//! silently fell back to the scalar path fails here, on x86 and on aarch64.

#[test]
fn dispatch_uses_the_best_level_the_cpu_has() {
    let level = arcface::simd_level();
    println!("simd level: {level} ({:?})", pulp::Arch::new());
    #[cfg(target_arch = "x86_64")]
    {
        let v4 = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];
        let has_v4 = v4.iter().all(|f| match *f {
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
            "avx512cd" => std::arch::is_x86_feature_detected!("avx512cd"),
            "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
            _ => std::arch::is_x86_feature_detected!("avx512vl"),
        });
        let has_v3 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        let want = if has_v4 {
            "avx512"
        } else if has_v3 {
            "avx2"
        } else {
            "scalar"
        };
        assert_eq!(level, want);
        assert_ne!(level, "scalar", "this CI machine has AVX2 at least");
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert_eq!(level, "neon");
        assert!(std::arch::is_aarch64_feature_detected!("neon"));
    }
}

/// The head reports the same level it dispatches with.
#[test]
fn head_reports_the_dispatched_level() {
    let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 2), 0).unwrap();
    assert_eq!(h.simd_level(), arcface::simd_level());
}
