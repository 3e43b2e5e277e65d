"""docs/torch_coverage.md is what docs/torch_coverage.py draws from PyTorch and tinygrad_llm today, and README
gives its counts: a name added to the engine without the table regenerated fails here, saying how to regenerate."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "torch_coverage.md"
REGENERATE = "run `python docs/torch_coverage.py` and copy its table of counts into README"


def summary(text):
    """The table of counts: the lines from its header to the first line that is not a table row."""
    lines = text.splitlines()
    start = lines.index("| PyTorch's names | here | in PyTorch |")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end])


def test_the_coverage_page_is_what_the_script_draws_today(torch):
    spec = importlib.util.spec_from_file_location("torch_coverage", ROOT / "docs" / "torch_coverage.py")
    coverage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(coverage)
    assert PAGE.read_text() == coverage.render(), f"docs/torch_coverage.md is out of date: {REGENERATE}"


def test_readme_gives_the_pages_counts():
    assert summary(PAGE.read_text()) in (ROOT / "README.md").read_text(), \
        f"README's counts of PyTorch's API differ from docs/torch_coverage.md's: {REGENERATE}"
