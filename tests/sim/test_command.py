"""The command line: `python -m simulator` and `manage.py run_sim` share one parser."""

from decimal import Decimal

import pytest

from simulator import cli


def parse(*argv):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.options_from(parser.parse_args(list(argv)))


def test_defaults_are_a_still_market_on_8601():
    options = parse()
    assert (options.host, options.port, options.data_dir, options.speed) == ("127.0.0.1", 8601, None, 1.0)
    assert (options.api_key, options.api_secret) == ("sim-api-key", "sim-api-secret")
    assert options.equity == Decimal("10000") and options.rate_tier == "default"


def test_replay_options(tmp_path):
    options = parse("--data", str(tmp_path), "--speed", "max", "--port", "9000", "--rate-tier", "vip2")
    assert (options.data_dir, options.speed, options.port, options.rate_tier) == (
        str(tmp_path),
        0.0,
        9000,
        "vip2",
    )
    assert parse("--speed", "10").speed == 10.0


def test_keys_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SIM_API_KEY", "k2")
    monkeypatch.setenv("SIM_API_SECRET", "s2")
    monkeypatch.setenv("SIM_RATE_TIER", "pro1")
    options = parse()
    assert (options.api_key, options.api_secret, options.rate_tier) == ("k2", "s2", "pro1")


def test_dcp_is_off_by_default_and_set_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv("SIM_DCP_ENABLED", raising=False)
    assert parse().dcp_enabled is False  # as on a retail account
    assert parse("--dcp").dcp_enabled is True
    monkeypatch.setenv("SIM_DCP_ENABLED", "true")
    assert parse().dcp_enabled is True
    assert parse("--no-dcp").dcp_enabled is False
    monkeypatch.setenv("SIM_DCP_ENABLED", "maybe")
    with pytest.raises(ValueError, match="SIM_DCP_ENABLED"):
        parse()


@pytest.mark.parametrize(
    "argv", [["--speed", "-1"], ["--equity", "lots"], ["--rate-tier", "vip9"], ["--data", "/no/such/dir"]]
)
def test_bad_arguments_are_refused(argv):
    with pytest.raises((SystemExit, ValueError)):
        parse(*argv)


def test_the_django_command_uses_the_same_arguments():
    django = pytest.importorskip("django")
    from controlpanel.management.commands.run_sim import Command

    parser = Command().create_parser("manage.py", "run_sim")
    options = cli.options_from(vars(parser.parse_args(["--port", "8700", "--speed", "0"])))
    assert (options.port, options.speed) == (8700, 0.0)
    assert django.VERSION[0] >= 4
