"""The HTTP API: OGC API – Processes (Part 1: Core) over the twin's computations, OGC API – Features
collections of the network layers, and the twin-state resource fed by the city's sensors.

``create_app(config)`` builds the FastAPI application; its lifespan opens the store, recovers interrupted jobs
and starts the job executor (:mod:`scenarios.api.jobs`).  Every endpoint but the landing page and
``/conformance`` needs an API key (:mod:`scenarios.api.keys`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import collections as cols
from .access_log import AccessLogMiddleware
from .auth import require
from .config import ServiceConfig
from .jobs import Executor
from .keys import Principal
from .problems import (
    NO_SUCH_COLLECTION,
    NO_SUCH_FEATURE,
    NO_SUCH_JOB,
    RESULT_NOT_READY,
    ApiProblem,
    problem_response,
)
from .processes import PROCESSES, check_inputs, describe, get_process, select_outputs, summary
from .state import MeasurementBatch, catalogue, ingest, state_kpis
from .store import JobRow, StoreError

__all__ = ["create_app", "CONFORMANCE"]

log = logging.getLogger("twin.api")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
JSON = "application/json"
GEOJSON = "application/geo+json"
BBOX_PATTERN = r"^\s*[-+0-9.eE]+\s*(,\s*[-+0-9.eE]+\s*){3}$"
JobStatus = Literal["accepted", "running", "successful", "failed", "dismissed"]
# the ids are listed in the OpenAPI document (for clients and fuzzers), not enforced by the validation: an
# unknown id is the standards' 404 (no-such-process, not-found), not a 400
ProcessId = Annotated[str, Path(max_length=100, description="a process id", json_schema_extra={
    "enum": list(PROCESSES)})]
JobId = Annotated[str, Path(max_length=100, description="a job id")]
CollectionId = Annotated[str, Path(max_length=100, description="a collection id", json_schema_extra={
    "enum": list(cols.COLLECTIONS)})]
_READ, _RUN = require("read"), require("run")
Read = Annotated[Principal, Depends(_READ)]
Run = Annotated[Principal, Depends(_RUN)]


class ExecuteRequest(BaseModel):
    """An execution request (OGC API – Processes 1.0): inputs by id, the outputs wanted, the response form."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="input id → value (see /processes/{id})")
    outputs: dict[str, dict[str, Any]] | None = Field(None, description="output id → {} (default: every output)")
    response: Literal["document", "raw"] = "document"
    mode: Literal["auto", "sync", "async"] = Field("auto", description="async: as the header Prefer: respond-async")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def status_info(job: JobRow, base: str) -> dict[str, Any]:
    """The statusInfo document of a job."""
    doc: dict[str, Any] = {"jobID": job.job_id, "processID": job.process_id, "type": "process",
                           "status": job.status, "message": job.message, "created": job.created,
                           "updated": job.updated, "progress": int(job.progress)}
    if job.started:
        doc["started"] = job.started
    if job.finished:
        doc["finished"] = job.finished
    links = [{"href": f"{base}/jobs/{job.job_id}", "rel": "self", "type": JSON, "title": "status"}]
    if job.status in ("successful", "failed"):
        links.append({"href": f"{base}/jobs/{job.job_id}/results", "rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
                      "type": JSON, "title": "results"})
    doc["links"] = links
    return doc


def _results_doc(job: JobRow) -> dict[str, Any]:
    wanted = job.outputs.get("selected") or list((job.results or {}).keys())
    return {k: (job.results or {}).get(k) for k in wanted}


