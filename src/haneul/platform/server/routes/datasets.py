"""Datasets: API routes (list, info, files, push in three steps, download train files, remove) and the
pages /datasets and /datasets/NAME. The hidden test part is served by no route."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from haneul.errors import IntegrityError, NotFound
from haneul.platform.credentials import is_loopback_host
from haneul.platform.datasets import (
    FILES_PAGE_MAX,
    MANIFEST_MAX_FILES,
    PIECE,
    BlobBatch,
    FileEntry,
    dataset_store,
    record_header,
)
from haneul.platform.plugins import CurrentPrincipal
from haneul.platform.server.deps import (
    STREAMED_BODY_EXTENSION,
    NonNegInt64,
    PlatformDep,
    StreamedBody,
    TemplatesDep,
    errors,
)

api = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
pages = APIRouter(include_in_schema=False)

Name = Annotated[str, PathParam(description="dataset name, e.g. nsmc", max_length=64)]
Version = Annotated[int, Ge(1), Le((1 << 31) - 1), PathParam(description="version number, 1, 2, ...")]
SHA256 = r"^[0-9a-f]{64}$"
Sha256Path = Annotated[str, PathParam(description="the blob's sha256 (64 lower-case hex digits)", pattern=SHA256)]
#: how much of an upload is gathered before it is hashed and written
WRITE_PIECE = 1 << 20
#: files shown on one page of a dataset's page
PAGE_FILES = 100


class FileIn(BaseModel):
    part: Literal["train", "test", "eval"] = Field(description="train: pulled and mounted; test: hidden, for "
                                                   "the evaluator only; eval: the scoring script")
    path: str = Field(min_length=1, max_length=1024, description="relative path, '/' between folders")
    size: NonNegInt64
    sha256: str = Field(pattern=SHA256)


class VersionCreate(BaseModel):
    files: list[FileIn] = Field(min_length=1, max_length=MANIFEST_MAX_FILES,
                                description="every file of the version; their blobs must be uploaded first")
    description: str | None = Field(default=None, max_length=10_000)
    public: bool | None = Field(default=None, description="readable by every user (the hidden test part never is); "
                                "omit to keep the dataset's setting")
    team: str | None = Field(default=None, max_length=64, pattern=r"^[^\x00]*$",
                             description="the team a new dataset belongs to (default: the caller's)")
    metric: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[^\x00]*$",
                               description="the key the eval script reports")
    direction: Literal["max", "min"] | None = Field(default=None, description="max: higher is better (default)")


class MissingQuery(BaseModel):
    sha256: list[Annotated[str, Field(pattern=SHA256)]] = Field(max_length=MANIFEST_MAX_FILES)


class DownloadQuery(BaseModel):
    paths: list[Annotated[str, Field(max_length=1024)]] = Field(
        min_length=1, max_length=FILES_PAGE_MAX, description="train files of the version, answered in this order")


class IncomingFile(BaseModel):
    name: str = Field(max_length=100, description="the file's name in the incoming folder: <24 hex digits>.part")
    size: NonNegInt64
    sha256: str | None = Field(default=None, pattern=SHA256, description="checked when given")


class AdoptQuery(BaseModel):
    files: list[IncomingFile] = Field(min_length=1, max_length=MANIFEST_MAX_FILES)


class FileList(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


@api.get("", responses=errors(401))
def list_datasets(platform: PlatformDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The datasets the caller may read (its teams' and the public ones) with their latest version."""
    return dataset_store(platform).list_datasets(principal=principal)


@api.post("/_blobs/missing", responses=errors(400, 401))
def missing_blobs(body: MissingQuery, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, list[str]]:
    """Which of these sha256s the server lacks: the files a push must upload."""
    return {"missing": dataset_store(platform).missing(principal=principal, sha256s=body.sha256)}


def _same_machine(request: Request) -> None:
    """Only a client on the server's own machine learns where the store lies (and may use it)."""
    if request.client is None or not is_loopback_host(request.client.host):
        raise NotFound("the store's folders are offered only to clients on the server's machine; push and pull "
                       "over HTTP")


