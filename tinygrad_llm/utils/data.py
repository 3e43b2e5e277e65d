"""torch.utils.data: datasets and the DataLoader that batches them, as PyTorch's, drawing PyTorch's numbers.

    Dataset            what a map-style dataset defines: __getitem__(i) and __len__()
    IterableDataset    a dataset that is a stream: __iter__()
    TensorDataset(*tensors)        sample i is (t[i] for each tensor)
    Subset(dataset, indices)       the samples at `indices`
    random_split(dataset, lengths or fractions, generator)   disjoint random Subsets
    SequentialSampler, RandomSampler, BatchSampler           the order of the indices, and their batches
    DataLoader(dataset, batch_size=1, shuffle=False, ...)    batches: each a list of samples put together by
                                                             collate_fn (default_collate: tensors stacked, numbers
                                                             to tensors, tuples, lists and dicts element-wise)

Shuffling draws what PyTorch draws, in its order: each pass over a DataLoader first draws a 64-bit base seed from
its generator (the default one if None); a RandomSampler without a generator draws a seed from the default
generator and shuffles with a Generator seeded by it, one with a generator shuffles with it (randperm). So with
the same manual_seed (or Generator seed) the batches come in the order PyTorch gives them.

Every batch is loaded in this process: with num_workers > 0 the same batches come in the same order, loaded one
after another here (a warning says so; a Dataset that draws random numbers draws them from this process's
generator, where PyTorch's workers would each seed their own).
"""
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..engine.creation import randint, randperm, zeros
from ..engine.movement import stack
from ..engine.rng import Generator, default_generator
from ..engine.tensor import Tensor


class Dataset:
    """A map-style dataset: subclasses define __getitem__(index) -> sample and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Dataset should implement __getitem__")


class IterableDataset(Dataset):
    """A dataset read as a stream: subclasses define __iter__(). The DataLoader batches what it yields, in order."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of IterableDataset should implement __iter__")


class TensorDataset(Dataset):
    """Sample i is a tuple of each tensor's row i; the tensors share their first dimension."""

    def __init__(self, *tensors):
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=default_generator):
    """Disjoint Subsets of the given lengths, or fractions summing to 1 (PyTorch's rounding: floor each, then one
    more to the first splits until all are used), from one randperm of the whole dataset drawn with `generator`."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1: {fraction}")
            sizes.append(math.floor(len(dataset) * fraction))
        for i in range(len(dataset) - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
        lengths = sizes
    if sum(lengths) != len(dataset):
        raise ValueError(f"random_split: sum of input lengths {list(lengths)} does not equal the length of the input "
                         f"dataset ({len(dataset)})")
    indices = randperm(sum(lengths), generator=generator).tolist()
    return [Subset(dataset, indices[end - length:end]) for end, length in zip(itertools.accumulate(lengths), lengths)]


# ---------------------------------------------------------------- samplers: the order of the indices

class Sampler:
    """An iterable of indices into a dataset (or of lists of indices, for a batch sampler)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Sampler should implement __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """The indices shuffled (a randperm per pass over the data; num_samples may ask for several), or drawn with
    replacement (randint, 32 at a time), from `generator`, or from a Generator seeded from the default one."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, but got replacement={replacement}")
        self.data_source, self.replacement, self._num_samples, self.generator = (data_source, replacement,
                                                                                 num_samples, generator)
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"RandomSampler: num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        generator = self.generator
        if generator is None:
            generator = Generator().manual_seed(zeros((), dtype=np.int64).random_().item())
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from randint(n, size=(32,), generator=generator).tolist()
            yield from randint(n, size=(self.num_samples % 32,), generator=generator).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from randperm(n, generator=generator).tolist()
            yield from randperm(n, generator=generator).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler`, the last one shorter unless drop_last."""

    def __init__(self, sampler, batch_size, drop_last):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        indices = iter(self.sampler)
        batch = list(itertools.islice(indices, self.batch_size))
        while batch and (len(batch) == self.batch_size or not self.drop_last):
            yield batch
            batch = list(itertools.islice(indices, self.batch_size))

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


# ---------------------------------------------------------------- collating samples into a batch

