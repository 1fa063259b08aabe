"""A benchmark's rows and provenance, before it is registered.

A reference model's build (``demos/*``) hands one to ``bibia seed``: exactly
the rows its evaluation scored, in the task's input and truth columns, with
where they come from, in French. The service registers it like an expert's
upload (content hash, version, visibility).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True, eq=False)
class BenchmarkData:
    """A benchmark ready to register.

    Attributes:
        frame: the rows: the task's input columns then its truth columns,
            nothing else, dates as ISO ``YYYY-MM-DD`` strings.
        slug: its identifier (``cantine-nantes-2017-2018``...).
        title: its French title.
        task: the slug of the task it evaluates.
        description: what the rows are and how they were selected, in French.
        producer: who produced the data (« Nantes Métropole »...).
        period_start: first day covered (ISO date).
        period_end: last day covered (ISO date).
        licence: the data's licence (« ODbL »...).
        source_url: where the data is published ("" when nowhere: synthetic data).
    """

    frame: pd.DataFrame
    slug: str
    title: str
    task: str
    description: str
    producer: str
    period_start: str
    period_end: str
    licence: str
    source_url: str = ""
