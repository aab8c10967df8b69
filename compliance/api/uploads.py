"""The fields of a photo upload, read from a multipart form in one place: ``POST /v1/submissions``
and ``POST /v1/prechecks`` take the same fields and refuse the same mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Form

from compliance.api.deps import Caller
from compliance.api.errors import invalid
from compliance.api.schemas import PipelineChoice
from compliance.service.intake import InvalidUpload, Upload, check_upload
from compliance.store.models import SubmissionSource


@dataclass(frozen=True, slots=True)
class UploadForm:
    driver_id: int | None
    driver_ref: str | None
    vehicle_id: int | None
    plate: str | None
    job_id: str | None
    job_start: datetime | None
    job_end: datetime | None
    site: str | None
    pipeline: PipelineChoice | None

    def upload(self, caller: Caller, *, idempotency_key: str | None = None) -> Upload:
        """The upload these fields describe, checked as every entry point checks one (422 if not)."""
        if (self.driver_id is None) == (self.driver_ref is None):
            raise invalid("invalid_request", "give driver_id or driver_ref (one of them)")
        if (self.vehicle_id is None) == (self.plate is None):
            raise invalid("invalid_request", "give vehicle_id or plate (one of them)")
        upload = Upload(
            carrier=caller.carrier_id,
            driver=self.driver_id if self.driver_id is not None else str(self.driver_ref),
            plate=self.plate,
            vehicle_id=self.vehicle_id,
            job_id=self.job_id,
            site=self.site,
            job_start=self.job_start,
            job_end=self.job_end,
            idempotency_key=idempotency_key,
            pipeline=self.pipeline,
            source=SubmissionSource.API,
            actor=caller.actor,
        )
        try:
            check_upload(upload)
        except InvalidUpload as exc:
            raise invalid(exc.code, str(exc)) from None
        return upload


def upload_form(
    driver_id: Annotated[int | None, Form(ge=1, le=2**31 - 1, description="the driver's id")] = None,
    driver_ref: Annotated[
        str | None, Form(min_length=1, max_length=128, description="or the carrier's own ref")
    ] = None,
    vehicle_id: Annotated[int | None, Form(ge=1, le=2**31 - 1, description="the vehicle's id")] = None,
    plate: Annotated[str | None, Form(min_length=1, max_length=32, description="or its registered plate")] = None,
    job_id: Annotated[str | None, Form(max_length=128)] = None,
    job_start: Annotated[datetime | None, Form(description="job window start, with a UTC offset")] = None,
    job_end: Annotated[datetime | None, Form(description="job window end, with a UTC offset")] = None,
    site: Annotated[str | None, Form(max_length=128)] = None,
    pipeline: Annotated[
        PipelineChoice | None,
        Form(description="multistage, mllm, both or cascade (see the README); default: the deployment's"),
    ] = None,
) -> UploadForm:
    return UploadForm(driver_id, driver_ref, vehicle_id, plate, job_id, job_start, job_end, site, pipeline)