def _job_problem(job: JobRow) -> JSONResponse:
    err = job.error or {}
    status = int(err.get("status", 422))
    status = status if 400 <= status < 500 else 422
    return problem_response(status, str(err.get("detail", "the job failed")), f"/jobs/{job.job_id}",
                            type_=str(err.get("type", "about:blank")), title=str(err.get("title", "job failed")))


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise ApiProblem(400, f"bbox: expected four numbers minLon,minLat,maxLon,maxLat, got {text[:80]!r}") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise ApiProblem(400, f"bbox: expected four finite numbers minLon,minLat,maxLon,maxLat, got {text[:80]!r}")
    x0, y0, x1, y1 = vals
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ApiProblem(400, "bbox: need -180 <= minLon <= maxLon <= 180 and -90 <= minLat <= maxLat <= 90")
    return x0, y0, x1, y1


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The API application for ``config`` (:class:`ServiceConfig`; default: ``./service``, SQLite)."""
    cfg = config or ServiceConfig.build()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = cfg.open_store()
        app.state.store = store
        app.state.executor = Executor(cfg, store)
        app.state.executor.start()
        threading.Thread(target=_warm, name="twin-api-warm", daemon=True).start()
        log.info("service ready: data %s, database %s (%s), %d workers%s", cfg.data_dir, store.kind,
                 store.description, cfg.workers, f", Dask scheduler {cfg.scheduler}" if cfg.scheduler else "")
        try:
            yield
        finally:
            app.state.executor.stop()
            store.close()

    app = FastAPI(title="Berkane Twin API", version="1.0.0", lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None, description="OGC API – Processes over the Berkane digital twin, the network layers "
                  "as OGC API – Features collections, and the twin's state from the city's sensors.")
    app.state.config = cfg
    app.add_middleware(AccessLogMiddleware)
    _handlers(app, cfg)

    # -- landing, conformance, OpenAPI, health ----------------------------------------------------------------------
    @app.get("/", tags=["capabilities"], summary="landing page")
    def landing(request: Request) -> dict[str, Any]:
        b = _base(request)
        return {"title": "Berkane Twin API", "description": app.description, "links": [
            {"href": f"{b}/", "rel": "self", "type": JSON, "title": "this document"},
            {"href": f"{b}/api", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.1",
             "title": "the API definition"},
            {"href": f"{b}/conformance", "rel": "http://www.opengis.net/def/rel/ogc/1.0/conformance", "type": JSON,
             "title": "conformance classes"},
            {"href": f"{b}/processes", "rel": "http://www.opengis.net/def/rel/ogc/1.0/processes", "type": JSON,
             "title": "processes"},
            {"href": f"{b}/jobs", "rel": "http://www.opengis.net/def/rel/ogc/1.0/job-list", "type": JSON,
             "title": "jobs"},
            {"href": f"{b}/collections", "rel": "data", "type": JSON, "title": "network layers"},
            {"href": f"{b}/state", "rel": "related", "type": JSON, "title": "the twin's state from its sensors"}]}

    @app.get("/conformance", tags=["capabilities"], summary="conformance classes")
    def conformance() -> dict[str, Any]:
        return {"conformsTo": CONFORMANCE}

    @app.get("/api", tags=["capabilities"], summary="this API's OpenAPI document")
    def api(_: Read) -> JSONResponse:
        return JSONResponse(app.openapi(), media_type="application/vnd.oai.openapi+json;version=3.1")

    @app.get("/health", tags=["capabilities"], summary="the service's health, for the platform's probes")
    def health(request: Request, _: Read) -> JSONResponse:
        store = request.app.state.store
        ok = store.ping()
        ex = request.app.state.executor
        body = {"status": "ok" if ok else "degraded", "database": {"kind": store.kind, "ok": ok},
                "workers": {"configured": cfg.workers, "alive": ex.alive_workers()}}
        if ok:
            body["jobs"] = store.count_jobs()
        return JSONResponse(body, status_code=200 if ok else 503)

    # -- processes ----------------------------------------------------------------------------------------------
    @app.get("/processes", tags=["processes"], summary="the processes")
    def processes(request: Request, _: Read,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        b = _base(request)
        return {"processes": [summary(p, b) for p in list(PROCESSES.values())[:limit]],
                "links": [{"href": f"{b}/processes", "rel": "self", "type": JSON}]}

    @app.get("/processes/{processId}", tags=["processes"], summary="a process's inputs and outputs")
    def process(request: Request, processId: ProcessId, _: Read) -> dict[str, Any]:  # noqa: N803
        return describe(get_process(processId), _base(request))

    @app.post("/processes/{processId}/execution", tags=["processes"], summary="execute a process",
              status_code=200, responses={201: {"description": "job accepted (asynchronous execution)"},
                                          400: {"description": "invalid inputs"},
                                          404: {"description": "no such process"},
                                          429: {"description": "too many jobs for this key"}})
    async def execute(request: Request, processId: ProcessId, principal: Run,  # noqa: N803
                      body: Annotated[ExecuteRequest, Body()],
                      prefer: Annotated[str | None, Header(max_length=200)] = None):
        get_process(processId)
        outputs = select_outputs(processId, body.outputs)
        inputs = await run_in_threadpool(check_inputs, processId, body.inputs, twin_of=_twin_of,
                                         max_batch_scenarios=cfg.max_batch_scenarios)
        is_async = body.mode == "async" or (body.mode == "auto" and prefer is not None
                                            and "respond-async" in prefer.lower())
        store = request.app.state.store
        job_id = uuid.uuid4().hex
        job = await run_in_threadpool(store.create_job, job_id, processId, principal.key_id, inputs,
                                      {"selected": outputs, "requested": bool(body.outputs)}, body.response,
                                      cfg.max_jobs_per_key)
        if job is None:
            raise ApiProblem(429, f"key {principal.key_id} has {cfg.max_jobs_per_key} jobs accepted or running, the "
                                  "most allowed: wait for one to finish or dismiss one", headers={"Retry-After": "5"})
        done = request.app.state.executor.notify(job_id)
        b = _base(request)
        headers = {"Location": f"{b}/jobs/{job_id}"}
        if not is_async:
            waited = 0.0
            while not done.is_set() and waited < cfg.sync_timeout_s and cfg.workers > 0:
                await asyncio.sleep(0.02 if waited < 1.0 else 0.2)
                waited += 0.02 if waited < 1.0 else 0.2
            job = await run_in_threadpool(store.get_job, job_id)
            if job.status == "successful":
                doc = _results_doc(job)
                if body.response == "raw" and len(doc) == 1:
                    return JSONResponse(next(iter(doc.values())), headers=headers)
                return JSONResponse(doc, headers=headers)
            if job.status == "failed":
                return _job_problem(job)
            headers["Preference-Applied"] = "respond-async"
        else:
            headers["Preference-Applied"] = "respond-async"
        return JSONResponse(status_info(job, b), status_code=201, headers=headers)

    # -- jobs ---------------------------------------------------------------------------------------------------------
    def visible_job(request: Request, job_id: str, principal: Principal) -> JobRow:
        job = request.app.state.store.get_job(job_id)
        if job is None or not (principal.is_admin or job.key_id == principal.key_id):
            raise ApiProblem(404, f"there is no job {job_id!r} (for this key)", type_=NO_SUCH_JOB, title="no such job")
        return job

    @app.get("/jobs", tags=["jobs"], summary="the jobs of this key (every job for an admin key)")
    def jobs(request: Request, principal: Read,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
             status: Annotated[list[JobStatus] | None, Query()] = None,
             processID: Annotated[list[str] | None, Query(max_length=50)] = None,  # noqa: N803
             type: Annotated[list[Literal["process"]] | None, Query()] = None) -> dict[str, Any]:  # noqa: A002
        rows, total = request.app.state.store.list_jobs(None if principal.is_admin else principal.key_id, status,
                                                        processID, limit, offset)
        b = _base(request)
        links = [{"href": f"{b}/jobs?limit={limit}&offset={offset}", "rel": "self", "type": JSON}]
        if offset + len(rows) < total:
            links.append({"href": f"{b}/jobs?limit={limit}&offset={offset + limit}", "rel": "next", "type": JSON})
        return {"jobs": [status_info(j, b) for j in rows], "numberMatched": total, "links": links}

    @app.get("/jobs/{jobId}", tags=["jobs"], summary="a job's status and progress")
    def job_status(request: Request, jobId: JobId, principal: Read) -> dict[str, Any]:  # noqa: N803
        return status_info(visible_job(request, jobId, principal), _base(request))

    @app.get("/jobs/{jobId}/results", tags=["jobs"], summary="a finished job's results")
    def job_results(request: Request, jobId: JobId, principal: Read):  # noqa: N803
        job = visible_job(request, jobId, principal)
        if job.status == "dismissed":
            raise ApiProblem(404, f"job {jobId} was dismissed: its results were deleted", type_=NO_SUCH_JOB,
                             title="no such job")
        if job.status in ("accepted", "running"):
            raise ApiProblem(404, f"job {jobId} is {job.status} ({job.progress} %): its results are not ready",
                             type_=RESULT_NOT_READY, title="result not ready")
        if job.status == "failed":
            return _job_problem(job)
        doc = _results_doc(job)
        if job.response == "raw" and len(doc) == 1:
            return JSONResponse(next(iter(doc.values())))
        return JSONResponse(doc)

    @app.delete("/jobs/{jobId}", tags=["jobs"], summary="dismiss a job (stop it if running, delete its results)")
    def dismiss(request: Request, jobId: JobId, principal: Run) -> dict[str, Any]:  # noqa: N803
        visible_job(request, jobId, principal)
        job = request.app.state.store.dismiss_job(jobId)
        return status_info(job, _base(request))

    # -- collections ----------------------------------------------------------------------------------------------
    def collection_doc(layer: cols.Layer, b: str) -> dict[str, Any]:
        return {"id": layer.id, "title": layer.title, "description": layer.description, "itemType": "feature",
                "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
                "extent": {"spatial": {"bbox": [layer.extent], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                "numberOfFeatures": len(layer.features),
                "links": [{"href": f"{b}/collections/{layer.id}", "rel": "self", "type": JSON},
                          {"href": f"{b}/collections/{layer.id}/items", "rel": "items", "type": GEOJSON}]}

    def get_layer(cid: str) -> cols.Layer:
        layer = cols.layers().get(cid)
        if layer is None:
            raise ApiProblem(404, f"there is no collection {cid!r}; collections: {', '.join(cols.COLLECTIONS)}",
                             type_=NO_SUCH_COLLECTION)
        return layer

    @app.get("/collections", tags=["collections"], summary="the network layers")
    def collections(request: Request, _: Read) -> dict[str, Any]:
        b = _base(request)
        return {"collections": [collection_doc(layer, b) for layer in cols.layers().values()],
                "links": [{"href": f"{b}/collections", "rel": "self", "type": JSON}]}

    @app.get("/collections/{collectionId}", tags=["collections"], summary="a layer's metadata and extent")
    def collection(request: Request, collectionId: CollectionId, _: Read) -> dict[str, Any]:  # noqa: N803
        return collection_doc(get_layer(collectionId), _base(request))

    @app.get("/collections/{collectionId}/items", tags=["collections"], summary="a page of a layer's features")
    def items(request: Request, collectionId: CollectionId, _: Read,  # noqa: N803
              limit: Annotated[int, Query(ge=1, le=10000)] = 100, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
              bbox: Annotated[str | None, Query(max_length=200, pattern=BBOX_PATTERN,
                                                description="minLon,minLat,maxLon,maxLat (degrees, WGS84)")] = None):
        layer = get_layer(collectionId)
        box = _parse_bbox(bbox)
        feats, matched = cols.page(layer, limit, offset, box)
        b = f"{_base(request)}/collections/{layer.id}/items"
        q = f"&bbox={bbox}" if bbox is not None else ""
        links = [{"href": f"{b}?limit={limit}&offset={offset}{q}", "rel": "self", "type": GEOJSON},
                 {"href": f"{_base(request)}/collections/{layer.id}", "rel": "collection", "type": JSON}]
        if offset + len(feats) < matched:
            links.append({"href": f"{b}?limit={limit}&offset={offset + limit}{q}", "rel": "next", "type": GEOJSON})
        if offset > 0:
            links.append({"href": f"{b}?limit={limit}&offset={max(0, offset - limit)}{q}", "rel": "prev",
                          "type": GEOJSON})
        from .store import iso, utc_now

        return JSONResponse({"type": "FeatureCollection", "features": feats, "numberMatched": matched,
                             "numberReturned": len(feats), "timeStamp": iso(utc_now()), "links": links},
                            media_type=GEOJSON)

    @app.get("/collections/{collectionId}/items/{featureId}", tags=["collections"], summary="one feature")
    def feature(request: Request, collectionId: CollectionId, _: Read,  # noqa: N803
                featureId: Annotated[str, Path(max_length=200)]):  # noqa: N803
        layer = get_layer(collectionId)
        i = layer.index.get(featureId)
        if i is None:
            raise ApiProblem(404, f"collection {collectionId}: there is no feature {featureId!r}",
                             type_=NO_SUCH_FEATURE)
        b = _base(request)
        doc = {**layer.features[i], "links": [
            {"href": f"{b}/collections/{layer.id}/items/{featureId}", "rel": "self", "type": GEOJSON},
            {"href": f"{b}/collections/{layer.id}", "rel": "collection", "type": JSON}]}
        return JSONResponse(doc, media_type=GEOJSON)

    # -- the twin's state -----------------------------------------------------------------------------------------
    @app.post("/state/measurements", tags=["state"], summary="post sensor measurements",
              responses={422: {"description": "every measurement was rejected (or the body is malformed)"}})
    def post_measurements(request: Request, principal: Run, body: MeasurementBatch) -> JSONResponse:
        accepted, rejected = ingest(request.app.state.store, body.measurements, principal.key_id)
        doc = {"accepted": accepted, "rejected": rejected, "n_accepted": len(accepted), "n_rejected": len(rejected)}
        return JSONResponse(doc, status_code=200 if accepted else 422)

    @app.get("/state", tags=["state"], summary="the twin's current state and its KPIs")
    def state(request: Request, _: Read) -> dict[str, Any]:
        latest = request.app.state.store.latest_state()
        return {"elements": [{k: r[k] for k in ("kind", "element", "time", "value", "unit", "received")}
                             for r in latest], "kpis": state_kpis(latest, catalogue())}

    return app


def _twin_of(season: str):
    from .compute import twin_of

    return twin_of(season)


def _warm() -> None:
    """Build the collections, the measurement catalogue and the twins before the first request needs them."""
    try:
        cols.layers()
        catalogue()
        _twin_of("summer")
    except Exception:  # noqa: BLE001 - the request that needs them reports the problem
        log.exception("warming the collections failed")


def _handlers(app: FastAPI, cfg: ServiceConfig) -> None:
    @app.exception_handler(ApiProblem)
    async def on_problem(request: Request, exc: ApiProblem):
        return problem_response(exc.status, exc.detail, request.url.path, type_=exc.type, title=exc.title,
                                headers=exc.headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        errors = []
        for e in exc.errors()[:20]:
            where = ".".join(str(x) for x in e.get("loc", ())) or "request"
            msg = "unknown field" if e.get("type") == "extra_forbidden" else e.get("msg", "invalid")
            errors.append({"where": where, "message": msg})
        in_body = any(str(e.get("loc", ("",))[0]) == "body" for e in exc.errors())
        status = 422 if in_body and not request.url.path.endswith("/execution") else 400
        detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors)
        return problem_response(status, detail or "invalid request", request.url.path, title="invalid request",
                                extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is no resource at {request.url.path}"
        return problem_response(exc.status_code, detail, request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(StoreError)
    async def on_store(request: Request, exc: StoreError):
        log.error("database error on %s %s: %s", request.method, request.url.path, exc)
        return problem_response(503, "the service's database is unavailable; try again later", request.url.path,
                                headers={"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "unexpected error in the service (logged)", request.url.path)

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > cfg.max_body_bytes):
            return problem_response(413, f"the request body is larger than {cfg.max_body_bytes} bytes",
                                    request.url.path)
        return await call_next(request)
