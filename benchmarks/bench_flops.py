"""FLOPs per pair of the teacher MatchLM and the student MatchLite (TARGETS.md: >= 35x at gpu sizes).

MatchLM2Lite §5.1 reports 25.4 TFLOPs per pair for MatchLM and 0.86 TFLOPs for MatchLite.
This benchmark counts FLOPs with ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per
multiply-add; matmuls, convolutions and attention — element-wise ops are not counted) for
one pair of 20-s clips (1 fps: 20 frames each, 20 audio tokens, 64 text tokens), at the
``local`` and ``gpu`` profile sizes:

* **teacher**: everything MatchLM runs for a pair — SigLIP + projector on the frames kept by
  dynamic frame allocation, the Whisper encoder on both audio windows, the Qwen2 language
  model on the interleaved sequence, the head. ``local``: the full ``forward`` on real
  tensors, plus the per-component sum as a cross-check of the method used at ``gpu``
  sizes. ``gpu``: the model is built on the ``meta`` device (no memory, random-init
  shapes; LLaVA-OV-0.5B, Whisper-small) and each component runs on meta tensors —
  ``forward`` itself cannot, as its frame masks and Qwen2's padding-mask check read data.
* **student**: MatchLite's own forward on cached features (real tensors, eval mode).
* **student_encoders**: the frozen encoders MatchLite's features come from (Swin frames,
  Whisper window, MiniLM text), per pair when neither clip is cached, counted on meta.
  In serving each clip is encoded once at upload and its features are reused for every
  pair it appears in, so they are reported apart from the per-pair student cost.

Usage::

    .venv/bin/python benchmarks/bench_flops.py [--out benchmarks/results/flops.json]

Writes teacher/student FLOPs per pair per profile, their breakdowns, parameter counts
and the ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipguard.config import Config, load_config
from clipguard.encoders.audio import whisper_config
from clipguard.encoders.vision import swin_config
from clipguard.eval.speed import count_flops as count
from clipguard.models.frames import allocate_frame_counts
from clipguard.models.matchlite import ClipFeatures, MatchLiteConfig, MatchLiteForPairClassification
from clipguard.models.matchlm import MatchLMConfig, MatchLMForPairClassification, MatchLMProcessor, PairExample
from clipguard.models.tokenizer import load_tokenizer

CLIP_SECONDS = 20
FRAMES_PER_CLIP = 20  # 1 fps
AUDIO_TOKENS_PER_CLIP = 20  # 1 per second
TEXT_TOKENS_PER_CLIP = 64  # A.1
PAPER = {"teacher_tflops": 25.4, "student_tflops": 0.86, "reported_reduction": 35}


def n_params(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def long_text(words: int) -> str:
    return " ".join(f"word{i}" for i in range(words))


def teacher_components(model: MatchLMForPairClassification, frames: int, seq_len: int, device: str) -> dict[str, int]:
    """FLOPs of each part MatchLM runs for one pair, on tensors of the right shapes."""
    c = model.config
    size = c.image_size
    vision, _ = count(model.encode_frames, torch.zeros(frames, 3, size, size, device=device))
    mel = torch.zeros(2, c.audio.num_mel_bins, 2 * c.audio_positions, device=device)
    audio, _ = count(model.encode_audio, mel)
    embeds = torch.zeros(1, seq_len, c.hidden_size, device=device)
    lm, hidden = count(lambda e: model.llava.language_model(inputs_embeds=e).last_hidden_state, embeds)
    head, _ = count(model.head, hidden[:, -1])
    return {"vision": vision, "audio": audio, "language_model": lm, "head": head}


def teacher_report(cfg: Config, on_meta: bool) -> dict[str, Any]:
    """Teacher FLOPs per pair and parameter counts at ``cfg``'s sizes (random init, no checkpoint)."""
    teacher = cfg.models.teacher.model_copy(update={"checkpoint_dir": None, "audio_checkpoint_dir": None})
    tokenizer = load_tokenizer()
    config = MatchLMConfig.from_settings(teacher, cfg.models.tasks, tokenizer)
    device = "meta" if on_meta else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = MatchLMForPairClassification(config).eval()
    params = {"total": n_params(model)}
    frames_q, frames_c = allocate_frame_counts(FRAMES_PER_CLIP, FRAMES_PER_CLIP, config.frame_budget, config.min_frames)
    processor = MatchLMProcessor(tokenizer, config)
    text = long_text(200)
    seq_len = len(processor.sequence_ids(frames_q, frames_c, text, text))
    with torch.no_grad():
        parts = teacher_components(model, frames_q + frames_c, seq_len, device)
        report: dict[str, Any] = {
            "frames": [frames_q, frames_c],
            "tokens_per_frame": config.tokens_per_frame,
            "sequence_length": seq_len,
            "audio_states_per_clip": config.audio_positions,
            "components": parts,
            "component_sum": sum(parts.values()),
        }
        if on_meta:
            report["total"] = report["component_sum"]
            report["method"] = "per component on the meta device (shapes only)"
        else:
            rng = np.random.default_rng(0)
            frames = [rng.integers(0, 256, (FRAMES_PER_CLIP, 48, 64, 3), dtype=np.uint8) for _ in range(2)]
            wave = [rng.standard_normal(CLIP_SECONDS * 16_000).astype(np.float32) * 0.1 for _ in range(2)]
            batch = processor([PairExample(frames[0], frames[1], wave[0], wave[1], text, text)])
            report["total"], _ = count(model, **batch)
            report["method"] = "full forward on real tensors (component_sum: the gpu method, for comparison)"
    model.prepare_for_lora()
    params["lora_mode_trainable"] = n_params(model, trainable_only=True)
    params["lora_adapters"] = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    report["params"] = params
    return report


