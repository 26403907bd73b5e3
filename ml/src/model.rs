//! Model files: a versioned binary form of an [`Mlp`] ending with the
//! SHA-256 of everything before it, so a damaged or altered file is
//! refused and a model is named by its digest (the registry's id).
//!
//! Layout (little-endian): `PTRNSMLP` · format version (u32) · layer
//! count L (u32) · L+1 widths (u32) · classes (u8 count, then per class a
//! u8 length and its label) · mean, std (f32 × inputs) · per layer its
//! weights (row-major, inputs × outputs) then biases (f32) · SHA-256 (32).

use anyhow::{bail, ensure, Context};
use ndarray::{Array1, Array2};
use ring::digest::{digest, SHA256};

use patronus_classify::Class;

use crate::mlp::{Layer, Mlp};

pub const MAGIC: &[u8; 8] = b"PTRNSMLP";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest width accepted when reading (keeps a hostile file small).
const MAX_WIDTH: u32 = 4096;

/// The file bytes of `m`.
pub fn to_bytes(m: &Mlp) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&(m.layers.len() as u32).to_le_bytes());
    for d in m.dims() {
        b.extend_from_slice(&(d as u32).to_le_bytes());
    }
    b.push(m.classes.len() as u8);
    for c in &m.classes {
        b.push(c.label().len() as u8);
        b.extend_from_slice(c.label().as_bytes());
    }
    let mut f32s = |it: &mut dyn Iterator<Item = f32>| {
        for v in it {
            b.extend_from_slice(&v.to_le_bytes());
        }
    };
    f32s(&mut m.mean.iter().copied());
    f32s(&mut m.std.iter().copied());
    for l in &m.layers {
        f32s(&mut l.w.iter().copied());
        f32s(&mut l.b.iter().copied());
    }
    let d = digest(&SHA256, &b);
    b.extend_from_slice(d.as_ref());
    b
}

/// Hex SHA-256 of a model file's bytes (its last 32 bytes).
pub fn sha256_hex(file: &[u8]) -> Option<String> {
    let tail = file.get(file.len().checked_sub(32)?..)?;
    Some(tail.iter().map(|b| format!("{b:02x}")).collect())
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .context("model file truncated")?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn f32s(&mut self, n: usize) -> anyhow::Result<Vec<f32>> {
        let s = self.take(n * 4)?;
        let v: Vec<f32> = s
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        ensure!(
            v.iter().all(|x| x.is_finite()),
            "model file holds a non-finite number"
        );
        Ok(v)
    }
}

/// Reads a model file: its digest checked, then its contents.
pub fn from_bytes(file: &[u8]) -> anyhow::Result<Mlp> {
    ensure!(
        file.len() > MAGIC.len() + 32,
        "not a model file (too short)"
    );
    let (body, sum) = file.split_at(file.len() - 32);
    ensure!(
        digest(&SHA256, body).as_ref() == sum,
        "model file damaged: SHA-256 does not match"
    );
    let mut r = Reader { b: body, at: 0 };
    ensure!(r.take(8)? == MAGIC, "not a model file (magic)");
    let v = r.u32()?;
    ensure!(
        v == FORMAT_VERSION,
        "model format {v}, this build reads {FORMAT_VERSION}"
    );
    let layers = r.u32()?;
    ensure!((1..=8).contains(&layers), "{layers} layers");
    let mut dims = Vec::new();
    for _ in 0..=layers {
        let d = r.u32()?;
        ensure!((1..=MAX_WIDTH).contains(&d), "layer width {d}");
        dims.push(d as usize);
    }
    let n = usize::from(r.u8()?);
    ensure!(
        n == dims[dims.len() - 1],
        "{n} classes for {} outputs",
        dims[dims.len() - 1]
    );
    let mut classes = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(r.u8()?);
        let label = std::str::from_utf8(r.take(len)?).context("class label not UTF-8")?;
        match Class::from_label(label) {
            Some(c) => classes.push(c),
            None => bail!("unknown class {label:?}"),
        }
    }
    let mean = Array1::from(r.f32s(dims[0])?);
    let std = Array1::from(r.f32s(dims[0])?);
    ensure!(std.iter().all(|s| *s > 0.0), "a deviation is not positive");
    let mut ls = Vec::new();
    for w in dims.windows(2) {
        let weights = Array2::from_shape_vec((w[0], w[1]), r.f32s(w[0] * w[1])?)?;
        let b = Array1::from(r.f32s(w[1])?);
        ls.push(Layer { w: weights, b });
    }
    ensure!(r.at == body.len(), "trailing bytes in the model file");
    Ok(Mlp {
        mean,
        std,
        layers: ls,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn a_model_survives_the_file_and_a_flipped_bit_is_refused() {
        let m = Mlp::new(
            &[6, 5, 3],
            vec![Class::Dns, Class::Quic, Class::Unknown],
            &mut Rng::new(9),
        );
        let b = to_bytes(&m);
        assert_eq!(from_bytes(&b).unwrap(), m);
        assert_eq!(sha256_hex(&b).unwrap().len(), 64);
        for at in [0, 9, 20, b.len() / 2, b.len() - 1] {
            let mut bad = b.clone();
            bad[at] ^= 1;
            assert!(from_bytes(&bad).is_err(), "flip at {at} accepted");
        }
        assert!(from_bytes(&b[..b.len() - 1]).is_err());
        assert!(from_bytes(b"short").is_err());
    }
}
