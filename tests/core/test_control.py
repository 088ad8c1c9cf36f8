"""Parsing `iris qlist` and `iris list` output into values."""

from __future__ import annotations

import pytest

from irisd.core.control import InstanceStatus, Malformed, parse_list, parse_qlist, parse_qlist_line

# Real strings from isclib's tests (FACTS §4.2).
RUNNING = (
    "DOCKER^/ensemble/instances/docker^2018.1.1.643.0^running, since Mon Jul 23 14:42:09 2018^"
    "iris.cpf^1972^57772^62972^ok^IRIS^^^/ensemble/instances/docker"
)
DOWN_OLD = (
    "DOCKER^/ensemble/instances/docker/^2015.2.2.805.0.16216^down, last used Fri May 13 18:12:33"
    " 2016^cache.cpf^56772^57772^62972^^"
)
MIRROR = (
    "INSTTEST^/ensemble/instances/insttest/^2015.2.2.805.0.16216^running, since Fri May 13 "
    "22:07:02 2016^cache.cpf^56772^57772^62972^ok^^Failover^Primary^/mgr/config"
)


def test_running_line_has_every_field_in_order() -> None:
    status = parse_qlist_line(RUNNING)
    assert isinstance(status, InstanceStatus)
    assert (status.name, status.status, status.status_detail) == (
        "DOCKER", "running", "since Mon Jul 23 14:42:09 2018",
    )  # fmt: skip
    assert (status.superserver_port, status.web_port, status.jdbc_port) == (1972, 57772, 62972)
    assert (status.state, status.product, status.data_directory) == (
        "ok", "IRIS", "/ensemble/instances/docker",
    )  # fmt: skip
    assert status.healthy


def test_down_line_of_an_old_version_defaults_state_to_ok() -> None:
    status = parse_qlist_line(DOWN_OLD)
    assert isinstance(status, InstanceStatus)
    assert (status.status, status.state, status.running) == ("down", "ok", False)


def test_mirror_fields() -> None:
    status = parse_qlist_line(MIRROR)
    assert isinstance(status, InstanceStatus)
    assert (status.mirror_type, status.mirror_status) == ("Failover", "Primary")


@pytest.mark.parametrize(
    "line", ["IRIS^/x^1", "a^" * 14 + "b", "garbage"], ids=["too-few", "too-many", "no-carets"]
)
def test_malformed_lines_are_values(line: str) -> None:
    assert isinstance(parse_qlist_line(line), Malformed)


def test_parse_qlist_skips_blank_lines() -> None:
    assert len(parse_qlist(f"\n{RUNNING}\n\n{MIRROR}\n")) == 2


LIST = """
Configuration 'IRIS'   (default)
    directory:    /intersystems
    versionid:    2023.1.0.235.1com
    datadir:      /intersystems
    conf file:    iris.cpf  (SuperServer port = 1972, WebServer = 52773)
    status:       running, since Tue Jun 27 01:55:25 2023
    state:        ok
    product:      InterSystems IRIS

Configuration 'IRIS2'
    directory:    /intersystems2
    status:       down, last used Thu Aug 10 07:21:10 2023
"""


def test_list_blocks() -> None:
    first, second = parse_list(LIST)
    assert (first.name, first.default, first.status) == ("IRIS", True, "running")
    assert first.cpf_file == "iris.cpf"
    assert first.ports == (1972, 52773)
    assert first.field("versionid") == "2023.1.0.235.1com"
    assert (second.name, second.default, second.status, second.ports) == (
        "IRIS2", False, "down", None,
    )  # fmt: skip
