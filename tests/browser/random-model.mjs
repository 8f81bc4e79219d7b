// Writes a random-weight INSTRUCTOR folder at hkunlp/instructor-{base,large}'s shape (encoder in
// model.safetensors, f32), with the fixture tokenizer (its ids are a subset of the real vocab).
// A stand-in for the Rust generator (examples/random_model.rs) where that is not available;
// speed and memory do not depend on the values.
//
//   node tests/browser/random-model.mjs base /tmp/instructor-bench/base

import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './harness.mjs';

const SHAPES = { base: [768, 64, 12, 3072, 12], large: [1024, 64, 16, 4096, 24] };

function writeSafetensors(file, tensors) {
  // tensors: [[name, shape, fill(Float32Array)]]; data written in order.
  const header = {};
  let off = 0;
  for (const [name, shape] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = fs.openSync(file, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, json);
  let s = 0x9e3779b9;
  for (const [, shape, kind] of tensors) {
    let left = shape.reduce((a, b) => a * b, 1);
    while (left > 0) {
      const a = new Float32Array(Math.min(left, 1 << 20));
      if (kind === 'ones') a.fill(1);
      else
        for (let i = 0; i < a.length; i++) {
          s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
          a[i] = ((s >>> 0) / 4294967296 - 0.5) * kind;
        }
      fs.writeSync(fd, new Uint8Array(a.buffer));
      left -= a.length;
    }
  }
  fs.closeSync(fd);
}

export function writeRandomModel(shapeName, dir) {
  const [d, dkv, heads, dff, layers] = SHAPES[shapeName];
  const inner = dkv * heads;
  const fx = path.join(ROOT, 'tests/fixtures/models/tiny-relu-bin');
  fs.mkdirSync(path.join(dir, '1_Pooling'), { recursive: true });
  fs.mkdirSync(path.join(dir, '2_Dense'), { recursive: true });
  for (const f of ['modules.json', 'sentence_bert_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    fs.copyFileSync(path.join(fx, f), path.join(dir, f));
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(fx, 'config.json'), 'utf8'));
  Object.assign(cfg, { d_model: d, d_kv: dkv, num_heads: heads, d_ff: dff, num_layers: layers, num_decoder_layers: layers, vocab_size: 32128 });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const pool = JSON.parse(fs.readFileSync(path.join(fx, '1_Pooling/config.json'), 'utf8'));
  pool.word_embedding_dimension = d;
  fs.writeFileSync(path.join(dir, '1_Pooling/config.json'), JSON.stringify(pool, null, 2));
  fs.writeFileSync(
    path.join(dir, '2_Dense/config.json'),
    JSON.stringify({ in_features: d, out_features: 768, bias: false, activation_function: 'torch.nn.modules.linear.Identity' }, null, 2),
  );
  const w = (fanIn) => 2 * Math.sqrt(3 / fanIn); // uniform with variance 1/fan_in
  const t = [['shared.weight', [32128, d], 2]];
  for (let i = 0; i < layers; i++) {
    const b = `encoder.block.${i}`;
    for (const p of ['q', 'k', 'v']) t.push([`${b}.layer.0.SelfAttention.${p}.weight`, [inner, d], w(d)]);
    t.push([`${b}.layer.0.SelfAttention.o.weight`, [d, inner], w(inner)]);
    if (i === 0) t.push([`${b}.layer.0.SelfAttention.relative_attention_bias.weight`, [32, heads], 1]);
    t.push([`${b}.layer.0.layer_norm.weight`, [d], 'ones']);
    t.push([`${b}.layer.1.DenseReluDense.wi.weight`, [dff, d], w(d)]);
    t.push([`${b}.layer.1.DenseReluDense.wo.weight`, [d, dff], w(dff)]);
    t.push([`${b}.layer.1.layer_norm.weight`, [d], 'ones']);
  }
  t.push(['encoder.final_layer_norm.weight', [d], 'ones']);
  writeSafetensors(path.join(dir, 'model.safetensors'), t);
  writeSafetensors(path.join(dir, '2_Dense/model.safetensors'), [['linear.weight', [768, d], w(d)]]);
  return dir;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const [shape = 'base', dir = `/tmp/instructor-bench/${shape}`] = process.argv.slice(2);
  console.log(writeRandomModel(shape, dir));
}
