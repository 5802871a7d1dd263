"""google-cloud-storage failures become the pipeline's typed errors in one place, for the blob
store and for upload's Firebase destination alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from bp_common.blobstore.gcs import GcsBlobStore, make_storage_client, storage_error
from bp_common.errors import AlreadyExists, NotFound, PipelineError, TransientError, Unavailable
from bp_common.secrets import FileSecretStore
from bp_ops.emulators import free_port
from bp_upload.options import UploadOptions
from bp_upload.wiring import firebase_destination
from google.api_core import exceptions as gexc
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from tests.upload.conftest import cloud_settings


def answer(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


TRANSLATED: list[tuple[BaseException, type[PipelineError]]] = [
    (gexc.NotFound("no such object"), NotFound),
    (InvalidResponse(answer(404), "during a resumable upload"), NotFound),
    (gexc.PreconditionFailed("generation changed"), AlreadyExists),
    (InvalidResponse(answer(412), "during a resumable upload"), AlreadyExists),
    (gexc.TooManyRequests("slow down"), Unavailable),
    (gexc.from_http_status(408, "took too long"), Unavailable),
    (gexc.ServiceUnavailable("back soon"), Unavailable),
    (gexc.InternalServerError("oops"), Unavailable),
    (InvalidResponse(answer(503), "mid-chunk"), Unavailable),
    (gexc.RetryError("library retries ran out", cause=gexc.ServiceUnavailable("x")), Unavailable),
    (requests.exceptions.ConnectionError("connection refused"), Unavailable),
    (requests.exceptions.ReadTimeout("read timed out"), Unavailable),
    (requests.exceptions.ChunkedEncodingError("connection broken"), Unavailable),
    (ConnectionResetError("reset by peer"), Unavailable),
    (DataCorruption(answer(200), "crc32c mismatch"), Unavailable),
]
# Faults that retrying cannot fix pass unchanged, so they reach the logs as what they are.
UNCHANGED: list[BaseException] = [
    gexc.Forbidden("the service account may not write here"),
    gexc.BadRequest("invalid object name"),
    InvalidResponse(answer(400), "bad range"),
    requests.exceptions.InvalidURL("no host"),
    ValueError("a bug"),
]


@pytest.mark.parametrize(("failure", "expected"), TRANSLATED, ids=lambda v: type(v).__name__)
def test_what_may_pass_is_transient_and_missing_or_changed_objects_are_named(
    failure: BaseException, expected: type[PipelineError]
) -> None:
    error = storage_error(failure, object="gs://b/runs/a")
    assert type(error) is expected
    assert isinstance(error, PipelineError) and error.context == {"object": "gs://b/runs/a"}
    assert isinstance(error, TransientError) is (expected is Unavailable)


@pytest.mark.parametrize("failure", UNCHANGED, ids=lambda v: type(v).__name__)
def test_a_fault_that_retrying_cannot_fix_passes_unchanged(failure: BaseException) -> None:
    assert storage_error(failure) is failure


def test_an_unreachable_server_is_transient_for_the_blob_store_and_the_firebase_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    store = GcsBlobStore(
        make_storage_client("p", emulator_url=nowhere), "b", retry=DEFAULT_RETRY.with_timeout(0.5)
    )
    with pytest.raises(Unavailable):
        store.stat("runs/a")

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", nowhere)
    destination = firebase_destination(
        cloud_settings("p", "bp-datasets"), FileSecretStore(tmp_path / "secrets"), UploadOptions()
    )
    with pytest.raises(Unavailable):
        destination.fetch("datasets/LATEST", timeout=0.5)
    with pytest.raises(Unavailable):
        list(destination.list("datasets/", timeout=0.5))
