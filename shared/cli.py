"""``cfp``: the operators' command line.

cfp infra up|down|status      local PostgreSQL and Kafka (no Docker)
cfp migrate [--service NAME]  Alembic migrations of every service
cfp topics create             Kafka topics with their partition counts
cfp serve NAME                one service under uvicorn
cfp relay NAME                a service's outbox relay as its own process
cfp run [--replay-sample]     everything: infra, migrations, topics, five services
cfp replay FILE               post CFPB-format complaints to intake
cfp token --role ROLE         a bearer token for local use
cfp rotate-vault-keys         re-encrypt intake's personal-data vault under the current key
cfp analytics-rebuild         replay every topic into a fresh analytics read model
cfp train-classifier          train routing's classifier (--with-overrides: plus supervisors' fixes)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.config import PlatformSettings
from shared.events.registry import SERVICE_PORTS, SERVICES, all_topics

app = typer.Typer(help="Complaint and feedback platform: operations.", no_args_is_help=True)
infra_app = typer.Typer(help="Local PostgreSQL and Kafka started by the project itself.")
topics_app = typer.Typer(help="Kafka topics.")
app.add_typer(infra_app, name="infra")
app.add_typer(topics_app, name="topics")
console = Console()

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "data" / "sample" / "cfpb_complaints_sample.csv"


def _ensure_infra() -> dict[str, str]:
    """Start (or reuse) PostgreSQL and Kafka; return the env that points at them."""
    from shared import devinfra

    db = devinfra.ensure_postgres()
    kafka = devinfra.ensure_kafka()
    os.environ["DATABASE_URL"] = db
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka
    return {"DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": kafka}


@infra_app.command("up")
def infra_up() -> None:
    """Start PostgreSQL and Kafka (reused when already running) and create the topics."""
    env = _ensure_infra()
    _create_topics()
    for k, v in env.items():
        console.print(f"{k}={v}")


@infra_app.command("down")
def infra_down() -> None:
    """Stop the local PostgreSQL and Kafka."""
    from shared import devinfra

    devinfra.stop_kafka()
    devinfra.stop_postgres()
    console.print("stopped")


@infra_app.command("status")
def infra_status() -> None:
    """Show what runs."""
    from shared import devinfra

    console.print(devinfra.status())


def _create_topics() -> None:
    from shared import devinfra

    settings = PlatformSettings()
    devinfra.create_topics(
        settings.kafka_bootstrap_servers, all_topics(), prefix=settings.kafka_topic_prefix
    )


@topics_app.command("create")
def topics_create() -> None:
    """Create every platform topic (and its .dlq) with its partition count; idempotent."""
    _create_topics()
    console.print(f"{len(all_topics())} topics present")


@app.command()
def migrate(
    service: Annotated[str | None, typer.Option(help="one service; all when omitted")] = None,
) -> None:
    """Run the Alembic migrations (upgrade to head) of every service, or of one."""
    from shared import migrations

    for name in [service] if service else SERVICES:
        if name not in SERVICES:
            raise typer.BadParameter(f"unknown service {name}; one of {', '.join(SERVICES)}")
        migrations.upgrade(name)
        console.print(f"migrated {name}")


@app.command()
def serve(
    service: str,
    host: str = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: the service's own port")] = None,
) -> None:
    """Run one service under uvicorn."""
    import uvicorn

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service}; one of {', '.join(SERVICES)}")
    uvicorn.run(
        f"services.{service}.main:create_app",
        factory=True,
        host=host,
        port=port or SERVICE_PORTS[service],
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def relay(
    service: str,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus /metrics on this port; none when omitted")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="address of /metrics")] = "127.0.0.1",
) -> None:
    """Run a service's outbox relay as its own process until SIGTERM or Ctrl-C.

    For a service started with ``CFP_RELAY_IN_PROCESS=false`` (same environment otherwise):
    the request process then no longer publishes (docs/intake.md "Benchmark"). The outbox
    gauges and the published-events counter are on this process's /metrics.
    """
    import importlib

    import prometheus_client

    from shared import logging as cfp_logging
    from shared.kafka.relay import run_relay_process

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service}; one of {', '.join(SERVICES)}")
    table = getattr(importlib.import_module(f"services.{service}.tables"), "outbox", None)
    if table is None:
        raise typer.BadParameter(f"{service} has no outbox")
    settings = importlib.import_module(f"services.{service}.settings").get_settings()
    cfp_logging.configure(f"{service}-relay", settings.log_level)
    if metrics_port is not None:
        prometheus_client.start_http_server(metrics_port, addr=metrics_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_relay_process(
            table=table, settings=settings, client_id=f"{service}-relay", stop=stop
        )

    asyncio.run(main())


@app.command()
def token(
    role: Annotated[
        list[str],
        typer.Option(help="role(s): intake_client, agent, supervisor, analyst, auditor, admin"),
    ],
    subject: str = "local-operator",
    ttl_seconds: int = 8 * 3600,
) -> None:
    """Print a bearer token signed with CFP_JWT_SECRET."""
    from shared.auth import mint_token

    secret = PlatformSettings().jwt_secret.get_secret_value()
    try:
        typer.echo(mint_token(secret, subject=subject, roles=role, ttl_seconds=ttl_seconds))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc


def _print_summary(summary: object, counts: dict[str, int]) -> None:
    from shared.replay import ReplaySummary

    assert isinstance(summary, ReplaySummary)
    rate = summary.sent / summary.seconds if summary.seconds else 0.0
    console.print(
        f"sent {summary.sent}, accepted {summary.accepted} "
        f"({summary.accepted - summary.replayed} new, {summary.replayed} already recorded), "
        f"rejected {sum(summary.rejected.values())} in {summary.seconds:.1f}s ({rate:.1f}/s)"
    )
    for reason, n in summary.rejected.most_common():
        console.print(f"  rejected {n}: {reason}")
    if counts:
        table = Table(title="complaints this replay added, by category (analytics)")
        table.add_column("category")
        table.add_column("count", justify="right")
        for cat, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            table.add_row(cat, str(n))
        console.print(table)


def _replay(
    file: Path, *, intake_url: str, analytics_url: str, rate: float, limit: int | None, shift: bool
) -> None:
    from shared import replay as rp
    from shared.auth import mint_token

    settings = PlatformSettings()
    secret = settings.jwt_secret.get_secret_value()
    client_token = mint_token(secret, subject="cfpb-replay", roles=["intake_client"])
    analyst_token = mint_token(secret, subject="cfpb-replay", roles=["analyst"])
    rows = rp.read_rows(file, limit)
    before = asyncio.run(rp.classified_counts(analytics_url=analytics_url, token=analyst_token))
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replay", total=len(rows))
        summary = asyncio.run(
            rp.replay(
                rows,
                intake_url=intake_url,
                token=client_token,
                rate_per_second=rate,
                tz=settings.timezone,
                shift_to_now=shift,
                progress=lambda n: bar.advance(task, n),
            )
        )
    counts = asyncio.run(
        rp.wait_for_analytics(
            analytics_url=analytics_url,
            token=analyst_token,
            before=before,
            new=summary.accepted - summary.replayed,
            timeout_seconds=120,
        )
    )
    _print_summary(summary, counts)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)] = SAMPLE,
    intake_url: str = f"http://127.0.0.1:{SERVICE_PORTS['intake']}",
    analytics_url: str = f"http://127.0.0.1:{SERVICE_PORTS['analytics']}",
    rate: Annotated[
        float, typer.Option(help="requests per second; 0 = as fast as possible")
    ] = 50.0,
    limit: int | None = None,
    shift_to_now: Annotated[
        bool, typer.Option(help="move dates so the newest row is today")
    ] = False,
) -> None:
    """Post complaints from a CFPB-format CSV to intake and print a summary."""
    _replay(
        file,
        intake_url=intake_url,
        analytics_url=analytics_url,
        rate=rate,
        limit=limit,
        shift=shift_to_now,
    )


@app.command()
def run(
    replay_sample: Annotated[bool, typer.Option(help="replay the bundled CFPB sample")] = False,
    rate: float = 50.0,
    base_port: Annotated[
        int | None,
        typer.Option(help="ports base..base+4 instead of 8001-8005; 0: any free ports"),
    ] = None,
) -> None:
    """Start everything: infrastructure, migrations, topics and the five services.

    On Ctrl-C or SIGTERM it stops the services (gracefully: in-flight work finishes, the
    outbox is flushed) and then the PostgreSQL and Kafka servers it started itself; servers
    that were already running, or given by DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS, stay up.
    """
    from shared import devinfra
    from shared.runner import ServiceSupervisor

    t0 = time.monotonic()
    before = devinfra.status()
    started_pg = not before["postgres"]["external"] and not before["postgres"]["running"]
    started_kafka = not before["kafka"]["external"] and not before["kafka"]["running"]
    env = _ensure_infra()
    _create_topics()
    for name in SERVICES:
        from shared import migrations

        migrations.upgrade(name)
    log_dir = REPO_ROOT / ".local" / "logs"
    if base_port is None:
        ports = dict(SERVICE_PORTS)
    elif base_port == 0:
        ports = dict.fromkeys(SERVICES, 0)  # the supervisor binds free ports and prints them
    else:
        ports = {name: base_port + i for i, name in enumerate(SERVICES)}
    sup = ServiceSupervisor(env=env, ports=ports, log_dir=log_dir)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        # The first Ctrl-C interrupts whatever runs (start-up, replay, the wait below); later
        # ones are ignored so that the clean-up in `finally` completes (`uv run` forwards the
        # terminal's SIGINT, so the process gets it twice).
        first = not stop.is_set()
        stop.set()
        if first and signum == signal.SIGINT:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sup.start()
        sup.wait_ready(timeout_seconds=90)
        console.print(f"all services ready in {time.monotonic() - t0:.1f}s (logs in {log_dir})")
        for name in SERVICES:
            console.print(f"  {name:<10} {sup.url(name)}  (docs: {sup.url(name)}/docs)")
        if replay_sample:
            _replay(
                SAMPLE,
                intake_url=sup.url("intake"),
                analytics_url=sup.url("analytics"),
                rate=rate,
                limit=None,
                shift=True,
            )
        console.print("running; Ctrl-C or SIGTERM stops the services")
        while not stop.is_set():
            stop.wait(0.5)
            if dead := sup.exited():
                console.print(f"[red]service(s) exited: {dead}; see {log_dir}[/red]")
                break
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    finally:
        codes = sup.stop()
        console.print(f"services stopped: {codes}")
        if started_kafka:
            devinfra.stop_kafka()
            console.print("kafka stopped")
        if started_pg:
            devinfra.stop_postgres()
            console.print("postgresql stopped")


@app.command("rotate-vault-keys")
def rotate_vault_keys(
    batch_size: Annotated[int, typer.Option(min=1, max=10000, help="rows per transaction")] = 500,
    actor: Annotated[str, typer.Option(help="who runs it (written to the audit log)")] = (
        "cli:" + os.environ.get("USER", "operator")
    ),
) -> None:
    """Re-encrypt every intake vault row not under the first key of CFP_VAULT_KEYS.

    Put the new key first and keep the old ones after it (``CFP_VAULT_KEYS=new:...,old:...``),
    run this, then drop the old keys. Safe to re-run and to run while intake serves.
    """
    from services.intake.rotation import rotate_all

    summary = asyncio.run(rotate_all(batch_size=batch_size, actor=actor))
    console.print(summary)


@app.command("train-classifier")
def train_classifier(
    data: Annotated[Path, typer.Option(help="the team's data folder")] = REPO_ROOT.parent
    / "shared"
    / "data",
    out: Path | None = None,
    fraction: float = 1.0,
    extra: Annotated[
        Path | None, typer.Option(help="CSV of extra examples: text,category,product_line")
    ] = None,
    with_overrides: Annotated[
        bool,
        typer.Option(
            help="export supervisors' overrides from routing (DATABASE_URL) to "
            "<out>/extra_examples.csv and train on them too"
        ),
    ] = False,
    docs: Annotated[bool, typer.Option(help="regenerate docs/classifier.md")] = True,
) -> None:
    """Train the complaint classifier from the public data and write a versioned artifact."""
    from services.routing.classifier import train as training
    from services.routing.domain import examples

    out = out or training.default_out_dir()
    extra_examples = examples.read_csv(extra) if extra else []
    if with_overrides:
        exported = asyncio.run(
            examples.export_csv(PlatformSettings().database_url, out / "extra_examples.csv")
        )
        console.print(f"{len(exported)} override examples -> {out / 'extra_examples.csv'}")
        extra_examples += exported
    report = training.train(
        data,
        out,
        fraction=fraction,
        extra_examples=extra_examples,
        docs_path=training.DEFAULT_DOCS if docs else None,
    )
    console.print(
        f"artifact {report.artifact_path} ({report.artifact_bytes} bytes, {report.seconds:.0f} s)"
    )
    for source, targets in report.metrics["results"].items():
        for target, systems in targets.items():
            figures = "  ".join(f"{n} {m['macro_f1']:.3f}" for n, m in systems.items())
            console.print(f"{source:16} {target:13} macro-F1 {figures}")


@app.command("analytics-rebuild")
def analytics_rebuild(
    database_url: Annotated[
        str | None, typer.Option(help="target database (migrated); default DATABASE_URL")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="events per transaction")] = None,
    defer_summaries: Annotated[
        bool,
        typer.Option(
            help="summary triggers off during the replay, one recomputation at the end "
            "(for a fresh database nothing else writes)"
        ),
    ] = False,
) -> None:
    """Rebuild the analytics read model by replaying every topic from the start."""
    from services.analytics import rebuild as analytics_rebuild_module

    summary = analytics_rebuild_module.run(database_url, batch_size, defer_summaries)
    console.print(analytics_rebuild_module.format_summary(summary))


def main() -> None:
    """Entry point of the ``cfp`` console script."""
    app()


if __name__ == "__main__":
    main()
    sys.exit(0)
