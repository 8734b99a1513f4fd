"""Content digests: equal content gives equal digests whatever the layout; any changed value, id or column
gives another."""

from pathlib import Path

import numpy as np
import pandas as pd

from twin.digest import content_digest
from twin.water import read_inp


def test_equal_content_equal_digest_whatever_the_layout():
    a = pd.DataFrame({"x": [1.0, np.nan, 3.0], "name": ["p", "q", None]}, index=["i", "j", "k"])
    b = pd.DataFrame({"name": ["p", "q", None]}, index=["i", "j", "k"])
    b["x"] = np.array([1.0, float("nan"), 3.0])
    b = b[["x", "name"]]
    assert content_digest(a) == content_digest(b)
    assert content_digest(a, {"k": 1, "j": [1, 2]}) == content_digest(b, {"j": [1, 2], "k": 1})


def test_any_change_changes_the_digest():
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["i", "j", "k"])
    base = content_digest(a)
    assert content_digest(a.assign(x=[1.0, 2.0, 3.0000000001])) != base
    assert content_digest(a.rename(index={"k": "l"})) != base
    assert content_digest(a.rename(columns={"x": "y"})) != base
    assert content_digest(a.astype(int)) != base  # another dtype kind
    assert content_digest(a.iloc[[1, 0, 2]]) != base  # order is content


def test_a_water_network_digest_sees_tables_controls_and_options():
    wn = read_inp(Path(__file__).parent / "data" / "water" / "Net1.inp")
    base = content_digest(wn)
    assert content_digest(wn.copy()) == base
    other = wn.copy()
    other.options.demand_multiplier = 1.1
    assert content_digest(other) != base
    other = wn.copy()
    other.controls = other.controls[:-1]
    assert content_digest(other) != base
    other = wn.copy()
    other.pipe.loc[other.pipe.index[0], "roughness"] = 99.0
    assert content_digest(other) != base
