#!/usr/bin/env bash
# Run inside a virtual environment where hf-seq is installed from its wheel, in a folder outside the checkout:
# every family's smoke experiment trains, each run folder evaluates / generates / translates, a run publishes to a
# Hub folder, and that folder loads by remote code in a process where hf_seq cannot be imported.
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
