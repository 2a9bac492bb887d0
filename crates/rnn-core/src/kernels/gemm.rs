//! The engine's only GEMM entry point, over strided `f32` slices.
//!
//! Backed by the `matrixmultiply` crate, whose kernels take arbitrary row and column strides:
//! a transposed operand is the same slice with its strides swapped, so no copy is ever made.

/// `C ← alpha · A · B + beta · C` with A `[m, k]`, B `[k, n]`, C `[m, n]`, each addressed as
/// `x[i * rs + j * cs]`. When `beta == 0` the previous contents of C are ignored (may be garbage,
/// even NaN).
///
/// Panics if a stride would address past the end of a slice or make two elements of C alias:
/// that is a programming error inside the engine, never a user error (callers validate shapes).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The last element each operand touches must lie inside its slice (soundness of the
    // unsafe call below).
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(m, n, rsc, csc) < c.len(), "sgemm: C [{m}, {n}] out of bounds");
    assert!(
        (csc >= 1 && rsc >= n * csc) || (rsc >= 1 && csc >= m * rsc),
        "sgemm: C strides ({rsc}, {csc}) alias"
    );
    if k == 0 {
        // An empty sum: C ← beta · C (beta == 0 means overwrite, even over NaN).
        for i in 0..m {
            for j in 0..n {
                let v = &mut c[i * rsc + j * csc];
                *v = if beta == 0.0 { 0.0 } else { beta * *v };
            }
        }
        return;
    }
    assert!(last(m, k, rsa, csa) < a.len(), "sgemm: A [{m}, {k}] out of bounds");
    assert!(last(k, n, rsb, csb) < b.len(), "sgemm: B [{k}, {n}] out of bounds");
    // SAFETY: every element addressed by (m, k, n) and the strides lies inside its slice (checked
    // above), C's strides do not alias, and `c` is borrowed mutably so it cannot overlap a or b.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        );
    }
}

/// Whether a row-major operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Use the stored matrix as is.
    Plain,
    /// Use the transpose of the stored matrix.
    Transposed,
}

/// Row-major convenience over [`sgemm`]: `C[m, n] ← alpha · op(A) · op(B) + beta · C`, where A
/// is stored contiguous as `[m, k]` (or `[k, m]` when transposed), B as `[k, n]` (or `[n, k]`),
/// and C as `[m, n]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    let (rsa, csa) = match op_a {
        Op::Plain => (k, 1),
        Op::Transposed => (1, m),
    };
    let (rsb, csb) = match op_b {
        Op::Plain => (n, 1),
        Op::Transposed => (1, k),
    };
    sgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, n, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain triple loop in f64: the reference.
    fn naive(op_a: Op, op_b: Op, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let at = |i: usize, p: usize| match op_a {
            Op::Plain => a[i * k + p],
            Op::Transposed => a[p * m + i],
        };
        let bt = |p: usize, j: usize| match op_b {
            Op::Plain => b[p * n + j],
            Op::Transposed => b[j * k + p],
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) as f64 * bt(p, j) as f64).sum();
            }
        }
        c
    }

    #[test]
    fn matmul_matches_naive_for_every_transpose_and_accumulates_with_beta() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        for op_a in [Op::Plain, Op::Transposed] {
            for op_b in [Op::Plain, Op::Transposed] {
                let want = naive(op_a, op_b, m, n, k, &a, &b);
                let mut c = vec![f32::NAN; m * n];
                matmul(op_a, op_b, m, n, k, 1.0, &a, &b, 0.0, &mut c);
                for (got, w) in c.iter().zip(&want) {
                    assert!((*got as f64 - w).abs() < 1e-5, "{op_a:?} {op_b:?}: {got} vs {w}");
                }
                // beta = 1 adds a second product on top of the first.
                matmul(op_a, op_b, m, n, k, 2.0, &a, &b, 1.0, &mut c);
                for (got, w) in c.iter().zip(&want) {
                    assert!((*got as f64 - 3.0 * w).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let mut c = vec![f32::NAN, f32::NAN];
        sgemm(1, 2, 0, 1.0, &[], 0, 0, &[], 0, 0, 0.0, &mut c, 2, 1);
        assert_eq!(c, vec![0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn out_of_bounds_strides_are_refused() {
        let mut c = vec![0.0; 4];
        sgemm(2, 2, 2, 1.0, &[1.0; 3], 2, 1, &[1.0; 4], 2, 1, 0.0, &mut c, 2, 1);
    }
}
