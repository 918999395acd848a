"""BM25F: lexical relevance of documents made of weighted fields, for weighted queries.

For a term ``t`` and a document ``d`` with fields ``f`` (weight ``w_f``, length
normalisation ``b_f``)::

    tf(t, d)    = Σ_f w_f · count_f(t, d) / (1 - b_f + b_f · len_f(d) / avglen_f)
    score(q, d) = Σ_t q(t) · idf(t) · tf(t, d) / (k1 + tf(t, d))
    idf(t)      = ln(1 + (N + P - df(t) + 0.5) / (df(t) + 0.5))

(Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond",
2009, §3.5.) ``P`` pseudo-documents that contain no term are added to the count, so
that in a small library (one file, one section) a term every section shares still
says something; in a large one they change little. Everything but the query weights ``q(t)`` is computed once, when the
index is built: a query only walks the posting lists of its own terms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

K1 = 1.2
PSEUDO_DOCUMENTS = 10


@dataclass(frozen=True)
class FieldWeight:
    """How much a match in one field counts, and how much its length dampens it."""

    weight: float
    b: float = 0.75


Document = Mapping[str, Sequence[str]]


class Bm25fIndex:
    """Documents ``0..N-1`` indexed for BM25F under fixed field weights."""

    def __init__(
        self,
        documents: Sequence[Document],
        fields: Mapping[str, FieldWeight],
        idf_floor: float = 0.0,
    ) -> None:
        """``idf_floor`` (a share of :attr:`unit`) keeps a common term worth something: a
        workload named by most sections still tells them from the ones that do not."""
        self.fields = dict(fields)
        self._idf_floor = idf_floor
        self._counts: list[dict[str, Counter[str]]] = [
            {name: Counter(doc.get(name, ())) for name in fields} for doc in documents
        ]
        self._postings = {
            term: (
                np.array([d for d, _ in entries], dtype=np.int32),
                np.array([v for _, v in entries]),
            )
            for term, entries in self._build(documents).items()
        }

    def __len__(self) -> int:
        return len(self._counts)

    @property
    def unit(self) -> float:
        """The idf of a term found in exactly one document: scores divided by it compare
        across libraries of any size (one perfect match of a rare term is about 1)."""
        return math.log(1 + (len(self) + PSEUDO_DOCUMENTS - 1 + 0.5) / 1.5)

    def scores(self, query: Mapping[str, float]) -> np.ndarray:
        """The score of every document (0 where no query term matches), as one array."""
        # One bincount over the matched postings instead of one scattered add per term:
        # each document's terms are summed in the same order, so the scores are the same.
        docs, values = [], []
        for term, weight in query.items():
            posting = self._postings.get(term)
            if posting is not None:
                docs.append(posting[0])
                values.append(weight * posting[1])
        if not docs:
            return np.zeros(len(self))
        return np.bincount(
            np.concatenate(docs), weights=np.concatenate(values), minlength=len(self)
        )

    def contribution(self, doc: int, term: str) -> float:
        """What one term adds to a document's score, per unit of query weight."""
        posting = self._postings.get(term)
        if posting is None:
            return 0.0
        docs, values = posting
        where = np.flatnonzero(docs == doc)
        return float(values[where[0]]) if where.size else 0.0

    def fields_matching(self, doc: int, term: str) -> list[str]:
        """The fields of a document that contain ``term``, strongest first."""
        counts = self._counts[doc]
        found = [name for name in self.fields if counts[name][term]]
        return sorted(found, key=lambda name: -self.fields[name].weight)

    def _build(self, documents: Sequence[Document]) -> dict[str, list[tuple[int, float]]]:
        total = len(documents)
        average = {
            name: sum(sum(c[name].values()) for c in self._counts) / max(total, 1) or 1.0
            for name in self.fields
        }
        floor = self._idf_floor * self.unit
        weighted: dict[str, list[tuple[int, float]]] = {}
        for doc, counts in enumerate(self._counts):
            for term, tf in self._weighted_tf(counts, average).items():
                weighted.setdefault(term, []).append((doc, tf))
        postings: dict[str, list[tuple[int, float]]] = {}
        for term, entries in weighted.items():
            unseen = total + PSEUDO_DOCUMENTS - len(entries)
            idf = max(math.log(1 + (unseen + 0.5) / (len(entries) + 0.5)), floor)
            postings[term] = [(doc, idf * tf / (K1 + tf)) for doc, tf in entries]
        return postings

    def _weighted_tf(
        self, counts: dict[str, Counter[str]], average: dict[str, float]
    ) -> dict[str, float]:
        tf: dict[str, float] = {}
        for name, field in self.fields.items():
            length = sum(counts[name].values())
            norm = 1 - field.b + field.b * length / average[name]
            for term, count in counts[name].items():
                tf[term] = tf.get(term, 0.0) + field.weight * count / norm
        return tf
