"""tinygrad_llm.utils.data against torch.utils.data: the same batches in the same order for the same seed (shuffled
with the default generator or a Generator, epoch after epoch), random_split's subsets, RandomSampler's draws,
default_collate's structures and dtypes, the DataLoader's options and their errors."""
import collections
import warnings

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm import Tensor
from tinygrad_llm.engine.rng import Generator
from tinygrad_llm.utils import data

from conftest import assert_raises_naming

X = np.arange(26, dtype=np.float32).reshape(13, 2)
Y = np.arange(13) % 4


def as_lists(batch):
    """A batch (tensors, and lists, tuples, dicts of them) as nested Python lists, for either library."""
    if isinstance(batch, (list, tuple)):
        return [as_lists(b) for b in batch]
    if isinstance(batch, dict):
        return {key: as_lists(value) for key, value in batch.items()}
    return batch.tolist() if hasattr(batch, "tolist") else batch


def twin_loaders(torch, seeded_generator, **options):
    """The same TensorDataset and DataLoader options in each library; the default generators seeded alike."""
    tl.manual_seed(1)
    torch.manual_seed(1)
    ours = data.DataLoader(data.TensorDataset(tl.tensor(X), tl.tensor(Y)), **options,
                           generator=Generator().manual_seed(5) if seeded_generator else None)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(Y)), **options,
                                         generator=torch.Generator().manual_seed(5) if seeded_generator else None)
    return ours, theirs


@pytest.mark.parametrize("seeded_generator", [False, True], ids=["default-generator", "Generator"])
@pytest.mark.parametrize("options", [dict(batch_size=3, shuffle=True), dict(batch_size=4, shuffle=True, drop_last=True),
                                     dict(batch_size=5), dict(batch_size=1, shuffle=True), dict(batch_size=None)],
                         ids=["shuffle", "shuffle-drop-last", "in-order", "one", "unbatched"])
def test_batches_and_their_order_equal_torchs(seeded_generator, options, torch):
    ours, theirs = twin_loaders(torch, seeded_generator, **options)
    assert len(ours) == len(theirs)
    for epoch in range(3):                                      # each pass draws anew, as PyTorch's
        mine, reference = [as_lists(batch) for batch in ours], [as_lists(batch) for batch in theirs]
        assert mine == reference, f"epoch {epoch}"
    assert tl.rand(2).tolist() == torch.rand(2).tolist()        # the default generators moved alike
    x, y = next(iter(ours))
    assert isinstance(x, Tensor) and x.dtype == np.float32 and y.dtype == np.int64


def test_random_sampler_with_replacement_and_more_samples_equals_torchs(torch):
    for replacement, num_samples in ((True, 70), (False, 30), (True, 5)):
        tl.manual_seed(4)
        torch.manual_seed(4)
        ours = list(data.RandomSampler(range(13), replacement=replacement, num_samples=num_samples))
        theirs = list(torch.utils.data.RandomSampler(range(13), replacement=replacement, num_samples=num_samples))
        assert ours == theirs and len(ours) == num_samples


@pytest.mark.parametrize("lengths", [[8, 5], [0.7, 0.3], [0.5, 0.25, 0.25], [0.34, 0.33, 0.33]])
def test_random_split_equals_torchs(lengths, torch):
    ours = data.random_split(data.TensorDataset(tl.tensor(X)), lengths, generator=Generator().manual_seed(3))
    theirs = torch.utils.data.random_split(torch.utils.data.TensorDataset(torch.tensor(X)), lengths,
                                           generator=torch.Generator().manual_seed(3))
    assert [list(s.indices) for s in ours] == [list(s.indices) for s in theirs]
    assert [as_lists(s[0]) for s in ours] == [as_lists(s[0]) for s in theirs]
    tl.manual_seed(2)
    torch.manual_seed(2)                                         # the default generator when none is given
    assert [s.indices for s in data.random_split(range(13), lengths)] == \
        [s.indices for s in torch.utils.data.random_split(range(13), lengths)]


def test_random_split_errors_and_warning_as_torchs(torch):
    for library in (data, torch.utils.data):
        with pytest.raises(ValueError, match="(?i)sum of input lengths"):
            library.random_split(range(5), [2, 2])
        with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
            library.random_split(range(1), [0.5, 0.5])


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("samples", [
    [(np.float32(1.5), 2), (np.float32(2.5), 3)],                                # NumPy scalars and ints
    [{"ids": np.arange(3), "label": 1.5}, {"ids": np.arange(3, 6), "label": 2.0}],  # dicts, floats to float64
    [Point(np.ones(2), True), Point(np.zeros(2), False)],                       # named tuples, bools
    [[1, [2.0, "a"]], [3, [4.0, "b"]]],                                         # nested lists, strings kept
], ids=["numpy-scalars", "dicts", "namedtuple", "nested-lists"])
def test_default_collate_builds_torchs_structures_and_dtypes(samples, torch):
    ours = data.default_collate(samples)
    theirs = torch.utils.data.default_collate(samples)
    assert type(ours) is type(theirs) and as_lists(ours) == as_lists(theirs)

    def dtypes(batch):
        if isinstance(batch, (list, tuple)):
            return [dtypes(b) for b in batch]
        if isinstance(batch, dict):
            return {key: dtypes(value) for key, value in batch.items()}
        return str(batch.dtype).replace("torch.", "") if hasattr(batch, "dtype") else type(batch).__name__
    assert dtypes(ours) == dtypes(theirs)