def default_collate(batch):
    """A list of samples as one batch, as PyTorch's: Tensors stacked on a new first axis, NumPy arrays and
    numbers made tensors (Python floats float64, ints int64, bools bool), strings kept as a list; dicts, tuples,
    named tuples and lists collated element by element (a tuple of fields gives a list of batches, as PyTorch)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if type(elem).__module__ == "numpy" and type(elem).__name__ not in ("str_", "bytes_"):
        if elem.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                            f"found {elem.dtype}")
        if isinstance(elem, np.ndarray):
            return default_collate([Tensor(b) for b in batch])
        return Tensor(np.array(batch))                              # NumPy scalars keep their dtype
    if isinstance(elem, float):
        return Tensor(np.array(batch, np.float64))
    if isinstance(elem, int):                                       # bool too: a bool tensor
        return Tensor(np.array(batch))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        collated = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):       # a named tuple
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        return [default_collate(list(samples)) for samples in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
                    f"{type(elem)}")


def default_convert(data):
    """One sample as PyTorch's default_convert leaves it (the collate_fn when batching is off, batch_size=None):
    NumPy arrays and scalars made tensors, dicts, tuples and lists converted element by element."""
    if type(data).__module__ == "numpy" and type(data).__name__ not in ("str_", "bytes_"):
        return data if data.dtype.kind in "OSUV" else Tensor(np.asarray(data))
    if isinstance(data, Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return [default_convert(d) for d in data]
    return data


# ---------------------------------------------------------------- the DataLoader

class DataLoader:
    """Batches of `dataset`, as torch.utils.data.DataLoader: batch_size samples at a time (None: one sample, not
    batched), in order or shuffled (shuffle=True, from `generator`), or in the order of `sampler` or of
    `batch_sampler`'s batches; the last short batch dropped with drop_last; each batch made by collate_fn
    (default_collate). len() is the number of batches.

    Every batch is loaded in this process (see the module's docstring): num_workers > 0 gives the same batches,
    with a warning, and prefetch_factor, persistent_workers, in_order and pin_memory (page-locked memory for a
    faster copy to a GPU) change nothing here but where the work is done. worker_init_fn is refused: there is no
    worker to run it in."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative integer; use num_workers=0 to "
                             f"disable multiprocessing, got {num_workers!r}")
        if timeout != 0:
            raise ValueError(f"DataLoader: timeout={timeout} waits for worker processes; here every batch is loaded "
                             f"in this process")
        if worker_init_fn is not None or multiprocessing_context is not None:
            raise NotImplementedError("DataLoader: worker_init_fn and multiprocessing_context set up worker "
                                      "processes, and here every batch is loaded in this process")
        if num_workers == 0 and (prefetch_factor is not None or persistent_workers):
            raise ValueError("DataLoader: prefetch_factor and persistent_workers need num_workers > 0")
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"DataLoader: generator must be a Generator, got {type(generator).__name__}")
        if isinstance(dataset, IterableDataset):
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but got "
                                     f"{name}={value}")
            if num_workers > 0:
                raise NotImplementedError("DataLoader: num_workers > 0 with an IterableDataset (each PyTorch worker "
                                          "iterates its own copy of it); use num_workers=0")
        elif sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if num_workers > 0:
            warnings.warn(f"DataLoader: num_workers={num_workers}: every batch is loaded in this process, the same "
                          f"batches in the same order (a Dataset that draws random numbers draws them from this "
                          f"process's generator)", stacklevel=2)
        if sampler is None and not isinstance(dataset, IterableDataset):
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and sampler is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last, self.generator = dataset, batch_size, drop_last, generator
        self.sampler, self.batch_sampler, self.num_workers = sampler, batch_sampler, num_workers
        self.pin_memory, self.timeout = pin_memory, timeout
        batching = batch_sampler is not None or (isinstance(dataset, IterableDataset) and batch_size is not None)
        self.collate_fn = collate_fn or (default_collate if batching else default_convert)

    def __iter__(self):
        """One pass over the data. Its first draw is PyTorch's: a 64-bit base seed from the generator, before the
        sampler's draws."""
        indices = iter(self.batch_sampler if self.batch_sampler is not None else self.sampler or ())
        zeros((), dtype=np.int64).random_(generator=self.generator)
        if isinstance(self.dataset, IterableDataset):
            return self._stream()
        if self.batch_sampler is None:
            return (self.collate_fn(self.dataset[i]) for i in indices)
        return (self.collate_fn([self.dataset[i] for i in batch]) for batch in indices)

    def _stream(self):
        samples = iter(self.dataset)
        if self.batch_size is None:
            yield from (self.collate_fn(sample) for sample in samples)
            return
        batch = list(itertools.islice(samples, self.batch_size))
        while batch and (len(batch) == self.batch_size or not self.drop_last):
            yield self.collate_fn(batch)
            batch = list(itertools.islice(samples, self.batch_size))

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            length = len(self.dataset)
            if self.batch_size is None:
                return length
            return length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)


def get_worker_info():
    """None: there are no worker processes here (PyTorch's answer in the main process)."""
    return None
