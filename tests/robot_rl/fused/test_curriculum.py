"""The curriculum on reward weights: the schedule's endpoints, the reward at the final weights is the
task's (bit for bit op by op; within 4 ulp across XLA programs), bad settings are refused. That the
fused loop pays the scheduled reward: tests/robot_rl/fused/test_fused.py (one compile of the loop)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robot_rl
from robot_rl.fused.config import RewardCurriculum
from robot_rl.fused.curriculum import curriculum_reward, weights_at
from robot_rl.fused.loop import fused_env
from tasks.quad.hover import HoverArrays, QuadHoverConfig

TASK_WEIGHTS = (1.0, 0.1, 0.2, 0.02)  # quad_hover's defaults


def test_the_schedule_goes_from_the_start_to_the_task_weights_and_stays():
    c = RewardCurriculum(start_weights=(2.0, 0.0, 0.0, 0.0), action_weight_start=0.0, action_weight_final=0.5,
                         steps=1000)
    for steps, expected, action in [(0, (2.0, 0.0, 0.0, 0.0), 0.0), (500, (1.5, 0.05, 0.1, 0.01), 0.25),
                                    (1000, TASK_WEIGHTS, 0.5), (10**6, TASK_WEIGHTS, 0.5)]:
        weights, action_weight = weights_at(jnp.int32(steps), c, TASK_WEIGHTS)
        np.testing.assert_allclose(np.asarray(weights), expected, rtol=1e-6)
        assert float(action_weight) == pytest.approx(action)
    final, _ = weights_at(jnp.int32(1000), c, TASK_WEIGHTS)
    assert np.array_equal(np.asarray(final), np.asarray(TASK_WEIGHTS, np.float32))  # exactly, not start + 1 * delta
    no_start, _ = weights_at(jnp.int32(0), RewardCurriculum(action_weight_start=0.1), TASK_WEIGHTS)
    assert np.array_equal(np.asarray(no_start), np.asarray(TASK_WEIGHTS, np.float32))
    with pytest.raises(ValueError, match="as many as the task's"):
        weights_at(jnp.int32(0), RewardCurriculum(start_weights=(1.0, 2.0)), TASK_WEIGHTS)


@pytest.fixture(scope="module")
def envs():
    return robot_rl.make_vector("quad_hover", backend="jax", num_envs=8, action_history_steps=1,
                                max_episode_steps=12)


@pytest.mark.slow  # ~14 s of JAX compiles; test_the_task_reward_is_its_terms_at_its_weights checks the formula fast
def test_the_reward_at_the_final_weights_is_the_tasks_bit_for_bit(envs):
    (reset, step), (_, step_terms) = envs.functional, envs.functional_reward_terms
    assert envs.cost_weights == TASK_WEIGHTS
    batch, key, _ = reset(jax.random.key(3))
    actions = jax.random.uniform(jax.random.key(4), (30, 8, 4), minval=-1.0, maxval=1.0)  # crashes and time-outs too
    late = RewardCurriculum(start_weights=(3.0, 0.0, 0.0, 0.0), steps=10)
    pay = jax.jit(lambda terms, action, steps: curriculum_reward(terms, action, steps, late, envs.cost_weights,
                                                                 envs.reward_from_terms)[:2])
    ended = 0
    for a in actions:
        b1, k1, out = step(batch, key, a)
        _, _, out_terms = step_terms(batch, key, a)
        terms = out_terms[1]
        assert terms.shape == (8, 5)
        paid, task_reward = pay(terms, out_terms[5], jnp.int32(10))
        # Two XLA programs (the step's fused kernel, the loop's) may round sqrt and exp differently by an ulp or two;
        # the formula itself is the same bit for bit (test_the_task_reward_is_its_terms_at_its_weights).
        np.testing.assert_array_max_ulp(np.asarray(paid), np.asarray(out[1]), maxulp=4)
        np.testing.assert_array_max_ulp(np.asarray(paid), np.asarray(task_reward), maxulp=4)
        for i in (0, 2, 3, 4, 6, 7):  # everything else of the step is the same
            assert np.array_equal(np.asarray(out[i]), np.asarray(out_terms[i]))
        ended += int(np.sum(np.asarray(out[2]) | np.asarray(out[3])))
        batch, key = b1, k1
    assert ended > 0
    early, _ = pay(terms, out_terms[5], jnp.int32(0))
    flying = np.asarray(terms[:, 4]) == 0
    np.testing.assert_allclose(np.asarray(early)[flying], np.exp(-3.0 * np.asarray(terms[flying, 0])), rtol=1e-6)


def test_the_task_reward_is_its_terms_at_its_weights():
    arrays = HoverArrays(QuadHoverConfig(), None)  # the reward needs no action mapping
    rng = np.random.default_rng(0)
    pos, vel, rates, target = (rng.normal(size=(64, 3)) for _ in range(4))
    pos[:8, 2] = -1.0  # below the ground: crashed
    quat = rng.normal(size=(64, 4))
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    for dtype, xp in ((np.float32, np), (np.float64, np), (np.float32, jnp)):  # jnp op by op: the same kernels
        args = [xp.asarray(x.astype(dtype)) for x in (pos, quat, vel, rates, target)]
        terms = arrays.reward_terms(*args, xp)
        assert np.array_equal(arrays.reward_from_terms(terms, arrays.cost_weights, xp), arrays.reward(*args, xp))
        weights = xp.asarray(arrays.cost_weights, dtype)  # an array, as the fused loop passes them (traced)
        assert np.array_equal(arrays.reward_from_terms(terms, weights, xp), arrays.reward(*args, xp))
        one = [x[9] for x in args]  # a single state, as RobotEnv calls it
        assert arrays.reward_from_terms(arrays.reward_terms(*one, np), arrays.cost_weights, np) == arrays.reward(*one, np)


def test_a_task_whose_reward_is_not_made_of_hovers_terms_is_refused():
    track = robot_rl.make_vector("quad_track", backend="jax", num_envs=2)  # its own reward, hover's terms
    with pytest.raises(ValueError, match="terms of its reward"):
        fused_env(track, reward_terms=True)


def test_bad_curricula_are_refused():
    for bad, match in [(dict(start_weights=(1.0, -0.1, 0.0, 0.0)), "start_weights"),
                       (dict(start_weights=(float("nan"),)), "start_weights"),
                       (dict(action_weight_final=-1.0), "action_weight_final"), (dict(steps=0), "steps")]:
        with pytest.raises(ValueError, match=match):
            RewardCurriculum(**bad)
    assert not RewardCurriculum().enabled and RewardCurriculum(start_weights=(1, 0, 0, 0)).enabled
