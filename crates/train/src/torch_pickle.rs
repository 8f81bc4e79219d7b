//! Writing a state dict in `torch.save`'s zip format, for the one file that must be in it:
//! sentence-transformers 2.2.2 (what InstructorEmbedding needs) reads a Dense layer only from
//! `2_Dense/pytorch_model.bin`.
//!
//! The archive holds `archive/data.pkl` (a protocol-2 pickle of an `OrderedDict` whose values are
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` calls,
//! the storages being persistent ids), one `archive/data/<key>` file of raw little-endian f32
//! per tensor, `archive/version` and `archive/byteorder`. Only globals that torch's
//! `weights_only` unpickler allows are used.

use std::io::{Seek, Write};

/// A pickle program under construction.
struct Pickle(Vec<u8>);

impl Pickle {
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    fn str(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: usize) {
        self.0.push(b'J');
        self.0
            .extend_from_slice(&i32::try_from(v).expect("tensor dims fit i32").to_le_bytes());
    }
    fn ints(&mut self, vs: &[usize]) {
        self.0.push(b'(');
        for &v in vs {
            self.int(v);
        }
        self.0.push(b't');
    }
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.0.extend_from_slice(b")R");
    }
}

/// Writes f32 tensors `(name, shape, row-major values)` to `w` as `torch.save(state_dict)` would.
pub fn write_state_dict<W: Write + Seek>(
    w: W,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> zip::result::ZipResult<()> {
    let mut p = Pickle(vec![0x80, 2]);
    p.ordered_dict();
    p.0.push(b'(');
    for (key, (name, shape, _)) in tensors.iter().enumerate() {
        let strides: Vec<usize> = (0..shape.len())
            .map(|i| shape[i + 1..].iter().product())
            .collect();
        p.str(name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.0.push(b'(');
        p.0.push(b'(');
        p.str("storage");
        p.global("torch", "FloatStorage");
        p.str(&key.to_string());
        p.str("cpu");
        p.int(shape.iter().product());
        p.0.extend_from_slice(b"tQ");
        p.int(0);
        p.ints(shape);
        p.ints(&strides);
        p.0.push(0x89);
        p.ordered_dict();
        p.0.extend_from_slice(b"tR");
    }
    p.0.extend_from_slice(b"u.");

    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64);
    let mut zip = zip::ZipWriter::new(w);
    zip.start_file("archive/data.pkl", opts)?;
    zip.write_all(&p.0)?;
    zip.start_file("archive/byteorder", opts)?;
    zip.write_all(b"little")?;
    for (key, (_, _, data)) in tensors.iter().enumerate() {
        zip.start_file(format!("archive/data/{key}"), opts)?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        zip.write_all(&bytes)?;
    }
    zip.start_file("archive/version", opts)?;
    zip.write_all(b"3\n")?;
    zip.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn candle_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pytorch_model.bin");
        let w: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        let tensors = vec![
            ("linear.weight".to_string(), vec![2, 3], w.clone()),
            ("linear.bias".to_string(), vec![2], vec![0.25, -4.0]),
        ];
        write_state_dict(std::fs::File::create(&path).unwrap(), &tensors).unwrap();
        let vb = candle_nn::VarBuilder::from_pth(&path, DType::F32, &Device::Cpu).unwrap();
        let got = vb.get((2, 3), "linear.weight").unwrap();
        assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), w);
        let got = vb.get(2, "linear.bias").unwrap();
        assert_eq!(got.to_vec1::<f32>().unwrap(), vec![0.25, -4.0]);
    }
}
