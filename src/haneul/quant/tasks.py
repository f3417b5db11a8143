"""Task data and metrics for adapting a quantised LM: sentiment as generation, LM text, data-to-text.

AlphaTuning (section 4) adapts GPT-2 / OPT to data-to-text generation; here the same machinery adapts
a causal LM to (a) NSMC-format sentiment classification cast as generation — the model reads
``Review: … / Sentiment:`` and must continue with the label word, scored by comparing the two label
words' log-probabilities — (b) plain causal-LM adaptation to a text domain, scored by perplexity, and
(c) data-to-text in the E2E format (``name[…], food[…]`` → a sentence), scored by BLEU and chrF of
greedy generations and by the slot error rate (:mod:`haneul.quant.d2t_data` writes a Korean set of
that kind; real E2E CSV files load unchanged). Loaders take a path; nothing here needs the shared data
folder.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from haneul.errors import InvalidInput, NotFound

__all__ = [
    "DataToTextTask",
    "SentimentTask",
    "TASKS",
    "batches",
    "lm_blocks",
    "perplexity",
    "read_d2t",
    "read_nsmc",
    "read_texts",
    "sample_blocks",
]

TASKS = ("nsmc", "text", "d2t")


def _open_text(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"data file {path} does not exist; pass an existing --data path")
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_nsmc(path: str | os.PathLike[str], limit: int | None = None, seed: int = 0) -> list[tuple[str, int]]:
    """Rows ``(document, label)`` of an NSMC-format TSV (``id<TAB>document<TAB>label`` with a header).

    With ``limit`` a seeded sample of that many rows is drawn, balanced between the labels.
    """
    rows: list[tuple[str, int]] = []
    with _open_text(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[-1:] != ["label"]:
            raise InvalidInput(f"{path} is not NSMC-format: the header must end with 'label', got {header}")
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[-1] not in {"0", "1"} or not parts[1].strip():
                continue
            rows.append((parts[1].strip(), int(parts[-1])))
    if not rows:
        raise InvalidInput(f"{path} holds no usable NSMC rows (id<TAB>document<TAB>0|1)")
    if limit is not None and limit < len(rows):
        rng = random.Random(seed)
        by_label = {0: [r for r in rows if r[1] == 0], 1: [r for r in rows if r[1] == 1]}
        for part in by_label.values():
            rng.shuffle(part)
        half = limit // 2
        rows = by_label[0][:half] + by_label[1][: limit - half]
        rng.shuffle(rows)
    return rows


def read_texts(path: str | os.PathLike[str], limit: int | None = None) -> list[str]:
    """Lines of a .txt(.gz) file, or the ``text`` field of a .jsonl(.gz) file (empty lines dropped)."""
    jsonl = ".jsonl" in Path(path).name
    out: list[str] = []
    with _open_text(path) as fh:
        for line in fh:
            if jsonl:
                line = line.strip()
                if not line:
                    continue
                text = str(json.loads(line).get("text", "")).strip()
            else:
                text = line.strip()
            if text:
                out.append(text)
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise InvalidInput(f"{path} holds no text lines; give a .txt or .jsonl file with a 'text' field")
    return out


@dataclass
class SentimentTask:
    """NSMC sentiment as generation: the label is the word that follows the prompt."""

    template: str = "Review: {text}\nSentiment:"
    labels: tuple[str, str] = (" negative", " positive")
    max_length: int = 96

    def label_tokens(self, tokenizer: Any) -> list[list[int]]:
        tokens = [tokenizer.encode(word, add_special_tokens=False) for word in self.labels]
        if tokens[0] == tokens[1] or not all(tokens):
            raise InvalidInput(f"label words {self.labels} must tokenise to different, non-empty sequences")
        return tokens

    def _prompt_ids(self, tokenizer: Any, text: str) -> list[int]:
        # Cut the review, never the instruction: the label must follow the full template tail.
        before, after = self.template.split("{text}")
        tail = tokenizer.encode(after, add_special_tokens=False)
        head = tokenizer.encode(before + text, add_special_tokens=False)
        head = head[: max(self.max_length - len(tail), 1)]
        return head + tail

    def train_examples(
        self, tokenizer: Any, rows: Sequence[tuple[str, int]]
    ) -> list[tuple[list[int], list[int]]]:
        """(input ids, labels) pairs; only the label word's tokens are learned (the rest are -100)."""
        words = self.label_tokens(tokenizer)
        out = []
        for text, label in rows:
            prompt = self._prompt_ids(tokenizer, text)
            out.append((prompt + words[label], [-100] * len(prompt) + words[label]))
        return out

    @torch.no_grad()
    def accuracy(
        self, model: Any, tokenizer: Any, rows: Sequence[tuple[str, int]], batch_size: int = 16
    ) -> float:
        """Share of rows whose true label word has the higher total log-probability after the prompt."""
        words = self.label_tokens(tokenizer)
        pad = _pad_id(tokenizer)
        correct = 0
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            seqs, spans = [], []
            for text, _ in chunk:
                prompt = self._prompt_ids(tokenizer, text)
                for word in words:
                    seqs.append(prompt + word)
                    spans.append((len(prompt), len(word)))
            ids, mask = _pad(seqs, pad)
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            scores = torch.empty(len(seqs))
            for i, (at, n) in enumerate(spans):
                # the token at position p is predicted by the logits at p - 1
                positions = torch.arange(at - 1, at - 1 + n)
                scores[i] = logp[i, positions, ids[i, at : at + n]].sum()
            pred = scores.view(len(chunk), len(words)).argmax(-1)
            correct += int((pred == torch.tensor([label for _, label in chunk])).sum())
        return correct / max(len(rows), 1)


