"""Tests written from surviving mutants of ``tools/mutate.py`` (see ``tools/mutation-report.md``).

Each test pins behaviour a user relies on that no other test asserted; the comment above it
names the mutant that survived without it.
"""

from __future__ import annotations

from typing import Any

import pytest

from visgate_sdk import Retry, ValidationError


# visgate_sdk.py:529 ("\x7f" <= c <= "\x9f"): both ends of the C1 control range are refused in a
# header value, the printable characters just outside it are sent.
@pytest.mark.parametrize("bad", ["\x7f", "\x9f"])
def test_header_values_refuse_both_ends_of_the_c1_control_range(make_client: Any, bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_client(default_headers={"X-Tag": "a" + bad + "b"})
    assert info.value.field == "X-Tag"


def test_header_values_accept_the_printable_neighbours_of_the_control_range(make_client: Any, httpserver: Any) -> None:
    httpserver.expect_request("/api/v1/usage", headers={"X-Tag": "a~\xa0b"}).respond_with_json({})
    client = make_client(default_headers={"X-Tag": "a~\xa0b"})
    client.usage.get()
    httpserver.check_assertions()


# visgate_sdk.py:670 (min(retry_number, 64)): the documented formula min(backoff_max,
# backoff_factor * 2**n) holds up to the 64th retry; past it the exponent is capped, so a huge
# retry number cannot overflow a float.
def test_backoff_follows_the_documented_formula_up_to_retry_64_and_never_overflows() -> None:
    retry = Retry(backoff_factor=1.0, backoff_max=1e300, jitter=0.0)
    assert retry.backoff(10) == 2.0**10
    assert retry.backoff(64) == 2.0**64
    assert retry.backoff(10**6) == 2.0**64
