"""Shared fixtures for hf-seq tests: offline mode, determinism, and a clean subprocess for remote-code checks."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def refused_file(path, content: str | bytes, read, match: str) -> None:
    """Write `content` to `path`; `read(path)` must raise a ValueError matching `match` (a bad file is refused with
    its name and line)."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read(path)


def run_without_hf_seq(code: str, tmp_path, timeout: int = 300) -> dict:
    """Run `code` in a fresh Python where `import hf_seq` fails; the code must print one JSON line last.

    Used to prove that a saved folder loads through `trust_remote_code=True` alone (HF-NOTES: if hf_seq is importable
    and registered, its local classes win, so the check needs a process without it).
    """
    prelude = "import sys\nsys.modules['hf_seq'] = None  # any `import hf_seq` now raises ImportError\n"
    env = dict(os.environ)
    env["HF_MODULES_CACHE"] = str(tmp_path / "hf_modules")
    env["PYTHONPATH"] = ""
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed:\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