def test_default_collate_stacks_tensors_and_refuses_what_torch_refuses(torch):
    batch = data.default_collate([tl.tensor([1.0, 2.0]), tl.tensor([3.0, 4.0])])
    assert batch.shape == (2, 2) and batch.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    for library in (data, torch.utils.data):
        with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
            library.default_collate([[1, 2], [3]])
        with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers, dicts or lists"):
            library.default_collate([object(), object()])


class Windows(data.Dataset):
    """LLMs-from-scratch's GPTDatasetV1 in miniature: overlapping windows of token ids, inputs and targets."""

    def __init__(self, ids, length, stride, tensor):
        self.inputs = [tensor(ids[i:i + length]) for i in range(0, len(ids) - length, stride)]
        self.targets = [tensor(ids[i + 1:i + length + 1]) for i in range(0, len(ids) - length, stride)]

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, i):
        return self.inputs[i], self.targets[i]


def test_a_course_style_dataset_gives_torchs_batches(torch):
    ids = list(np.random.default_rng(0).integers(0, 50, 200))
    tl.manual_seed(123)
    torch.manual_seed(123)
    ours = data.DataLoader(Windows(ids, 8, 4, tl.tensor), batch_size=4, shuffle=True, drop_last=True)
    theirs = torch.utils.data.DataLoader(Windows(ids, 8, 4, torch.tensor), batch_size=4, shuffle=True,
                                         drop_last=True)
    assert len(ours) == len(theirs) == 12
    for (x, y), (tx, ty) in zip(ours, theirs):
        assert x.shape == (4, 8) and x.tolist() == tx.tolist() and y.tolist() == ty.tolist()


def test_samplers_and_batch_samplers_given_are_used_as_torchs(torch):
    for library, tensor in ((data, tl.tensor), (torch.utils.data, torch.tensor)):
        dataset = library.TensorDataset(tensor(X))
        backwards = list(range(12, -1, -1))
        by_sampler = [b[0].tolist() for b in library.DataLoader(dataset, batch_size=5, sampler=backwards)]
        batches = [[0, 1], [5, 6, 7], [12]]
        by_batches = [b[0].tolist() for b in library.DataLoader(dataset, batch_sampler=batches)]
        assert by_sampler[0] == [[24.0, 25.0], [22.0, 23.0], [20.0, 21.0], [18.0, 19.0], [16.0, 17.0]]
        assert [len(b) for b in by_batches] == [2, 3, 1]
        assert len(library.DataLoader(dataset, batch_sampler=batches)) == 3
        subset = library.Subset(dataset, [3, 1])
        assert len(subset) == 2 and subset[1][0].tolist() == [2.0, 3.0]


@pytest.mark.parametrize("options, error", [
    (dict(batch_size=2, sampler=[0, 1], shuffle=True), ValueError),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError),
    (dict(batch_size=None, drop_last=True), ValueError),
    (dict(num_workers=-1), ValueError),
    (dict(prefetch_factor=2), ValueError),
], ids=["sampler-and-shuffle", "batch-sampler-and-size", "unbatched-drop-last", "negative-workers", "prefetch"])
def test_option_clashes_are_refused_as_torch_refuses_them(options, error, torch):
    with pytest.raises(error):
        data.DataLoader(range(4), **options)
    with pytest.raises(error):
        torch.utils.data.DataLoader(range(4), **options)


def test_workers_load_in_this_process_with_a_warning_and_the_same_batches(torch):
    ours, theirs = twin_loaders(torch, True, batch_size=4, shuffle=True)
    with pytest.warns(UserWarning, match="num_workers=2: every batch is loaded in this process"):
        workers = data.DataLoader(ours.dataset, batch_size=4, shuffle=True, num_workers=2, persistent_workers=True,
                                  generator=Generator().manual_seed(5))
    assert [as_lists(b) for b in workers] == [as_lists(b) for b in theirs]
    assert_raises_naming(lambda: data.DataLoader(ours.dataset, num_workers=2, worker_init_fn=print),
                         NotImplementedError, ["worker_init_fn", "this process"])
    assert_raises_naming(lambda: data.DataLoader(ours.dataset, timeout=5), ValueError, ["timeout=5"])
    assert data.get_worker_info() is None


class Counting(data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_an_iterable_dataset_is_batched_as_torchs(torch):
    class TorchCounting(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7
    for options in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        ours = data.DataLoader(Counting(7), **options)
        theirs = torch.utils.data.DataLoader(TorchCounting(), **options)
        assert [as_lists(b) for b in ours] == [as_lists(b) for b in theirs] and len(ours) == len(theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for library, dataset in ((data, Counting(7)), (torch.utils.data, TorchCounting())):
            with pytest.raises(ValueError, match="expected unspecified shuffle option"):
                library.DataLoader(dataset, shuffle=True)


def test_tensor_dataset_refuses_tensors_of_different_lengths():
    assert_raises_naming(lambda: data.TensorDataset(tl.tensor(X), tl.tensor(Y[:5])), ValueError,
                         ["TensorDataset", "size mismatch", "[13, 5]"])
