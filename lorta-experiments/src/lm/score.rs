//! Log-likelihoods of continuation tokens under a LLaMA model, the losses built on them
//! (response-only SFT loss, MeZO's candidate classification loss, DPO's sigmoid loss) and greedy
//! answers.
use anyhow::{anyhow, bail, Result};
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};
use lorta_models::llama::{GenerationConfig, LlamaForCausalLM};

use super::tokenize::{LmTokenizer, Sequence};

/// A right-padded batch of sequences with the mask of the scored next-token positions.
pub struct PaddedSequences<B: Backend> {
    pub input_ids: Tensor<B, 2, Int>,
    pub attention_mask: Tensor<B, 2, Int>,
    /// `[b, s − 1]`: the token each position predicts.
    pub next_ids: Tensor<B, 2, Int>,
    /// `[b, s − 1]`, 1 where the predicted token is a target token.
    pub target_mask: Tensor<B, 2>,
    /// Target tokens per sequence.
    pub counts: Vec<usize>,
}

/// Pads `seqs` on the right with `pad_id` (masked out of attention and of the targets) to the
/// longest sequence rounded up to a multiple of `multiple`: on a GPU, few distinct lengths mean
/// few kernels to compile and tune (1 = no rounding; results do not depend on it).
pub fn pad_sequences<B: Backend>(seqs: &[&Sequence], pad_id: u32, multiple: usize, device: &B::Device) -> Result<PaddedSequences<B>> {
    pad_sequences_rows(seqs, seqs.len(), pad_id, multiple, device)
}

/// [`pad_sequences`] with at least `rows` rows: the rows after `seqs` repeat the first sequence
/// with no target token (count 0, target mask 0), so they add nothing to any loss built on
/// [`continuation_logprobs`] (sums per row) and the counts. Training batches on a GPU take the
/// full batch's rows this way even when an epoch's last batch is partial: one shape per length
/// bucket (a partial batch's new shapes, compiled mid-training, slowed later GLUE steps ~1.8×,
/// measurements h200-2026-12-01-s17).
pub fn pad_sequences_rows<B: Backend>(
    seqs: &[&Sequence],
    rows: usize,
    pad_id: u32,
    multiple: usize,
    device: &B::Device,
) -> Result<PaddedSequences<B>> {
    let real = seqs.len();
    let b = rows.max(real);
    let longest = seqs.iter().map(|q| q.ids.len()).max().unwrap_or(0);
    if real == 0 || longest < 2 {
        bail!("a scoring batch needs at least one sequence of two or more tokens");
    }
    let s = longest.next_multiple_of(multiple.max(1));
    let mut ids = Vec::with_capacity(b * s);
    let mut mask = Vec::with_capacity(b * s);
    let mut next = Vec::with_capacity(b * (s - 1));
    let mut tmask = Vec::with_capacity(b * (s - 1));
    let mut counts = Vec::with_capacity(b);
    for (r, q) in seqs.iter().chain(std::iter::repeat_n(&seqs[0], b - real)).enumerate() {
        let padding = r >= real;
        if q.target_start == 0 || q.target_start >= q.ids.len() {
            bail!("sequence of {} tokens has no scorable target (target starts at {})", q.ids.len(), q.target_start);
        }
        let n = q.ids.len();
        let count = q.target_len();
        if count == 0 {
            bail!("sequence of {n} tokens has no target token");
        }
        for t in 0..s {
            ids.push(if t < n { q.ids[t] as i64 } else { pad_id as i64 });
            mask.push(i64::from(t < n));
        }
        for t in 0..s - 1 {
            let target = t + 1;
            next.push(if target < n { q.ids[target] as i64 } else { pad_id as i64 });
            tmask.push(if q.is_target(target) && !padding { 1.0f32 } else { 0.0 });
        }
        counts.push(if padding { 0 } else { count });
    }
    Ok(PaddedSequences {
        input_ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
        attention_mask: Tensor::from_data(TensorData::new(mask, [b, s]), device),
        next_ids: Tensor::from_data(TensorData::new(next, [b, s - 1]), device),
        target_mask: Tensor::from_data(TensorData::new(tmask, [b, s - 1]), device),
        counts,
    })
}

