//! GGML tensor types as stored in GGUF files, and their dequantization to f32 (block layouts
//! of ggml's `ggml-quants.c` / the `gguf` Python package's `gguf.quants`):
//! F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K. Other known types (Q2_K,
//! Q3_K, IQ*, ...) are recognised for their sizes, so a file using them opens and the error
//! names the tensor and type when it is read.
use half::{bf16, f16};

/// A ggml tensor type id (`ggml_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

impl GgmlType {
    pub const F32: GgmlType = GgmlType(0);
    pub const F16: GgmlType = GgmlType(1);
    pub const Q4_0: GgmlType = GgmlType(2);
    pub const Q4_1: GgmlType = GgmlType(3);
    pub const Q5_0: GgmlType = GgmlType(6);
    pub const Q5_1: GgmlType = GgmlType(7);
    pub const Q8_0: GgmlType = GgmlType(8);
    pub const Q8_1: GgmlType = GgmlType(9);
    pub const Q2_K: GgmlType = GgmlType(10);
    pub const Q3_K: GgmlType = GgmlType(11);
    pub const Q4_K: GgmlType = GgmlType(12);
    pub const Q5_K: GgmlType = GgmlType(13);
    pub const Q6_K: GgmlType = GgmlType(14);
    pub const Q8_K: GgmlType = GgmlType(15);
    pub const I8: GgmlType = GgmlType(24);
    pub const I16: GgmlType = GgmlType(25);
    pub const I32: GgmlType = GgmlType(26);
    pub const I64: GgmlType = GgmlType(27);
    pub const F64: GgmlType = GgmlType(28);
    pub const BF16: GgmlType = GgmlType(30);

    /// ggml's name of the type (`"Q4_1"`), or `"type N"` for ids this build does not know.
    pub fn name(self) -> String {
        let known = match self.0 {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            6 => "Q5_0",
            7 => "Q5_1",
            8 => "Q8_0",
            9 => "Q8_1",
            10 => "Q2_K",
            11 => "Q3_K",
            12 => "Q4_K",
            13 => "Q5_K",
            14 => "Q6_K",
            15 => "Q8_K",
            16 => "IQ2_XXS",
            17 => "IQ2_XS",
            18 => "IQ3_XXS",
            19 => "IQ1_S",
            20 => "IQ4_NL",
            21 => "IQ3_S",
            22 => "IQ2_S",
            23 => "IQ4_XS",
            24 => "I8",
            25 => "I16",
            26 => "I32",
            27 => "I64",
            28 => "F64",
            29 => "IQ1_M",
            30 => "BF16",
            34 => "TQ1_0",
            35 => "TQ2_0",
            _ => return format!("type {}", self.0),
        };
        known.to_string()
    }

    /// `(elements per block, bytes per block)`, `None` for unknown ids.
    pub fn block(self) -> Option<(usize, usize)> {
        Some(match self.0 {
            0 => (1, 4),
            1 => (1, 2),
            2 => (32, 18),
            3 => (32, 20),
            6 => (32, 22),
            7 => (32, 24),
            8 => (32, 34),
            9 => (32, 36),
            10 => (256, 84),
            11 => (256, 110),
            12 => (256, 144),
            13 => (256, 176),
            14 => (256, 210),
            15 => (256, 292),
            16 => (256, 66),
            17 => (256, 74),
            18 => (256, 98),
            19 => (256, 50),
            20 => (32, 18),
            21 => (256, 110),
            22 => (256, 82),
            23 => (256, 136),
            24 => (1, 1),
            25 => (1, 2),
            26 => (1, 4),
            27 => (1, 8),
            28 => (1, 8),
            29 => (256, 56),
            30 => (1, 2),
            34 => (256, 54),
            35 => (256, 66),
            _ => return None,
        })
    }

