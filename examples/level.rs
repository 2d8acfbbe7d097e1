fn main() { println!("{:?} -> {}", pulp::Arch::new(), arcface::simd_level()); }
