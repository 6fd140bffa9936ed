"""Keyset pagination: every page, however deep, costs an index seek and one page of rows."""

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet

PAGE_SIZE = 50


@dataclass
class Page:
    """One page of a keyset-paginated listing.

    ``next_key`` and ``previous_key`` are the key values to pass as ``after`` and ``before``
    for the neighbouring pages, or None when there is no such page.
    """

    items: list = field(default_factory=list)
    next_key: tuple | None = None
    previous_key: tuple | None = None


def keyset_page(
    queryset: QuerySet, keys: tuple[str, ...], *, descending=False, after=None, before=None, size=PAGE_SIZE
):
    """The page of ``queryset`` ordered by ``keys`` that starts after ``after`` or ends before
    ``before`` (tuples of key values; neither for the first page).

    Unlike OFFSET, a deep page costs the same as the first: the database seeks to the key in
    its index and reads ``size + 1`` rows. ``keys`` must identify a row, so the last should be
    unique. Whether the other direction has rows is one more indexed EXISTS, not a COUNT.
    """

    def order(reverse):
        flip = descending != reverse
        return [f"-{k}" if flip else k for k in keys]

    def beyond(values, reverse):
        # Rows strictly past ``values`` in display order (or before them when ``reverse``).
        op = "lt" if descending != reverse else "gt"
        lexicographic = reduce(
            or_,
            (
                Q(**dict(zip(keys[:i], values[:i], strict=True)), **{f"{keys[i]}__{op}": values[i]})
                for i in range(len(keys))
            ),
        )
        # The leading bound alone lets the database use the index on the first key.
        return Q(**{f"{keys[0]}__{op}e": values[0]}) & lexicographic

    def key_of(item):
        return tuple(getattr(item, k) for k in keys)

    if before is not None:
        rows = list(queryset.filter(beyond(before, reverse=True)).order_by(*order(reverse=True))[: size + 1])
        has_previous = len(rows) > size
        items = rows[:size][::-1]
        has_next = bool(items) and queryset.filter(beyond(key_of(items[-1]), reverse=False)).exists()
    else:
        scoped = queryset.filter(beyond(after, reverse=False)) if after is not None else queryset
        rows = list(scoped.order_by(*order(reverse=False))[: size + 1])
        has_next = len(rows) > size
        items = rows[:size]
        has_previous = (
            after is not None and bool(items) and queryset.filter(beyond(key_of(items[0]), reverse=True)).exists()
        )
    return Page(
        items=items,
        next_key=key_of(items[-1]) if has_next else None,
        previous_key=key_of(items[0]) if has_previous else None,
    )