def read_d2t(
    path: str | os.PathLike[str], limit: int | None = None, seed: int = 0
) -> list[tuple[dict[str, str], str]]:
    """Rows ``(meaning representation, reference text)`` of a data-to-text file.

    Reads the E2E challenge CSV (columns ``mr,ref``; one row per reference, so an MR may repeat) or
    JSONL with ``mr`` (an E2E string or a ``{slot: value}`` object) and ``text`` (or ``ref``). With
    ``limit`` a seeded sample of that many rows is drawn.
    """
    import csv

    from haneul.quant.d2t_data import parse_mr

    rows: list[tuple[dict[str, str], str]] = []
    name = Path(path).name
    with _open_text(path) as fh:
        if ".jsonl" in name:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(
                        f"{path} line {number} is not JSON ({exc.msg}); write one object per line"
                    ) from None
                if not isinstance(record, dict):
                    record = {}  # a JSON list or scalar holds neither field
                mr, text = record.get("mr"), record.get("text", record.get("ref"))
                if not mr or not isinstance(text, str) or not text.strip():
                    raise InvalidInput(f"{path} line {number} needs a non-empty 'mr' and 'text'")
                mr = parse_mr(mr) if isinstance(mr, str) else {str(k): str(v) for k, v in mr.items()}
                rows.append((mr, text.strip()))
        else:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"mr", "ref"} <= set(reader.fieldnames):
                raise InvalidInput(
                    f"{path} is not an E2E CSV: the header must name 'mr' and 'ref' (got {reader.fieldnames}); "
                    "or give a .jsonl file with 'mr' and 'text'"
                )
            for record in reader:
                if record["mr"] and record["ref"] and record["ref"].strip():
                    rows.append((parse_mr(record["mr"]), record["ref"].strip()))
    if not rows:
        raise InvalidInput(f"{path} holds no data-to-text rows")
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


