"""examples/: an example runs from any working directory and writes only where its docstring says (into
examples/out/<its name>/, ignored by git), never into the working directory or a tracked file."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_graph_example_writes_next_to_itself_and_draws_the_picture_in_docs(tmp_path):
    docs = [ROOT / "docs" / "gpt_graph.dot", ROOT / "docs" / "gpt_graph.png"]
    before = [path.stat().st_mtime_ns for path in docs]
    written = ROOT / "examples" / "out" / "10_draw_the_graph" / "gpt_graph.dot"
    written.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "10_draw_the_graph.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(written.with_suffix("")) in result.stdout      # it says where the picture went (.png or .dot)
    assert list(tmp_path.iterdir()) == []                      # nothing in the working directory
    assert [path.stat().st_mtime_ns for path in docs] == before
    assert written.read_text() == docs[0].read_text(), (
        "docs/gpt_graph.dot is not what the example draws today: redraw README's picture with "
        "`python examples/10_draw_the_graph.py docs/gpt_graph` from the repository root")
