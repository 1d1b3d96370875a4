import pytest
from pydantic import ValidationError

from clipguard.config import load_config, parse_overrides


def test_local_is_default_and_small():
    cfg = load_config()
    assert cfg.profile == "local"
    assert cfg.media.fps == 1.0 and cfg.media.sample_rate == 16_000 and cfg.media.clip_seconds == 20.0
    assert cfg.encoders.vision_image_size < load_config("gpu").encoders.vision_image_size


def test_gpu_profile_extends_local_with_paper_sizes():
    gpu = load_config("gpu")
    assert gpu.profile == "gpu"
    assert gpu.encoders.vision_depths == (2, 2, 6, 2)  # Swin-T
    assert gpu.encoders.audio_d_model == 768 and gpu.encoders.audio_layers == 12  # Whisper-small
    assert gpu.encoders.checkpoint_dir
    assert gpu.media.sample_rate == 16_000  # inherited from local


def test_overrides_win_and_are_validated():
    cfg = load_config(overrides={"media.fps": 2, "synth.clips": 100, "seed": None})
    assert cfg.media.fps == 2.0 and cfg.synth.clips == 100 and cfg.seed == 0
    with pytest.raises(ValidationError):
        load_config(overrides={"media.fps": -1})
    with pytest.raises(ValidationError):
        load_config(overrides={"media.no_such_key": 1})
    with pytest.raises(ValidationError):
        load_config(overrides={"media.clip_overlap_seconds": 20})
    with pytest.raises(ValidationError):
        load_config(overrides={"synth.trend_day": 8, "synth.days": 8})


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(FileNotFoundError, match="known: cluster, demo, gpu, k8s, k8s-gpu, k8s-services, local"):
        load_config("nope")


def test_profile_cycle_and_custom_dir(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config("a", config_dir=tmp_path)
    (tmp_path / "c.yaml").write_text("seed: 7\nmedia:\n  fps: 3\n")
    cfg = load_config("c", config_dir=tmp_path)
    assert cfg.seed == 7 and cfg.media.fps == 3.0 and cfg.profile == "c"


def test_parse_overrides():
    assert parse_overrides(["a.b=2", "c=x", "d=[1, 2]"]) == {"a.b": 2, "c": "x", "d": [1, 2]}
    with pytest.raises(ValueError):
        parse_overrides(["novalue"])


def test_a_profile_extends_a_list_in_order_and_the_k8s_profiles_share_their_services():
    k8s, k8s_gpu, gpu = load_config("k8s"), load_config("k8s-gpu"), load_config("gpu")
    for cfg in (k8s, k8s_gpu):  # the services fragment came last
        assert cfg.registry.tracking_uri == "http://mlflow:5000"
        assert cfg.feast.online_store == "redis" and cfg.feast.redis_connection_string.startswith("redis:6379")
        assert cfg.feast.registry_url is not None and "@postgres:5432/feast" in cfg.feast.registry_url
        assert cfg.work_dir == "/srv/clipguard/runs"
    assert k8s_gpu.encoders == gpu.encoders and k8s.encoders == load_config("cluster").encoders
    assert k8s.encoders != gpu.encoders and (k8s.profile, k8s_gpu.profile) == ("k8s", "k8s-gpu")


def test_later_parents_win(tmp_path):
    (tmp_path / "a.yaml").write_text("seed: 1\nwork_dir: a\n")
    (tmp_path / "b.yaml").write_text("seed: 2\n")
    (tmp_path / "c.yaml").write_text("extends: [a, b]\n")
    cfg = load_config("c", config_dir=tmp_path)
    assert (cfg.seed, cfg.work_dir, cfg.profile) == (2, "a", "c")
