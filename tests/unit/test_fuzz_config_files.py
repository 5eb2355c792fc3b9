"""Every file a user hands the programs, mangled at random: it loads, or it is refused with the loader's
own error naming the file (and the line, where the mistake has one). Anything else escaping a loader
would be a traceback in place of a message.

Files: the exporter's ``csv:`` load profile, the adapter's rules YAML, the HPA lab's scenario, HPA and
series files. Each starts from a valid example and gets lines dropped, repeated, cut, or replaced by
noise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.rules import RuleError, parse_rules
from exporter.gpu.profiles import ProfileError, parse_series_csv
from hpalab.hpa_spec import HpaSpecError, parse_hpa
from hpalab.series import SeriesError, parse_series
from kgm_common.scenario import ScenarioError, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpa"
RULES = """\
ruleset: default
metrics:
  - name: gpu_power_watts
    seriesQuery: gpu_power_watts
    window: 2m
    aggregate: sum
    labels: {namespace: namespace, pod: pod, node: node}
    resources:
      pods: sum by (namespace, pod) (avg_over_time(gpu_power_watts{pod!="", <<matchers>>}[<<window>>]))
external:
  - name: queue_depth
    query: sum by (queue) (my_queue_depth{<<matchers>>})
    namespaced: false
"""
PROFILE_CSV = "seconds,utilization\n0,0.1\n30,0.5\n60,0.9\n120,0.2\n"
SOURCE = "input.file"
LOADERS: dict[str, tuple[Callable[[str, str], Any], type[Exception], str]] = {
    "profile-csv": (parse_series_csv, ProfileError, PROFILE_CSV),
    "adapter-rules": (parse_rules, RuleError, RULES),
    "hpa-scenario": (parse_scenario, ScenarioError, (EXAMPLES / "scenario-burst.yaml").read_text()),
    "hpa-spec": (parse_hpa, HpaSpecError, (EXAMPLES / "hpa-gpu-utilization.yaml").read_text()),
    "hpa-series": (parse_series, SeriesError, (EXAMPLES / "series-gpu-utilization.csv").read_text()),
}
# Not NUL and other unprintables: PyYAML reports those by character position, not line.
NOISE = st.text(
    st.sampled_from([*"abcxyz019 -:,.#{}[]()'\"\t*&!|>%@`\\~", "é", "\u2028"]),
    max_size=30,
)


@st.composite
def mangled(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "repeat", "cut", "noise", "insert", "indent"]))
        if edit == "drop":
            del lines[at]
        elif edit == "repeat":
            lines.insert(at, lines[at])
        elif edit == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        elif edit == "noise":
            column = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:column] + draw(NOISE) + lines[at][column:]
        elif edit == "insert":
            lines.insert(at, draw(NOISE))
        else:
            lines[at] = "  " + lines[at]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_valid_examples_load(kind: str) -> None:
    load, _, text = LOADERS[kind]
    load(text, SOURCE)


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_mangled_files_load_or_name_the_file_and_line(kind: str) -> None:
    load, error, text = LOADERS[kind]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mangled(text))
    def check(content: str) -> None:
        try:
            load(content, SOURCE)
        except error as exc:
            message = str(exc)
            assert message.startswith(SOURCE), message
            # A mistake on a line is reported with it; only whole-file problems (empty, no rows) lack one.
            if not re.match(rf"{re.escape(SOURCE)}:\d+", message):
                assert content.strip() == "" or _whole_file_problem(message), message

    check()


def _whole_file_problem(message: str) -> bool:
    return any(
        phrase in message
        for phrase in ("no data rows", "empty", "no HorizontalPodAutoscaler", "not a mapping", "missing")
    )