@api.get("/_local", responses=errors(401, 403, 404))
def local_access(request: Request, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """For a client on the server's machine: the store's incoming and blob folders, the token in the
    incoming folder's probe file and the server's user id, so that it may push and pull through the
    folders instead of HTTP (when its user may). 404 from another machine or for a store that is not a
    local folder."""
    _same_machine(request)
    return dataset_store(platform).local_access(principal=principal)


@api.post("/_blobs/adopt", status_code=201, responses=errors(400, 401, 403, 404))
def adopt_blobs(body: AdoptQuery, request: Request, platform: PlatformDep,
                principal: CurrentPrincipal) -> dict[str, Any]:
    """Store files a client on the server's machine copied into the incoming folder, each hashed here
    (and checked against its sha256 when one is given: a mismatch is a 400 naming it in
    ``details.sha256``); ``stored`` gives each file's sha256, size and whether it was new."""
    _same_machine(request)
    stored = dataset_store(platform).adopt(principal=principal,
                                           files=[(f.name, f.size, f.sha256) for f in body.files])
    return {"files": len(stored), "bytes": sum(b["size"] for b in stored if b["new"]), "stored": stored}


@api.put(
    "/_blobs/{sha256}",
    status_code=201,
    responses=errors(400, 401, 403, 404, 507),
    dependencies=[StreamedBody],
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}},
        "description": "the file's bytes, streamed to disk and checked against the sha256 in the path"},
        STREAMED_BODY_EXTENSION: True},
)
async def upload_blob(sha256: Sha256Path, request: Request, platform: PlatformDep,
                      principal: CurrentPrincipal) -> dict[str, Any]:
    """Store one blob; bytes that do not hash to ``sha256`` are a 400 and are discarded."""
    store = dataset_store(platform)
    writer = await run_in_threadpool(lambda: store.blob_writer(principal=principal, sha256=sha256))
    pending = bytearray()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= WRITE_PIECE:
                # hashing and writing a megabyte at a time off the event loop (hashlib releases the
                # GIL), so the loop keeps receiving this and other uploads meanwhile
                await run_in_threadpool(writer.write, bytes(pending))
                pending.clear()
        if pending:
            writer.write(bytes(pending))
    except BaseException:
        writer.discard()
        raise
    return await run_in_threadpool(lambda: store.finish_blob(writer, principal=principal))


@api.post(
    "/_blobs",
    status_code=201,
    responses=errors(400, 401, 403, 404, 507),
    dependencies=[StreamedBody],
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}},
        "description": 'records, one after another: a JSON line {"sha256": "...", "size": N}, then the N bytes '
                       "of the blob; each is checked against its sha256 as it is written"},
        STREAMED_BODY_EXTENSION: True},
)
async def upload_blobs(request: Request, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Store many blobs in one request, each exactly as ``PUT /_blobs/{sha256}`` stores one. A blob
    whose bytes do not hash to its sha256 is a 400 naming it (in ``details.sha256``) and is discarded;
    the ones before it in the body stay stored."""
    batch = await run_in_threadpool(lambda: BlobBatch(dataset_store(platform), principal))
    # hashing and writing a few MB at a time off the event loop (hashlib releases the GIL), while the
    # loop receives the next few MB of this body and others
    running: asyncio.Future[None] | None = None
    try:
        async for chunk in request.stream():
            if batch.feed(chunk):
                if running is not None:
                    await running
                running = asyncio.ensure_future(run_in_threadpool(batch.run, batch.take()))
        if running is not None:
            await running
        return await run_in_threadpool(batch.close)
    except BaseException:
        if running is not None:  # let the write under way end before its file is removed
            await asyncio.gather(running, return_exceptions=True)
        batch.discard()
        raise


@api.post("/{name}/versions", status_code=201, responses=errors(400, 401, 403, 404, 409))
def create_version(name: Name, body: VersionCreate, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Commit the next version of ``name`` (creating the dataset on its first push). The same files as
    the latest version make no new version: ``created`` is then false and ``version`` the latest."""
    files = [FileEntry(f.part, f.path, f.size, f.sha256) for f in body.files]
    return dataset_store(platform).commit(principal=principal, name=name, files=files, description=body.description,
                                          public=body.public, team=body.team, metric=body.metric,
                                          direction=body.direction)


@api.get("/{name}", responses=errors(400, 401, 404))
def dataset_info(name: Name, platform: PlatformDep, principal: CurrentPrincipal,
                 version: Annotated[int | None, Query(ge=1, le=(1 << 31) - 1,
                                                      description="the version to describe (default: latest)")] = None,
                 ) -> dict[str, Any]:
    """The dataset, its versions, and the chosen version's totals, eval script name, metric and direction."""
    return dataset_store(platform).info(principal=principal, ref=f"{name}:{version}" if version else name)


@api.get("/{name}/versions/{version}/files", responses=errors(400, 401, 404))
def version_files(name: Name, version: Version, platform: PlatformDep, principal: CurrentPrincipal,
                  offset: Annotated[NonNegInt64, Query()] = 0,
                  limit: Annotated[int, Query(ge=1, le=FILES_PAGE_MAX)] = 1000) -> FileList:
    """A page of the version's train files by path, with size and sha256."""
    items, total = dataset_store(platform).files(principal=principal, name=name, version=version, offset=offset,
                                                 limit=limit)
    return FileList(items=items, total=total, offset=offset, limit=limit)


@api.get(
    "/{name}/versions/{version}/files/{path:path}",
    responses={**errors(400, 401, 404, 500),
               200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "the train file; X-Haneul-Sha256 carries its checksum"}},
)
def download_file(name: Name, version: Version, path: str, platform: PlatformDep,
                  principal: CurrentPrincipal) -> Any:
    record, source = dataset_store(platform).open_file(principal=principal, name=name, version=version, path=path)
    headers = {"X-Haneul-Sha256": record["sha256"], "X-Content-Type-Options": "nosniff",
               "Content-Length": str(record["size"])}
    # read in 1 MB pieces, not FileResponse's 64 KB: a quarter of the thread hops per byte
    opened = source if hasattr(source, "read") else open(source, "rb")  # noqa: SIM115 - closed by chunks()

    def chunks() -> Iterator[bytes]:
        with opened:
            while data := opened.read(1 << 20):
                yield data

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


