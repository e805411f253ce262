"""pytest plugin used by benchmarks/gpu_check.sh: makes CUDA torch's default device, so the suite's models and
tensors are created on the GPU (`python -m pytest -p cuda_pytest_plugin` with benchmarks/ on PYTHONPATH).

Tests that draw inputs from an explicit CPU `torch.Generator` fail under a CUDA default device for that reason alone
("Expected a 'cuda' device type for generator"); gpu_check.sh records the counts and the failures for reading, and
benchmarks/gpu_bench.py's `correctness` section is the strict per-family check on the GPU.
"""

import torch


def pytest_configure(config):
    if not torch.cuda.is_available():
        raise RuntimeError("cuda_pytest_plugin: no CUDA device; run the suite without -p cuda_pytest_plugin")
    torch.set_default_device("cuda")


def pytest_report_header(config):
    return f"hf-seq on CUDA: default device {torch.get_default_device()}, {torch.cuda.get_device_name(0)}"