/// Sum of the target tokens' log-probabilities per sequence, `[b]` (f32; computed in f32 even
/// when the model runs in half precision).
pub fn continuation_logprobs<B: Backend>(model: &LlamaForCausalLM<B>, batch: &PaddedSequences<B>) -> Tensor<B, 1> {
    let logits = model.forward(batch.input_ids.clone(), Some(batch.attention_mask.clone()));
    let [b, s, v] = logits.dims();
    let logits = logits.slice([0..b, 0..s - 1, 0..v]);
    let logits = if logits.dtype() == DType::F32 { logits } else { logits.cast(FloatDType::F32) };
    let lp = lorta_core::log_softmax::log_softmax_last(logits);
    let tok = lp.gather(2, batch.next_ids.clone().reshape([b, s - 1, 1])).reshape([b, s - 1]);
    let mask = batch.target_mask.clone();
    let mask = if mask.dtype() == tok.dtype() { mask } else { mask.cast(FloatDType::F32) };
    (tok * mask).sum_dim(1).reshape([b])
}

/// Response-only language-modelling loss: mean negative log-likelihood over every target token
/// of the batch (padding and prompt tokens excluded), as lit-gpt's / HF's cross-entropy with
/// ignored prompt labels.
pub fn sft_loss<B: Backend>(sums: Tensor<B, 1>, counts: &[usize]) -> Tensor<B, 1> {
    let total: usize = counts.iter().sum();
    sums.sum().neg().div_scalar(total.max(1) as f64)
}

/// One multiple-choice example inside a scoring batch: its candidates occupy rows
/// `start..start + len` and `correct` is the index (within the group) of the gold candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChoiceGroup {
    pub start: usize,
    pub len: usize,
    pub correct: usize,
}

/// MeZO's `train_as_classification`: each candidate's score is its mean token log-likelihood,
/// the loss the cross-entropy of the gold candidate over the example's candidates, averaged over
/// examples.
pub fn classification_loss<B: Backend>(sums: Tensor<B, 1>, counts: &[usize], groups: &[ChoiceGroup]) -> Tensor<B, 1> {
    let device = sums.device();
    let inv: Vec<f32> = counts.iter().map(|&c| 1.0 / c.max(1) as f32).collect();
    let means = sums * Tensor::<B, 1>::from_data(TensorData::new(inv, [counts.len()]), &device);
    let mut losses = Vec::with_capacity(groups.len());
    for g in groups {
        let scores = means.clone().slice([g.start..g.start + g.len]);
        let lp = log_softmax(scores, 0);
        losses.push(lp.slice([g.correct..g.correct + 1]).neg());
    }
    Tensor::cat(losses, 0).mean()
}

/// DPO's sigmoid loss (Rafailov et al.): `−log σ(β[(π_w − ref_w) − (π_l − ref_l)])`, mean over
/// pairs; log-probs are sums over the response tokens.
pub fn dpo_loss<B: Backend>(policy_chosen: Tensor<B, 1>, policy_rejected: Tensor<B, 1>, ref_chosen: &[f64], ref_rejected: &[f64], beta: f64) -> Tensor<B, 1> {
    let device = policy_chosen.device();
    let n = ref_chosen.len();
    let refs: Vec<f32> = ref_chosen.iter().zip(ref_rejected).map(|(c, r)| (c - r) as f32).collect();
    let ref_diff = Tensor::<B, 1>::from_data(TensorData::new(refs, [n]), &device);
    let logits = (policy_chosen - policy_rejected - ref_diff).mul_scalar(beta);
    log_sigmoid(logits).mean().neg()
}

/// What DPO logs per batch (TRL's names): rewards are β·(log π − log π_ref).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpoStats {
    pub loss: f64,
    pub rewards_chosen: f64,
    pub rewards_rejected: f64,
    pub rewards_accuracy: f64,
    pub rewards_margin: f64,
    pub logps_chosen: f64,
    pub logps_rejected: f64,
}

/// Host-side DPO loss and reward statistics (f64) from sequence log-probs.
pub fn dpo_stats(policy_chosen: &[f64], policy_rejected: &[f64], ref_chosen: &[f64], ref_rejected: &[f64], beta: f64) -> DpoStats {
    let n = policy_chosen.len().max(1) as f64;
    let mut s = DpoStats::default();
    for i in 0..policy_chosen.len() {
        let rc = beta * (policy_chosen[i] - ref_chosen[i]);
        let rr = beta * (policy_rejected[i] - ref_rejected[i]);
        let z = rc - rr;
        // −log σ(z) = softplus(−z), computed stably
        s.loss += if z > 0.0 { (-z).exp().ln_1p() } else { -z + z.exp().ln_1p() };
        s.rewards_chosen += rc;
        s.rewards_rejected += rr;
        s.rewards_accuracy += if rc > rr { 1.0 } else { 0.0 };
        s.rewards_margin += z;
        s.logps_chosen += policy_chosen[i];
        s.logps_rejected += policy_rejected[i];
    }
    s.loss /= n;
    s.rewards_chosen /= n;
    s.rewards_rejected /= n;
    s.rewards_accuracy /= n;
    s.rewards_margin /= n;
    s.logps_chosen /= n;
    s.logps_rejected /= n;
    s
}

