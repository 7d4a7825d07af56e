"""Server-side paging shared by every read model that lists a table which can grow large."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def paging(page: int, page_size: int) -> tuple[int, int]:
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    return max(1, int(page)), page_size


def fmt_time(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else ""
