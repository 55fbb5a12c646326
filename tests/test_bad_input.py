"""Bad input through the command line: exit status 2, ``file:line:col: field.path: message``,
every problem at once, never a traceback."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from simsys.cli import cli

GOOD = """\
name: shop
duration: 1min
services:
  gateway:
    workers: 4
    service_time: 5ms
    calls: [db]
  db:
    service_time: 2ms
workload:
  - {type: poisson, rate: 10/s, target: gateway}
"""

WHERE = re.compile(r"^\S+:\d+:\d+: ")  # file:line:col:


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files are named as typed: s.yaml:5:14: ...


def check(tmp_path: Path, text: str, *args: str, command: str = "validate",
          name: str = "s.yaml") -> list[str]:
    """Run the CLI on ``text``; assert exit 2 with no traceback; return the stderr lines."""
    (tmp_path / name).write_text(textwrap.dedent(text))
    r = CliRunner().invoke(cli, [command, name, *args])
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    assert r.stdout == ""
    return r.stderr.splitlines()


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_the_good_file_is_good(tmp_path):
    (tmp_path / "s.yaml").write_text(GOOD)
    assert CliRunner().invoke(cli, ["validate", str(tmp_path / "s.yaml")]).exit_code == 0


def test_unknown_key(tmp_path):
    lines = check(tmp_path, edit("    workers: 4\n", "    workers: 4\n    wrokers: 8\n"))
    assert lines == ["s.yaml:6:5: services.gateway.wrokers: unknown key (did you mean 'workers'?)"]


def test_wrong_type(tmp_path):
    lines = check(tmp_path, edit("workers: 4", "workers: many"))
    assert lines == ["s.yaml:5:14: services.gateway.workers: expected a whole number, got 'many'"]


def test_bad_unit(tmp_path):
    lines = check(tmp_path, edit("duration: 1min", "duration: 10 minutes"))
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:2:11: duration: expected a duration such as 250us, 5ms")
    assert lines[0].endswith("got '10 minutes'")


def test_bad_unit_in_a_distribution(tmp_path):
    lines = check(tmp_path, edit("service_time: 2ms", "service_time: {dist: exponential, mean: 2 parsecs}"))
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:9:45: services.db.service_time.mean: expected a duration")


def test_negative_count(tmp_path):
    lines = check(tmp_path, edit("workers: 4", "workers: -2"))
    assert lines == ["s.yaml:5:14: services.gateway.workers: expected a whole number ≥ 1, got -2"]


def test_negative_count_through_run(tmp_path):
    lines = check(tmp_path, edit("workers: 4", "workers: -2"), command="run")
    assert lines == ["s.yaml:5:14: services.gateway.workers: expected a whole number ≥ 1, got -2"]


def test_missing_target_service(tmp_path):
    lines = check(tmp_path, edit("target: gateway", "target: gatewy"))
    assert lines == ["s.yaml:11:41: workload[0].target: unknown service 'gatewy' "
                     "(did you mean 'gateway'?); services are: db, gateway"]


def test_call_to_missing_service(tmp_path):
    lines = check(tmp_path, edit("calls: [db]", "calls: [db, search]"))
    assert lines == ["s.yaml:7:17: services.gateway.calls[1]: calls unknown service 'search'; "
                     "services are: db, gateway"]


def test_call_cycle(tmp_path):
    lines = check(tmp_path, edit("    service_time: 2ms\n", "    service_time: 2ms\n    calls: [gateway]\n"))
    assert len(lines) == 1
    assert WHERE.match(lines[0])
    assert "services.gateway.calls: synchronous calls form a cycle: gateway -> db -> gateway" in lines[0]


def test_warmup_not_shorter_than_duration(tmp_path):
    lines = check(tmp_path, edit("duration: 1min\n", "duration: 1min\nwarmup: 2min\n"))
    assert lines == ["s.yaml:3:9: warmup: expected warmup < duration (60s), got 120s"]


def test_warmup_equal_to_duration(tmp_path):
    lines = check(tmp_path, edit("duration: 1min\n", "duration: 1min\nwarmup: 60s\n"))
    assert lines == ["s.yaml:3:9: warmup: expected warmup < duration (60s), got 60s"]


@pytest.mark.parametrize("rate", ["0/s", "-3/s", "0"])
def test_rate_not_positive(tmp_path, rate):
    lines = check(tmp_path, edit("rate: 10/s", f"rate: {rate}"))
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:11:27: workload[0].rate: expected ")
    assert "> 0" in lines[0] and rate in lines[0]


def test_rate_without_a_time_unit(tmp_path):
    lines = check(tmp_path, edit("rate: 10/s", "rate: 10/fortnight"))
    assert lines[0].startswith("s.yaml:11:27: workload[0].rate: expected a rate such as 200/s")


def test_not_yaml(tmp_path):
    lines = check(tmp_path, "services: [gateway\n  db: {}\n")
    assert len(lines) == 1
    assert WHERE.match(lines[0]) and "not valid YAML" in lines[0]


def test_yaml_but_not_a_mapping(tmp_path):
    lines = check(tmp_path, "- gateway\n- db\n")
    assert lines == ["s.yaml:1:1: expected a mapping of scenario keys, got list"]


def test_binary_file(tmp_path):
    (tmp_path / "s.yaml").write_bytes(b"\x00\xff\xfe\x00")
    r = CliRunner().invoke(cli, ["validate", "s.yaml"])
    assert r.exit_code == 2 and r.stderr == "s.yaml: not a text file (expected UTF-8 YAML)\n"


def test_missing_file(tmp_path):
    r = CliRunner().invoke(cli, ["run", "nope.yaml"])
    assert r.exit_code == 2
    assert r.stderr == "nope.yaml: no such file\n"


def test_the_file_is_named_as_typed(tmp_path):
    (tmp_path / "sub").mkdir()
    lines = check(tmp_path, edit("workers: 4", "workers: -2"), name="sub/s.yaml")
    assert lines[0].startswith("sub/s.yaml:5:14: services.gateway.workers: ")


def test_a_directory(tmp_path):
    r = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.stderr


def test_duplicate_key(tmp_path):
    lines = check(tmp_path, edit("    service_time: 5ms\n", "    service_time: 5ms\n    workers: 8\n"))
    assert lines == ['s.yaml:7:5: services.gateway.workers: not valid YAML: duplicate key "workers"']


def test_unknown_workload_type(tmp_path):
    lines = check(tmp_path, edit("type: poisson", "type: bursty"))
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:11:12: workload[0].type: expected ")
    assert "'poisson'" in lines[0] and lines[0].endswith("got 'bursty'")


def test_unknown_distribution(tmp_path):
    lines = check(tmp_path, edit("service_time: 2ms", "service_time: {dist: weibull, k: 2}"))
    assert len(lines) == 1
    assert lines[0].startswith("s.yaml:9:19: services.db.service_time: unknown distribution 'weibull'")


def test_every_problem_at_once(tmp_path):
    text = edit("workers: 4", "workers: -2").replace("service_time: 2ms", "service_time: 2 parsecs")
    lines = check(tmp_path, text)
    assert len(lines) == 2
    assert all(WHERE.match(line) for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"services.gateway.workers",
                                                      "services.db.service_time"}


def test_every_problem_at_once_across_sections(tmp_path):
    text = (edit("duration: 1min", "duration: soon")
            .replace("workers: 4", "workers: 0")
            .replace("rate: 10/s", "rate: -1/s")
            .replace("name: shop\n", "name: shop\ncolour: blue\n"))
    lines = check(tmp_path, text)
    assert len(lines) == 4
    assert sorted(line.split(": ")[1] for line in lines) == [
        "colour", "duration", "services.gateway.workers", "workload[0].rate"]


# -- --set ------------------------------------------------------------------------------------
def test_set_without_equals(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "services.gateway.workers")
    assert lines == ["--set 'services.gateway.workers': expected key.path=value"]


def test_set_bad_value_names_the_override(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "services.gateway.workers=-2", command="run")
    assert lines == ["--set: services.gateway.workers: expected a whole number ≥ 1, got -2"]


def test_set_unknown_key(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "services.gateway.wrokers=3")
    assert lines == ["--set: services.gateway.wrokers: unknown key (did you mean 'workers'?)"]


def test_set_unknown_top_level_key(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "bogus.x=1")
    assert lines == ["--set: bogus: unknown key"]


def test_set_into_a_list_by_index(tmp_path):
    assert check(tmp_path, GOOD, "--set", "workload.0.rate=0/s") == [
        "--set: workload[0].rate: expected a number > 0, got '0/s'"]
    assert check(tmp_path, GOOD, "--set", "workload.3.rate=1/s") == [
        "--set workload.3.rate: no item 3 in list"]


def test_set_bad_unit(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "duration=10 minutes")
    assert len(lines) == 1 and lines[0].startswith("--set: duration: expected a duration")


def test_set_into_a_scalar(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "services.gateway.workers.max=3")
    assert lines == ["--set services.gateway.workers.max: workers is not a mapping"]


def test_set_value_that_is_not_yaml(tmp_path):
    lines = check(tmp_path, GOOD, "--set", "services.gateway.calls=[db")
    assert len(lines) == 1
    assert lines[0].startswith("--set 'services.gateway.calls=[db': not valid YAML")


def test_set_does_not_hide_problems_in_the_file(tmp_path):
    lines = check(tmp_path, edit("workers: 4", "workers: -2"), "--set", "duration=2min")
    assert lines == ["s.yaml:5:14: services.gateway.workers: expected a whole number ≥ 1, got -2"]


def test_bad_seed_option(tmp_path):
    (tmp_path / "s.yaml").write_text(GOOD)
    r = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), "--seed", "-1"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_closed_users_who_would_spin_in_zero_time_are_a_clear_error(tmp_path):
    # every request is refused at once (one busy worker, no queue) and users never think: the
    # simulated clock could not move, so the run stops and says which key to change
    text = textwrap.dedent("""\
        duration: 5s
        services:
          web: {workers: 1, queue: 0, service_time: 1s}
        workload:
          - {type: closed, users: 3, target: web}
        """)
    (tmp_path / "s.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.stderr.startswith(f"{tmp_path / 's.yaml'}: workload[0].think_time: at 0 s every "
                               "request is answered in no time")
    fixed = text.replace("target: web}", "target: web, think_time: 10ms}")
    (tmp_path / "s.yaml").write_text(fixed)
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml")]).exit_code == 0


def test_websocket_clients_who_would_spin_in_zero_time_are_a_clear_error(tmp_path):
    text = textwrap.dedent("""\
        duration: 10s
        services:
          chat: {websocket: {max_connections: 5, representation: exact}}
        workload:
          - {type: websocket, target: chat, clients: 20, reconnect: {initial: 0, jitter: none}}
        """)
    (tmp_path / "s.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.stderr.startswith(f"{tmp_path / 's.yaml'}: workload[0].reconnect.initial: at 0 s "
                               "clients are refused in no time and try again with no wait")
    (tmp_path / "s.yaml").write_text(text.replace("initial: 0,", "initial: 100ms,"))
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml")]).exit_code == 0


def test_reference_errors_come_with_the_schema_errors(tmp_path):
    # one report holds both kinds: before, the call to 'dbb' was reported only once the
    # worker count was fixed
    text = GOOD.replace("workers: 4", "workers: four").replace("calls: [db]", "calls: [dbb]")
    lines = check(tmp_path, text)
    assert lines == [
        "s.yaml:5:14: services.gateway.workers: expected a whole number, got 'four'",
        "s.yaml:7:13: services.gateway.calls[0]: calls unknown service 'dbb' "
        "(did you mean 'db'?); services are: db, gateway",
    ]
    fixed = check(tmp_path, text.replace("workers: four", "workers: 4"))
    assert fixed == lines[1:]  # the same words whichever check finds it


def test_unknown_keys_get_the_closest_known_key(tmp_path):
    lines = check(tmp_path, GOOD.replace("workers: 4", "wrkers: 4").replace(
        "service_time: 2ms", "service_time: 2ms\n    zzzz: 1"))
    assert lines == ["s.yaml:5:5: services.gateway.wrkers: unknown key (did you mean 'workers'?)",
                     "s.yaml:10:5: services.db.zzzz: unknown key"]
