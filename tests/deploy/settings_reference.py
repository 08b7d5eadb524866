"""The configuration reference of docs/operations.md, generated from the settings classes.

Every setting is a field of a pydantic-settings class: ``shared.config.PlatformSettings``
(platform values: ``DATABASE_URL``, ``KAFKA_*``, ``LOG_LEVEL`` and ``CFP_*``) and one
subclass per service in ``services/<name>/settings.py`` (``INTAKE_*``, ``ROUTING_*``,
``TRACKING_*``, ``FOLLOWUP_*``, ``ANALYTICS_*``). This module derives each field's
environment variable name, default, allowed values and meaning (from the class docstring's
``Attributes:`` section, Google style), and renders the service tables between the markers
``<!-- BEGIN GENERATED service settings -->`` / ``<!-- END ... -->`` in docs/operations.md.
The platform table above the markers is written by hand (it says which values are secret and
what compose and the overlays set) and is checked by tests/deploy/test_deploy_settings.py.

Usage::

    uv run python tests/deploy/settings_reference.py           # rewrite the generated block
    uv run python tests/deploy/settings_reference.py --check   # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "operations.md"
BEGIN = "<!-- BEGIN GENERATED service settings (tests/deploy/settings_reference.py) -->"
END = "<!-- END GENERATED service settings -->"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pydantic import AliasChoices, SecretStr  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_settings import BaseSettings  # noqa: E402

from shared.config import PlatformSettings  # noqa: E402
from shared.events.registry import SERVICES  # noqa: E402


class SettingsDocError(ValueError):
    """A settings field cannot be documented (no docstring entry)."""


@dataclass(frozen=True)
class Setting:
    """One environment variable a service reads.

    Attributes:
        owner: ``platform`` or the service name.
        field: the pydantic field name.
        env: the environment variable name (upper case; the first the class accepts).
        default: the default, rendered for the docs (``unset``, ``true``, JSON for dicts).
        allowed: type and bounds, e.g. ``int, 1..60``, or the literal choices.
        meaning: the docstring entry of the field, one line.
        secret: the value is a ``SecretStr``.
    """

    owner: str
    field: str
    env: str
    default: str
    allowed: str
    meaning: str
    secret: bool


def settings_classes() -> dict[str, type[BaseSettings]]:
    """Return ``{"platform": PlatformSettings, "<service>": <its settings class>, ...}``.

    Raises:
        SettingsDocError: a service's settings module defines no ``PlatformSettings`` subclass.
    """
    classes: dict[str, type[BaseSettings]] = {"platform": PlatformSettings}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.settings")
        found = [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj)
            and issubclass(obj, PlatformSettings)
            and obj is not PlatformSettings
            and obj.__module__ == module.__name__
        ]
        if len(found) != 1:
            raise SettingsDocError(f"services/{service}/settings.py: {len(found)} settings classes")
        classes[service] = found[0]
    return classes


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """Return the environment variable names that set field ``name`` (upper case).

    An explicit ``validation_alias`` replaces the class's ``env_prefix``; only its upper-case
    choices are listed (``CFP_TIMEZONE``, ``DATABASE_URL``): the lower-case choices exist so
    that code can pass field names, and the environment source ignores them (only the
    ``CFP_`` names are read from the environment).
    """
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices if str(choice).isupper()]
        if names:
            return names
    if isinstance(alias, str):
        return [alias.upper()]
    return [f"{cls.model_config.get('env_prefix', '')}{name}".upper()]


def attribute_docs(cls: type) -> dict[str, str]:
    """Parse the ``Attributes:`` section of a Google-style class docstring.

    ``a / _b / _c: text`` documents ``a`` and the siblings ``<stem of a>_b``, ``<stem>_c``
    (the stem is ``a`` without its last ``_`` part).

    Returns:
        Field name -> description on one line, with ``code`` in single backticks.
    """
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = lines.index("Attributes:") + 1
    except ValueError:
        return {}
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    entry = re.compile(r"^    ([a-z_][a-z0-9_]*(?:\s*/\s*_[a-z0-9_]+)*):\s*(.*)$")
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        match = entry.match(line)
        if match:
            names = [n.strip() for n in match[1].split("/")]
            first = names[0]
            stem = first.rsplit("_", 1)[0]
            current = [match[2].strip()]
            for item in names:
                entries[item if not item.startswith("_") else stem + item] = current
        elif current is not None and line.strip():
            current.append(line.strip())
    return {name: _markdown(" ".join(parts)) for name, parts in entries.items()}


def _markdown(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|")


def _render_default(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, SecretStr):
        return "development value"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dict | list):
        return "`" + json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _render_allowed(field: FieldInfo) -> str:
    annotation = field.annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return ", ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    if annotation is bool:
        return "`true` / `false`"
    if origin is dict:
        value_type = typing.get_args(annotation)[1]
        values = " / ".join(f"`{v}`" for v in typing.get_args(value_type)) or "string"
        return f"JSON object: string -> {values}"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if args else annotation
    names = {SecretStr: "string (secret)", Path: "path", str: "string", int: "integer"}
    name = names.get(base, {float: "number"}.get(base, getattr(base, "__name__", str(base))))
    low = high = None
    low_open = high_open = False
    for item in field.metadata:
        for attr, is_low, is_open in (
            ("ge", True, False),
            ("gt", True, True),
            ("le", False, False),
            ("lt", False, True),
        ):
            bound = getattr(item, attr, None)
            if bound is not None:
                if is_low:
                    low, low_open = bound, is_open
                else:
                    high, high_open = bound, is_open
    if low is None and high is None:
        return name
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return f"{name}, {' and '.join(parts)}"


def collect() -> list[Setting]:
    """Return every setting of every class: platform fields once, then each service's own.

    Raises:
        SettingsDocError: a field has no entry in its class's ``Attributes:`` docstring.
    """
    out: list[Setting] = []
    platform_fields = set(PlatformSettings.model_fields)
    for owner, cls in settings_classes().items():
        docs = attribute_docs(cls)
        for name, field in cls.model_fields.items():
            if owner != "platform" and name in platform_fields:
                continue
            if name not in docs:
                raise SettingsDocError(
                    f"{cls.__module__}.{cls.__name__}.{name}: no entry in the class docstring's "
                    "Attributes section (the configuration reference is generated from it)"
                )
            out.append(
                Setting(
                    owner=owner,
                    field=name,
                    env=env_names(cls, name, field)[0],
                    default=_render_default(field),
                    allowed=_render_allowed(field),
                    meaning=docs[name],
                    secret=field.annotation is SecretStr,
                )
            )
    return out


def render_block(settings: list[Setting]) -> str:
    """Render the generated Markdown block (markers included), one table per service."""
    lines = [BEGIN, ""]
    for service in SERVICES:
        rows = [s for s in settings if s.owner == service]
        lines += [
            f"**{service}** (`services/{service}/settings.py`)",
            "",
            "| variable | default | allowed | meaning |",
            "| --- | --- | --- | --- |",
        ]
        lines += [f"| `{s.env}` | {s.default} | {s.allowed} | {s.meaning} |" for s in rows]
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def updated_doc(text: str, block: str) -> str:
    """Return ``text`` with the generated block replaced.

    Raises:
        SettingsDocError: the markers are missing.
    """
    if BEGIN not in text or END not in text:
        raise SettingsDocError(f"{DOC}: markers {BEGIN!r} ... {END!r} missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    """Rewrite or check the generated block of docs/operations.md.

    Returns:
        0 when written or current, 1 when ``--check`` finds it stale.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the block is stale")
    args = parser.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    text = updated_doc(current, render_block(collect()))
    if args.check:
        if text != current:
            sys.stderr.write(
                f"{DOC} is stale: run uv run python tests/deploy/settings_reference.py\n"
            )
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    sys.stderr.write(f"updated the service settings in {DOC.relative_to(REPO_ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
