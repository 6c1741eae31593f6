"""Token streams for probes (numpy only; the trainer moves batches to torch).

Sources, chosen by the `--data` string (calibration.md §4):
    stdlib                   DEFAULT, offline: the running interpreter's standard library `.py` files
                             (test directories excluded) plus the `pydoc_data` topics, byte-level.
                             A DEMO corpus: its constants are nats per *byte* of Python-heavy text and
                             are not comparable with token-level constants of a production tokenizer.
    synthetic:zipf[?k=v&..]  seeded order-k Markov source whose every row is a Zipf law over a random
                             permutation of the vocabulary, so its entropy rate is known exactly.
                             For recovery tests only, never for calibration.
    DIR                      every text file below DIR (one document per file; .jsonl files by line)
    FILE.txt/.md/...         one document
    FILE.jsonl               one document per line, the `text` field (text_key)
    FILE.bin                 nanoGPT token file: uint16, or uint32 when vocab_size > 65536
    FILE.npy / FILE.npz      1-D integer token array (dtype honoured, memory-mapped)

Text is byte-level: ids 0-255 are bytes, 256 is EOS after every document (vocab 257).
A fixed held-out slice is taken at document boundaries, identical for every probe on a source.
"""

from __future__ import annotations

import json
import math
import os
import sysconfig
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

BYTE_VOCAB = 257
EOS = 256
VAL_FRACTION = 0.01  # held-out share of the tokens (whole documents)
MIN_VAL_TOKENS = 65_536
MAX_VAL_TOKENS = 4_000_000  # ≥ 1-4M tokens keeps the eval standard error below 0.1% (calibration.md §1.5)
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".py", ".tex", ".html", ".csv", ".json", ""}


class VocabularyError(ValueError):
    """Token ids outside [0, vocab_size): every probe would index past its embedding."""


@dataclass
class TokenSource:
    name: str
    train: np.ndarray  # 1-D integer tokens (possibly a memmap)
    val: np.ndarray
    vocab_size: int
    unit: str = "tokens"  # "bytes" for byte-level text
    demo: bool = False
    entropy_nats: float | None = None  # exact entropy rate per token (synthetic only)
    notes: list[str] = field(default_factory=list)

    @property
    def unique_tokens(self) -> int:
        return len(self.train)


def load(data: str = "stdlib", *, vocab_size: int | None = None, text_key: str = "text") -> TokenSource:
    """Open a data source by its `--data` string (see the module docstring)."""
    if data == "stdlib":
        return _from_documents("stdlib", stdlib_documents(), demo=True)
    if data.startswith("synthetic:"):
        return synthetic(data)
    path = Path(data).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data source {data!r} does not exist (use stdlib, synthetic:zipf or a path)")
    if path.is_dir():
        return _from_documents(str(path), _dir_documents(path, text_key))
    suffix = path.suffix.lower()
    if suffix == ".bin":
        dtype = np.uint32 if (vocab_size or 0) > 65_536 else np.uint16
        return _from_tokens(str(path), np.memmap(path, dtype=dtype, mode="r"), vocab_size)
    if suffix in (".npy", ".npz"):
        return _from_tokens(str(path), _load_numpy(path), vocab_size)
    if suffix == ".jsonl":
        return _from_documents(str(path), _jsonl_documents(path, text_key))
    return _from_documents(str(path), [(path.name, path.read_text(encoding="utf-8", errors="replace"))])


# ----------------------------------------------------------------------------- text sources


