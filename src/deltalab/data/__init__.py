"""Datasets and batching: the digits, MNIST IDX files, and the lecture's sequence tasks."""
