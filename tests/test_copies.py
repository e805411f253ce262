"""`# Copied from hf_seq.<module>.<Name> [with A->B, C->D]` blocks stay equal to their source (as transformers'
utils/check_copies.py keeps its copies honest). Model folders ship as self-contained remote code, so a block two
families share is copied on purpose, never imported across folders; this test is what keeps the copies true."""

import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hf_seq"
MARKER = re.compile(r"^(?P<indent>\s*)# Copied from (?P<target>hf_seq(?:\.\w+)+)(?: with (?P<subs>.+))?$")


def _block(lines: list[str], start: int) -> str:
    """The def/class (with its decorators) starting at `start`, up to the next line indented no deeper than it."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    header_done = False
    while end < len(lines):
        line = lines[end]
        if line.strip() and not header_done and lines[start].lstrip().startswith("@"):
            header_done = line.lstrip().startswith(("def ", "class "))
        elif line.strip() and len(line) - len(line.lstrip()) <= indent and not line.lstrip().startswith((")", "]")):
            break
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return textwrap.dedent("\n".join(lines[start:end]))


def _source_of(target: str) -> str:
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        obj = module
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return textwrap.dedent(inspect.getsource(obj)).rstrip()
    raise AssertionError(f"cannot import {target}")


def _copies():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = MARKER.match(line)
            if m:
                found.append((path, i + 1, m["target"], m["subs"], lines))
    return found


COPIES = _copies()


def test_the_package_has_marked_copies():
    assert len(COPIES) >= 3, "the recurrent blocks shared with seq2seq / word2vec carry `# Copied from` markers"


@pytest.mark.parametrize("path, line, target, subs, lines", COPIES,
                         ids=[f"{p.relative_to(PACKAGE)}:{n}" for p, n, *_ in COPIES])
def test_copied_block_equals_its_source(path, line, target, subs, lines):
    copy = _block(lines, line)  # the line after the marker (index `line` in 0-based terms)
    source = _source_of(target)
    for sub in (subs or "").split(","):
        if "->" in sub:
            old, new = (s.strip() for s in sub.split("->"))
            source = source.replace(old, new)
    # the source's own marker, when it is itself a copy, is not part of the block
    assert copy.rstrip() == source, (
        f"{path.relative_to(PACKAGE)}:{line}: the block marked `# Copied from {target}` differs from its source; "
        "copy the source again (applying the `with A->B` replacements) or drop the marker"
    )


def _remote_code_files(folder: Path) -> set[Path]:
    """The files `save_pretrained` ships as remote code: configuration_*/modeling_* and, transitively, the
    same-folder modules they import."""
    import ast

    todo = [p for p in folder.glob("*.py") if p.name.startswith(("configuration_", "modeling_"))]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                todo.append(folder / f"{node.module}.py")
    return seen


@pytest.mark.parametrize("folder", sorted(p for p in (PACKAGE / "models").iterdir() if p.is_dir()
                                          and not p.name.startswith("__")), ids=lambda p: p.name)
def test_remote_code_imports_nothing_outside_its_folder(folder):
    """Hub remote code follows only same-folder single-dot imports: a shipped file that reaches `..`, `hf_seq` or a
    sibling package would fail where hf-seq is not installed (the family's training code beside it may import more:
    it never ships)."""
    import ast

    for path in _remote_code_files(folder):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                outside = node.level > 1 or (node.level == 0 and (node.module or "").split(".")[0] == "hf_seq")
                assert not outside, f"{path.relative_to(PACKAGE)}:{node.lineno} imports from outside its folder"
            elif isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "hf_seq" for a in node.names), path