def student_report(cfg: Config) -> dict[str, Any]:
    """MatchLite FLOPs per pair on cached features (real tensors, eval mode)."""
    config = MatchLiteConfig.from_settings(cfg.models)
    torch.manual_seed(0)
    model = MatchLiteForPairClassification(config).eval()

    def side() -> ClipFeatures:
        def tokens(t: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.randn(1, t, d), torch.ones(1, t, dtype=torch.bool)

        v, vm = tokens(FRAMES_PER_CLIP, config.visual_dim)
        a, am = tokens(AUDIO_TOKENS_PER_CLIP, config.audio_dim)
        t, tm = tokens(TEXT_TOKENS_PER_CLIP, config.text_dim)
        return ClipFeatures(v, vm, a, am, t, tm)

    with torch.no_grad():
        total, _ = count(model, side(), side())
    return {
        "total": total,
        "tokens_per_clip": {"visual": FRAMES_PER_CLIP, "audio": AUDIO_TOKENS_PER_CLIP, "text": TEXT_TOKENS_PER_CLIP},
        "modalities": config.modalities,
        "params": {"total": n_params(model)},
        "method": "full forward on real tensors",
    }


def encoder_report(cfg: Config, profile: str) -> dict[str, Any]:
    """FLOPs of the frozen encoders behind MatchLite's features, per clip and per pair (meta device)."""
    from transformers import BertConfig, BertModel, SwinModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from clipguard.models.tokenizer import minilm_tokenizer_path

    enc = cfg.encoders
    if profile == "gpu":  # paraphrase-multilingual-MiniLM-L12-v2, the gpu profile's text encoder
        text_config = BertConfig(
            hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536, vocab_size=250_037
        )
    else:  # the bundled all-MiniLM-L6-v2
        text_config = BertConfig.from_pretrained(str(minilm_tokenizer_path()), local_files_only=True)
    whisper = whisper_config(enc, cfg.media.clip_seconds, cfg.media.sample_rate)
    with torch.device("meta"), torch.no_grad():
        swin = SwinModel(swin_config(enc)).eval()
        audio = WhisperEncoder(whisper).eval()
        text = BertModel(text_config).eval()
        size = enc.vision_image_size
        visual, _ = count(swin, pixel_values=torch.zeros(FRAMES_PER_CLIP, 3, size, size))
        audio_flops, _ = count(audio, torch.zeros(1, whisper.num_mel_bins, 2 * whisper.max_source_positions))
        ids = torch.zeros(1, TEXT_TOKENS_PER_CLIP, dtype=torch.long)
        text_flops, _ = count(text, input_ids=ids)  # no padding: no mask (its check reads data)
    per_clip = {"visual": visual, "audio": audio_flops, "text": text_flops}
    return {
        "per_clip": per_clip,
        "per_pair_uncached": 2 * sum(per_clip.values()),
        "models": {
            "visual": f"Swin embed {enc.vision_embed_dim}, depths {list(enc.vision_depths)}, {size} px, {FRAMES_PER_CLIP} frames",
            "audio": f"Whisper encoder d={enc.audio_d_model}, {enc.audio_layers} layers, {whisper.max_source_positions} states",
            "text": f"MiniLM {text_config.num_hidden_layers} layers x {text_config.hidden_size}, {TEXT_TOKENS_PER_CLIP} tokens",
        },
    }


def profile_report(profile: str) -> dict[str, Any]:
    cfg = load_config(profile)
    start = time.perf_counter()
    teacher = teacher_report(cfg, on_meta=profile == "gpu")
    student = student_report(cfg)
    encoders = encoder_report(cfg, profile)
    return {
        "teacher": teacher,
        "student": student,
        "student_encoders": encoders,
        "teacher_tflops": teacher["total"] / 1e12,
        "student_tflops": student["total"] / 1e12,
        "student_with_uncached_encoders_tflops": (student["total"] + encoders["per_pair_uncached"]) / 1e12,
        "ratio_teacher_over_student": teacher["total"] / student["total"],
        "ratio_teacher_over_student_with_uncached_encoders": teacher["total"]
        / (student["total"] + encoders["per_pair_uncached"]),
        "seconds": round(time.perf_counter() - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "flops.json")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    profiles = {p: profile_report(p) for p in ("local", "gpu")}
    gpu = profiles["gpu"]
    result = {
        "benchmark": "flops per pair (FlopCounterMode, 2 FLOPs per multiply-add)",
        "pair": f"two {CLIP_SECONDS}-s clips at 1 fps",
        "profiles": profiles,
        "paper": PAPER,
        "target": {
            "ratio_teacher_over_student_gpu": 35,
            "met": gpu["ratio_teacher_over_student"] >= 35,
        },
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for name, r in profiles.items():
        print(
            f"{name:5s} teacher {r['teacher_tflops']:.4g} TFLOPs  student {r['student_tflops']:.4g} TFLOPs "
            f"(+ encoders uncached {r['student_with_uncached_encoders_tflops']:.4g})  "
            f"ratio {r['ratio_teacher_over_student']:.1f}x "
            f"({r['ratio_teacher_over_student_with_uncached_encoders']:.1f}x with encoders)"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
