"""A diamond: split a text into words, count them two ways at once, write a report.

split ─┬─ count_letters ─┬─ report
       └─ count_words ───┘
"""

from __future__ import annotations

import json
from typing import Any

from datacatalog.orchestrator.decorators import operation, workflow


@operation(toolbelt=True)
def split(ctx: Any, toolbelt: Any, text: str) -> None:
    words = text.split()
    toolbelt.output_path("words.json").write_text(json.dumps(words), encoding="utf-8")
    ctx.logger.info("split %d words", len(words))


@operation(toolbelt=True, suffix_template="-{unit}")
def count(ctx: Any, toolbelt: Any, unit: str) -> None:
    words = json.loads(toolbelt.output_path("words.json").read_text(encoding="utf-8"))
    total = len(words) if unit == "words" else sum(len(w) for w in words)
    toolbelt.output_path(f"count-{unit}.json").write_text(json.dumps(total), encoding="utf-8")
    ctx.logger.info("%d %s", total, unit)


@operation(toolbelt=True, max_attempts=2)
def report(ctx: Any, toolbelt: Any) -> None:
    counts = {
        unit: json.loads(toolbelt.output_path(f"count-{unit}.json").read_text(encoding="utf-8"))
        for unit in ("words", "letters")
    }
    toolbelt.output_path("report.json").write_text(json.dumps(counts), encoding="utf-8")


@workflow(suffix_template="-{label}")
def diamond(ctx: Any, graph: Any, text: str, label: str = "example") -> None:
    """Split ``text``, count words and letters in parallel, write ``report.json``."""
    first = graph.add(split, text=text)
    words = graph.add(count, after=[first], unit="words")
    letters = graph.add(count, after=[first], unit="letters")
    graph.add(report, after=[words, letters])
