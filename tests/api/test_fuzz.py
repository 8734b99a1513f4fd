"""Property-based fuzzing of every endpoint of the OpenAPI document (schemathesis): no response is a server
error (5xx), whatever the generated path, query, headers and body, valid (positive) or not (negative).

The fuzzed service runs no jobs (``--workers 0``): executions are validated and queued (or refused with 429
once the key has two), so generated inputs that happen to be valid never start an expensive computation, and
every endpoint — executions, dismissals and measurements included — is fuzzed with an admin key.  A second
pass sends no key at all: every protected endpoint must answer 401."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from .conftest import Service  # noqa: E402

PUBLIC = ("/", "/conformance")


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    svc = Service(data, "--workers", "0", "--max-jobs-per-key", "2", "--sync-timeout", "0.2",
                  "--max-batch-scenarios", "3").start()
    svc.admin = svc.key("admin")
    yield svc
    svc.stop()


def _operations(svc: Service):
    import httpx

    doc = httpx.get(f"{svc.url}/api", headers={"Authorization": f"Bearer {svc.admin}"}).json()
    schema = schemathesis.openapi.from_dict(doc)  # (from_url would leave out the document's own path)
    return [r.ok() for r in schema.get_all_operations()]


def _fuzz(op, mode, examples: int, call) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = call(case)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} " \
                                           f"{response.text[:300]}"
        case.validate_response(response, checks=[not_a_server_error])

    try:
        check()
    except Unsatisfiable:  # an operation with nothing to make invalid in negative mode
        pass


def test_every_endpoint_with_a_key_never_fails(fuzz_service):
    ops = _operations(fuzz_service)
    assert len(ops) == 17, sorted(op.label for op in ops)
    headers = {"Authorization": f"Bearer {fuzz_service.admin}"}
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(op, mode, 12, lambda case: case.call(base_url=fuzz_service.url, headers=headers, timeout=30))


def test_every_endpoint_without_a_key_is_401(fuzz_service):
    for op in _operations(fuzz_service):
        def call(case, op=op):
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() not in ("authorization", "x-api-key")}
            response = case.call(base_url=fuzz_service.url, timeout=30)
            if op.path not in PUBLIC:
                assert response.status_code in (401, 404, 405), (case.formatted_path, response.status_code)
            return response

        _fuzz(op, GenerationMode.POSITIVE, 4, call)