@dataclass
class DataToTextTask:
    """E2E-style data-to-text as generation: ``Data: name[…], food[…] / Text:`` continued by the text.

    Training learns only the text tokens and the end-of-text token after them. :meth:`evaluate` decodes
    greedily and scores corpus BLEU (mecab-ko tokens for Korean, sacrebleu's 13a otherwise; every
    reference of an MR counts), chrF (characters,
    no tokenizer needed) and the slot error rate, plus the perplexity of the reference texts.
    """

    template: str = "Data: {mr}\nText:"
    max_prompt: int = 96
    max_target: int = 96
    # sacrebleu tokenizer: "auto" takes mecab-ko tokens when a reference holds Hangul, else "13a"
    bleu_tokenize: str = "auto"

    def _prompt_ids(self, tokenizer: Any, mr: dict[str, str]) -> list[int]:
        from haneul.quant.d2t_data import mr_string

        before, after = self.template.split("{mr}")
        tail = tokenizer.encode(after, add_special_tokens=False)
        head = tokenizer.encode(before + mr_string(mr), add_special_tokens=False)
        return head[: max(self.max_prompt - len(tail), 1)] + tail

    def train_examples(
        self, tokenizer: Any, rows: Sequence[tuple[dict[str, str], str]]
    ) -> list[tuple[list[int], list[int]]]:
        """(input ids, labels) pairs; the prompt is masked with -100, the text and EOS are learned."""
        eos = getattr(tokenizer, "eos_token_id", None)
        out = []
        for mr, text in rows:
            prompt = self._prompt_ids(tokenizer, mr)
            target = tokenizer.encode(" " + text, add_special_tokens=False)[: self.max_target]
            if eos is not None:
                target = [*target, int(eos)]
            out.append((prompt + target, [-100] * len(prompt) + target))
        return out

    @torch.no_grad()
    def generate(
        self, model: Any, tokenizer: Any, mrs: Sequence[dict[str, str]], batch_size: int = 8
    ) -> list[str]:
        """Greedy texts for ``mrs``, cut at the first newline."""
        pad = _pad_id(tokenizer)
        eos = getattr(tokenizer, "eos_token_id", None)
        was_training = model.training
        model.eval()
        texts: list[str] = []
        for start in range(0, len(mrs), batch_size):
            prompts = [self._prompt_ids(tokenizer, mr) for mr in mrs[start : start + batch_size]]
            width = max(len(p) for p in prompts)
            # left padding: every prompt ends at the same position, where generation starts
            ids = torch.full((len(prompts), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, p in enumerate(prompts):
                ids[i, width - len(p) :] = torch.tensor(p)
                mask[i, width - len(p) :] = 1
            out = model.generate(
                input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=self.max_target,
                pad_token_id=pad, eos_token_id=eos,
            )  # fmt: skip
            for row in out[:, width:].tolist():
                if eos is not None and eos in row:
                    row = row[: row.index(eos)]
                texts.append(tokenizer.decode(row, skip_special_tokens=True).split("\n")[0].strip())
        model.train(was_training)
        return texts

    def evaluate(
        self, model: Any, tokenizer: Any, rows: Sequence[tuple[dict[str, str], str]], batch_size: int = 8
    ) -> dict[str, float]:
        """BLEU, chrF (0-100), slot error rate (0-1) of greedy texts, and reference perplexity."""
        import sacrebleu

        from haneul.quant.d2t_data import mr_string, slot_error_rate

        refs: dict[str, list[str]] = {}
        mrs: dict[str, dict[str, str]] = {}
        for mr, text in rows:
            key = mr_string(mr)
            refs.setdefault(key, []).append(text)
            mrs.setdefault(key, mr)
        keys = list(refs)
        hyps = self.generate(model, tokenizer, [mrs[k] for k in keys], batch_size=batch_size)
        # sacrebleu wants equally many reference streams; repeating a reference changes neither the
        # clipped n-gram counts nor the closest reference length, so BLEU is unchanged
        most = max(len(r) for r in refs.values())
        streams = [[refs[k][min(j, len(refs[k]) - 1)] for k in keys] for j in range(most)]
        tokenize = self.bleu_tokenize
        if tokenize == "auto":
            hangul = any("\uac00" <= ch <= "\ud7a3" for refs_of in refs.values() for ref in refs_of for ch in ref)
            tokenize = "ko-mecab" if hangul else "13a"
        return {
            "bleu": float(sacrebleu.corpus_bleu(hyps, streams, tokenize=tokenize).score),
            "chrf": float(sacrebleu.corpus_chrf(hyps, streams).score),
            "slot_error_rate": slot_error_rate([mrs[k] for k in keys], hyps),
            "perplexity": perplexity(
                model, self.train_examples(tokenizer, rows), batch_size=batch_size, pad_id=_pad_id(tokenizer)
            ),
        }


def _pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


def _pad(
    seqs: Sequence[Sequence[int]], pad_id: int, fill: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id if fill is None else fill, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def lm_blocks(tokenizer: Any, texts: Sequence[str], block: int = 128) -> list[tuple[list[int], list[int]]]:
    """Concatenate texts (separated by EOS) and cut into ``block``-token training pairs."""
    eos = getattr(tokenizer, "eos_token_id", None)
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer.encode(text, add_special_tokens=False))
        if eos is not None:
            stream.append(int(eos))
    out = []
    for start in range(0, len(stream) - 1, block):
        piece = stream[start : start + block]
        if len(piece) >= 2:
            out.append((piece, list(piece)))
    if not out:
        raise InvalidInput("the text is too short to make one training block; give more text")
    return out


def batches(
    examples: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    steps: int,
    pad_id: int = 0,
    seed: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """``steps`` padded batches drawn by seeded reshuffled passes over ``examples``."""
    if not examples:
        raise InvalidInput("no training examples; give a data file with rows")
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order.extend(fresh)
        pick, order = order[:batch_size], order[batch_size:]
        ids, mask = _pad([examples[i][0] for i in pick], pad_id)
        labels, _ = _pad([examples[i][1] for i in pick], pad_id, fill=-100)
        yield {"input_ids": ids, "attention_mask": mask, "labels": labels}


@torch.no_grad()
def perplexity(
    model: Any, examples: Sequence[tuple[list[int], list[int]]], batch_size: int = 8, pad_id: int = 0
) -> float:
    """Token-weighted perplexity of ``model`` on (ids, labels) pairs."""
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        ids, mask = _pad([e[0] for e in chunk], pad_id)
        labels, _ = _pad([e[1] for e in chunk], pad_id, fill=-100)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
        )
        total_nll += float(nll)
        total_tokens += int((target != -100).sum())
    return math.exp(total_nll / max(total_tokens, 1))


@torch.no_grad()
def sample_blocks(
    model: Any,
    tokenizer: Any,
    count: int,
    length: int = 128,
    batch_size: int = 8,
    temperature: float = 1.0,
    top_k: int = 50,
    seed: int = 0,
) -> list[tuple[list[int], list[int]]]:
    """``count`` training blocks of ``length`` tokens written by ``model`` itself (data-free calibration).

    Each sequence starts from the beginning-of-text token, or an end-of-text token where the tokenizer
    has none, and a first token drawn uniformly from the vocabulary, then continues by top-k sampling —
    the recipe of data-free quantisation-aware training (LLM-QAT): a full-precision model's own text
    carries its output distribution, so scales tuned on it recover what quantisation lost, with no
    dataset at hand. Returns (ids, labels) pairs as :func:`lm_blocks` does.
    """
    if count < 1 or length < 2:
        raise InvalidInput(f"sample_blocks needs count >= 1 and length >= 2 (got {count}, {length})")
    start = getattr(tokenizer, "bos_token_id", None)
    if start is None:
        start = getattr(tokenizer, "eos_token_id", None)
    if start is None:
        raise InvalidInput("the tokenizer has neither a beginning- nor an end-of-text token to start samples from")
    vocab = int(model.get_input_embeddings().weight.shape[0])
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    out: list[tuple[list[int], list[int]]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        while len(out) < count:
            n = min(batch_size, count - len(out))
            first = torch.randint(0, vocab, (n, 1), generator=gen)
            ids = torch.cat([torch.full((n, 1), int(start)), first], dim=1)
            ids = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=temperature,
                top_k=top_k, top_p=1.0, max_new_tokens=length - 2, min_new_tokens=length - 2,
                pad_token_id=int(start),
            )
            out.extend((row[:length], list(row[:length])) for row in ids.tolist())
    model.train(was_training)
    return out
