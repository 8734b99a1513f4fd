"""MATPOWER case files: reading, the write → read round trip, and malformed files."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from tests.conftest import IEEE_CASES, MATPOWER_DIR
from twin.energy import Grid, MatpowerFormatError, read_matpower, write_matpower


@pytest.mark.parametrize("case", IEEE_CASES)
def test_round_trip_is_lossless(case, tmp_path):
    g = read_matpower(MATPOWER_DIR / f"{case}.m")
    (tmp_path / "again").mkdir()
    out = write_matpower(g, tmp_path / f"{case}.m")
    g2 = read_matpower(out)
    assert g.equals(g2), [n for n, df in g.tables() if not df.equals(g2[n])]
    # and the written file is stable under a second round trip
    out2 = write_matpower(g2, tmp_path / "again" / f"{case}.m")
    assert out2.read_text() == out.read_text()


def test_case9_contents():
    g = read_matpower(MATPOWER_DIR / "case9.m")
    assert g.base_mva == 100
    assert list(g.bus.index) == [str(i) for i in range(1, 10)]
    assert g.bus.loc["1", "type"] == "ref"
    assert g.load.loc["5", "p_mw"] == 90
    assert g.generator.loc["2", "vm_pu"] == pytest.approx(1.025)
    assert g.generator_cost.loc["1", "coefficients"] == (0.11, 5.0, 150.0)
    assert len(g.line) == 9 and len(g.transformer) == 0


def test_case300_transformers_and_names():
    g = read_matpower(MATPOWER_DIR / "case300.m")
    assert len(g.line) + len(g.transformer) == 411
    assert (g.transformer["tap_ratio"] > 0).all()
    assert g.bus["vn_kv"].gt(0).any()


CASE = """\
function mpc = tiny
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
\t1\t3\t0\t0\t0\t0\t1\t1\t0\t230\t1\t1.1\t0.9;
\t2\t2\t0\t0\t0\t0\t1\t1\t0\t230\t1\t1.1\t0.9;
\t3\t1\t50\t10\t0\t5\t1\t1\t0\t230\t1\t1.1\t0.9;
\t4\t4\t0\t0\t0\t0\t1\t1\t0\t230\t1\t1.1\t0.9;
];
mpc.gen = [
\t1\t0\t0\t300\t-300\t1.02\t100\t1\t250\t10\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0;
\t2\t30\t0\t300\t-300\t1.01\t100\t1\t300\t10\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0;
\t2\t20\t0\t100\t-100\t1.01\t100\t0\t300\t10\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0;
];
mpc.branch = [
\t1\t2\t0.01\t0.085\t0.176\t250\t250\t250\t0\t0\t1\t-360\t360;
\t2\t3\t0.032\t0.161\t0.306\t250\t250\t250\t0.98\t3\t1\t-360\t360;
\t1\t3\t0.017\t0.092\t0.158\t250\t250\t250\t0\t0\t0\t-360\t360;
\t3\t4\t0.01\t0.05\t0\t250\t250\t250\t0\t0\t1\t-360\t360;
];
"""


def write_case(tmp_path, text, name="tiny.m"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_features_of_a_small_case(tmp_path):
    g = read_matpower(write_case(tmp_path, CASE))
    assert not g.bus.loc["4", "in_service"]  # type 4
    assert g.transformer.loc["2", "shift_deg"] == 3 and g.transformer.loc["2", "tap_ratio"] == 0.98
    assert not g.line.loc["3", "in_service"]
    assert (g.generator["bus"] == "2").sum() == 2 and not g.generator.loc["3", "in_service"]
    assert g.shunt.loc["3", "b_mvar"] == 5
    g2 = read_matpower(write_matpower(g, tmp_path / "out.m"))
    assert g.equals(g2)


def test_windows_line_endings_comments_and_commas(tmp_path):
    text = CASE.replace("\t", ", ").replace("mpc.bus = [", "mpc.bus = [ % bus data").replace("\n", "\r\n")
    g = read_matpower(write_case(tmp_path, text))
    assert len(g.bus) == 4 and g.bus.loc["3", "vn_kv"] == 230


def _err(tmp_path, text):
    with pytest.raises(MatpowerFormatError) as exc:
        read_matpower(write_case(tmp_path, text))
    return str(exc.value)


def test_missing_matrix(tmp_path):
    msg = _err(tmp_path, CASE.split("mpc.branch")[0])
    assert "tiny.m" in msg and "mpc.branch" in msg


def test_wrong_column_count(tmp_path):
    bad = CASE.replace("\t2\t2\t0\t0\t0\t0\t1\t1\t0\t230\t1\t1.1\t0.9;", "\t2\t2\t0\t0\t0\t0\t1\t1\t0\t230\t1;")
    msg = _err(tmp_path, bad)
    assert "tiny.m:6" in msg and "mpc.bus" in msg and "11 columns" in msg


def test_too_few_columns(tmp_path):
    bad = CASE.replace("\t1\t2\t0.01\t0.085\t0.176\t250\t250\t250\t0\t0\t1\t-360\t360;", "\t1\t2\t0.01;")
    msg = _err(tmp_path, bad)
    assert "mpc.branch" in msg


def test_non_numeric_field(tmp_path):
    msg = _err(tmp_path, CASE.replace("\t3\t1\t50\t10", "\t3\t1\tfifty\t10"))
    assert "tiny.m:7" in msg and "'fifty'" in msg and "mpc.bus" in msg


def test_branch_to_missing_bus(tmp_path):
    msg = _err(tmp_path, CASE.replace("\t3\t4\t0.01\t0.05", "\t3\t7\t0.01\t0.05"))
    assert "tiny.m:19" in msg and "bus 7 does not exist" in msg


def test_generator_at_missing_bus(tmp_path):
    msg = _err(tmp_path, CASE.replace("\t2\t20\t0\t100", "\t9\t20\t0\t100"))
    assert "mpc.gen row 3" in msg and "bus 9" in msg


def test_duplicate_bus_and_bad_type(tmp_path):
    assert "duplicate bus number 2" in _err(tmp_path, CASE.replace("\t4\t4\t0", "\t2\t4\t0"))
    assert "bus type 7" in _err(tmp_path, CASE.replace("\t3\t1\t50", "\t3\t7\t50"))


def test_version_1_and_unclosed(tmp_path):
    assert "version" in _err(tmp_path, CASE.replace("mpc.version = '2';", "mpc.version = '1';"))
    assert "never closed" in _err(tmp_path, CASE.replace("];\nmpc.gen", "\nmpc.gen", 1).rsplit("];", 1)[0])


def test_arithmetic_and_inf_values(tmp_path):
    g = read_matpower(write_case(tmp_path, CASE.replace("\t300\t-300\t1.02", "\tInf\t-Inf\t1.02")
                                 .replace("\t30\t0\t300", "\t50/3\t0\t300")))
    assert np.isinf(g.generator.loc["1", "q_max_mvar"])
    assert g.generator.loc["2", "p_mw"] == pytest.approx(50 / 3)


def test_unknown_field_warns(tmp_path):
    with pytest.warns(UserWarning, match="mpc.areas"):
        read_matpower(write_case(tmp_path, CASE + "mpc.areas = [1 1];\n"))


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_matpower("no/such/case.m")


def test_write_rejects_storage(tmp_path):
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.add("storage", index="S1", bus="5", p_mw=1.0)
    with pytest.raises(ValueError, match="storage"):
        write_matpower(g, tmp_path / "x.m")


def test_python_built_grid_with_string_ids(tmp_path):
    g = Grid(base_mva=100, name="demo")
    g.add("bus", index=["A", "B"], vn_kv=22.0, type=["ref", "pq"])
    g.add("line", index="L1", bus0="A", bus1="B", r_pu=0.01, x_pu=0.05)
    g.add("generator", index="G1", bus="A", vm_pu=1.0)
    g.add("load", index="D1", bus="B", p_mw=5.0, q_mvar=1.0)
    with pytest.warns(UserWarning, match="does not keep") as rec:
        g2 = read_matpower(write_matpower(g, tmp_path / "demo.m"))
    msg = str(rec[0].message)
    assert "generator ids" in msg and "branch ids" in msg and "load ids" in msg
    assert list(g2.bus["name"]) == ["A", "B"]
    assert g2.load["p_mw"].sum() == 5.0


def test_indexed_assignment_is_refused(tmp_path):
    msg = _err(tmp_path, CASE + "mpc.gen(2, 8) = 0;\n")
    assert "tiny.m:21" in msg and "indexed assignment" in msg


IDIOMS = """
%% convert branch impedances from Ohms to p.u.
[PQ, PV, REF, NONE, BUS_I, BUS_TYPE, PD, QD, GS, BS, BUS_AREA, VM, ...
    VA, BASE_KV, ZONE, VMAX, VMIN, LAM_P, LAM_Q, MU_VMAX, MU_VMIN] = idx_bus;
