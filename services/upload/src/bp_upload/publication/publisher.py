"""Publishes one robot's dataset: verified files, then the manifest, then LATEST, all or nothing.

Order of writes, so that nobody sees half a dataset as published:
1. every file under `datasets/{scene}/{robot}/{run}/`, each verified (see transfer.py);
2. an audit listing of the run prefix: missing or altered objects are sent again;
3. `dataset_manifest.json`, create-only: from here on the run is published;
4. `LATEST`, by compare-and-swap on its generation, unless a newer run is already there;
5. the catalogue entry.

A run whose manifest exists is a no-op (only steps 4 and 5 are made sure of). A failure before
step 3 that will not be retried (a permanent error, or the last delivery attempt) removes this
run's prefix and nothing else; a transient one leaves the verified objects for the retry.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bp_common.blobstore import BlobStore
from bp_common.errors import AlreadyExists, NotFound, PermanentError, PipelineError, Unavailable

from bp_upload.catalogue.port import CatalogueEntry, DatasetCatalogue
from bp_upload.destinations.port import Destination
from bp_upload.errors import (
    CleanupFailed,
    SourceCorrupt,
    SourceIncomplete,
    VerificationFailed,
    upload_failed,
)
from bp_upload.options import UploadOptions
from bp_upload.publication.import_manifest import (
    IMPORT_MANIFEST_NAME,
    DatasetInventory,
    SourceFile,
    parse_import_manifest,
)
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.manifest import (
    DatasetManifest,
    LatestPointer,
    PublishedFile,
    QualitySummary,
    parse_manifest,
)
from bp_upload.publication.result import UploadResult
from bp_upload.publication.retry_policy import Deadline
from bp_upload.publication.transfer import (
    SHA256_METADATA,
    FileJob,
    FileOutcome,
    Transfer,
    TransferReport,
)

log = logging.getLogger("bp.upload")
_LATEST_SWAP_TRIES = 8


class DatasetConflict(PermanentError):
    """This run id already has a published dataset built from a different import manifest."""


@dataclass(frozen=True)
class DatasetSource:
    """Where the import stage left the dataset: a prefix in the pipeline's blob store."""

    store: BlobStore
    prefix: str
    manifest_key: str

    def __post_init__(self) -> None:
        if self.prefix and not self.prefix.endswith("/"):
            raise ValueError("a source prefix is empty or ends with '/'")
        if not self.manifest_key.startswith(self.prefix):
            raise ValueError("the import manifest must lie inside the dataset's prefix")


@dataclass(frozen=True)
class PublishRequest:
    location: DatasetLocation
    source: DatasetSource
    quality: QualitySummary
    final: bool = False  # no retry will follow: clean up after a transient failure too


