// Hugging Face's model files for an exported Transformer: config.json (GPT2Config) and
// generation_config.json (GenerationConfig), so that transformers.js (`pipeline('text-generation', dir)`,
// `AutoModelForCausalLM.from_pretrained(dir)`) runs exp/NAME/onnx/model.onnx from local files. Field names
// and meanings are those of transformers' GPT2Config and GenerationConfig (Python and JS alike).
import type { TransformerConfig } from '../models/transformer.ts'
import { neverGenerated, type SpecialIds } from '../src/tokenizer/index.ts'

/**
 * GPT2Config for `config` (models/transformer.ts) with the tokenizer's special ids.
 * GPT-2 is our pre-LN Transformer with learned positions and GELU's tanh form (`gelu_new`); transformers.js
 * runs the exported graph whatever it holds, and reads from this file only model_type (which class),
 * n_layer / n_head / n_embd (the key/value cache's inputs) and the token ids. What GPT2Config cannot say
 * (lmp's post-LN layout, sinusoidal positions) is kept in `lmp_layout` / `lmp_positions`, so a reader that
 * would rebuild the model as GPT-2 (PyTorch) can tell that it is not one.
 */
export function hfModelConfig(config: TransformerConfig, ids: SpecialIds): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: config.vocabSize,
    n_positions: config.maxSeqLen,
    n_ctx: config.maxSeqLen, // GPT2Config's older name of n_positions, still in the hub's gpt2 config
    n_embd: config.dModel,
    n_layer: config.nLyr,
    n_head: config.nHead,
    n_inner: config.dFf,
    activation_function: config.activation === 'gelu' ? 'gelu_new' : 'relu',
    resid_pdrop: config.p,
    embd_pdrop: config.p,
    attn_pdrop: config.p,
    layer_norm_epsilon: 1e-5, // models/transformer.ts LN_EPS
    scale_attn_weights: true,
    tie_word_embeddings: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    use_cache: true,
    torch_dtype: 'float32',
    lmp_layout: config.layout,
    lmp_positions: config.positions,
  }
}

/**
 * GenerationConfig: the special ids, and the tokens our own sampling never draws (src/infer/sampling.ts:
 * BOS, PAD and UNK; EOS ends a generation) as `suppress_tokens`, which transformers (Python, and
 * transformers.js 4: SuppressTokensLogitsProcessor) set to -inf at every step. Where EOS is BOS too
 * (GPT-2's `<|endoftext|>`), it stays allowed.
 */
export function hfGenerationConfig(ids: SpecialIds): Record<string, unknown> {
  const suppress = neverGenerated(ids).sort((a, b) => a - b)
  return {
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    suppress_tokens: suppress,
  }
}
