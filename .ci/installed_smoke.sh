#!/usr/bin/env bash
# Run inside a virtual environment where hf-seq is installed from its wheel, in a folder outside the checkout:
# every family's smoke experiment trains, each run folder evaluates / generates / translates (ensembles too), eole
# checkpoints and word vectors import, runs export to CTranslate2 / ONNX (when the export extra is installed), a run
# publishes to a Hub folder, and that folder loads by remote code in a process where hf_seq cannot be imported.
set -euo pipefail
cd "$1"
CHECKOUT=$(cd "$(dirname "$0")/.." && pwd)
export HF_SEQ_DATA="${HF_SEQ_DATA:-$CHECKOUT/../shared/data}"  # classifier/tagger smoke runs read CoNLL/polarity
export OMP_NUM_THREADS=1

hf-seq configs > /dev/null
for name in lstm_timemachine gru_timemachine seq2seq_tatoeba_bahdanau transformer_smoke word2vec_timemachine; do
  hf-seq train "$name" --smoke > /dev/null
done
printf 'task: language-modeling\nmodel:\n  architecture: transformer\n  d_model: 32\n  num_heads: 2\n' > tlm.yaml
hf-seq train tlm.yaml --smoke > /dev/null  # the decoder-only Transformer on the embedded Time Machine
if [ -d "$HF_SEQ_DATA" ]; then
  for name in classify_polarity_bilstm tag_conll2000_bilstm; do hf-seq train "$name" --smoke > /dev/null; done
fi

printf 'the time traveller said\nwas here again\n' > text.txt
hf-seq evaluate runs/smoke/lstm_timemachine text.txt --quiet > /dev/null
hf-seq generate runs/smoke/lstm_timemachine "the time" --max-new-tokens 5
hf-seq translate runs/smoke/seq2seq_tatoeba_bahdanau "I am here."
hf-seq translate runs/smoke/transformer_smoke "I am here."
hf-seq translate runs/smoke/seq2seq_tatoeba_bahdanau "I am here." --models runs/smoke/seq2seq_tatoeba_bahdanau  # ensemble

# interop: eole checkpoints (written by eole 0.6.4's own CLI, kept in the checkout as test fixtures) and word vectors
for fixture in rnn_brnn_lstm_mlp_feed transformer; do
  hf-seq import eole "$CHECKOUT/tests/fixtures/eole/$fixture" --output-dir "eole_$fixture" > /dev/null
  hf-seq translate "eole_$fixture" "s1 s2 s3"
done
printf 'king 0.5 0.1 0.3\nqueen 0.5 0.2 0.3\nman 0.1 -0.4 0.2\napple -0.3 0.9 0.1\n' > glove.txt  # GloVe: no header line
hf-seq import vectors glove.txt --output-dir vectors > /dev/null
hf-seq similar vectors king

# deploy: the export extra, CTranslate2 for the Transformer, ONNX Runtime for a recurrent LM
if python -c "import ctranslate2, onnxruntime" 2> /dev/null; then
  hf-seq export runs/smoke/transformer_smoke --format ctranslate2 --quantization int8 --output-dir ct2 > /dev/null
  hf-seq translate ct2 "I am here."
  hf-seq export runs/smoke/lstm_timemachine --format onnx --output-dir lstm_onnx > /dev/null
  hf-seq generate lstm_onnx "the time" --max-new-tokens 5
fi

hf-seq publish runs/smoke/lstm_timemachine --output-dir hub_lstm > /dev/null
hf-seq publish runs/smoke/transformer_smoke --output-dir hub_transformer > /dev/null

python - <<'PY'
import json, sys
sys.modules["hf_seq"] = None  # `import hf_seq` now fails: only the folder's remote code can load the models
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
model = AutoModelForCausalLM.from_pretrained("hub_lstm", trust_remote_code=True)
tok = AutoTokenizer.from_pretrained("hub_lstm", trust_remote_code=True)  # the config it reads names remote code
ids = tok("the time", return_tensors="pt", add_special_tokens=False)
out = model.generate(**ids, max_new_tokens=5, do_sample=False)
assert out.shape[1] == ids["input_ids"].shape[1] + 5, out.shape
pipe = pipeline(model="hub_transformer", trust_remote_code=True)
print(json.dumps({"remote_lm": tok.decode(out[0]), "remote_translation": pipe("I am here.")[0]}))
PY
echo "installed-package smoke: ok"