/// Reads a `[b]` tensor to the host as f64.
pub fn to_host(t: Tensor<impl Backend, 1>) -> Result<Vec<f64>> {
    let t = if t.dtype() == DType::F32 { t } else { t.cast(FloatDType::F32) };
    let v: Vec<f32> = t.into_data().to_vec().map_err(|e| anyhow!("reading log-probs: {e:?}"))?;
    Ok(v.into_iter().map(f64::from).collect())
}

/// Greedy continuation of `prompt` (ids) until a `stop` token or `max_new_tokens`; the decoded
/// new text.
pub fn greedy_answer<B: Backend>(model: &LlamaForCausalLM<B>, tok: &LmTokenizer, prompt: &[u32], max_new_tokens: usize, stop: &[u32]) -> Result<String> {
    let cfg = GenerationConfig { max_new_tokens, temperature: 0.0, top_p: 1.0, seed: 0, stop_tokens: stop.to_vec() };
    let out = model.generate(prompt, &cfg)?;
    tok.decode(&out[prompt.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ElementConversion;
    use lorta_models::load::LoadOptions;
    use std::path::Path;

    type B = burn_ndarray::NdArray<f32>;
    type AB = burn_autodiff::Autodiff<B>;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm").join(name)
    }

    fn json(name: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
    }

    fn ids(v: &serde_json::Value) -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    }

    /// Candidate log-likelihoods (sum and mean over the continuation) against transformers.
    #[test]
    fn candidate_logprobs_match_transformers() {
        let dir = fixture("tiny-llama");
        let dev = Default::default();
        let model = LlamaForCausalLM::<B>::load(&dir, &LoadOptions::inference(), &dev).unwrap();
        let r = json("tiny-llama/reference.json");
        let mut seqs = Vec::new();
        let mut expect = Vec::new();
        for ex in r["copa"].as_array().unwrap() {
            for c in ex["candidates"].as_array().unwrap() {
                seqs.push(Sequence::new(ids(&c["ids"]), c["prompt_len"].as_u64().unwrap() as usize));
                expect.push((c["sum"].as_f64().unwrap(), c["mean"].as_f64().unwrap()));
            }
        }
        // one padded batch of every candidate: padding must not change any value
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let batch = pad_sequences::<B>(&refs, 0, 1, &dev).unwrap();
        let sums = to_host(continuation_logprobs(&model, &batch)).unwrap();
        for (i, ((s, m), got)) in expect.iter().zip(&sums).enumerate() {
            let mean = got / batch.counts[i] as f64;
            assert!((got - s).abs() < 1e-4 * s.abs().max(1.0), "candidate {i}: sum {got} vs {s}");
            assert!((mean - m).abs() < 1e-4 * m.abs().max(1.0), "candidate {i}: mean {mean} vs {m}");
        }
        // a single unpadded sequence gives the same value
        let one = pad_sequences::<B>(&refs[..1], 0, 1, &dev).unwrap();
        let v = to_host(continuation_logprobs(&model, &one)).unwrap()[0];
        assert!((v - sums[0]).abs() < 1e-5 * sums[0].abs().max(1.0), "{v} vs {}", sums[0]);
        // lengths rounded up to a multiple of 16 (GPU backends): longer rows, the same values
        let longest = seqs.iter().map(|q| q.ids.len()).max().unwrap();
        let wide = pad_sequences::<B>(&refs, 0, 16, &dev).unwrap();
        assert_eq!(wide.input_ids.dims()[1], longest.next_multiple_of(16));
        assert!(wide.input_ids.dims()[1] > longest, "the fixture's candidates should not be a multiple of 16 long");
        assert_eq!(wide.counts, batch.counts);
        let padded = to_host(continuation_logprobs(&model, &wide)).unwrap();
        for (i, (p, s)) in padded.iter().zip(&sums).enumerate() {
            assert!((p - s).abs() < 1e-5 * s.abs().max(1.0), "candidate {i}: {p} padded to 16 vs {s}");
        }
        // extra rows (a partial training batch kept at the full batch's rows): the real rows'
        // values unchanged, the extra rows score nothing and count no target
        let more = pad_sequences_rows::<B>(&refs, refs.len() + 3, 0, 16, &dev).unwrap();
        assert_eq!(more.input_ids.dims()[0], refs.len() + 3);
        assert_eq!(&more.counts[..refs.len()], &batch.counts[..]);
        assert_eq!(&more.counts[refs.len()..], &[0, 0, 0]);
        let rows = to_host(continuation_logprobs(&model, &more)).unwrap();
        for (i, (p, s)) in rows.iter().zip(&sums).enumerate() {
            assert!((p - s).abs() < 1e-5 * s.abs().max(1.0), "candidate {i}: {p} with extra rows vs {s}");
        }
        assert!(rows[refs.len()..].iter().all(|&v| v == 0.0), "extra rows scored {:?}", &rows[refs.len()..]);
    }

    /// The training losses over a batch with extra rows (a partial batch kept at the full
    /// batch's rows on a GPU) equal the losses over the batch itself, and so do their gradients.
    #[test]
    fn losses_ignore_the_extra_rows_of_a_padded_batch() {
        let dir = fixture("tiny-llama");
        let dev = Default::default();
        let mut model = LlamaForCausalLM::<AB>::load(&dir, &LoadOptions::inference(), &dev).unwrap();
        // a tracked embedding: its gradient stands for the whole backward
        model.model.embed_tokens = burn::module::Param::from_tensor(model.model.embed_tokens.val().detach().require_grad());
        let r = json("tiny-llama/reference.json");
        let seqs: Vec<Sequence> = r["copa"].as_array().unwrap()[0]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Sequence::new(ids(&c["ids"]), c["prompt_len"].as_u64().unwrap() as usize))
            .collect();
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let groups = [ChoiceGroup { start: 0, len: refs.len(), correct: 1 }];
        let grad_norm = |loss: Tensor<AB, 1>| -> (f64, f64) {
            let value: f64 = loss.clone().into_scalar().elem();
            let grads = loss.backward();
            let g = model.model.embed_tokens.val().grad(&grads).expect("embedding gradient");
            (value, g.square().sum().into_scalar().elem())
        };
        for rows in [refs.len(), refs.len() + 2] {
            let batch = pad_sequences_rows::<AB>(&refs, rows, 0, 16, &dev).unwrap();
            let sft = grad_norm(sft_loss(continuation_logprobs(&model, &batch), &batch.counts));
            let cls = grad_norm(classification_loss(continuation_logprobs(&model, &batch), &batch.counts, &groups));
            let base = pad_sequences::<AB>(&refs, 0, 16, &dev).unwrap();
            let sft_ref = grad_norm(sft_loss(continuation_logprobs(&model, &base), &base.counts));
            let cls_ref = grad_norm(classification_loss(continuation_logprobs(&model, &base), &base.counts, &groups));
            for ((v, g), (v_ref, g_ref)) in [(sft, sft_ref), (cls, cls_ref)] {
                assert!((v - v_ref).abs() < 1e-5 * v_ref.abs().max(1.0), "{rows} rows: loss {v} vs {v_ref}");
                assert!((g - g_ref).abs() < 1e-4 * g_ref.abs().max(1e-6), "{rows} rows: |grad|² {g} vs {g_ref}");
            }
        }
    }

    /// Response-only SFT loss against transformers (prompt tokens masked, EOS included).
    #[test]
    fn response_only_loss_matches_transformers() {
        let dir = fixture("tiny-llama");
        let dev = Default::default();
        let model = LlamaForCausalLM::<B>::load(&dir, &LoadOptions::inference(), &dev).unwrap();
        let r = json("tiny-llama/reference.json");
        for ex in r["sft"].as_array().unwrap() {
            let seq = Sequence::new(ids(&ex["ids"]), ex["prompt_len"].as_u64().unwrap() as usize);
            let batch = pad_sequences::<B>(&[&seq], 0, 1, &dev).unwrap();
            let loss: f64 = sft_loss(continuation_logprobs(&model, &batch), &batch.counts).into_scalar().elem();
            let want = ex["mean_nll"].as_f64().unwrap();
            assert!((loss - want).abs() < 1e-4 * want.max(1.0), "{loss} vs {want}");
        }
        // masking: a sequence whose target is only the last token scores exactly that token
        let seq = Sequence::new(vec![1, 40, 41, 42], 3);
        let b = pad_sequences::<B>(&[&seq], 0, 1, &dev).unwrap();
        let m: Vec<f32> = b.target_mask.clone().into_data().to_vec().unwrap();
        assert_eq!(m, vec![0.0, 0.0, 1.0]);
        assert_eq!(b.counts, vec![1]);
        let e = pad_sequences::<B>(&[&Sequence::new(vec![1, 2], 2)], 0, 1, &dev).err().unwrap().to_string();
        assert!(e.contains("no scorable target"), "{e}");
    }

    /// DPO loss and reward metrics against TRL's `DPOTrainer._compute_loss` on the same log-probs.
    #[test]
    fn dpo_loss_matches_trl() {
        let f = json("dpo_trl.json");
        let v = |x: &serde_json::Value| -> Vec<f64> { x.as_array().unwrap().iter().map(|y| y.as_f64().unwrap()).collect() };
        let dev = Default::default();
        for c in f["cases"].as_array().unwrap() {
            let (pc, pr, rc, rr) = (v(&c["chosen_logps"]), v(&c["rejected_logps"]), v(&c["ref_chosen_logps"]), v(&c["ref_rejected_logps"]));
            let beta = c["beta"].as_f64().unwrap();
            let want = c["loss"].as_f64().unwrap();
            let s = dpo_stats(&pc, &pr, &rc, &rr, beta);
            assert!((s.loss - want).abs() <= 1e-5, "host loss {} vs TRL {want}", s.loss);
            assert!((s.rewards_chosen - c["rewards_chosen"].as_f64().unwrap()).abs() <= 1e-5);
            assert!((s.rewards_rejected - c["rewards_rejected"].as_f64().unwrap()).abs() <= 1e-5);
            assert!((s.rewards_margin - c["rewards_margins"].as_f64().unwrap()).abs() <= 1e-5);
            assert!((s.rewards_accuracy - c["rewards_accuracies"].as_f64().unwrap()).abs() <= 1e-6);
            // the tensor loss (f32 on the device) agrees too, and its gradient is the analytic one
            let n = pc.len();
            let t = |x: &[f64]| Tensor::<AB, 1>::from_data(TensorData::new(x.iter().map(|&y| y as f32).collect::<Vec<_>>(), [n]), &dev).require_grad();
            let (tc, tr) = (t(&pc), t(&pr));
            let loss = dpo_loss(tc.clone(), tr.clone(), &rc, &rr, beta);
            let lv: f64 = loss.clone().into_scalar().elem();
            assert!((lv - want).abs() <= 1e-5, "tensor loss {lv} vs TRL {want}");
            let g = loss.backward();
            let gc: Vec<f32> = tc.grad(&g).unwrap().into_data().to_vec().unwrap();
            for i in 0..n {
                let z = beta * ((pc[i] - rc[i]) - (pr[i] - rr[i]));
                let expect = -beta * (1.0 / (1.0 + z.exp())) / n as f64;
                assert!((gc[i] as f64 - expect).abs() < 1e-6, "grad {i}: {} vs {expect}", gc[i]);
            }
        }
    }

    #[test]
    fn classification_loss_is_cross_entropy_over_mean_logprobs() {
        let dev = Default::default();
        // two examples: candidates (sum, count) = (-2, 2), (-6, 3) | (-1, 1), (-3, 1), (-0.5, 1)
        let sums = Tensor::<B, 1>::from_data(TensorData::new(vec![-2.0f32, -6.0, -1.0, -3.0, -0.5], [5]), &dev);
        let groups = [ChoiceGroup { start: 0, len: 2, correct: 0 }, ChoiceGroup { start: 2, len: 3, correct: 2 }];
        let l: f64 = classification_loss(sums, &[2, 3, 1, 1, 1], &groups).into_scalar().elem();
        let ce = |s: &[f64], c: usize| -> f64 { -(s[c] - s.iter().map(|x| x.exp()).sum::<f64>().ln()) };
        let want = (ce(&[-1.0, -2.0], 0) + ce(&[-1.0, -3.0, -0.5], 2)) / 2.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }
}
