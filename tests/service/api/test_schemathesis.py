"""The app against its own OpenAPI document: every operation, every Schemathesis check, and the stateful phase.

Runs in-process (ASGI) on a real SQLite file with an admin key; derandomized so CI is reproducible. The longer run
is benchmarks/schemathesis_run.py.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.config import OperationConfig, OperationsConfig, PositiveDataAcceptanceConfig

from service.app import create_app
from service.config import Settings
from service.errors import STORED_DATA
from service.storage import keys, tables
from service.storage.db import make_engine, migrate

EXAMPLES = 25
STATEFUL_SEED = 20261204
ADMIN = "schemathesis"  # the key every case sends
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{tmp / 'latentcast.db'}"
    migrate(url)
    engine = make_engine(url)
    key = keys.create_key(engine, ADMIN, ["admin"])
    engine.dispose()
    app = create_app(Settings(data_dir=tmp / "data", database_url=url, auth="enabled", forecast_processes=0))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.headers = {"Authorization": f"Bearer {key}"}
    schema.config.operations = OperationsConfig(operations=_stored_data_refusals(schema.raw_schema))
    schema.database_url = url  # for the stateful phase's reset between runs
    yield schema


def _stored_data_refusals(document: dict) -> list[OperationConfig]:
    """Per operation, the statuses its document marks as refusals that depend on what is stored (service.errors.
    STORED_DATA: a channel the series lacks, too little data, past the horizon) join the statuses a schema-valid
    request may get. Only those: every other 422 to a schema-valid request stays a failure."""
    accepted = PositiveDataAcceptanceConfig().expected_statuses
    out = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            stored = [status for status, answer in operation.get("responses", {}).items() if answer.get(STORED_DATA)]
            if stored:
                out.append(OperationConfig.from_dict({
                    "include-name": f"{method.upper()} {path}",
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*accepted, *stored]}}}))
    return out


def test_stored_data_refusals_are_declared(api_schema: schemathesis.BaseSchema) -> None:
    """The operations whose well-formed requests a stored state can refuse say so, and no others."""
    marked = {f"{m.upper()} {p}" for p, ops in api_schema.raw_schema["paths"].items() for m, op in ops.items()
              if op["responses"].get("422", {}).get(STORED_DATA)}
    assert marked == {"POST /v1/models", "PATCH /v1/series/{key}", "POST /v1/series/{key}/observations",
                      "GET /v1/series/{key}/observations", "DELETE /v1/series/{key}/observations",
                      "GET /v1/series/{key}/forecast", "POST /v1/forecast"}


def _fill_unstatable(case: schemathesis.Case) -> None:
    """Give a schema-valid case what OpenAPI cannot state: cursors are opaque tokens the server gave out (random
    text is a 422 by design, and the stateful phase sends real ones); a series forecast takes either `at` or one
    range, `start`+`end`+`step` or `horizon`+`step` (a constraint across query parameters); and a training
    `config` holds ModelConfig fields, whose bounds model/ checks (docs/guarantees.md#training-configuration);
    quantile levels in a comma list are distinct."""
    if case.meta is None or case.meta.generation.mode.name != "POSITIVE":
        return
    if case.method == "POST" and case.operation.path == "/v1/models" and isinstance(case.body, dict):
        case.body["config"] = {}
    if not isinstance(case.query, dict):
        return
    if isinstance(case.query.get("quantiles"), str):  # distinct levels: a comma list's pattern cannot say so
        by_level = {float(v): v for v in reversed(case.query["quantiles"].split(","))}
        case.query["quantiles"] = ",".join(reversed(by_level.values()))
    if case.query.get("cursor"):
        case.query["cursor"] = ""
    if case.operation.path.endswith("/forecast") and case.method == "GET":
        q = case.query
        ranges = [r for r in ({"start", "end", "step"}, {"horizon", "step"}) if r <= q.keys()]
        if q.get("at") or len(ranges) != 1 or ranges[0] | q.keys() & {"start", "end", "horizon"} != ranges[0]:
            for name in ("start", "end", "step", "horizon"):
                q.pop(name, None)
            q["at"] = q.get("at") or ["2026-03-01T12:00:00Z"]
        elif "start" in q:  # end after start
            q["start"], q["end"] = "2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z"


def test_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, positive and negative data, every check; all failures reported together."""
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @HYPOTHESIS
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            _fill_unstatable(case)
            case.call_and_validate()

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (collected and reported below)
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_stateful_links(api_schema: schemathesis.BaseSchema) -> None:
    """The stateful phase: chains calls along the document's links (series → observations → models → jobs).

    Each run starts from an empty database (all but the admin key), so that what a run's steps do depends on its
    own choices alone and Hypothesis can replay it; a fixed seed makes the phase the same in every CI run."""
    engine = make_engine(api_schema.database_url)

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            with engine.begin() as conn:
                for table in reversed(tables.metadata_obj.sorted_tables):
                    conn.execute(table.delete().where(tables.api_keys.c.name != ADMIN) if table is tables.api_keys
                                 else table.delete())

        def before_call(self, case: schemathesis.Case) -> None:
            _fill_unstatable(case)


    phase = settings(max_examples=EXAMPLES, derandomize=False, deadline=None, database=None, stateful_step_count=6,
                     phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    try:
        seed(STATEFUL_SEED)(Machine).run(settings=phase)
    finally:
        engine.dispose()
