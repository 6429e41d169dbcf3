//! Framework-free batching of tokenized examples: deterministic per-epoch
//! shuffling, optional length bucketing, and dynamic right padding into flat
//! row-major `i64` buffers that any tensor library can wrap.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::data::Label;

/// One tokenized example. Truncation is the tokenizer's job.
/// An empty `token_type_ids` means all zeros (RoBERTa).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub label: Label,
}

/// Labels of a padded batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchLabels {
    /// Class ids (classification tasks).
    Class(Vec<i64>),
    /// Regression targets (STS-B).
    Score(Vec<f32>),
}

impl BatchLabels {
    pub fn len(&self) -> usize {
        match self {
            BatchLabels::Class(v) => v.len(),
            BatchLabels::Score(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A right-padded batch; all buffers are row-major `[batch, seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub input_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    pub batch: usize,
    pub seq_len: usize,
    pub labels: BatchLabels,
}

/// Pads `examples` on the right to the longest one, with `pad_id` in
/// `input_ids` and 0 in `attention_mask`/`token_type_ids`.
///
/// Panics when labels mix classes and scores, or when an example's non-empty
/// `token_type_ids` differs in length from its `input_ids` (both are
/// programming errors upstream).
pub fn pad_batch(examples: &[&Encoded], pad_id: u32) -> Batch {
    pad_batch_to(examples, pad_id, 1)
}

/// [`pad_batch`] with the padded length rounded up to a multiple of `multiple`: GPU backends
/// compile kernels per shape, so few distinct lengths mean few compilations.
pub fn pad_batch_to(examples: &[&Encoded], pad_id: u32, multiple: usize) -> Batch {
    let batch = examples.len();
    let longest = examples
        .iter()
        .map(|e| e.input_ids.len())
        .max()
        .unwrap_or(0);
    let seq_len = longest.div_ceil(multiple.max(1)) * multiple.max(1);
    let mut input_ids = vec![pad_id as i64; batch * seq_len];
    let mut attention_mask = vec![0i64; batch * seq_len];
    let mut token_type_ids = vec![0i64; batch * seq_len];
    for (r, e) in examples.iter().enumerate() {
        assert!(
            e.token_type_ids.is_empty() || e.token_type_ids.len() == e.input_ids.len(),
            "example {r}: {} token_type_ids for {} input_ids",
            e.token_type_ids.len(),
            e.input_ids.len()
        );
        let row = r * seq_len;
        for (j, &t) in e.input_ids.iter().enumerate() {
            input_ids[row + j] = t as i64;
            attention_mask[row + j] = 1;
        }
        for (j, &t) in e.token_type_ids.iter().enumerate() {
            token_type_ids[row + j] = t as i64;
        }
    }
    let labels = match examples.first().map(|e| e.label) {
        Some(Label::Score(_)) => BatchLabels::Score(
            examples
                .iter()
                .map(|e| match e.label {
                    Label::Score(s) => s,
                    Label::Class(_) => panic!("batch mixes class and score labels"),
                })
                .collect(),
        ),
        _ => BatchLabels::Class(
            examples
                .iter()
                .map(|e| match e.label {
                    Label::Class(c) => c as i64,
                    Label::Score(_) => panic!("batch mixes class and score labels"),
                })
                .collect(),
        ),
    };
    Batch {
        input_ids,
        attention_mask,
        token_type_ids,
        batch,
        seq_len,
        labels,
    }
}

/// How an epoch is cut into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    pub batch_size: usize,
    /// Shuffle (training) or keep file order (evaluation).
    pub shuffle: bool,
    /// Length bucketing: after shuffling, sort each chunk of
    /// `k * batch_size` examples by length, cut it into batches, then
    /// shuffle the order of all batches. `None` = no bucketing.
    pub bucket_chunks: Option<usize>,
    /// Drop a final batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl BatchConfig {
    pub fn train(batch_size: usize) -> Self {
        BatchConfig {
            batch_size,
            shuffle: true,
            bucket_chunks: None,
            drop_last: false,
        }
    }

    pub fn eval(batch_size: usize) -> Self {
        BatchConfig {
            batch_size,
            shuffle: false,
            bucket_chunks: None,
            drop_last: false,
        }
    }
}

/// The RNG for (seed, epoch): independent streams per epoch, reproducible.
pub fn epoch_rng(seed: u64, epoch: u64) -> StdRng {
    // SplitMix64-style mixing so that nearby (seed, epoch) pairs diverge.
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    StdRng::seed_from_u64(z)
}

/// A permutation of `0..n` for (seed, epoch).
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut epoch_rng(seed, epoch));
    idx
}

/// Cuts one epoch over examples with the given token `lengths` into batches
/// of indices. Every index appears exactly once (except in a dropped last
/// batch). Deterministic in (seed, epoch); ignored when `cfg.shuffle` is false.
pub fn epoch_batches(
    lengths: &[usize],
    cfg: &BatchConfig,
    seed: u64,
    epoch: u64,
) -> Vec<Vec<usize>> {
    assert!(cfg.batch_size > 0, "batch_size must be positive");
    let n = lengths.len();
    let bs = cfg.batch_size;
    let mut rng = epoch_rng(seed, epoch);
    let mut order: Vec<usize> = (0..n).collect();
    if cfg.shuffle {
        order.shuffle(&mut rng);
    }
    let mut batches: Vec<Vec<usize>> = match cfg.bucket_chunks {
        Some(k) if k > 0 => {
            let mut out = Vec::new();
            for chunk in order.chunks(k * bs) {
                let mut c = chunk.to_vec();
                c.sort_by_key(|&i| lengths[i]); // stable: ties keep shuffled order
                out.extend(c.chunks(bs).map(<[usize]>::to_vec));
            }
            out
        }
        _ => order.chunks(bs).map(<[usize]>::to_vec).collect(),
    };
    if cfg.drop_last && batches.last().is_some_and(|b| b.len() < bs) {
        batches.pop();
    }
    if cfg.shuffle && cfg.bucket_chunks.is_some_and(|k| k > 0) {
        batches.shuffle(&mut rng);
    }
    batches
}

/// Padded batches of one epoch, in order.
pub fn epoch_padded<'a>(
    data: &'a [Encoded],
    cfg: &BatchConfig,
    seed: u64,
    epoch: u64,
    pad_id: u32,
) -> impl Iterator<Item = Batch> + 'a {
    let lengths: Vec<usize> = data.iter().map(|e| e.input_ids.len()).collect();
    epoch_batches(&lengths, cfg, seed, epoch)
        .into_iter()
        .map(move |b| {
            let refs: Vec<&Encoded> = b.iter().map(|&i| &data[i]).collect();
            pad_batch(&refs, pad_id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(n: usize) -> Vec<usize> {
        (0..n).map(|i| 1 + (i * 7919) % 37).collect()
    }

    fn check_once(batches: &[Vec<usize>], n: usize) {
        let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn each_example_once_per_epoch() {
        let l = lengths(103);
        for cfg in [
            BatchConfig::train(8),
            BatchConfig {
                bucket_chunks: Some(4),
                ..BatchConfig::train(8)
            },
            BatchConfig::eval(8),
        ] {
            for epoch in 0..3 {
                let b = epoch_batches(&l, &cfg, 42, epoch);
                check_once(&b, 103);
                assert!(b.iter().all(|x| x.len() <= 8));
                assert_eq!(b.len(), 13);
            }
        }
    }

    #[test]
    fn deterministic_by_seed_and_epoch() {
        let l = lengths(200);
        for cfg in [
            BatchConfig::train(16),
            BatchConfig {
                bucket_chunks: Some(3),
                ..BatchConfig::train(16)
            },
        ] {
            assert_eq!(epoch_batches(&l, &cfg, 7, 0), epoch_batches(&l, &cfg, 7, 0));
            assert_ne!(epoch_batches(&l, &cfg, 7, 0), epoch_batches(&l, &cfg, 7, 1));
            assert_ne!(epoch_batches(&l, &cfg, 7, 0), epoch_batches(&l, &cfg, 8, 0));
        }
        assert_eq!(epoch_order(50, 1, 2), epoch_order(50, 1, 2));
        assert_ne!(epoch_order(50, 1, 2), epoch_order(50, 1, 3));
        // Evaluation order is file order.
        let e = epoch_batches(&l, &BatchConfig::eval(16), 7, 5);
        assert_eq!(e.concat(), (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn bucketing_groups_similar_lengths() {
        let l = lengths(512);
        let plain = epoch_batches(&l, &BatchConfig::train(16), 3, 0);
        let bucketed = epoch_batches(
            &l,
            &BatchConfig {
                bucket_chunks: Some(8),
                ..BatchConfig::train(16)
            },
            3,
            0,
        );
        check_once(&bucketed, 512);
        let padded = |bs: &[Vec<usize>]| -> usize {
            bs.iter()
                .map(|b| b.iter().map(|&i| l[i]).max().unwrap() * b.len())
                .sum()
        };
        assert!(
            padded(&bucketed) < padded(&plain),
            "{} vs {}",
            padded(&bucketed),
            padded(&plain)
        );
        // Inside each chunk, batches are sorted by length.
        for b in &bucketed {
            assert!(b.windows(2).all(|w| l[w[0]] <= l[w[1]]));
        }
    }

    #[test]
    fn drop_last() {
        let l = lengths(10);
        let cfg = BatchConfig {
            drop_last: true,
            ..BatchConfig::train(4)
        };
        let b = epoch_batches(&l, &cfg, 0, 0);
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|x| x.len() == 4));
    }

    #[test]
    fn padding() {
        let a = Encoded {
            input_ids: vec![0, 10, 11, 2],
            token_type_ids: vec![],
            label: Label::Class(1),
        };
        let b = Encoded {
            input_ids: vec![0, 12, 2],
            token_type_ids: vec![0, 1, 1],
            label: Label::Class(0),
        };
        let p = pad_batch(&[&a, &b], 1);
        assert_eq!((p.batch, p.seq_len), (2, 4));
        assert_eq!(p.input_ids, vec![0, 10, 11, 2, 0, 12, 2, 1]);
        assert_eq!(p.attention_mask, vec![1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(p.token_type_ids, vec![0, 0, 0, 0, 0, 1, 1, 0]);
        assert_eq!(p.labels, BatchLabels::Class(vec![1, 0]));
        let s = Encoded {
            input_ids: vec![5],
            token_type_ids: vec![],
            label: Label::Score(2.5),
        };
        let p = pad_batch(&[&s], 1);
        assert_eq!(p.labels, BatchLabels::Score(vec![2.5]));
        assert_eq!((p.batch, p.seq_len), (1, 1));
        let data = vec![a.clone(), b.clone(), a];
        let batches: Vec<Batch> = epoch_padded(&data, &BatchConfig::eval(2), 0, 0, 1).collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].input_ids, vec![0, 10, 11, 2]);
    }

    #[test]
    #[should_panic(expected = "mixes")]
    fn mixed_labels_panic() {
        let a = Encoded {
            input_ids: vec![1],
            token_type_ids: vec![],
            label: Label::Class(1),
        };
        let b = Encoded {
            input_ids: vec![1],
            token_type_ids: vec![],
            label: Label::Score(1.0),
        };
        pad_batch(&[&a, &b], 0);
    }

    #[test]
    fn padding_to_a_multiple_masks_the_extra_positions() {
        let a = Encoded { input_ids: vec![5, 6, 7], token_type_ids: vec![], label: Label::Class(1) };
        let b = Encoded { input_ids: vec![8], token_type_ids: vec![], label: Label::Class(0) };
        let p = pad_batch_to(&[&a, &b], 1, 16);
        assert_eq!((p.batch, p.seq_len), (2, 16));
        assert_eq!(p.attention_mask.iter().sum::<i64>(), 4);
        assert_eq!(&p.input_ids[..4], &[5, 6, 7, 1]);
        assert_eq!(pad_batch_to(&[&a, &b], 1, 1).seq_len, 3);
        assert_eq!(pad_batch_to(&[&a], 1, 3).seq_len, 3);
    }
}
