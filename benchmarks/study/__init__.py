"""The side-by-side study (issue 8): every architecture on the same data, tokenizer and budget, one report.

Run through `benchmarks/study.py`; each subset lives in its own module (lm, long_range, translation, word_vectors)
and returns a JSON-ready dict that `report.render_report` turns into Markdown.
"""