Vbase = mpc.bus(1, BASE_KV) * 1e3;      %% in Volts
Sbase = mpc.baseMVA * 1e6;              %% in VA
mpc.branch(:, [BR_R BR_X]) = mpc.branch(:, [BR_R BR_X]) / (Vbase^2 / Sbase);

%% convert loads from kW to MW
mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3;
"""


def test_distribution_case_unit_conversions(tmp_path):
    plain = read_matpower(write_case(tmp_path, CASE, "plain.m"))
    conv = read_matpower(write_case(tmp_path, CASE + IDIOMS, "conv.m"))
    z_base = 230.0**2 / 100.0  # kV^2 / MVA
    assert conv.line.loc["1", "x_pu"] == pytest.approx(plain.line.loc["1", "x_pu"] / z_base)
    assert conv.transformer.loc["2", "r_pu"] == pytest.approx(plain.transformer.loc["2", "r_pu"] / z_base)
    assert conv.load.loc["3", "p_mw"] == pytest.approx(0.05)
    assert conv.line.loc["1", "b_pu"] == plain.line.loc["1", "b_pu"]  # only R and X are converted


def test_no_lossy_warning_for_a_matpower_grid(tmp_path, recwarn):
    write_matpower(read_matpower(MATPOWER_DIR / "case118.m"), tmp_path / "c.m")
    assert not [w for w in recwarn if "does not keep" in str(w.message)]


def test_empty_generator_and_branch_matrices_round_trip(tmp_path):
    text = CASE.split("mpc.gen = [")[0] + "mpc.gen = [];\nmpc.branch = [\n];\n"
    g = read_matpower(write_case(tmp_path, text))
    assert len(g.generator) == 0 and len(g.line) == 0 and len(g.bus) == 4
    assert g.equals(read_matpower(write_matpower(g, tmp_path / "out.m")))
    assert "no rows" in _err(tmp_path, "mpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [];\n"
                             "mpc.gen = [];\nmpc.branch = [];\n")


def test_nan_and_misplaced_inf_are_rejected(tmp_path):
    msg = _err(tmp_path, CASE.replace("\t1\t2\t0.01\t0.085", "\t1\t2\tNaN\t0.085"))
    assert "tiny.m:16" in msg and "row 1, column 3" in msg and "nan" in msg
    assert "column 9" in _err(tmp_path, CASE.replace("\t3\t1\t50\t10\t0\t5\t1\t1\t0\t230",
                                                    "\t3\t1\t50\t10\t0\t5\t1\t1\tInf\t230"))


def test_reader_refuses_what_it_cannot_read_faithfully(tmp_path):
    assert "transposed" in _err(tmp_path, CASE.replace("0.9;\n];\nmpc.gen", "0.9;\n]';\nmpc.gen", 1))
    assert "cell array" in _err(tmp_path, CASE + "mpc.bus_name = [1; 2; 3; 4];\n")
    assert "version 2" in _err(tmp_path, CASE.replace("mpc.version = '2';\n", ""))
    with pytest.warns(UserWarning, match="sub-fields"):
        read_matpower(write_case(tmp_path, CASE + "mpc.user.note = 3;\n"))


def test_writer_refuses_incomplete_costs(tmp_path):
    g = read_matpower(MATPOWER_DIR / "case9.m")
    g.generator_cost.loc["1", "model"] = 1  # 3 coefficients: not (p, c) pairs
    with pytest.raises(ValueError, match="odd number"):
        write_matpower(g, tmp_path / "x.m")
