"""MatchLM, the teacher (§3.2): tokenizer, interleaved input, early fusion, LoRA, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clipguard.config import Config
from clipguard.models.kd import IGNORE_INDEX
from clipguard.models.matchlm import MatchLMForPairClassification, MatchLMProcessor, last_token_index
from clipguard.models.tokenizer import AUDIO_TOKEN, IMAGE_TOKEN, VIDEO_TOKEN, special_token_ids

LORA_TRAINABLE_PREFIXES = ("head.", "audio_pooling.", "audio_projector.", "llava.multi_modal_projector.", "llava.image_newline")


@pytest.fixture
def teacher(tiny_cfg: Config, tokenizer) -> MatchLMForPairClassification:
    torch.manual_seed(0)
    return MatchLMForPairClassification.from_settings(tiny_cfg.models.teacher, tiny_cfg.models.tasks, tokenizer)


@pytest.fixture
def processor(teacher: MatchLMForPairClassification, tokenizer) -> MatchLMProcessor:
    return MatchLMProcessor(tokenizer, teacher.config)


def test_tokenizer_has_the_special_tokens(tokenizer) -> None:
    ids = special_token_ids(tokenizer)
    assert len({ids.image, ids.video, ids.audio, ids.pad, ids.end}) == 5
    for token, expected in ((VIDEO_TOKEN, ids.video), (AUDIO_TOKEN, ids.audio), (IMAGE_TOKEN, ids.image)):
        assert tokenizer(f"a{token}b", add_special_tokens=False)["input_ids"][1] == expected


def test_interleaved_sequence_order(processor: MatchLMProcessor, tokenizer) -> None:
    per_frame = processor.config.tokens_per_frame
    tokens = tokenizer.convert_ids_to_tokens(processor.sequence_ids(2, 3, "a red car", "blue"))
    text = " ".join(tokens)
    prompt = " ".join(tokenizer.tokenize(processor.config.prompt))
    assert text.startswith(prompt + " text 1 : a red car text 2 : blue video 1 :")
    video_1 = " ".join([VIDEO_TOKEN] * (2 * per_frame + 1))
    video_2 = " ".join([VIDEO_TOKEN] * (3 * per_frame + 1))
    expected_tail = f"video 1 : {video_1} audio : {AUDIO_TOKEN} video 2 : {video_2} audio : {AUDIO_TOKEN} [SEP]"
    assert text.endswith(expected_tail)
    assert tokens.count(AUDIO_TOKEN) == 2


def test_processor_batch(processor: MatchLMProcessor, pair_examples) -> None:
    c = processor.config
    batch = processor(pair_examples)
    assert batch["frame_mask"].sum(-1).tolist() == [[4, 2], [2, 4]]  # budget 6: 9 vs 3 frames -> 4 + 2
    b, _, f, ch, s, _ = batch["pixel_values_videos"].shape
    assert (b, f, ch, s) == (2, 4, 3, c.image_size)
    assert batch["audio_features"].shape == (2, 2, 80, 2 * c.audio_positions)
    assert batch["audio_mask"].sum(-1).tolist() == [[38, 0], [0, 13]]  # 0.75 s and 0.25 s at 50 states/s
    assert batch["labels"]["rci"].tolist() == [1, 0]
    assert batch["labels"]["reason"].tolist() == [0, IGNORE_INDEX]
    assert last_token_index(batch["attention_mask"]).tolist() == (batch["attention_mask"].sum(1) - 1).tolist()


def test_forward_backward(
    teacher: MatchLMForPairClassification, processor: MatchLMProcessor, pair_examples, tiny_cfg: Config
) -> None:
    out = teacher(**processor(pair_examples))
    assert {t: v.shape for t, v in out.logits.items()} == {t: (2, n) for t, n in tiny_cfg.models.tasks.items()}
    assert out.embedding.shape == (2, teacher.config.hidden_size)
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    # LLaVA-OV reads SigLIP's last hidden state before its post-layernorm, which gets no gradient.
    vision = teacher.llava.vision_tower
    modules = (
        teacher.audio_pooling,
        teacher.audio_projector,
        teacher.audio_encoder.layers,
        teacher.llava.multi_modal_projector,
        vision.embeddings,
        vision.encoder,
    )
    for module in modules:
        assert all(p.grad is not None for p in module.parameters())
    assert teacher.llava.language_model.layers[0].self_attn.q_proj.weight.grad is not None


def test_placeholder_rows_are_replaced_by_projected_features(
    teacher: MatchLMForPairClassification, processor: MatchLMProcessor, pair_examples
) -> None:
    teacher.eval()
    batch = processor(pair_examples)
    ids, ids_cfg = batch["input_ids"], teacher.config.token_ids
    with torch.no_grad():
        embeds = teacher.embed_inputs(
            ids, batch["pixel_values_videos"], batch["frame_mask"], batch["audio_features"], batch["audio_mask"]
        )
        table = teacher.llava.get_input_embeddings()(ids)
        for row in range(ids.shape[0]):
            frames = batch["pixel_values_videos"][row][batch["frame_mask"][row]]
            per_frame = teacher.encode_frames(frames)
            counts = batch["frame_mask"][row].sum(-1).tolist()
            newline = teacher.llava.image_newline[None]
            first, second = per_frame.split(counts)
            video = torch.cat((first.flatten(0, 1), newline, second.flatten(0, 1), newline))
            audio = teacher.encode_audio(batch["audio_features"][row], batch["audio_mask"][row])
            at_video, at_audio = ids[row] == ids_cfg.video, ids[row] == ids_cfg.audio
            torch.testing.assert_close(embeds[row][at_video], video)
            torch.testing.assert_close(embeds[row][at_audio], audio)
            other = ~(at_video | at_audio)
            assert torch.equal(embeds[row][other], table[row][other])
            assert not torch.allclose(embeds[row][at_audio], table[row][at_audio])


def test_mismatched_placeholders_are_refused(
    teacher: MatchLMForPairClassification, processor: MatchLMProcessor, pair_examples
) -> None:
    batch = processor(pair_examples)
    batch["frame_mask"][0, 0, 0] = False  # one frame fewer than the sequence has tokens for
    with pytest.raises(ValueError, match="<video> tokens"):
        teacher(**batch)


def test_lora_trains_only_adapters_heads_and_projectors(
    teacher: MatchLMForPairClassification, processor: MatchLMProcessor, pair_examples
) -> None:
    teacher.prepare_for_lora()
    trainable = {n for n, p in teacher.named_parameters() if p.requires_grad}
    assert any(".lora_A." in n for n in trainable) and any(".lora_B." in n for n in trainable)
    for name in trainable:
        assert "lora_" in name or name.startswith(LORA_TRAINABLE_PREFIXES), name
    lm = teacher.llava.language_model
    adapted = [lm.layers[0].self_attn.q_proj, lm.layers[0].self_attn.o_proj, lm.layers[0].mlp.down_proj]
    assert all(not m.base_layer.weight.requires_grad for m in adapted)
    assert not lm.embed_tokens.weight.requires_grad
    assert not any(p.requires_grad for p in teacher.llava.vision_tower.parameters())
    assert not any(p.requires_grad for p in teacher.audio_encoder.parameters())

    before = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in teacher.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    teacher(**processor(pair_examples)).loss.backward()
    optimizer.step()
    changed = {n for n, p in teacher.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable
    assert any(".lora_B." in n for n in changed) and "head.heads.rci.weight" in changed
    assert "llava.language_model.layers.0.self_attn.q_proj.base_layer.weight" not in changed
    with pytest.raises(RuntimeError):
        teacher.prepare_for_full_finetune()


@pytest.mark.parametrize("lora", [False, True])
def test_save_and_reload_give_identical_outputs(
    teacher: MatchLMForPairClassification, processor: MatchLMProcessor, pair_examples, tmp_path: Path, lora: bool
) -> None:
    if lora:
        teacher.prepare_for_lora()
        with torch.no_grad():  # LoRA B starts at zero: make the adapters matter
            for name, p in teacher.named_parameters():
                if ".lora_B." in name:
                    p.normal_(std=0.1)
    teacher.eval()
    path = teacher.save_pretrained(tmp_path / "teacher")
    reloaded = MatchLMForPairClassification.from_pretrained(path).eval()
    assert reloaded.has_lora == lora
    batch = processor(pair_examples)
    with torch.no_grad():
        a, b = teacher(**batch), reloaded(**batch)
    assert torch.equal(a.embedding, b.embedding)
    assert all(torch.equal(a.logits[t], b.logits[t]) for t in a.logits)
