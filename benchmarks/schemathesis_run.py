"""The Schemathesis run of tests/service/api/test_schemathesis.py, longer: more examples per operation.

    .venv/bin/python benchmarks/schemathesis_run.py --examples 500

Writes benchmarks/results/schemathesis.json: per operation, examples run, seconds and failures (empty when clean).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.config import OperationsConfig

from service.app import create_app
from service.config import Settings
from service.storage import keys
from service.storage.db import make_engine, migrate
from tests.service.api.test_schemathesis import _fill_unstatable, _stored_data_refusals

RESULTS = Path(__file__).parent / "results" / "schemathesis.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="examples per operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'latentcast.db'}"
        migrate(url)
        engine = make_engine(url)
        key = keys.create_key(engine, "schemathesis", ["admin"])
        engine.dispose()
        app = create_app(Settings(data_dir=Path(tmp) / "data", database_url=url, auth="enabled",
                                  forecast_processes=0))
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.config.headers = {"Authorization": f"Bearer {key}"}
        schema.config.operations = OperationsConfig(operations=_stored_data_refusals(schema.raw_schema))
        rows = []
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(max_examples=args.examples, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                _fill_unstatable(case)
                case.call_and_validate()

            start, failure = time.perf_counter(), None
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (written to the summary)
                failure = str(exc)
            rows.append({"operation": operation.label, "examples": args.examples,
                         "seconds": round(time.perf_counter() - start, 2), "failure": failure})
            print(f"{operation.label}: {'FAIL' if failure else 'ok'} ({rows[-1]['seconds']} s)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"examples_per_operation": args.examples, "operations": rows}, indent=1) + "\n")
    print(f"{sum(r['failure'] is not None for r in rows)} of {len(rows)} operations failed; wrote {RESULTS}")


if __name__ == "__main__":
    main()
