"""Which outputs a job makes, in order, each with its file template, export and frame:
a rule's `outputs` (config/targets.py) as the pipeline makes them."""

from __future__ import annotations

from dataclasses import dataclass

from nemowatch.config.targets import SINGLE, OutputTarget
from nemowatch.engines.base import EDIT_FRAME, Frame
from nemowatch.rules import ExportSpec


@dataclass(frozen=True)
class Target:
    """One output of a job as the pipeline makes it."""

    name: str  # SINGLE for a rule's one output
    template: str  # the file name template, inside the outbox
    export: ExportSpec
    frame: Frame


def targets_of(outputs: str | tuple[OutputTarget, ...], export: ExportSpec) -> tuple[Target, ...]:
    """A rule's `outputs` as made with its `export`, in order (a template: one, SINGLE)."""
    if isinstance(outputs, str):
        return (Target(SINGLE, outputs, export, EDIT_FRAME),)
    return tuple(
        Target(
            name=item.name,
            template=item.template(export),
            export=item.export_spec(export),
            frame=Frame(output=item.name, aspect=item.aspect, fit=item.fit),
        )
        for item in outputs
    )