    /// Whether [`dequantize`] handles the type.
    pub fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 2 | 3 | 6 | 7 | 8 | 12 | 13 | 14 | 28 | 30)
    }

    /// Bytes of `n` elements (`None`: unknown type, or `n` not a whole number of blocks).
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        let (be, bb) = self.block()?;
        (n % be == 0).then_some(n / be * bb)
    }
}

pub const SUPPORTED: &str = "F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K";

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// `n` f32 values from `bytes` of type `ty`. Errors (as a message) on an unsupported type or a
/// byte count that does not match.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>, String> {
    if !ty.is_supported() {
        return Err(format!("ggml type {} is not supported (supported: {SUPPORTED})", ty.name()));
    }
    let need = ty.bytes_for(n).ok_or_else(|| format!("{n} elements are not a whole number of {} blocks", ty.name()))?;
    if bytes.len() != need {
        return Err(format!("{} bytes for {n} {} elements, expected {need}", bytes.len(), ty.name()));
    }
    let (be, bb) = ty.block().unwrap_or((1, 1));
    let mut out = vec![0f32; n];
    if be == 1 {
        match ty {
            GgmlType::F32 => out.iter_mut().zip(bytes.chunks_exact(4)).for_each(|(o, b)| *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            GgmlType::F16 => out.iter_mut().zip(bytes.chunks_exact(2)).for_each(|(o, b)| *o = f16::from_le_bytes([b[0], b[1]]).to_f32()),
            GgmlType::BF16 => out.iter_mut().zip(bytes.chunks_exact(2)).for_each(|(o, b)| *o = bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            _ => out.iter_mut().zip(bytes.chunks_exact(8)).for_each(|(o, b)| {
                *o = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }),
        }
        return Ok(out);
    }
    for (y, x) in out.chunks_exact_mut(be).zip(bytes.chunks_exact(bb)) {
        match ty {
            GgmlType::Q4_0 => block_q4(x, y, false),
            GgmlType::Q4_1 => block_q4(x, y, true),
            GgmlType::Q5_0 => block_q5(x, y, false),
            GgmlType::Q5_1 => block_q5(x, y, true),
            GgmlType::Q8_0 => {
                let d = f16_at(x, 0);
                y.iter_mut().zip(&x[2..34]).for_each(|(o, &q)| *o = d * (q as i8) as f32);
            }
            GgmlType::Q4_K => block_q4_k(x, y),
            GgmlType::Q5_K => block_q5_k(x, y),
            _ => block_q6_k(x, y),
        }
    }
    Ok(out)
}

/// Q4_0 `{d: f16, qs: [u8; 16]}`: `y = (q − 8)·d`; Q4_1 `{d, m: f16, qs}`: `y = q·d + m`.
/// Low nibbles are elements 0..16, high nibbles 16..32.
fn block_q4(x: &[u8], y: &mut [f32], with_min: bool) {
    let d = f16_at(x, 0);
    let (m, qs, off) = if with_min { (f16_at(x, 2), &x[4..20], 0.0) } else { (0.0, &x[2..18], 8.0) };
    for (j, &q) in qs.iter().enumerate() {
        y[j] = ((q & 0xF) as f32 - off) * d + m;
        y[j + 16] = ((q >> 4) as f32 - off) * d + m;
    }
}

/// Q5_0 `{d, qh: u32, qs: [u8; 16]}`: 5-bit `q = nibble | bit·16`, `y = (q − 16)·d`; Q5_1
/// `{d, m, qh, qs}`: `y = q·d + m`. Bit j of `qh` is element j's fifth bit, bit j+16 element j+16's.
fn block_q5(x: &[u8], y: &mut [f32], with_min: bool) {
    let d = f16_at(x, 0);
    let (m, rest, off) = if with_min { (f16_at(x, 2), &x[4..], 0.0) } else { (0.0, &x[2..], 16.0) };
    let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let qs = &rest[4..20];
    for (j, &q) in qs.iter().enumerate() {
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + 16)) & 1) << 4;
        y[j] = (((q & 0xF) as u32 | h0) as f32 - off) * d + m;
        y[j + 16] = (((q >> 4) as u32 | h1) as f32 - off) * d + m;
    }
}

