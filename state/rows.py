"""Rows for display: Reflex tables here are lists of str->str dicts (typed, simple to render)."""


def as_text(rows: list[dict]) -> list[dict[str, str]]:
    return [{k: ("yes" if v is True else "" if v is False else str(v)) for k, v in row.items()} for row in rows]
