"""The frozen-encoder path end to end in one process: shifted features cached at insertion, SAC heads
trained on them, acting on live frames with the same frozen encoder, actor weights without it."""

import dataclasses

import numpy as np
import pytest
import torch

from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.data.feature_replay import FeatureReplayBuffer
from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.sampling import sample_batch
from robot_rl.data.schema import ObsSpec
from robot_rl.encoders.cached import CachedFeatureEncoder, ShiftedFeatures, replay_buffer
from robot_rl.encoders.keypoints import KeypointEncoder, load_encoder, save_encoder
from robot_rl.transport.weights import state_dict_to_arrays

SPEC = ObsSpec(3, {"front": (16, 16, 3), "wrist": (16, 16, 3)}, ("state",))


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = KeypointEncoder(widths=(4, 6), strides=(2, 1))
    return str(save_encoder(tmp_path_factory.mktemp("enc") / "encoder.pt", encoder))


def config(encoder_file, **overrides) -> SACConfig:
    options = dict(image_encoder="frozen", pretrained_path=encoder_file, hidden_dims=(32, 32), batch_size=32,
                   encoder_features=8, cached_shifts=3, drq_pad=2)
    return SACConfig(**{**options, **overrides})


def observation(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"state": rng.standard_normal(3).astype(np.float32),
            **{camera: rng.integers(0, 256, shape, dtype=np.uint8) for camera, shape in SPEC.images.items()}}


def filled(cfg: SACConfig, steps: int = 40, seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    replay = replay_buffer(cfg, SPEC, 2, 100, "online", seed, check_memory=False)
    replay.start_episode(observation(rng))
    for t in range(steps):
        replay.add(rng.uniform(-1, 1, 2).astype(np.float32), float(t % 7 == 0), False, t % 10 == 9, observation(rng))
        if t % 10 == 9 and t + 1 < steps:
            replay.start_episode(observation(rng))
    return replay


def test_shifted_features_are_the_frozen_encoders_on_shifted_frames(encoder_file):
    encoder = load_encoder(encoder_file)
    images = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    unshifted = ShiftedFeatures(encoder, num_shifts=2, pad=0)(images)
    assert unshifted.shape == (5, 2, 18) and unshifted.dtype == np.float16
    expected = encoder(torch.as_tensor(images)).numpy()
    np.testing.assert_allclose(unshifted[:, 0], expected, atol=2e-3, rtol=2e-3)
    np.testing.assert_array_equal(unshifted[:, 0], unshifted[:, 1])
    shifted = ShiftedFeatures(encoder, num_shifts=4, pad=3, seed=7)(images)
    assert np.abs(shifted[:, :1] - shifted[:, 1:]).max() > 0.01  # the copies differ
    np.testing.assert_array_equal(shifted, ShiftedFeatures(encoder, num_shifts=4, pad=3, seed=7)(images))  # seeded


def test_the_trainer_gets_a_feature_cache_only_for_the_frozen_encoder_with_cameras(encoder_file):
    assert isinstance(replay_buffer(config(encoder_file), SPEC, 2, 10, "x", 0, check_memory=False), FeatureReplayBuffer)
    conv = SACConfig(hidden_dims=(32, 32))
    assert type(replay_buffer(conv, SPEC, 2, 10, "x", 0, check_memory=False)) is ReplayBuffer
    assert type(replay_buffer(config(encoder_file), ObsSpec(3), 2, 10, "x", 0, check_memory=False)) is ReplayBuffer
    with pytest.raises(ValueError, match="image_encoder='frozen' needs pretrained_path"):
        SACConfig(image_encoder="frozen")


def test_sac_learns_heads_on_cached_features_and_never_touches_the_frozen_encoder(encoder_file):
    cfg = config(encoder_file)
    agent = SACAgent(SPEC, 2, cfg, seed=0)
    frozen_before = [p.clone() for p in agent.encoder.backbone.parameters()]
    head_before = agent.encoder.heads[0][0].weight.detach().clone()
    replay = filled(cfg)
    for _ in range(3):
        metrics = agent.update(sample_batch(replay, None, cfg, 0.0))
    assert all(np.isfinite(v) for v in metrics.values())
    assert not torch.equal(agent.encoder.heads[0][0].weight, head_before)
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, agent.encoder.backbone.parameters()))
    assert not any(k.startswith("backbone.") for k in agent.state_dict()["modules"]["encoder"])


def test_acting_runs_the_frozen_encoder_on_live_frames_and_actors_load_only_the_heads(encoder_file):
    cfg = config(encoder_file)
    learner, actor = SACAgent(SPEC, 2, cfg, seed=0), SACAgent(SPEC, 2, cfg, seed=5)
    learner.update(sample_batch(filled(cfg), None, cfg, 0.0))
    weights = learner.actor_state_dict()
    assert weights and not any("backbone." in k for k in weights)
    actor.load_actor_state_dict(state_dict_to_arrays(weights))  # as they travel: float32 arrays
    obs = observation(np.random.default_rng(3))
    np.testing.assert_array_equal(actor.act(obs, deterministic=True), learner.act(obs, deterministic=True))
    # the same features the cache holds (shift 0 of a pad-0 cache) give the same action as the frames
    encoder = learner.encoder
    frames = {k: torch.as_tensor(v[None]) for k, v in obs.items()}
    cached = {**frames, **{c: encoder.backbone(frames[c]) for c in SPEC.images}}
    torch.testing.assert_close(encoder(cached), encoder(frames))


def test_a_checkpoint_from_another_encoder_file_is_refused(encoder_file, tmp_path):
    agent = SACAgent(SPEC, 2, config(encoder_file), seed=0)
    state = agent.state_dict()
    other = save_encoder(tmp_path / "other.pt", KeypointEncoder(widths=(4, 6), strides=(2, 1)))
    with pytest.raises(ValueError, match="another frozen encoder file"):
        SACAgent(SPEC, 2, config(str(other)), seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="another frozen encoder file"):  # an actor with another file
        SACAgent(SPEC, 2, config(str(other)), seed=0).load_actor_state_dict(state_dict_to_arrays(agent.actor_state_dict()))
    SACAgent(SPEC, 2, config(encoder_file), seed=1).load_state_dict(state)  # the same file resumes


def test_cached_features_of_the_wrong_width_are_named(encoder_file):
    encoder = CachedFeatureEncoder(SPEC, encoder_file, features=8)
    obs = {"state": torch.zeros(2, 3), "front": torch.zeros(2, 5), "wrist": torch.zeros(2, 18)}
    with pytest.raises(ValueError, match=r"camera 'front': expected uint8 frames .* or cached features \(B, 18\)"):
        encoder(obs)


def test_bc_trains_on_the_feature_cache_too(encoder_file):
    from robot_rl.agents.bc import BCAgent, BCConfig

    fields = {f.name for f in dataclasses.fields(BCConfig)}
    cfg = BCConfig(**{k: v for k, v in dataclasses.asdict(config(encoder_file)).items() if k in fields})
    metrics = BCAgent(SPEC, 2, cfg).update(filled(config(encoder_file)).sample(16))
    assert all(np.isfinite(v) for v in metrics.values())
