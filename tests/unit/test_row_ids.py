"""Row ids as operators type them: one parser for `messages list --id` and the console's `ids` field."""

from __future__ import annotations

import pytest

from replay.filters import MAX_IDS, Filter, FilterError, parse_row_ids


def test_row_ids_are_numbers_with_or_without_a_hash_repeated_or_comma_separated() -> None:
    assert parse_row_ids(["12,#13", " 14 ", "#12", ""]) == (12, 13, 14)


@pytest.mark.parametrize("text", ["abc", "12x", "-3", "1.5", "٣", "58156064-d632-45b6-90ad-f49cc0ab6b60"])
def test_anything_else_is_refused_by_name(text: str) -> None:
    with pytest.raises(FilterError, match="not a row id"):
        parse_row_ids([f"1,{text}"])


def test_a_filter_of_row_ids_is_a_selection_and_is_bounded() -> None:
    assert not Filter(ids=(1,)).empty and Filter(ids=(1, 2)).described() == {"ids": (1, 2)}
    with pytest.raises(FilterError, match=f"at most {MAX_IDS}"):
        Filter(ids=tuple(range(MAX_IDS + 1)))
