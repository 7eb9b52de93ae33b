"""Integrators and dynamics layers against problems with exact solutions."""
import numpy as np
import pytest



@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_integrators_solve_exponential_decay(solver):
    import tensorflow as tf

    from trajsr.dynamics import dormand_prince, rk4
    y0 = tf.constant([[1.0], [2.0]], tf.float64)
    times = np.arange(1, 11) * 0.1
    if solver == "rk4":
        ys = rk4(lambda y: -y, y0, 10, 0.1)
    else:
        ys = dormand_prince(lambda y: -y, y0, tf.constant(times), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ys.numpy()[..., 0], np.array([1.0, 2.0])[:, None] * np.exp(-times), rtol=1e-5)


def test_leapfrog_conserves_harmonic_energy_over_long_runs():
    import tensorflow as tf

    from trajsr.dynamics import leapfrog
    q, p = tf.constant([[1.0]], tf.float64), tf.constant([[0.0]], tf.float64)
    qs, ps = leapfrog(lambda q: q, lambda p: p, q, p, h=0.1, n_steps=5000)  # ~80 periods
    energy = 0.5 * (qs.numpy() ** 2 + ps.numpy() ** 2)
    assert np.abs(energy - 0.5).max() < 0.5 * 0.1 ** 2  # bounded, no drift
    t = 0.1 * np.arange(1, 51)
    np.testing.assert_allclose(qs.numpy()[0, :50, 0], np.cos(t), atol=5e-3)
    # time reversible: stepping back returns to the start
    qb, pb = leapfrog(lambda q: q, lambda p: p, qs[:, -1], ps[:, -1], h=-0.1, n_steps=5000)
    np.testing.assert_allclose([qb.numpy()[0, -1, 0], pb.numpy()[0, -1, 0]], [1.0, 0.0], atol=1e-9)


def _train(layer, y0, target, steps, lr):
    import keras
    import tensorflow as tf
    optimizer = keras.optimizers.Adam(lr)
    inputs = tf.zeros((1, target.shape[1], 1))
    layer(y0, inputs)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(y0, inputs) - target) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables))
        return loss
    for _ in range(steps):
        loss = step()
    return float(loss)


def test_neural_ode_learns_exponential_decay():
    import keras
    import tensorflow as tf

    from trajsr.dynamics import ODEDynamics
    keras.utils.set_random_seed(0)
    layer = ODEDynamics(1)
    t = np.arange(1, 10) / 10.0
    y0 = tf.constant([[1.0], [0.5], [-1.0]])
    target = tf.constant(y0.numpy()[:, None, :] * np.exp(-t)[None, :, None], tf.float32)
    _train(layer, y0, target, 300, 0.02)
    pred = layer(y0, tf.zeros((3, 9, 1))).numpy()
    np.testing.assert_allclose(pred, target.numpy(), atol=0.02)


def test_hamiltonian_network_learns_harmonic_oscillator():
    import keras
    import tensorflow as tf

    from trajsr.dynamics import HamiltonianDynamics
    keras.utils.set_random_seed(0)
    layer = HamiltonianDynamics(2)  # q and p are one number each
    omega = 1.5
    t = np.arange(1, 10) / 10.0
    q0, p0 = np.array([1.0, 0.0, 0.7]), np.array([0.0, 1.0, -0.7])
    y0 = tf.constant(np.stack([q0, p0], 1), tf.float32)
    # exact solution of H = p^2/2 + omega^2 q^2/2
    q = q0[:, None] * np.cos(omega * t) + p0[:, None] / omega * np.sin(omega * t)
    p = -q0[:, None] * omega * np.sin(omega * t) + p0[:, None] * np.cos(omega * t)
    target = tf.constant(np.stack([q, p], -1), tf.float32)
    loss = _train(layer, y0, target, 400, 0.02)
    assert loss < 1e-3
    # the learned Hamiltonian is conserved along a long rollout outside the training window
    long = layer(y0, tf.zeros((3, 200, 1))).numpy()
    energy = layer.hamiltonian(tf.constant(long[..., :1]), tf.constant(long[..., 1:])).numpy()[..., 0]
    assert np.abs(energy - energy[:, :1]).max() < 0.01 * np.abs(energy).max()
