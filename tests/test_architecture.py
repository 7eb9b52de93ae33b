"""The one-idea layout: one family registry serves both rooms; every registered layer round-trips;
the numerical twins agree (Kabsch in NumPy and TensorFlow, adjoint and direct gradients)."""
import numpy as np
import pytest

from trajsr.dynamics import FAMILIES, Family, make_dynamics, make_step, register_family
from trajsr.geometry import kabsch_rotation, kabsch_rotation_tf
from trajsr.interpolation.names import model_names
from trajsr.interpolation.windows import normalization_stats, reference_geometry, training_windows


@pytest.fixture
def toy_family():
    from . import toy_family as toy
    register_family(Family("toy", toy.ToyDynamics, toy.ToyStep, summary="test family"))
    yield toy
    FAMILIES.pop("toy")


def test_a_new_family_trains_both_ways(toy_family, ethanol):
    from trajsr.interpolation.gap import build_model, gap_layer
    from trajsr.propagation.model import build_propagator, propagator_step
    assert {"toy", "bitoy"} <= set(model_names())
    reference = reference_geometry(ethanol)
    windows = training_windows(ethanol[:200], factor=4, context=2, reference=reference, step=5)
    net = build_model("bitoy", n_atoms=9, factor=4, context=2, width=8)
    gap_layer(net).set_normalization(normalization_stats(windows))
    assert isinstance(gap_layer(net).dynamics, toy_family.ToyDynamics)
    history = net.fit(windows.inputs(), windows.targets(), epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    prop = build_propagator("toy", masses=ethanol.masses, reference=reference, factor=4, dt_fs=0.5, strides=2, width=8)
    assert isinstance(propagator_step(prop), toy_family.ToyStep)
    x, v = ethanol.positions[:8].astype("float32"), ethanol.velocities[:8].astype("float32")
    y = np.zeros((8, 2, 54), "float32")
    history = prop.fit({"positions": x, "velocities": v}, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# -- every registered layer round-trips through its config and Keras serialisation --------------------
def _same_outputs(layer, clone, *inputs):
    clone(*inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(*inputs)), np.asarray(layer(*inputs)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_latent_dynamics_round_trip(family):
    import keras
    import tensorflow as tf
    layer = make_dynamics(family, 8)
    state, steps = tf.random.normal((3, layer.state_size)), tf.zeros((3, 4, 5))
    layer(state, steps)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    _same_outputs(layer, clone, state, steps)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_propagator_step_and_unroll_round_trip(family, ethanol, tmp_path):
    import keras

    from trajsr.dynamics import PropagatorStep
    from trajsr.propagation.model import Unroll
    step = make_step(family, masses=ethanol.masses, reference=reference_geometry(ethanol), factor=4, dt_fs=0.5,
                     width=8, substeps=2)
    x, v = ethanol.positions[:3].astype("float32"), ethanol.velocities[:3].astype("float32")
    step(x, v)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(step))
    assert type(clone) is type(step) and clone.get_config() == step.get_config()
    _same_outputs(step, clone, x, v)
    # a file that names the base class (as files before 0.2 do) gets the family's subclass
    old_config = step.get_config()
    old_config["units"] = old_config.pop("width")  # and called the width "units"
    assert type(PropagatorStep.from_config(old_config)) is type(step)
    unroll = Unroll(step, 2)
    unroll(x, v)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(unroll))
    assert again.strides == 2 and type(again.step) is type(step)
    _same_outputs(unroll, again, x, v)


# -- numerical twins --------------------------------------------------------------------------------
def test_kabsch_numpy_and_tensorflow_agree():
    import tensorflow as tf
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(7, 3))
    reference -= reference.mean(0)
    angles = rng.uniform(0, 2 * np.pi, size=(5, 3))
    mobile = []
    for a, b, c in angles:
        rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        mobile.append(reference @ (rz @ ry).T + rng.normal(scale=0.05, size=(7, 3)))
    mobile = np.array(mobile) - np.array(mobile).mean(1, keepdims=True)
    masses = rng.uniform(1, 16, size=7)
    r_np = kabsch_rotation(mobile, reference, masses)
    r_tf = kabsch_rotation_tf(tf.constant(mobile), tf.constant(reference), tf.constant(masses)).numpy()
    np.testing.assert_allclose(r_tf, r_np, atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(r_np), 1.0)


def test_dormand_prince_adjoint_gradient_matches_direct_backprop():
    """d y(T) / d k for dy/dt = -k y: TFP's adjoint through Dormand-Prince, backprop through RK4, exact."""
    import tensorflow as tf

    from trajsr.dynamics.integrators import dormand_prince, rk4
    k = tf.Variable(1.3, dtype=tf.float64)
    y0 = tf.constant([[1.0], [0.5]], tf.float64)
    times = tf.constant([0.5, 1.0], tf.float64)
    with tf.GradientTape() as tape:
        adjoint = tf.reduce_sum(dormand_prince(lambda y: -k * y, y0, times, rtol=1e-10, atol=1e-12)[:, -1])
    g_adjoint = tape.gradient(adjoint, k).numpy()
    with tf.GradientTape() as tape:
        direct = tf.reduce_sum(rk4(lambda y: -k * y, y0, 2, 0.5, substeps=50)[:, -1])
    g_direct = tape.gradient(direct, k).numpy()
    exact = -1.0 * 1.5 * np.exp(-1.3)  # d/dk of (1 + 0.5) e^{-kT}, T = 1
    assert g_adjoint == pytest.approx(exact, rel=1e-6)
    assert g_direct == pytest.approx(exact, rel=1e-6)
