"""Course-style PyTorch programs (tests/courses/, our own code in each course's style) run unchanged under PyTorch and
under `tinygrad-llm run`, and print the same thing: every line's words alike, every number within float32's
rounding (1e-5 relative, and one unit of the last digit printed), the losses of every training step among them, and
the samples after training character for character.

A script takes the path of a text file (the test gives it the start of Tiny Shakespeare) or holds its text itself,
and runs in a folder of its own, so what it writes there stays apart from the other engine's. CUDA is hidden from
both runs (CuPy then finds no GPU, and the mock device is off): PyTorch's CPU wheel and the engine on the CPU
compute the same way, so the samples can be compared."""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from tinygrad_llm.engine import backend

FOLDER = Path(__file__).parent / "courses"
TEXT_CHARACTERS = 50_000


class Course(NamedTuple):
    steps: str                 # the line each training step prints: what names the step (its number, and the model's
                               # name where a script trains several), then its loss
    samples: str               # the samples, in the whole output
    training_steps: int = 20   # how many steps it trains, all its models together
    reads_text: bool = True    # takes the text file's path (else its text is its own)
    noise_driven: str = None   # the saved tensors that rounding noise trains (see assert_same_saved), by pattern


COURSES = {
    "nanogpt_char.py": Course(r"iter (\d+): loss (\S+),", r"(?ms)^resumed iter 21: [^\n]*\n(.+)"),   # the end
    "gpt2_repro.py": Course(r"step +(\d+) \| loss: (\S+) \|", r"(?m)^step \d+ sample \d+: .*$",
                            noise_driven=r"\.attn\.c_attn\.bias"),   # its keys' third, as makemore's
    "makemore.py": Course(r"(\w+ step \d+) loss (\S+)$", r"(?m)^\w+ sample .*$", training_steps=5 * 20,
                          reads_text=False, noise_driven=r"\.attn\.c_attn\.bias"),   # its keys' third
    "llms_from_scratch.py": Course(r"step (\d+) loss (\S+)$", r"(?m)^sample .*$", reads_text=False),
}
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def run(command, folder):
    folder.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != backend.MOCK_ENV}
    environment["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run([sys.executable, *command], cwd=folder, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return result.stdout


def step_losses(stdout, pattern):
    """{the step's name: its loss}, in the order printed."""
    steps = [re.match(pattern, line) for line in stdout.splitlines()]
    return {step[1]: float(step[2]) for step in steps if step}


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


def assert_same_saved(torch, ours, theirs, where, noise_driven=None):
    """What the two runs saved with torch.save, both loaded by PyTorch: the same structure, types and values, each
    tensor within 1e-3 of its largest number (weights and Adam's moments after training: float32's rounding in each
    step, more in gradients that nearly cancel and in steps divided by a small second moment). Tensors whose name
    matches `noise_driven` have their shape and dtype compared alone: a gradient that is zero in exact arithmetic
    (a key's bias: softmax ignores a constant added to a row's scores) is rounding noise, which Adam turns into
    steps of the learning rate's size, so their values differ between two PyTorch runs as well (one thread and two,
    by more than the tolerance)."""
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__}, PyTorch saved {type(theirs).__name__}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same_saved(torch, ours[key], theirs[key], f"{where}[{key!r}]", noise_driven)
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (our_item, their_item) in enumerate(zip(ours, theirs)):
            assert_same_saved(torch, our_item, their_item, f"{where}[{i}]", noise_driven)
    elif isinstance(theirs, torch.Tensor):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        our_array, their_array = ours.detach().numpy(), theirs.detach().numpy()
        if their_array.dtype.kind != "f":
            assert np.array_equal(our_array, their_array), where
        elif noise_driven is None or not re.search(noise_driven, where):
            largest = np.abs(their_array).max(initial=0.0)
            assert np.abs(our_array - their_array).max(initial=0.0) <= 1e-3 * largest, where
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-5), where
    else:
        assert ours == theirs, where


@pytest.fixture(scope="module")
def text_file(shakespeare, tmp_path_factory):
    path = tmp_path_factory.mktemp("course_text") / "input.txt"
    path.write_text((shakespeare / "tinyshakespeare.txt").read_text()[:TEXT_CHARACTERS])
    return path


@pytest.mark.parametrize("script", sorted(COURSES))
def test_a_course_script_runs_unchanged_and_prints_pytorchs_numbers(script, torch, text_file, tmp_path):
    course = COURSES[script]
    arguments = [str(text_file)] if course.reads_text else []
    theirs = run([str(FOLDER / script), *arguments], tmp_path / "torch")
    ours = run(["-m", "tinygrad_llm", "run", str(FOLDER / script), *arguments], tmp_path / "tinygrad_llm")
    their_losses, our_losses = step_losses(theirs, course.steps), step_losses(ours, course.steps)
    assert len(their_losses) == course.training_steps and list(our_losses) == list(their_losses)
    np.testing.assert_allclose(list(our_losses.values()), list(their_losses.values()), rtol=1e-5)
    their_samples = re.findall(course.samples, theirs)
    assert their_samples and re.findall(course.samples, ours) == their_samples
    assert_same_output(ours, theirs)
    for saved in sorted((tmp_path / "torch").rglob("*.pt*")):   # a checkpoint the engine wrote loads in PyTorch
        ours_saved = tmp_path / "tinygrad_llm" / saved.relative_to(tmp_path / "torch")
        assert_same_saved(torch, torch.load(ours_saved), torch.load(saved), saved.name, course.noise_driven)
