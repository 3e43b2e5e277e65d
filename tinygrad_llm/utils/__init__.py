"""tinygrad_llm.utils, as torch.utils: data.py (Dataset, TensorDataset, Subset, random_split, the samplers and
DataLoader)."""