def stdlib_documents() -> list[tuple[str, str]]:
    """(name, text) for the interpreter's stdlib .py files, no test dirs, plus pydoc topics."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for dirpath, dirnames, filenames in os.walk(root):
        # skip test suites (calibration.md §4.2 filter), site-packages and bytecode caches
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith("test") and d not in ("idle_test", "site-packages", "dist-packages", "__pycache__")
        )
        for fn in sorted(filenames):
            if fn.endswith(".py") and not fn.startswith("test"):
                p = Path(dirpath, fn)
                docs.append((str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace")))
    try:
        from pydoc_data.topics import topics  # English prose, ~0.5 MB

        docs += [(f"pydoc_data:{k}", topics[k]) for k in sorted(topics)]
    except ImportError:  # some distributions strip pydoc_data
        pass
    return docs


def _dir_documents(root: Path, text_key: str) -> list[tuple[str, str]]:
    docs = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if p.suffix.lower() == ".jsonl":
            docs += _jsonl_documents(p, text_key)
        elif p.suffix.lower() in TEXT_SUFFIXES:
            docs.append((str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace")))
    if not docs:
        raise ValueError(f"no text files under {root}")
    return docs


def _jsonl_documents(path: Path, text_key: str) -> list[tuple[str, str]]:
    docs = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i + 1}: not a JSON line ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise ValueError(f"{path}:{i + 1}: a JSON {type(record).__name__}, not an object with a "
                                     f"{text_key!r} field")
                if text_key not in record:
                    raise ValueError(f"{path}:{i + 1}: no {text_key!r} field")
                text = record[text_key]
                if not isinstance(text, str):  # str(5) would silently train on the byte '5'
                    raise ValueError(f"{path}:{i + 1}: field {text_key!r} is {type(text).__name__} "
                                     f"{json.dumps(text)[:40]}, not a string")
                docs.append((f"{path.name}:{i}", text))
    return docs


def _from_documents(name: str, docs: list[tuple[str, str]], demo: bool = False) -> TokenSource:
    """Byte-level tokens; whole documents (ranked by a hash of their name) form the held-out slice."""
    if not docs:  # np.concatenate of nothing would say "need at least one array to concatenate"
        raise ValueError(f"{name}: no documents (an empty file, or no non-blank lines)")
    encoded = [(doc_name, _bytes_to_tokens(text)) for doc_name, text in docs]
    total = sum(len(t) for _, t in encoded)
    want_val = min(MAX_VAL_TOKENS, max(MIN_VAL_TOKENS, int(VAL_FRACTION * total)))
    want_val = min(want_val, total // 2)  # tiny corpora: at most half goes to validation
    # a hash of the name, not the position, picks the validation documents: representative, and the
    # same documents whatever else is in the corpus
    order = sorted(range(len(encoded)), key=lambda i: zlib.crc32(encoded[i][0].encode()))
    val_ids, n_val = set(), 0
    for i in order:
        if n_val >= want_val:
            break
        val_ids.add(i)
        n_val += len(encoded[i][1])
    if len(val_ids) == len(encoded):  # one document only: split it at a byte boundary instead
        tokens = np.concatenate([t for _, t in encoded])
        cut = len(tokens) - want_val
        return TokenSource(name, tokens[:cut], tokens[cut:], BYTE_VOCAB, unit="bytes", demo=demo)
    train = np.concatenate([t for i, (_, t) in enumerate(encoded) if i not in val_ids])
    val = np.concatenate([t for i, (_, t) in enumerate(encoded) if i in val_ids])
    notes = ["demo corpus: constants are nats per byte, not comparable with token-level constants"] if demo else []
    return TokenSource(name, train, val, BYTE_VOCAB, unit="bytes", demo=demo, notes=notes)


def _bytes_to_tokens(text: str) -> np.ndarray:
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)
    return np.append(raw, np.uint16(EOS))


# ----------------------------------------------------------------------------- token files


def _load_numpy(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npz":
        with np.load(path) as z:
            key = "tokens" if "tokens" in z.files else z.files[0]
            arr = z[key]
    else:
        arr = np.load(path, mmap_mode="r")
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{path}: expected a 1-D integer token array, got {arr.dtype} with shape {arr.shape}")
    return arr


def _from_tokens(name: str, tokens: np.ndarray, vocab_size: int | None) -> TokenSource:
    """Pre-tokenized streams: the last VAL_FRACTION of the tokens is held out (no document ids known)."""
    n = len(tokens)
    if n < 4:
        raise ValueError(f"{name}: only {n} tokens")
    if np.issubdtype(tokens.dtype, np.signedinteger) and int(np.min(tokens)) < 0:
        at = int(np.argmax(np.asarray(tokens) < 0))
        raise ValueError(f"{name}: token {at} is {int(tokens[at])}: token ids must be 0 or more")
    top = int(np.max(tokens))
    if vocab_size is None:
        vocab_size = top + 1  # inferred, as nanoGPT's meta.pkl would say
    elif top >= vocab_size:  # a given vocabulary is checked, not trusted
        raise VocabularyError(f"{name}: token ids reach {top}, beyond --vocab-size {vocab_size}")
    n_val = min(MAX_VAL_TOKENS, max(min(MIN_VAL_TOKENS, n // 2), int(VAL_FRACTION * n)))
    return TokenSource(name, tokens[: n - n_val], tokens[n - n_val :], int(vocab_size))


# ----------------------------------------------------------------------------- synthetic known-entropy source


def zipf_probs(vocab: int, a: float) -> np.ndarray:
    p = np.arange(1, vocab + 1, dtype=np.float64) ** -a
    return p / p.sum()


def zipf_entropy(vocab: int, a: float) -> float:
    """Entropy in nats of Zipf(a) over `vocab` ranks: the exact entropy rate of the synthetic source."""
    p = zipf_probs(vocab, a)
    return float(-(p * np.log(p)).sum())


SYNTHETIC_SOURCES = "synthetic:zipf[?vocab=64&order=1&a=1.2&seed=0&tokens=8000000&val=262144]"
# option: (default, lowest, highest, integer); the transition table holds vocab^order permutations of vocab
_SYNTHETIC_OPTIONS = {"vocab": (64, 2, 65_536, True), "order": (1, 1, 8, True), "a": (1.2, 1e-3, 100.0, False),
                      "seed": (0, 0, 2**63 - 1, True), "tokens": (8_000_000, 1, 2**31, True),
                      "val": (262_144, 1, 2**26, True)}
MAX_SYNTHETIC_TABLE = 2**25  # vocab^(order+1) entries of 8 bytes: 256 MiB


def parse_synthetic(data: str) -> dict[str, float]:
    """The options of a `synthetic:KIND?k=v&...` source, checked (ValueError names the problem)."""
    kind, _, query = data.partition(":")[2].partition("?")
    if kind != "zipf":
        raise ValueError(f"unknown synthetic source {kind!r} (known: zipf)")
    opts: dict[str, float] = {k: v[0] for k, v in _SYNTHETIC_OPTIONS.items()}
    for key, text in parse_qsl(query, keep_blank_values=True):
        if key not in _SYNTHETIC_OPTIONS:
            raise ValueError(f"unknown option {key!r} of synthetic:zipf (known: {', '.join(_SYNTHETIC_OPTIONS)})")
        _, lo, hi, integer = _SYNTHETIC_OPTIONS[key]
        try:
            value: float | None = float(text)
        except ValueError:
            value = None
        if value is not None and integer:
            value = int(value) if math.isfinite(value) and value.is_integer() else None
        if value is None or not lo <= value <= hi:
            raise ValueError(f"option {key}={text!r} of synthetic:zipf: expected {'an integer' if integer else 'a number'}"
                             f" from {lo:g} to {hi:g}")
        opts[key] = value
    if opts["vocab"] ** (opts["order"] + 1) > MAX_SYNTHETIC_TABLE:
        raise ValueError(f"synthetic:zipf with vocab={opts['vocab']:g} and order={opts['order']:g} needs a table of "
                         f"vocab^(order+1) = {opts['vocab'] ** (opts['order'] + 1):.3g} entries, above "
                         f"{MAX_SYNTHETIC_TABLE:.3g}: lower vocab or order")
    return opts


def synthetic(data: str = "synthetic:zipf") -> TokenSource:
    """Order-k Markov chain: each context's next-token law is Zipf(a) over its own random permutation.

    Every row has the same entropy H(Zipf(a, V)), so the entropy rate is exactly that, whatever the
    stationary law; a model that learns all V^k permutations reaches it (after k tokens of context).
    """
    opts = parse_synthetic(data)
    vocab, order = int(opts["vocab"]), int(opts["order"])
    a, seed = opts["a"], int(opts["seed"])
    n_train, n_val = int(opts["tokens"]), int(opts["val"])
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((vocab**order, vocab)), axis=1)  # one permutation per context
    cdf = np.cumsum(zipf_probs(vocab, a))
    train = _markov_stream(perms, cdf, vocab, order, n_train, np.random.default_rng([seed, 1]))
    val = _markov_stream(perms, cdf, vocab, order, n_val, np.random.default_rng([seed, 2]))
    return TokenSource(data, train, val, vocab, entropy_nats=zipf_entropy(vocab, a),
                       notes=["synthetic source with known entropy: for tests, never for calibration"])


def _markov_stream(perms, cdf, vocab, order, n, rng, n_streams: int = 256) -> np.ndarray:
    """n tokens from n_streams independent chains advanced together (vectorised), concatenated."""
    length = max(order + 1, math.ceil(n / n_streams))
    out = np.empty((n_streams, length), dtype=np.uint16)
    out[:, :order] = rng.integers(0, vocab, size=(n_streams, order))
    for t in range(order, length):
        ctx = np.zeros(n_streams, dtype=np.int64)
        for j in range(order):
            ctx = ctx * vocab + out[:, t - order + j]
        rank = np.minimum(np.searchsorted(cdf, rng.random(n_streams)), vocab - 1)
        out[:, t] = perms[ctx, rank]
    return out.reshape(-1)[:n]


# ----------------------------------------------------------------------------- batches


def sample_batch(tokens: np.ndarray, n_seqs: int, seq_len: int, rng: np.random.Generator):
    """n_seqs random windows (inputs, next-token targets) as int64 arrays of shape (n_seqs, seq_len)."""
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=n_seqs)
    idx = starts[:, None] + np.arange(seq_len + 1)
    w = np.asarray(tokens[idx], dtype=np.int64)
    return np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])


def eval_windows(val: np.ndarray, n_tokens: int, seq_len: int):
    """The fixed held-out windows: consecutive, non-overlapping, from the start of the val slice."""
    n_win = max(1, min(n_tokens // seq_len, (len(val) - 1) // seq_len))
    w = np.asarray(val[: n_win * seq_len + 1], dtype=np.int64)
    x = w[:-1].reshape(n_win, seq_len)
    y = w[1:].reshape(n_win, seq_len)
    return x, y


def epochs(total_tokens: float, source: TokenSource) -> float:
    return total_tokens / max(1, source.unique_tokens)


def epoch_warning(total_tokens: float, source: TokenSource, max_epochs: float = 4.0) -> str | None:
    """A warning when a probe would repeat its data more than ~4 times (Muennighoff et al. 2023)."""
    e = epochs(total_tokens, source)
    if e <= max_epochs:
        return None
    return (f"{total_tokens:.3g} tokens is {e:.1f} epochs of {source.name} ({source.unique_tokens:,} training "
            f"{source.unit}); beyond ~{max_epochs:g} epochs repeated data bends the D-term of the law")
