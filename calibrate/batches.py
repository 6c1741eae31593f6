"""Training batches for one probe rank: the same windows on every device, no host sync per step.

Every micro-batch is `micro_batch_seqs` random windows of seq_len+1 tokens whose start offsets come
from numpy's generator seeded by (seed, step, micro, rank), so a cooldown branch sees exactly the data
the main run would at the same step, and a CUDA probe sees exactly the windows a CPU probe sees.

Three ways to build a batch, chosen once per probe:
    host     (CPU) numpy gathers the windows from the token array, torch wraps them without a copy.
    device   (CUDA, DEFAULT when the training split fits under `device_budget_bytes`): the split is
             uploaded once (int16 when the vocabulary fits 16 bits, read back as `& 0xFFFF`, else
             int32); the start offsets of up to CHUNK_STEPS steps are computed on the host and uploaded
             in one non-blocking copy from pinned memory, and each batch is one gather kernel on the
             GPU. No per-step host work beyond launching it, and no per-step host-to-device copy,
             which from pageable memory would wait for the GPU queue every step (CUDA runtime, "API
             synchronization behavior").
    pinned   (CUDA, a split too large for the device): numpy gathers on the host into a ring of
             pinned buffers, each copied with non_blocking=True; a slot is refilled only after the
             event recorded behind its previous copy has completed.
The CPU path can be asked for "device" mode, which is how the tests check that every mode yields the
same windows.
"""

from __future__ import annotations

import numpy as np
import torch

CHUNK_STEPS = 512  # steps of start offsets uploaded per host-to-device copy, at most
CHUNK_OFFSETS = 1 << 20  # ... and at most this many offsets (8 MB) per copy
PINNED_SLOTS = 4  # ring of pinned staging buffers (the pinned mode)


def starts(seed: int, step: int, micro: int, rank: int, n_seqs: int, n_tokens: int, seq_len: int) -> np.ndarray:
    """The window starts of one micro-batch (int64), reproducible from its coordinates alone."""
    rng = np.random.default_rng([seed, step, micro, rank])
    return rng.integers(0, n_tokens - seq_len - 1, size=n_seqs)


class Batcher:
    """get(step, micro) -> (x, y), int64 tensors of shape (micro_batch_seqs, seq_len) on the device."""

    def __init__(self, tokens: np.ndarray, *, seq_len: int, n_seqs: int, accum: int, seed: int, rank: int,
                 device: torch.device, vocab_size: int, mode: str | None = None,
                 device_budget_bytes: float = 8 * 2**30):
        self.tokens, self.seq_len, self.n_seqs, self.accum = tokens, seq_len, n_seqs, accum
        self.seed, self.rank, self.device = seed, rank, device
        self.wide = vocab_size > 2**16  # int32 storage; else int16 read back as unsigned
        bytes_needed = len(tokens) * (4 if self.wide else 2)
        if mode is None:
            mode = "host" if device.type == "cpu" else ("device" if bytes_needed <= device_budget_bytes else "pinned")
        if mode not in ("host", "device", "pinned"):
            raise ValueError(f"unknown batch mode {mode!r}")
        self.mode = mode
        self._chunks: dict[int, torch.Tensor] = {}
        self._staging: dict[int, tuple[torch.Tensor, torch.cuda.Event]] = {}  # CUDA: pinned source, copy event
        self.chunk_steps = max(1, min(CHUNK_STEPS, CHUNK_OFFSETS // (accum * n_seqs)))
        if mode == "device":
            self._dev_tokens = self._upload(tokens)
            self._window = torch.arange(seq_len + 1, device=device)
        elif mode == "pinned":
            shape = (n_seqs, seq_len + 1)
            self._slots = [torch.empty(shape, dtype=torch.int64).pin_memory() for _ in range(PINNED_SLOTS)]
            self._events = [None] * PINNED_SLOTS
            self._next = 0

    # ------------------------------------------------------------------------- modes

    def get(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "device":
            w = self._gather_on_device(step, micro)
        elif self.mode == "pinned":
            w = self._copy_pinned(step, micro)
        else:
            w = torch.from_numpy(self._gather_on_host(step, micro))
        return w[:, :-1], w[:, 1:]

    def _starts(self, step: int, micro: int) -> np.ndarray:
        return starts(self.seed, step, micro, self.rank, self.n_seqs, len(self.tokens), self.seq_len)

    def _gather_on_host(self, step: int, micro: int) -> np.ndarray:
        idx = self._starts(step, micro)[:, None] + np.arange(self.seq_len + 1)
        return np.asarray(self.tokens[idx], dtype=np.int64)

    def _upload(self, tokens: np.ndarray) -> torch.Tensor:
        dtype = torch.int32 if self.wide else torch.int16
        out = torch.empty(len(tokens), dtype=dtype, device=self.device)
        piece = 1 << 26  # 64M tokens per copy: the host never holds a second full copy of a memmap
        np_dtype = np.int32 if self.wide else np.int16
        for i in range(0, len(tokens), piece):
            host = np.asarray(tokens[i : i + piece]).astype(np_dtype, copy=False)  # uint16 -> int16 wraps
            out[i : i + len(host)].copy_(torch.from_numpy(np.ascontiguousarray(host)))
        return out

    def _chunk(self, step: int) -> torch.Tensor:
        """Start offsets of chunk_steps steps x accum micro-batches, on the device (one upload).

        On CUDA the offsets are staged in pinned memory and copied with non_blocking=True (from pageable
        memory the copy would wait for the GPU's queue); the staging buffer is kept with its chunk, and
        the event recorded behind the copy is waited on before the buffer is let go.
        """
        c = step // self.chunk_steps
        if c not in self._chunks:
            if len(self._chunks) >= 2:  # keep the current and one other (a branch goes back in steps)
                old = next(iter(self._chunks))
                self._chunks.pop(old)
                staged = self._staging.pop(old, None)
                if staged is not None:
                    staged[1].synchronize()  # long done in practice: the chunk's gathers ran after it
            host = np.stack([np.stack([self._starts(s, m) for m in range(self.accum)])
                             for s in range(c * self.chunk_steps, (c + 1) * self.chunk_steps)])
            if self.device.type == "cuda":
                pinned = torch.empty(host.shape, dtype=torch.int64).pin_memory()
                pinned.numpy()[:] = host
                self._chunks[c] = pinned.to(self.device, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
                self._staging[c] = (pinned, done)
            else:
                self._chunks[c] = torch.from_numpy(host).to(self.device)
        return self._chunks[c]

    def _gather_on_device(self, step: int, micro: int) -> torch.Tensor:
        s = self._chunk(step)[step % self.chunk_steps, micro]
        w = self._dev_tokens[s[:, None] + self._window].long()
        return w if self.wide else w & 0xFFFF

    def _copy_pinned(self, step: int, micro: int) -> torch.Tensor:
        i, self._next = self._next, (self._next + 1) % PINNED_SLOTS
        if self._events[i] is not None:
            self._events[i].synchronize()  # the previous copy out of this slot has finished
        self._slots[i].numpy()[:] = self._gather_on_host(step, micro)
        w = self._slots[i].to(self.device, non_blocking=True)
        self._events[i] = torch.cuda.Event()
        self._events[i].record()
        return w
