"""Course-style PyTorch programs (tests/courses/, our own code in each course's style) run unchanged under PyTorch and
under `tinygrad-llm run`, and print the same thing: every line's words alike, every number within float32's
rounding (1e-5 relative, and one unit of the last digit printed), the losses of every training step among them, and
the samples after training character for character.

Each script takes the path of a text file (the test gives it the start of Tiny Shakespeare) and runs in a folder of
its own, so what it writes there stays apart from the other engine's. CUDA is hidden from both runs (CuPy then
finds no GPU, and the mock device is off): PyTorch's CPU wheel and the engine on the CPU compute the same way, so
the samples can be compared."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_llm.engine import backend

FOLDER = Path(__file__).parent / "courses"
TEXT_CHARACTERS = 50_000

# script -> (the pattern of the line each training step prints: its step number, then its loss;
#            the pattern of its samples in the whole output)
COURSES = {
    "nanogpt_char.py": (r"iter (\d+): loss (\S+),", r"(?ms)^step 20: [^\n]*\n(.+)"),   # all that follows training
    "gpt2_repro.py": (r"step +(\d+) \| loss: (\S+) \|", r"(?m)^step \d+ sample \d+: .*$"),
}
TRAINING_STEPS = 20
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def run(command, folder, text_file):
    folder.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != backend.MOCK_ENV}
    environment["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run([sys.executable, *command, str(text_file)], cwd=folder, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return result.stdout


def step_losses(stdout, pattern):
    steps = [re.match(pattern, line) for line in stdout.splitlines()]
    return {int(step[1]): float(step[2]) for step in steps if step}


def assert_same_output(ours, theirs):
    """Line by line, the words alike and the numbers within float32's rounding plus one unit of the last digit
    printed (two numbers printed to 6 places may round apart)."""
    ours, theirs = ours.splitlines(), theirs.splitlines()
    assert len(ours) == len(theirs), f"{len(ours)} lines printed, PyTorch printed {len(theirs)}"
    for our_line, their_line in zip(ours, theirs):
        assert NUMBER.sub("#", our_line) == NUMBER.sub("#", their_line), f"\n{our_line}\n{their_line} (PyTorch)"
        for our_number, their_number in zip(NUMBER.findall(our_line), NUMBER.findall(their_line)):
            last_digit = 10.0 ** -len(their_number.split(".")[1].split("e")[0])
            assert abs(float(our_number) - float(their_number)) <= 1e-5 * abs(float(their_number)) + last_digit, \
                f"\n{our_line}\n{their_line} (PyTorch)"


@pytest.fixture(scope="module")
def text_file(shakespeare, tmp_path_factory):
    path = tmp_path_factory.mktemp("course_text") / "input.txt"
    path.write_text((shakespeare / "tinyshakespeare.txt").read_text()[:TEXT_CHARACTERS])
    return path


@pytest.mark.parametrize("script", sorted(COURSES))
def test_a_course_script_runs_unchanged_and_prints_pytorchs_numbers(script, torch, text_file, tmp_path):
    step_pattern, sample_pattern = COURSES[script]
    theirs = run([str(FOLDER / script)], tmp_path / "torch", text_file)
    ours = run(["-m", "tinygrad_llm", "run", str(FOLDER / script)], tmp_path / "tinygrad_llm", text_file)
    their_losses, our_losses = step_losses(theirs, step_pattern), step_losses(ours, step_pattern)
    assert sorted(their_losses) == sorted(our_losses) == list(range(TRAINING_STEPS))
    steps = range(TRAINING_STEPS)
    np.testing.assert_allclose([our_losses[s] for s in steps], [their_losses[s] for s in steps], rtol=1e-5)
    their_samples = re.findall(sample_pattern, theirs)
    assert their_samples and re.findall(sample_pattern, ours) == their_samples
    assert_same_output(ours, theirs)
