"""Pod resources of the compiled pipelines' steps, per compile target.

Every heavy step requests CPU and memory (a scheduler places it, a limit keeps a runaway
step from starving its node). With ``--target gpu`` (``CLIPGUARD_COMPILE_TARGET=gpu``) the
teacher steps (``teacher-sft``, ``teacher-cache``: the LLaVA-OV teacher of the ``gpu``
profile) also run on the GPU image (``CLIPGUARD_GPU_IMAGE``) with one ``nvidia.com/gpu``;
everything else stays on the CPU image. The local runner ignores all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import dsl

from components import COMPILE_TARGET, GPU_IMAGE

ACCELERATOR = "nvidia.com/gpu"


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str
    gpus: int = 0
    """accelerators with the ``gpu`` target (0: the step never needs one)"""


STEP_RESOURCES: dict[str, Resources] = {
    "pretrain-encoders": Resources("4", "8Gi", "8", "16Gi"),
    "extract-features": Resources("2", "4Gi", "4", "8Gi"),
    "teacher-sft": Resources("4", "16Gi", "8", "32Gi", gpus=1),
    "teacher-cache": Resources("2", "8Gi", "4", "16Gi", gpus=1),
    "student-distill": Resources("4", "8Gi", "8", "16Gi"),
    "build-index": Resources("2", "8Gi", "4", "16Gi"),
    "evaluate-student": Resources("2", "4Gi", "4", "8Gi"),
}
"""Requests / limits per step (the component's name)."""

SERVICE_RETRIES = {"num_retries": 3, "backoff_duration": "30s", "backoff_factor": 2.0, "backoff_max_duration": "600s"}
"""KFP retry policy of every step that talks to a service (MLflow, Feast's Redis and registry)."""


def sized(task: dsl.PipelineTask, target: str = COMPILE_TARGET) -> dsl.PipelineTask:
    """``task`` with the requests and limits of its step (and, for the ``gpu`` target, its GPU and image)."""
    r = STEP_RESOURCES[task.component_spec.name]
    task.set_cpu_request(r.cpu).set_cpu_limit(r.cpu_limit).set_memory_request(r.memory).set_memory_limit(r.memory_limit)
    if target == "gpu" and r.gpus:
        task.set_accelerator_type(ACCELERATOR).set_accelerator_limit(r.gpus).set_container_image(GPU_IMAGE)
    return task


def service_step(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """A step with effects outside its artifacts (Feast, MLflow, the bento store): never cached,
    retried with backoff when the service it talks to fails."""
    return task.set_caching_options(False).set_retry(**SERVICE_RETRIES)
