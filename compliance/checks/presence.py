"""Is the driver in the photo, and is a vehicle?"""

from __future__ import annotations

from compliance.checks.base import CheckContext, failed, passed, review
from compliance.judgments import Answer
from compliance.verdicts import CheckResult, ReasonCode


class PersonPresent:
    name = "person"

    def run(self, ctx: CheckContext) -> CheckResult:
        person = ctx.judgments.person
        if person.present is Answer.YES:
            return passed(self.name, f"{person.count or 'some'} person(s) found")
        if person.present is Answer.NO:
            return failed(self.name, ReasonCode.PERSON_MISSING, "no person in the photo")
        return review(self.name, ReasonCode.PERSON_UNCERTAIN, "could not tell whether a person is in the photo")


class VehiclePresent:
    name = "vehicle"

    def run(self, ctx: CheckContext) -> CheckResult:
        vehicle = ctx.judgments.vehicle
        if vehicle.present is Answer.YES:
            return passed(self.name, f"vehicle found ({vehicle.kind})")
        if vehicle.present is Answer.NO:
            return failed(self.name, ReasonCode.VEHICLE_MISSING, "no vehicle in the photo")
        return review(self.name, ReasonCode.VEHICLE_UNCERTAIN, "could not tell whether a vehicle is in the photo")
