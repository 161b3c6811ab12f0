"""The generated reference pages: every setting documented, every command listed."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import typer
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from devtools.docs_reference import (
    UndocumentedSettingError,
    cli_reference,
    docstring_attributes,
    document_settings,
    load_settings_class,
    settings_reference,
)
from devtools.mkdocs_hooks import on_page_markdown


def test_every_setting_of_the_framework_is_documented() -> None:
    settings = load_settings_class()
    documented = document_settings(settings)  # raises on the first one without a description
    assert [doc.name for doc in documented] == list(settings.model_fields)
    assert all(doc.env.startswith("RELAYFLOW_") for doc in documented)
    assert all(doc.description.strip() for doc in documented)


def test_the_settings_page_names_each_variable_once() -> None:
    page = settings_reference()
    for doc in document_settings():
        assert page.count(f"| `{doc.env}` |") == 1, doc.env


class _Kafka(BaseSettings):
    """Kafka: where the brokers are.

    Attributes:
        kafka_servers: Comma-separated ``host:port`` list,
            continued on a second line.
        kafka_password: Never shown; see ``kafka_servers``.
    """

    kafka_servers: str = "127.0.0.1:9092"
    kafka_password: SecretStr | None = None


class _Console(BaseSettings):
    """The console.

    Attributes:
        console_port: TCP port (0: any free one).

    Raises:
        Nothing: a section after Attributes ends it.
    """

    console_port: int = 8400
    console_mode: str = Field(default="on", description="Set by a Field description.")
    store: Path = Field(default=Path("x.db"), alias="DEMO_STORE_PATH")


class _Settings(_Kafka, _Console):
    """All of it, made of sections.

    Attributes:
        store_path: Where the store is (documented by its variable's name).
    """

    model_config = SettingsConfigDict(env_prefix="DEMO_")


def test_settings_split_into_sections_are_grouped_by_the_class_that_declares_them() -> None:
    docs = {doc.name: doc for doc in document_settings(_Settings)}
    assert docs["kafka_servers"].section == "Kafka: where the brokers are"
    assert docs["kafka_servers"].env == "DEMO_KAFKA_SERVERS"
    assert docs["kafka_servers"].description == (
        "Comma-separated `host:port` list, continued on a second line.")
    assert docs["kafka_password"].type == "secret"
    assert docs["kafka_password"].default == "unset"
    assert docs["kafka_password"].description == "Never shown; see `DEMO_KAFKA_SERVERS`."
    assert docs["console_port"].section == "The console"
    assert docs["console_mode"].description == "Set by a Field description."
    assert docs["store"].env == "DEMO_STORE_PATH"
    assert docs["store"].description == "Where the store is (documented by its variable's name)."
    page = settings_reference(_Settings)
    assert page.index("## Kafka: where the brokers are") < page.index("## The console")


def test_a_setting_without_a_description_stops_the_build() -> None:
    class Undocumented(BaseSettings):
        """Settings.

        Attributes:
            known: Documented.
        """

        known: int = 1
        forgotten: int = 2

    with pytest.raises(UndocumentedSettingError, match="forgotten"):
        document_settings(Undocumented)


def test_the_attributes_section_is_read_from_the_class_s_own_docstring() -> None:
    assert docstring_attributes(_Console) == {"console_port": "TCP port (0: any free one)."}
    assert docstring_attributes(_Settings) == {
        "store_path": "Where the store is (documented by its variable's name)."}


def test_the_cli_page_lists_every_command_with_its_options() -> None:
    page = cli_reference()
    for path in ("relayflow run", "relayflow dlq replay", "relayflow dev up",
                 "relayflow console hash-password", "relayflow send"):
        assert f"## `{path}`" in page, path
    assert "`--parked-only`" in page
    assert "`--app`" in page


def test_the_cli_page_walks_groups_and_shows_defaults_and_env_vars(
        monkeypatch: pytest.MonkeyPatch) -> None:
    demo = typer.Typer(help="Demo program.")
    group = typer.Typer(help="A group.")
    demo.add_typer(group, name="queue")

    @group.command("drain")
    def drain(name: str = typer.Argument(help="The queue."),
              limit: int = typer.Option(50, envvar="DEMO_LIMIT", help="At most | this many."),
              ) -> None:
        """Drain a queue."""

    @demo.command()
    def ping(verbose: bool = typer.Option(False, "--verbose", help="Say more.")) -> None:
        """Another command."""

    module = types.ModuleType("demo_cli_for_docs")
    module.app = demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    page = cli_reference("demo_cli_for_docs:app", program="demo")
    assert "## `demo queue drain`" in page
    assert "[`demo queue drain`](#demo-queue-drain)" in page
    assert "| `--limit` | int | `50` | `DEMO_LIMIT` | At most \\| this many. |" in page
    assert "| `name` | str | The queue. |" in page
    assert "| `--verbose` | flag | `false` | Say more. |" in page


def test_the_hook_replaces_only_its_markers() -> None:
    page = "# Configuration\n\nText.\n\n<!-- relayflow:settings-reference -->\n"
    rendered = on_page_markdown(page, page=None, config=None, files=None)
    assert rendered.startswith("# Configuration\n\nText.\n\n## ")
    assert "<!-- relayflow:" not in rendered
    assert "`RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS`" in rendered
    assert on_page_markdown("no marker", page=None, config=None, files=None) == "no marker"


class _AppSettings(_Kafka):
    """An application's own: its rules.

    Attributes:
        threshold: Orders above need approval.
        store_override: ``DEMO_STORE``: the store's file, read as ``store``.
    """

    model_config = SettingsConfigDict(env_prefix="DEMO_")

    threshold: int = 100
    store_override: Path | None = Field(default=None, alias="DEMO_STORE")


def test_an_application_s_settings_leave_out_the_sections_it_shares_with_the_framework() -> None:
    page = settings_reference(_AppSettings, besides=_Kafka)
    assert "## An application's own: its rules" in page
    assert "DEMO_THRESHOLD" in page
    assert "Kafka: where the brokers are" not in page
    assert "DEMO_KAFKA_SERVERS" not in page
    # A description that starts by naming its own variable does not say it twice.
    assert "| `DEMO_STORE` | path | unset | The store's file, read as `store`. |" in page
    assert "DEMO_KAFKA_SERVERS" in settings_reference(_AppSettings)


def test_the_reference_app_s_settings_page_is_generated_without_the_framework_s() -> None:
    page = on_page_markdown(
        "<!-- relayflow:settings-reference relayflow.reference.settings:ReferenceSettings -->",
        page=None, config=None, files=None)
    assert "| `RELAYFLOW_APPROVAL_THRESHOLD_CENTS` |" in page
    assert "| `RELAYFLOW_STORE_PATH` |" in page
    assert "RELAYFLOW_DATA_DIR" not in page
    assert "RELAYFLOW_SECRETS_DIR" not in page