@dataclass(frozen=True)
class Publication:
    """A published dataset and what it took."""

    location: DatasetLocation
    storage_bucket: str
    manifest_key: str
    manifest_uri: str
    latest: LatestPointer
    result: UploadResult
    files: int
    dataset_bytes: int
    published_at: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DatasetPublisher:
    def __init__(
        self,
        destination: Destination,
        options: UploadOptions,
        *,
        catalogue: DatasetCatalogue | None = None,
        progress: Callable[[FileOutcome], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.destination = destination
        self.options = options
        self.catalogue = catalogue
        self.progress = progress
        self.clock = clock
        self.now = now

    def deadline(self) -> Deadline:
        return Deadline(self.options.deadline_s, clock=self.clock, what="the upload deadline")

    def _timeout(self, deadline: Deadline) -> float:
        left = deadline.remaining()
        limit = self.options.request_timeout_s
        return limit if left is None else max(0.05, min(limit, left))

    def publish(self, request: PublishRequest, *, deadline: Deadline | None = None) -> Publication:
        started = self.clock()
        deadline = deadline or self.deadline()
        try:
            return self._publish(request, deadline, started)
        except PipelineError as exc:
            if exc.permanent or request.final:
                self.cleanup(request.location, cause=exc)  # a no-op once the manifest exists
            raise

    def _publish(self, request: PublishRequest, deadline: Deadline, started: float) -> Publication:
        loc = request.location
        inventory, manifest_bytes = self._read_inventory(request.source, deadline)
        committed = self.destination.fetch(loc.manifest_key, timeout=self._timeout(deadline))
        if committed is None:
            result, published_at = self._upload_and_commit(
                request, inventory, manifest_bytes, deadline, started
            )
        else:
            document = self._same_dataset(committed[0], inventory, loc)
            published_at = datetime.fromisoformat(document["published_at"])
            result = UploadResult(
                files=len(document["files"]),
                skipped=len(document["files"]),
                duration_s=self.clock() - started,
                already_published=True,
            )
            log.info("%s is already published: nothing to upload", self.destination.uri(loc.prefix))
        return self._announce(request, inventory, manifest_bytes, result, published_at, deadline)

    def _read_inventory(
        self, source: DatasetSource, deadline: Deadline
    ) -> tuple[DatasetInventory, bytes]:
        deadline.check(manifest=source.manifest_key)
        try:
            data = source.store.read_bytes(source.manifest_key)
        except NotFound as exc:
            raise SourceIncomplete(
                "the import manifest is missing", manifest=source.store.uri(source.manifest_key)
            ) from exc
        digest = hashlib.sha256(data).hexdigest()
        where = source.store.uri(source.manifest_key)
        return parse_import_manifest(data, manifest_sha256=digest, where=where), data

    def _same_dataset(
        self, data: bytes, inventory: DatasetInventory, loc: DatasetLocation
    ) -> dict[str, Any]:
        document = dict(parse_manifest(data, where=self.destination.uri(loc.manifest_key)))
        source = document.get("source")
        committed_sha = source.get("import_manifest_sha256") if isinstance(source, dict) else None
        if committed_sha != inventory.manifest_sha256:
            raise DatasetConflict(
                "this run is already published from a different import manifest",
                manifest=self.destination.uri(loc.manifest_key),
                published=committed_sha,
                offered=inventory.manifest_sha256,
            )
        return document

    def _plan(
        self,
        request: PublishRequest,
        inventory: DatasetInventory,
        manifest_bytes: bytes,
        deadline: Deadline,
    ) -> list[FileJob]:
        source, loc = request.source, request.location
        files = [
            *inventory.files,
            SourceFile(IMPORT_MANIFEST_NAME, inventory.manifest_sha256, len(manifest_bytes)),
        ]
        listed = {info.key: info for info in source.store.list(source.prefix)}
        for f in files:
            info = listed.get(source.prefix + f.path)
            if info is None:
                raise SourceIncomplete(
                    "the import manifest lists a file the source does not have",
                    file=f.path,
                    source=source.store.uri(source.prefix),
                )
            if info.size != f.size:
                raise SourceCorrupt(
                    "a source file's size differs from the import manifest",
                    file=f.path,
                    expected_size=f.size,
                    actual_size=info.size,
                )
        existing = {
            o.key: o for o in self.destination.list(loc.prefix, timeout=self._timeout(deadline))
        }
        jobs = []
        for f in files:
            key = loc.file_key(f.path)
            jobs.append(FileJob(f, source.prefix + f.path, key, existing.get(key)))
        return jobs

    def _transfer(
        self, jobs: Sequence[FileJob], request: PublishRequest, deadline: Deadline
    ) -> TransferReport:
        return Transfer(
            request.source.store,
            self.destination,
            self.options,
            deadline=deadline,
            metadata={"run_id": request.location.run_id},
            progress=self.progress,
            clock=self.clock,
        ).run(jobs)

    def _upload_and_commit(
        self,
        request: PublishRequest,
        inventory: DatasetInventory,
        manifest_bytes: bytes,
        deadline: Deadline,
        started: float,
    ) -> tuple[UploadResult, datetime]:
        loc = request.location
        jobs = self._plan(request, inventory, manifest_bytes, deadline)
        report = self._transfer(jobs, request, deadline)
        outcomes = dict(report.outcomes)
        retries, repaired = report.retries, 0

        def failed(
            what: str, report: TransferReport, cause: PipelineError | None = None
        ) -> PipelineError:
            cause = cause or report.first_error()
            assert cause is not None
            partial = _result(jobs, outcomes, report, retries, repaired, self.clock() - started)
            return upload_failed(
                f"{what} of {loc.prefix} failed: {cause.message}",
                cause=cause,
                result=partial,
                prefix=loc.prefix,
                failed=len(report.failures),
            )

        if report.failures or report.stopped:
            raise failed("upload", report)
        for audit_round in range(self.options.audit_rounds + 1):
            bad = self._audit(jobs, outcomes, loc, deadline)
            if not bad:
                break
            if audit_round == self.options.audit_rounds:
                still = VerificationFailed(
                    "objects are still missing or altered after repeated repairs",
                    files=",".join(j.file.path for j in bad[:10]),
                )
                raise failed("verification", report, still)
            log.warning("audit: %d object(s) missing or altered; sending again", len(bad))
            report = self._transfer(
                [FileJob(j.file, j.source_key, j.dest_key) for j in bad], request, deadline
            )
            outcomes.update(report.outcomes)
            retries += report.retries
            repaired += len(bad)
            if report.failures or report.stopped:
                raise failed("repair", report)
        published_at = self._commit(request, inventory, jobs, outcomes, deadline)
        return _result(
            jobs, outcomes, report, retries, repaired, self.clock() - started
        ), published_at

    def _audit(
        self,
        jobs: Sequence[FileJob],
        outcomes: dict[str, FileOutcome],
        loc: DatasetLocation,
        deadline: Deadline,
    ) -> list[FileJob]:
        """Jobs whose object is missing or no longer what was verified; strays are removed."""
        deadline.check(prefix=loc.prefix)
        listing = {
            o.key: o for o in self.destination.list(loc.prefix, timeout=self._timeout(deadline))
        }
        expected = {j.dest_key for j in jobs}
        for key in sorted(set(listing) - expected - {loc.manifest_key}):
            loc.relative(key)  # refuses anything outside this run's prefix
            log.info("removing %s: not part of this dataset", self.destination.uri(key))
            self.destination.delete(key, timeout=self._timeout(deadline))
        bad = []
        for job in jobs:
            stored = listing.get(job.dest_key)
            digests = outcomes[job.file.path].digests
            if (
                stored is None
                or stored.size != digests.size
                or stored.md5_b64 != digests.md5_b64
                or stored.crc32c_b64 != digests.crc32c_b64
                or stored.metadata.get(SHA256_METADATA) != job.file.sha256
            ):
                bad.append(job)
        return bad

    def _commit(
        self,
        request: PublishRequest,
        inventory: DatasetInventory,
        jobs: Sequence[FileJob],
        outcomes: dict[str, FileOutcome],
        deadline: Deadline,
    ) -> datetime:
        loc = request.location
        deadline.check(prefix=loc.prefix)
        manifest = DatasetManifest(
            location=loc,
            storage_bucket=self.destination.bucket_name,
            files=tuple(
                PublishedFile(
                    path=j.file.path,
                    size=j.file.size,
                    sha256=j.file.sha256,
                    md5_b64=outcomes[j.file.path].digests.md5_b64,
                    crc32c_b64=outcomes[j.file.path].digests.crc32c_b64,
                )
                for j in jobs
            ),
            source_uri=request.source.store.uri(request.source.prefix),
            import_manifest_sha256=inventory.manifest_sha256,
            quality=request.quality,
            published_at=self.now(),
        )
        try:
            self.destination.write_small(
                loc.manifest_key,
                manifest.to_bytes(),
                if_generation_match=0,
                content_type="application/json",
                timeout=self._timeout(deadline),
            )
        except AlreadyExists:
            # A concurrent delivery of the same run committed first: its manifest stands.
            fetched = self.destination.fetch(loc.manifest_key, timeout=self._timeout(deadline))
            if fetched is None:
                raise Unavailable(
                    "the manifest vanished after a commit race", key=loc.manifest_key
                ) from None
            document = self._same_dataset(fetched[0], inventory, loc)
            return datetime.fromisoformat(str(document["published_at"]))
        return manifest.published_at

    def _announce(
        self,
        request: PublishRequest,
        inventory: DatasetInventory,
        manifest_bytes: bytes,
        result: UploadResult,
        published_at: datetime,
        deadline: Deadline,
    ) -> Publication:
        loc = request.location
        latest = self.point_latest(loc, published_at, deadline)
        publication = Publication(
            location=loc,
            storage_bucket=self.destination.bucket_name,
            manifest_key=loc.manifest_key,
            manifest_uri=self.destination.uri(loc.manifest_key),
            latest=latest,
            result=result,
            files=len(inventory.files) + 1,
            dataset_bytes=inventory.total_bytes + len(manifest_bytes),
            published_at=published_at,
        )
        if self.catalogue is not None:
            self.catalogue.record(_entry(publication, request))
        return publication

    def point_latest(
        self, loc: DatasetLocation, published_at: datetime, deadline: Deadline
    ) -> LatestPointer:
        """Make LATEST name this run unless a run published later already holds it."""
        ours = LatestPointer(
            run_id=loc.run_id,
            manifest=loc.manifest_key,
            manifest_uri=self.destination.uri(loc.manifest_key),
            published_at=published_at,
        )
        for _ in range(_LATEST_SWAP_TRIES):
            current = self.destination.fetch(loc.latest_key, timeout=self._timeout(deadline))
            generation = 0
            if current is not None:
                pointer = LatestPointer.parse(current[0])
                if pointer is not None and (
                    pointer.run_id == loc.run_id or pointer.published_at > published_at
                ):
                    return pointer
                generation = current[1].generation
            try:
                self.destination.write_small(
                    loc.latest_key,
                    ours.to_bytes(),
                    if_generation_match=generation,
                    content_type="application/json",
                    timeout=self._timeout(deadline),
                )
            except AlreadyExists:
                continue  # another run moved LATEST meanwhile: look again
            return ours
        raise Unavailable("LATEST kept changing under us", key=loc.latest_key)

    def cleanup(self, loc: DatasetLocation, *, cause: PipelineError) -> int:
        """Remove this run's unpublished objects, and only them; raises CleanupFailed."""
        deadline = Deadline(
            self.options.cleanup_timeout_s, clock=self.clock, what="the cleanup timeout"
        )
        prefix_uri = self.destination.uri(loc.prefix)
        try:
            if (
                self.destination.fetch(loc.manifest_key, timeout=self._timeout(deadline))
                is not None
            ):
                log.warning("not cleaning %s: it was published meanwhile", prefix_uri)
                return 0
            keys = [
                o.key for o in self.destination.list(loc.prefix, timeout=self._timeout(deadline))
            ]
            for key in keys:
                loc.relative(key)  # refuses anything outside this run's prefix before deleting
            if keys:
                with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
                    list(
                        pool.map(
                            lambda k: self.destination.delete(k, timeout=self._timeout(deadline)),
                            keys,
                        )
                    )
        except (PipelineError, OSError) as exc:
            log.error(
                "cleanup of %s failed after %s: %s",
                prefix_uri,
                getattr(cause, "kind", "error"),
                exc,
                extra={"scene_id": loc.scene_id, "run_id": loc.run_id},
            )
            raise CleanupFailed(
                f"could not remove the failed run's objects ({exc}); the run failed with "
                f"{cause.kind}: {cause.message}",
                prefix=prefix_uri,
                cleanup_error=getattr(exc, "kind", type(exc).__name__),
            ) from exc
        log.info("removed %d object(s) of the failed run under %s", len(keys), prefix_uri)
        return len(keys)


def _result(
    jobs: Sequence[FileJob],
    outcomes: dict[str, FileOutcome],
    report: TransferReport,
    retries: int,
    repaired: int,
    duration_s: float,
) -> UploadResult:
    sent = [o for o in outcomes.values() if o.action == "uploaded"]
    return UploadResult(
        files=len(jobs),
        uploaded=len(sent),
        skipped=sum(1 for o in outcomes.values() if o.action == "skipped"),
        verified=len(outcomes),
        bytes=sum(o.digests.size for o in sent),
        retries=retries,
        repaired=repaired,
        duration_s=duration_s,
        failures=tuple(report.failures),
    )


def _entry(publication: Publication, request: PublishRequest) -> CatalogueEntry:
    loc, quality = publication.location, request.quality
    return CatalogueEntry(
        scene_id=loc.scene_id,
        robot=loc.robot,
        run_id=loc.run_id,
        storage_bucket=publication.storage_bucket,
        prefix=loc.prefix,
        manifest=publication.manifest_key,
        manifest_uri=publication.manifest_uri,
        latest=loc.latest_key,
        files=publication.files,
        bytes=publication.dataset_bytes,
        codebase_version=quality.codebase_version,
        episodes=quality.episodes,
        frames=quality.frames,
        quality_pass_rate=quality.quality_pass_rate,
        published_at=publication.published_at.isoformat(),
        source_uri=request.source.store.uri(request.source.prefix),
    )