/// 6-bit scale and min `j` (0..8) of a K-quant super-block's 12 packed bytes.
fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((s[j] & 63) as f32, (s[j + 4] & 63) as f32)
    } else {
        (((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)) as f32, ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as f32)
    }
}

/// Q4_K `{d, dmin: f16, scales: [u8; 12], qs: [u8; 128]}`: 8 sub-blocks of 32, `y = d·sc·q − dmin·m`;
/// each 32 bytes of `qs` hold two sub-blocks (low nibbles, then high nibbles).
fn block_q4_k(x: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(x, 0), f16_at(x, 2));
    let scales = &x[4..16];
    let qs = &x[16..144];
    for c in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let q = &qs[32 * c..32 * c + 32];
        let out = &mut y[64 * c..64 * c + 64];
        for l in 0..32 {
            out[l] = d * sc1 * (q[l] & 0xF) as f32 - dmin * m1;
            out[32 + l] = d * sc2 * (q[l] >> 4) as f32 - dmin * m2;
        }
    }
}

/// Q5_K `{d, dmin, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]}`: Q4_K plus a fifth bit per
/// element from `qh` (bit 2c for the low-nibble sub-block of chunk c, bit 2c+1 for the high one).
fn block_q5_k(x: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(x, 0), f16_at(x, 2));
    let scales = &x[4..16];
    let qh = &x[16..48];
    let qs = &x[48..176];
    for c in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let q = &qs[32 * c..32 * c + 32];
        let out = &mut y[64 * c..64 * c + 64];
        for l in 0..32 {
            let h1 = if qh[l] & (1 << (2 * c)) != 0 { 16 } else { 0 };
            let h2 = if qh[l] & (1 << (2 * c + 1)) != 0 { 16 } else { 0 };
            out[l] = d * sc1 * ((q[l] & 0xF) + h1) as f32 - dmin * m1;
            out[32 + l] = d * sc2 * ((q[l] >> 4) + h2) as f32 - dmin * m2;
        }
    }
}

/// Q6_K `{ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16}`: 6-bit `q − 32` per element,
/// 16 sub-blocks of 16 with their own i8 scale; two halves of 128 elements.
fn block_q6_k(x: &[u8], y: &mut [f32]) {
    let d = f16_at(x, 208);
    for half in 0..2 {
        let ql = &x[64 * half..64 * half + 64];
        let qh = &x[128 + 32 * half..128 + 32 * half + 32];
        let sc = &x[192 + 8 * half..192 + 8 * half + 8];
        let out = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let s = |k: usize| (sc[is + k] as i8) as f32;
            out[l] = d * s(0) * q1 as f32;
            out[l + 32] = d * s(2) * q2 as f32;
            out[l + 64] = d * s(4) * q3 as f32;
            out[l + 96] = d * s(6) * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_and_q4_1_by_hand() {
        // Q8_0: d = 0.5, q = 0, 1, -2, ...
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0..32).map(|i| if i == 2 { (-2i8) as u8 } else { i as u8 }));
        let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
        assert_eq!((y[0], y[1], y[2], y[31]), (0.0, 0.5, -1.0, 15.5));
        // Q4_1: d = 2, m = -1, byte 0x31 → element 0 = 1·2 − 1, element 16 = 3·2 − 1
        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend([0x31u8; 16]);
        let y = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
        assert_eq!((y[0], y[16]), (1.0, 5.0));
        let e = dequantize(GgmlType::Q2_K, &[0; 84], 256).unwrap_err();
        assert!(e.contains("Q2_K"), "{e}");
        assert!(dequantize(GgmlType::Q8_0, &b, 32).unwrap_err().contains("expected 34"));
        assert_eq!(GgmlType(99).name(), "type 99");
    }
}
