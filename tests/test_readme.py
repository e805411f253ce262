"""The README's commands name things that exist: shipped experiments, local links, and the two set-up commands that
.ci/run proves (the test command as written; the main job's install line in a fresh venv at a smoke budget)."""

import os
import re

import pytest

from hf_seq.cli import build_parser
from hf_seq.training.experiment import find_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
CI = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()


@pytest.mark.parametrize("name", sorted(set(re.findall(r"hf-seq train (\w+)", README)) - {"my"}))
def test_every_experiment_the_readme_trains_is_shipped(name):
    assert find_experiment(name).is_file()


@pytest.mark.parametrize("link", sorted({m for m in re.findall(r"\]\(([^)#]+)\)", README) if "://" not in m}))
def test_every_local_link_exists(link):
    assert os.path.exists(os.path.join(REPO, link)), link


def test_every_subcommand_the_readme_uses_exists():
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    used = set(re.findall(r"^hf-seq (\w+)", README, re.M)) | set(re.findall(r"`hf-seq (\w+)", README))
    assert used and used <= commands, used - commands


def test_the_set_up_commands_are_the_ones_ci_runs():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    main_job, tests = blocks[0].strip(), blocks[1].strip()
    install, job = main_job.split(" && ")
    assert f"{install} && {job} --smoke" in CI  # the main job, its own install line, fresh venv, smoke budget
    install, command = tests.split(" && ")
    assert install in CI and command.replace("HF_HUB_OFFLINE=1 ", "") in CI
    assert "[test]" not in main_job  # the main job must not lean on the test extra's dependencies
