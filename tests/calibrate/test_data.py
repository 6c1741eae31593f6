"""calibrate/data.py: every input format, the stdlib default, the held-out split, the epoch warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibrate import data


def test_text_directory(tmp_path):
    (tmp_path / "a.txt").write_text("hello world\n" * 50)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# title\nsome words\n" * 50)
    (tmp_path / ".hidden.txt").write_text("never read")
    src = data.load(str(tmp_path))
    assert src.vocab_size == 257 and src.unit == "bytes"
    allt = np.concatenate([src.train, src.val])
    assert len(allt) == len("hello world\n" * 50) + len("# title\nsome words\n" * 50) + 2  # + one EOS each
    assert (allt == data.EOS).sum() == 2
    assert len(src.val) > 0 and len(src.train) > 0


def test_jsonl_documents_and_text_key(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps({"body": f"document number {i} " * 20}) for i in range(40)))
    src = data.load(str(p), text_key="body")
    assert (np.concatenate([src.train, src.val]) == data.EOS).sum() == 40
    assert src.val[-1] == data.EOS  # the held-out slice is whole documents
    with pytest.raises(ValueError, match="no 'text' field"):
        data.load(str(p))


@pytest.mark.parametrize("dtype,vocab", [(np.uint16, None), (np.uint16, 50304), (np.uint32, 100_277)])
def test_nanogpt_bin(tmp_path, dtype, vocab):
    hi = vocab or 1000
    tokens = np.random.default_rng(0).integers(0, hi, size=200_000).astype(dtype)
    p = tmp_path / "train.bin"
    tokens.tofile(p)
    src = data.load(str(p), vocab_size=vocab)
    assert np.array_equal(np.concatenate([src.train, src.val]), tokens)
    assert src.vocab_size == (vocab or int(tokens.max()) + 1)
    assert len(src.val) >= data.MIN_VAL_TOKENS // 2


def test_npy_and_npz(tmp_path):
    tokens = np.arange(100_000, dtype=np.int32) % 5000
    np.save(tmp_path / "t.npy", tokens)
    np.savez(tmp_path / "t.npz", tokens=tokens)
    for name in ("t.npy", "t.npz"):
        src = data.load(str(tmp_path / name))
        assert np.array_equal(np.concatenate([src.train, src.val]), tokens)
        assert src.vocab_size == 5000
    np.save(tmp_path / "bad.npy", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="1-D integer"):
        data.load(str(tmp_path / "bad.npy"))


def test_missing_path_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="stdlib, synthetic"):
        data.load("/no/such/corpus")


def test_stdlib_default_is_a_labelled_demo_corpus():
    src = data.load("stdlib")
    assert src.demo and src.unit == "bytes" and src.vocab_size == 257
    assert any("nats per byte" in n for n in src.notes)
    assert 2_000_000 < src.unique_tokens < 60_000_000  # ~12 MB on CPython 3.11 without tests
    assert data.MIN_VAL_TOKENS <= len(src.val) <= data.MAX_VAL_TOKENS
    names = [n for n, _ in data.stdlib_documents()]
    assert not any(part.startswith("test") for n in names for part in n.split("/")[:-1])
    assert any(n.startswith("pydoc_data:") for n in names)
    assert "unittest/case.py" in names  # "test" excluded by directory prefix, not substring


def test_held_out_split_is_fixed_and_disjoint():
    a, b = data.load("stdlib"), data.load("stdlib")
    assert np.array_equal(a.val, b.val)
    assert a.val[-1] == data.EOS and a.train[-1] == data.EOS  # both end at a document boundary


def test_synthetic_known_entropy():
    src = data.load("synthetic:zipf?vocab=16&order=1&a=1.2&tokens=200000&seed=3")
    assert src.vocab_size == 16 and src.unique_tokens == 200_000
    assert src.train.max() < 16
    assert src.entropy_nats == pytest.approx(data.zipf_entropy(16, 1.2))
    # the empirical conditional entropy of the bigram table converges to the Zipf entropy
    x = src.train.astype(np.int64)
    counts = np.zeros((16, 16))
    np.add.at(counts, (x[:-1], x[1:]), 1)
    p = counts / counts.sum(1, keepdims=True)
    w = counts.sum(1) / counts.sum()
    h = -(w[:, None] * np.where(p > 0, p * np.log(p), 0)).sum()
    assert h == pytest.approx(src.entropy_nats, abs=0.02)
    again = data.load("synthetic:zipf?vocab=16&order=1&a=1.2&tokens=200000&seed=3")
    assert np.array_equal(again.train, src.train)


def test_zipf_entropy_limits():
    assert data.zipf_entropy(8, 0.0) == pytest.approx(np.log(8))
    assert data.zipf_entropy(64, 1.2) < np.log(64)


def test_batches_and_eval_windows():
    tokens = np.arange(10_000) % 257
    x, y = data.sample_batch(tokens, 4, 32, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 32) and x.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])
    ex, ey = data.eval_windows(tokens, 1000, 100)
    assert ex.shape == (10, 100) and np.array_equal(ex[0], tokens[:100]) and np.array_equal(ey[0], tokens[1:101])


def test_epoch_warning():
    src = data.TokenSource("tiny", np.zeros(1000, dtype=np.uint16), np.zeros(100, dtype=np.uint16), 257)
    assert data.epoch_warning(4000, src) is None
    msg = data.epoch_warning(5000, src)
    assert msg and "5.0 epochs" in msg


def test_a_given_vocabulary_is_checked_not_trusted(tmp_path):
    """--vocab-size below the largest id would index past every probe's embedding (audit: 65258 vs 100)."""
    p = tmp_path / "train.bin"
    np.array([1, 2, 65258] * 1000, dtype=np.uint16).tofile(p)
    with pytest.raises(data.VocabularyError, match="token ids reach 65258, beyond --vocab-size 100"):
        data.load(str(p), vocab_size=100)
    assert data.load(str(p), vocab_size=65259).vocab_size == 65259
    assert data.load(str(p), vocab_size=65259 + 64).vocab_size == 65259 + 64  # padding is fine


def test_negative_or_non_integer_token_arrays_are_refused(tmp_path):
    np.save(tmp_path / "neg.npy", np.array([1, -2, 3] * 1000, dtype=np.int64))
    with pytest.raises(ValueError, match=r"neg.npy: token 1 is -2: token ids must be 0 or more"):
        data.load(str(tmp_path / "neg.npy"), vocab_size=100)
    with pytest.raises(ValueError, match="token ids must be 0 or more"):
        data.load(str(tmp_path / "neg.npy"))
    np.save(tmp_path / "float.npy", np.array([1.0, 2.0, 3.0] * 1000))
    with pytest.raises(ValueError, match="1-D integer token array, got float64"):
        data.load(str(tmp_path / "float.npy"))


@pytest.mark.parametrize("line, needle", [
    ('{"text": 5}', r":2: field 'text' is int 5, not a string"),
    ('{"text": null}', r":2: field 'text' is NoneType null, not a string"),
    ('{"text": ["a"]}', r":2: field 'text' is list"),
    ("[1, 2]", r":2: a JSON list, not an object with a 'text' field"),
    ("7", r":2: a JSON int, not an object"),
    ("{bad", r":2: not a JSON line"),
])
def test_jsonl_lines_that_are_not_text_name_file_and_line(tmp_path, line, needle):
    p = tmp_path / "docs.jsonl"
    p.write_text(json.dumps({"text": "fine"}) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=f"docs.jsonl{needle}"):
        data.load(str(p))
