"""The query form sent to Prometheus: whatever the PromQL, Go's ParseForm reads back exactly it."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import example, given
from hypothesis import strategies as st

from adapter.backends.prometheus_api import form_encoded

forms = st.dictionaries(st.sampled_from(["query", "time", "match[]", "start"]), st.text(), max_size=3)


@example({"query": 'a{pod=~"x\\\\-1|y+z%20 w"}', "time": "1.5"})
@given(forms)
def test_form_decodes_to_the_values_sent(form: dict[str, str]) -> None:
    # parse_qsl decodes as Go's url.ParseQuery does: "+" and "%20" are spaces, "%XX" bytes are UTF-8.
    encoded = form_encoded(form).decode("ascii")
    assert dict(parse_qsl(encoded, keep_blank_values=True, strict_parsing=bool(form))) == form