@api.post(
    "/{name}/versions/{version}/download",
    responses={**errors(400, 401, 404, 500),
               200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "description": 'records, in the order asked: a JSON line {"path": ..., "size": N, '
                                    '"sha256": ...}, then the N bytes of the file'}},
)
def download_files(name: Name, version: Version, body: DownloadQuery, platform: PlatformDep,
                   principal: CurrentPrincipal) -> Any:
    """Many train files of a version in one answer (what ``haneul dataset pull`` reads). Every path is
    looked up as the single-file download looks it up: a path that is not a train file is a 404."""
    files = dataset_store(platform).open_files(principal=principal, name=name, version=version, paths=body.paths)
    heads = [record_header(record) for record, _ in files]
    length = sum(map(len, heads)) + sum(record["size"] for record, _ in files)

    def records() -> Iterator[bytes]:
        small = bytearray()  # headers and small files go out together, not one thread hop each
        for head, (record, opener) in zip(heads, files, strict=True):
            small += head
            left = record["size"]
            with opener() as fh:
                while left > 0 and (data := fh.read(min(PIECE, left))):
                    left -= len(data)
                    if len(small) + len(data) <= PIECE >> 2:
                        small += data
                        continue
                    if small:
                        yield bytes(small)
                        small.clear()
                    yield data
            if left:  # the stored blob is shorter than its record: cut the answer, the client pulls again
                raise IntegrityError(f"the bytes of {name}:{version} {record['path']!r} are short in the blob store")
        if small:
            yield bytes(small)

    return StreamingResponse(records(), media_type="application/octet-stream",
                             headers={"Content-Length": str(length), "X-Content-Type-Options": "nosniff"})


@api.delete("/{name}", responses=errors(400, 401, 403, 404, 409))
def remove_dataset(name: Name, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Remove the dataset and all its versions; blobs no other dataset refers to are deleted."""
    return dataset_store(platform).remove(principal=principal, ref=name)


@api.delete("/{name}/versions/{version}", responses=errors(400, 401, 403, 404, 409))
def remove_version(name: Name, version: Version, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Remove one version; blobs no other version refers to are deleted."""
    return dataset_store(platform).remove(principal=principal, ref=f"{name}:{version}")


# --------------------------------------------------------------------------------------------------
# pages


@pages.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, platform: PlatformDep, templates: TemplatesDep, principal: CurrentPrincipal) -> Any:
    return templates.TemplateResponse(request, "datasets.html",
                                      {"datasets": dataset_store(platform).list_datasets(principal=principal)})


@pages.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(
    name: str,
    request: Request,
    platform: PlatformDep,
    templates: TemplatesDep,
    principal: CurrentPrincipal,
    version: Annotated[int | None, Query(ge=1, le=(1 << 31) - 1)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000_000)] = 1,
) -> Any:
    store = dataset_store(platform)
    info = store.info(principal=principal, ref=f"{name}:{version}" if version else name)
    chosen = info["version"]["version"]
    pages_total = max(1, -(-info["version"]["files"] // PAGE_FILES))
    page = min(page, pages_total)
    files, total = store.files(principal=principal, name=name, version=chosen, offset=(page - 1) * PAGE_FILES,
                               limit=PAGE_FILES)
    return templates.TemplateResponse(request, "dataset.html", {
        "d": info, "v": info["version"], "files": files, "total": total, "page": page, "pages": pages_total,
        "eval": store.eval_script(principal=principal, name=name, version=chosen),
    })


#: what the app includes: the API and the pages
router = APIRouter()
router.include_router(api)
router.include_router(pages)
