"""The process set: Procfile and docker-compose.yml describe the same processes."""

from __future__ import annotations

import yaml

from tests.support import REPO


def procfile() -> dict[str, str]:
    entries = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def compose_services() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def test_the_procfile_has_the_designed_processes():
    assert list(procfile()) == [
        "web",
        "engine",
        "riskwatch",
        "worker",
        "risk_worker",
        "beat",
        "telegram",
        "sim",
    ]


def test_every_process_is_a_compose_service_running_the_same_program():
    services = compose_services()
    for name, command in procfile().items():
        service = services[name]
        compose_command = " ".join(service["command"])
        program = command.split("CONTROLPANEL_PROCESS=web ")[-1].split()[:3]
        assert " ".join(program).split(" --")[0] in compose_command, (name, compose_command)
        assert service["restart"] == "unless-stopped"
        assert service["healthcheck"]["test"][-1] == name, "each service checks its own heartbeat"
        assert service["env_file"] == ".env"


def test_compose_has_the_stores_with_healthchecks_and_optional_profiles():
    services = compose_services()
    assert {"postgres", "redis"} <= set(services)
    assert all("healthcheck" in services[s] for s in ("postgres", "redis"))
    assert services["sim"]["profiles"] == ["sim"] and services["telegram"]["profiles"] == ["telegram"]
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["web"]["environment"]["CONTROLPANEL_PROCESS"] == "web"
    assert services["engine"]["environment"]["DATABASE_URL"].startswith("postgres://")


def celery_workers() -> dict[str, str]:
    return {
        name: command
        for name, command in procfile().items()
        if command.startswith("celery -A controlpanel worker")
    }


def test_each_celery_queue_has_one_worker_and_compose_runs_it_exactly_as_the_procfile():
    from django.conf import settings

    workers = celery_workers()
    queues = {name: command.split(" -Q ")[1].split()[0] for name, command in workers.items()}
    # The default worker never takes the risk queue: it would hold risk tasks behind a long one.
    assert queues == {"worker": settings.CELERY_TASK_DEFAULT_QUEUE, "risk_worker": settings.RISK_QUEUE}
    assert sorted(queues.values()) == sorted(settings.CELERY_TASK_QUEUES)
    services = compose_services()
    for name, command in workers.items():
        assert services[name]["command"] == command.split(), name


def test_make_run_starts_every_procfile_process_this_configuration_needs():
    from core.heartbeat import KNOWN_PROCESSES, required_processes

    assert set(procfile()) == set(KNOWN_PROCESSES)
    started = required_processes(exchange_mode="sim", telegram_enabled=True)
    assert set(started) == set(procfile()) and {"worker", "risk_worker"} <= set(started)
    assert "risk_worker" in required_processes(exchange_mode="live", telegram_enabled=False)
